"""The episode loop: paired seeds, resume after a kill, env-crash retries, agent errors, Ctrl-C, videos."""

from __future__ import annotations

import json

import cv2
import pytest

from eval import run_tasks, worker
from eval.baselines import RandomAgent
from eval.envs import FakeMinecraftEnv
from eval.methods import make_methods
from eval.report import summarize
from eval.runner import RESULTS, RunSettings, episode_seed, latest_rows, read_results, run_evaluation
from eval.tasks import load_tasks
from zh_steve.errors import ConfigError

H, W = 36, 64
META = {"env": "fake", "test_double": True, "base_seed": 0, "max_steps_override": 5, "agent": "random",
        "translator": None, "tasks_file_sha256": "x"}


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the harness may catch it."""


def fake_factory(crash_at_step=None, crash_mode="exception", crashes=0, kill_after_steps=None):
    """Envs that crash for the first ``crashes`` envs made; optionally 'kill the process' after N steps in all."""
    state = {"made": 0, "steps": 0}

    class Env(FakeMinecraftEnv):
        def step(self, action):
            state["steps"] += 1
            if kill_after_steps is not None and state["steps"] > kill_after_steps:
                raise Killed()
            return super().step(action)

    def make():
        state["made"] += 1
        crash = crash_at_step if state["made"] <= crashes else None
        return Env(height=H, width=W, crash_at_step=crash, crash_mode=crash_mode)

    return make, state


def run(tmp_path, factory, episodes=2, agent=None, tasks=("wood", "sky"), **kw):
    settings = RunSettings(out_dir=tmp_path, episodes=episodes, max_steps_override=5, progress=False, **kw)
    return run_evaluation(load_tasks(only=list(tasks)), make_methods(["align", "direct-en"]), agent or RandomAgent(),
                          factory, settings, META)


def test_methods_share_seeds_and_every_episode_is_recorded(tmp_path):
    make, _ = fake_factory()
    rows = run(tmp_path, make)
    assert len(rows) == 2 * 2 * 2 and all(r["status"] == "ok" for r in rows)
    by_key = latest_rows(rows)
    for task in ("wood", "sky"):
        for ep in range(2):
            seeds = {by_key[(task, m, ep)]["seed"] for m in ("align", "direct-en")}
            assert seeds == {episode_seed(0, task, ep)}
    assert episode_seed(0, "wood", 0) != episode_seed(0, "wood", 1) != episode_seed(1, "wood", 1)
    r = by_key[("wood", "align", 1)]
    assert r["source_text"] == load_tasks(only=["wood"])[0].zh[1].text and r["steps"] == 5
    assert r["label"] == "TEST DOUBLE — not Minecraft results" and r["test_double"] is True
    assert set(r["policy_step_ms"]) >= {"p50", "p95"} and len(r["step_times_ms"]["env"]) == 5


def test_resume_after_kill_loses_and_repeats_nothing(tmp_path):
    make, _ = fake_factory(kill_after_steps=17)  # dies inside the 4th episode (5 steps each)
    with pytest.raises(Killed):
        run(tmp_path, make)
    before = read_results(tmp_path / RESULTS)
    assert len(before) == 3
    with (tmp_path / RESULTS).open("a") as f:  # a torn half-written line, as a kill during write leaves
        f.write('{"task": "sky", "meth')
    make, state = fake_factory()
    with pytest.raises(ConfigError, match="--resume"):
        run(tmp_path, make)
    rows = run(tmp_path, make, resume=True)
    keys = [(r["task"], r["method"], r["episode"]) for r in rows]
    assert len(keys) == len(set(keys)) == 8
    assert rows[:3] == before  # finished episodes were kept, not re-run
    assert state["steps"] == 5 * 5  # only the 5 missing episodes ran
    assert run(tmp_path, make, resume=True) == rows  # nothing left to do


def test_resume_refuses_different_settings(tmp_path):
    make, _ = fake_factory()
    run(tmp_path, make, episodes=1)
    settings = RunSettings(out_dir=tmp_path, episodes=1, progress=False, resume=True)
    with pytest.raises(ConfigError, match="base_seed"):
        run_evaluation(load_tasks(only=["wood"]), make_methods(["align"]), RandomAgent(), make, settings,
                       {**META, "base_seed": 1})


@pytest.mark.parametrize("mode", ["exception", "dead"])
def test_env_crash_is_retried_with_a_fresh_env(tmp_path, mode):
    make, state = fake_factory(crash_at_step=3, crash_mode=mode, crashes=2)
    rows = run(tmp_path, make, episodes=1, tasks=("wood",), max_retries=2)
    first = latest_rows(rows)[("wood", "align", 0)]
    assert first["status"] == "ok" and first["attempts"] == 3 and state["made"] == 3


@pytest.mark.parametrize("mode", ["exception", "dead"])
def test_env_crash_beyond_retries_is_recorded_and_the_run_goes_on(tmp_path, mode):
    make, state = fake_factory(crash_at_step=2, crash_mode=mode, crashes=3)
    rows = run(tmp_path, make, episodes=1, tasks=("wood",), max_retries=2)
    by_key = latest_rows(rows)
    err = by_key[("wood", "align", 0)]
    assert err["status"] == "error" and err["error_kind"] == "env" and err["attempts"] == 3
    assert "step 2" in err["error"]
    assert by_key[("wood", "direct-en", 0)]["status"] == "ok"
    s = summarize(rows, META)
    assert s["tasks"]["wood"]["align"]["errors"] == 1 and s["tasks"]["wood"]["align"]["n"] == 0
    assert s["errors"][0]["attempts"] == 3


def test_agent_error_is_recorded_without_retry(tmp_path):
    class Broken(RandomAgent):
        def reset(self, instruction, lang="auto"):
            if lang == "zh":
                raise ValueError("no Chinese today")
            super().reset(instruction, lang)

    make, state = fake_factory()
    rows = run(tmp_path, make, episodes=1, tasks=("wood",), agent=Broken())
    by_key = latest_rows(rows)
    assert by_key[("wood", "align", 0)]["error_kind"] == "agent" and by_key[("wood", "align", 0)]["attempts"] == 1
    assert by_key[("wood", "direct-en", 0)]["status"] == "ok"


def test_ctrl_c_writes_the_summary_and_exits_130(tmp_path, monkeypatch):
    made = {"n": 0}

    class Interrupting(FakeMinecraftEnv):
        def step(self, action):
            made["n"] += 1
            if made["n"] > 7:
                raise KeyboardInterrupt
            return super().step(action)

    monkeypatch.setattr(worker, "make_env", lambda kind, **kw: Interrupting(height=H, width=W))
    out = tmp_path / "run"
    code = run_tasks.main(["--env", "fake", "--agent-config", "random", "--methods", "align", "--tasks", "wood",
                           "--episodes", "3", "--max-steps", "3", "--out", str(out), "--no-progress"])
    assert code == 130
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes_recorded"] == 2 and summary["tasks"]["wood"]["align"]["n"] == 2
    assert (out / "summary.md").read_text().startswith("# TEST DOUBLE — not Minecraft results")


def test_video_is_written_per_episode(tmp_path):
    make, _ = fake_factory()
    rows = run(tmp_path, make, episodes=1, tasks=("wood",), video=True)
    for r in rows:
        cap = cv2.VideoCapture(r["video"])
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, frame = cap.read()
        cap.release()
        assert ok and frame.shape == (H, W, 3) and n == 6  # reset frame + 5 steps


def test_video_overlay_without_a_cjk_font_warns_and_stays_ascii(tmp_path, monkeypatch):
    from eval import video

    monkeypatch.setattr(video, "find_cjk_font", lambda: None)
    with pytest.warns(UserWarning, match="no CJK font"):
        v = video.EpisodeVideo(tmp_path / "v.mp4", ["wood | align", "砍树"])
        v.add(FakeMinecraftEnv(height=H, width=W).render())
        v.close()
    assert (tmp_path / "v.mp4").stat().st_size > 0


def test_video_is_h264_with_pyav_and_mp4v_with_a_warning_without(tmp_path, monkeypatch):
    av = pytest.importorskip("av")
    from eval import video

    frame = FakeMinecraftEnv(height=35, width=63).render()  # odd sides: padded to even for yuv420p
    w = video.VideoWriter(tmp_path / "a.mp4")
    for _ in range(3):
        w.write(frame)
    w.close()
    with av.open(str(tmp_path / "a.mp4")) as c:
        s = c.streams.video[0]
        assert w.codec == "h264" and s.codec_context.name == "h264" and (s.width, s.height) == (64, 36)
        assert sum(1 for _ in c.decode(video=0)) == 3
    monkeypatch.setattr(video, "_have_pyav", lambda: False)
    monkeypatch.setattr(video, "_warned_fallback", False)
    with pytest.warns(UserWarning, match="PyAV is not installed"):
        w = video.VideoWriter(tmp_path / "b.mp4")
    w.write(frame)
    w.close()
    cap = cv2.VideoCapture(str(tmp_path / "b.mp4"))
    assert w.codec == "mp4v" and cap.read()[0]
    cap.release()
