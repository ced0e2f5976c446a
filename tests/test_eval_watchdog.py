"""Hang-proof envs on the test double: a blocked step is killed and retried, leaks are recycled away, an env
that ends episodes early is an env fault, and the data checks flag zero-filled fields."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from eval import run_tasks
from eval.baselines import RandomAgent
from eval.envs import FakeMinecraftEnv
from eval.envs.host import decode, encode
from eval.envs.watchdog import EnvHangError, SubprocessEnv
from eval.methods import make_methods
from eval.report import summarize
from eval.runner import RunSettings, latest_rows, run_evaluation
from eval.tasks import load_tasks
from zh_steve.actions import noop_action
from zh_steve.errors import EnvironmentUnavailableError

H, W = 36, 64
META = {"env": "fake", "test_double": True, "base_seed": 0, "max_steps_override": 5, "agent": "random",
        "translator": None, "tasks_file_sha256": "x"}


def test_wire_format_carries_arrays_without_numpy_pickles():
    obs = {"pov": np.arange(24, dtype=np.uint8).reshape(2, 4, 3), "x": np.float32(1.5), "l": [np.int64(3)],
           "nested": {"cam": np.array([0.5, -1.0], np.float32)}}
    wire = encode(obs)
    assert b"numpy" not in __import__("pickle").dumps(wire, protocol=4)  # any numpy version can read it
    back = decode(wire)
    assert back["pov"].dtype == np.uint8 and np.array_equal(back["pov"], obs["pov"])
    assert back["x"] == 1.5 and back["l"] == [3] and back["nested"]["cam"].dtype == np.float32


def test_subprocess_env_matches_the_in_process_env_and_kills_a_blocked_step():
    env = SubprocessEnv("fake", {"height": H, "width": W, "hang_at_step": 3}, step_timeout=1.0, reset_timeout=60)
    local = FakeMinecraftEnv(height=H, width=W)
    try:
        assert env.is_test_double and env.name == "fake"
        a, _ = env.reset(seed=7)
        b, _ = local.reset(seed=7)
        assert np.array_equal(a["pov"], b["pov"]) and a["location_stats"] == b["location_stats"]
        act = noop_action()
        act["forward"] = 1
        for _ in range(2):
            a, *_ = env.step(act)
            b, *_ = local.step(act)
        assert a["location_stats"] == b["location_stats"]
        pid = env.pid
        with pytest.raises(EnvHangError, match="did not answer within 1 s"):
            env.step(act)
        with pytest.raises(ProcessLookupError):  # the whole process group is gone
            os.killpg(pid, 0)
    finally:
        env.close()


def test_missing_backend_in_the_child_is_reported_as_unavailable():
    with pytest.raises(EnvironmentUnavailableError, match="not available"):
        SubprocessEnv("minerl", step_timeout=5, reset_timeout=60)


def _run(tmp_path, env_factory, tasks=("wood",), episodes=2, methods=("align", "direct-en"), **kw):
    settings = RunSettings(out_dir=tmp_path, episodes=episodes, max_steps_override=5, progress=False, **kw)
    return run_evaluation(load_tasks(only=list(tasks)), make_methods(list(methods)), RandomAgent(), env_factory,
                          settings, META)


def test_hung_step_loses_no_episode_cli(tmp_path, repo_root):
    """The done-when check: every episode's first attempt blocks at step 3; the watchdog kills and retries."""
    out = tmp_path / "run"
    args = ["--lang", "zh", "--env", "fake", "--agent-config", "random", "--methods", "align", "--tasks", "wood",
            "--episodes", "2", "--max-steps", "5", "--out", str(out), "--no-progress",
            "--env-timeout", "1.5", "--reset-timeout", "60", "--env-option", "height=36", "--env-option", "width=64",
            "--env-option", "hang_at_step=3", "--env-option", f"fault_once_dir={tmp_path / 'faults'}"]
    assert run_tasks.main(args) == 0
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["task"], r["episode"], r["status"]) for r in rows] == [("wood", 0, "ok"), ("wood", 1, "ok")]
    for r in rows:
        assert r["attempts"] == 2 and r["steps"] == 5
        assert len(r["env_faults"]) == 1 and "did not answer within 1.5 s" in r["env_faults"][0]
    # the same episodes without the fault give the same rows
    clean = tmp_path / "clean"
    base = args[: args.index("--env-timeout")]
    base[base.index(str(out))] = str(clean)
    assert run_tasks.main(base) == 0
    rows2 = [json.loads(x) for x in (clean / "results.jsonl").read_text().splitlines()]
    assert [(r["seed"], r["score"], r["success"]) for r in rows] == [(r["seed"], r["score"], r["success"]) for r in rows2]


