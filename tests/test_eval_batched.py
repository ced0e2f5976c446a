"""``--batch-envs N``: one BatchedZhSteveAgent drives N test-double envs in lockstep; the rows equal one agent's,
and an env fault in one slot is retried without disturbing the others."""

from __future__ import annotations

import json

from eval import run_tasks

KEY = ("task", "method", "seed", "success", "score", "status")


def _args(repo_root, out, *extra):
    return ["--lang", "zh", "--env", "fake", "--agent-config", str(repo_root / "configs" / "agent_tiny.yaml"),
            "--methods", "align", "control", "--tasks", "wood", "sky", "--episodes", "2", "--max-steps", "6",
            "--out", str(out), "--no-progress", "--env-option", "height=72", "--env-option", "width=128", *extra]


def _rows(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_batched_envs_write_the_rows_of_one_agent_and_retry_faults(tmp_path, repo_root):
    assert run_tasks.main(_args(repo_root, tmp_path / "one")) == 0
    # each seed's first episode is ended early by the env once: an env fault, retried in its slot
    assert run_tasks.main(_args(repo_root, tmp_path / "three", "--batch-envs", "3", "--env-option",
                                "end_early_at_step=3", "--env-option", f"fault_once_dir={tmp_path / 'f'}")) == 0
    one, three = _rows(tmp_path / "one"), _rows(tmp_path / "three")
    assert len(three) == 8 and all(r["status"] == "ok" and r["steps"] == 6 for r in three)
    assert sorted(tuple(r[k] for k in KEY) for r in one) == sorted(tuple(r[k] for k in KEY) for r in three)
    retried = [r for r in three if r["attempts"] == 2]
    assert len(retried) == 4 and all("ended the episode early" in r["env_faults"][0] for r in retried)
    assert {r["worker"] for r in three} <= {"batched-0", "batched-1", "batched-2"}
    assert json.loads((tmp_path / "three" / "run_meta.json").read_text())["batch_envs"] == 3


def test_batch_envs_refuses_the_random_baseline_and_workers(tmp_path, capsys):
    base = ["--env", "fake", "--tasks", "wood", "--episodes", "1", "--out", str(tmp_path / "o"), "--no-progress"]
    assert run_tasks.main([*base, "--agent-config", "random", "--batch-envs", "2"]) == 2
    assert "ZhSteveAgent config" in capsys.readouterr().err
    assert run_tasks.main([*base, "--agent-config", "random", "--batch-envs", "2", "--workers", "2"]) == 2
    assert "does not combine" in capsys.readouterr().err
