"""``--workers N`` on Ray with the test double and the tiny agent: the same rows as one worker, and a worker
killed mid-run loses no episode. One local Ray (2 CPUs) for the module; few, short episodes."""

from __future__ import annotations

import json

import pytest

from eval import run_tasks

ray = pytest.importorskip("ray")

KEY = ("task", "method", "seed", "success", "score")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * (1 << 20), log_to_driver=False)
    yield
    ray.shutdown()


def _args(repo_root, out, *extra, methods=("align", "control")):
    return ["--lang", "zh", "--env", "fake", "--agent-config", str(repo_root / "configs" / "agent_tiny.yaml"),
            "--methods", *methods,
            "--tasks", "wood", "sky", "--episodes", "2", "--max-steps", "6", "--marian", "tiny",
            "--cache-dir", str(out.parent / "cache"), "--out", str(out), "--no-progress",
            "--env-option", "height=72", "--env-option", "width=128", *extra]


def _rows(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _keys(rows):
    return sorted(tuple(r[k] for k in KEY) for r in rows)


@pytest.fixture(scope="module")
def serial_rows(tmp_path_factory, repo_root):
    out = tmp_path_factory.mktemp("par") / "serial"
    assert run_tasks.main(_args(repo_root, out)) == 0
    return _rows(out)


def test_two_workers_write_the_same_rows_as_one(local_ray, serial_rows, tmp_path, repo_root):
    out = tmp_path / "two"
    assert run_tasks.main(_args(repo_root, out, "--workers", "2")) == 0
    rows = _rows(out)
    assert len(rows) == len(serial_rows) == 2 * 2 * 2 and all(r["status"] == "ok" for r in rows)
    assert _keys(rows) == _keys(serial_rows)
    assert {r["worker"] for r in rows} == {"ray-0", "ray-1"}
    # paired design: every method of one (task, episode) ran in the same worker
    by_unit = {}
    for r in rows:
        by_unit.setdefault((r["task"], r["episode"]), set()).add(r["worker"])
    assert all(len(w) == 1 for w in by_unit.values())
    meta = json.loads((out / "run_meta.json").read_text())
    assert meta["workers"] == 2 and meta["agent"]["random_weights"] is True


@pytest.mark.slow  # four worker restarts, each building an agent (and the tiny Marian for translate)
def test_a_killed_worker_loses_and_repeats_no_episode(local_ray, tmp_path, repo_root):
    full = ("align", "translate", "control")
    serial = tmp_path / "serial"
    assert run_tasks.main(_args(repo_root, serial, methods=full)) == 0
    out = tmp_path / "killed"
    # the first attempt of every (task, episode) SIGKILLs its worker at step 3
    code = run_tasks.main(_args(repo_root, out, "--workers", "2", "--env-option", "kill_worker_at_step=3",
                                "--env-option", f"fault_once_dir={tmp_path / 'faults'}", methods=full))
    assert code == 0
    rows = _rows(out)
    keys = [(r["task"], r["method"], r["episode"]) for r in rows]
    assert len(keys) == len(set(keys)) == 12 and all(r["status"] == "ok" for r in rows)
    assert _keys(rows) == _keys(_rows(serial))
    retried = [r for r in rows if r.get("worker_deaths")]
    assert len(retried) == 4 and all(r["worker"].endswith((".1", ".2", ".3", ".4")) for r in retried)


@pytest.mark.slow
def test_issue_command_four_episodes_two_workers_equals_one(local_ray, tmp_path, repo_root):
    """The done-when command (whole suite, 4 episodes, --lang zh), with shorter episodes to bound CI time."""
    def args(out, *extra):
        return ["--lang", "zh", "--env", "fake", "--agent-config", str(repo_root / "configs" / "agent_tiny.yaml"),
                "--episodes", "4", "--max-steps", "3", "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
                "--no-progress", *extra]

    assert run_tasks.main(args(tmp_path / "one")) == 0
    assert run_tasks.main(args(tmp_path / "two", "--workers", "2")) == 0
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert len(one) == 16 * 4 * 3 and _keys(one) == _keys(two)


def test_missing_ray_explains_how_to_install(monkeypatch, tmp_path):
    import builtins

    from eval import parallel

    real_import = builtins.__import__

    def no_ray(name, *a, **kw):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(Exception, match=r'pip install "zh-steve\[ray\]"'):
        parallel.import_ray()


def test_a_worker_that_cannot_build_its_agent_is_a_clean_error(local_ray, tmp_path, capsys):
    bad = tmp_path / "agent.yaml"
    bad.write_text("no_such_key: 1\n", encoding="utf-8")
    code = run_tasks.main(["--env", "fake", "--agent-config", str(bad), "--methods", "align", "--tasks", "wood",
                           "--episodes", "1", "--workers", "2", "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 2 and "no_such_key" in capsys.readouterr().err