def test_leak_crashes_without_recycling_and_not_with_it(tmp_path):
    def factory():
        return FakeMinecraftEnv(height=H, width=W, leak_mb_per_episode=1, oom_after_mb=2.5)

    # 1 constructor reset (no leak) + episodes: the 3rd episode on one env runs out of memory
    rows = latest_rows(_run(tmp_path / "leaky", factory, episodes=2))
    faulted = [r for r in rows.values() if r["env_faults"]]
    assert all(r["status"] == "ok" for r in rows.values()) and faulted
    assert all("MemoryError" in r["env_faults"][0] and r["attempts"] == 2 for r in faulted)
    rows = latest_rows(_run(tmp_path / "recycled", factory, episodes=2, recycle_every=2))
    assert all(r["status"] == "ok" and r["attempts"] == 1 and not r["env_faults"] for r in rows.values())
    assert [r["env_recycled"] for r in rows.values()] == [False, False, True, False]


def test_env_that_ends_episodes_early_is_an_env_fault(tmp_path):
    made = {"n": 0}

    def factory():
        made["n"] += 1
        return FakeMinecraftEnv(height=H, width=W, end_early_at_step=2 if made["n"] == 1 else None)

    r = latest_rows(_run(tmp_path, factory, episodes=1, methods=("align",)))[("wood", "align", 0)]
    assert r["status"] == "ok" and r["steps"] == 5 and r["attempts"] == 2
    assert "ended the episode early (terminated) at step 2" in r["env_faults"][0]
    # a task that defines early ends keeps the short episode
    import dataclasses

    task = dataclasses.replace(load_tasks(only=["wood"])[0], allow_early_end=True)
    settings = RunSettings(out_dir=tmp_path / "allowed", episodes=1, max_steps_override=5, progress=False)
    rows = run_evaluation([task], make_methods(["align"]), RandomAgent(),
                          lambda: FakeMinecraftEnv(height=H, width=W, end_early_at_step=2), settings, META)
    assert rows[0]["steps"] == 2 and rows[0]["ended_by"] == "terminated" and rows[0]["attempts"] == 1


def test_data_checks_flag_zero_filled_fields_and_origin_starts(tmp_path):
    rows = _run(tmp_path / "frozen", lambda: FakeMinecraftEnv(height=H, width=W, frozen=["location_stats"]),
                tasks=("explore", "sky"), episodes=1)
    checks = summarize(rows, META)["data_checks"]
    assert {"position", "pitch"} <= set(checks["constant_fields"])
    assert checks["origin_starts"] == len(rows) == 4
    assert checks["tasks_reading_constant_or_missing_fields"] == {"explore": ["position"], "sky": ["pitch"]}
    # the normal test double moves and looks around: position and pitch are not flagged, no origin start
    rows = _run(tmp_path / "normal", lambda: FakeMinecraftEnv(height=H, width=W), tasks=("explore", "sky"),
                episodes=1)
    checks = summarize(rows, META)["data_checks"]
    assert "position" not in checks["constant_fields"] and "pitch" not in checks["constant_fields"]
    assert checks["origin_starts"] == 0


def test_shards_merge_into_the_rows_of_one_run(tmp_path):
    from eval import merge

    common = ["--lang", "zh", "--env", "fake", "--agent-config", "random", "--methods", "align", "control",
              "--tasks", "wood", "sky", "--episodes", "3", "--max-steps", "4", "--no-progress",
              "--env-option", "height=36", "--env-option", "width=64"]
    assert run_tasks.main([*common, "--out", str(tmp_path / "whole")]) == 0
    for i in range(2):
        assert run_tasks.main([*common, "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}")]) == 0
    s0 = [json.loads(x) for x in (tmp_path / "s0" / "results.jsonl").read_text().splitlines()]
    assert {(r["task"], r["episode"]) for r in s0} == {("wood", 0), ("wood", 2), ("sky", 1)}  # units 0, 2, 4
    assert merge.main([str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "merged")]) == 0

    def keys(d):
        rows = [json.loads(x) for x in (d / "results.jsonl").read_text().splitlines()]
        return sorted((r["task"], r["method"], r["episode"], r["seed"], r["success"], r["score"]) for r in rows)

    assert keys(tmp_path / "merged") == keys(tmp_path / "whole") and len(keys(tmp_path / "whole")) == 12
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert merged["episodes_recorded"] == 12 and merged["meta"]["merge_warnings"] == []
    # a missing shard is reported; shards of different runs are refused
    assert merge.main([str(tmp_path / "s0"), "--out", str(tmp_path / "half")]) == 0
    assert "missing shards [1]" in json.loads((tmp_path / "half" / "run_meta.json").read_text())["merge_warnings"]
    assert run_tasks.main([*common, "--seed", "5", "--shard", "1/2", "--out", str(tmp_path / "other")]) == 0
    assert merge.main([str(tmp_path / "s0"), str(tmp_path / "other"), "--out", str(tmp_path / "bad")]) == 2
