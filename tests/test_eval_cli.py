"""Smoke run of ``python -m eval.run_tasks`` on the fake env with the real tiny agent (offline, < 30 s)."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from eval import run_tasks

LABEL = "TEST DOUBLE — not Minecraft results"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, repo_root):
    out = tmp_path_factory.mktemp("eval_run")
    code = run_tasks.main([
        "--lang", "zh", "--env", "fake", "--agent-config", str(repo_root / "configs" / "agent_tiny.yaml"),
        "--episodes", "2", "--tasks", "wood", "inventory", "--max-steps", "8", "--marian", "tiny",
        "--cache-dir", str(out / "cache"), "--out", str(out / "run"), "--no-progress",
    ])
    assert code == 0
    return out / "run"


def test_all_outputs_are_written(smoke_run):
    for name in ("results.jsonl", "summary.json", "summary.md", "success.png", "latency.png", "run_meta.json"):
        assert (smoke_run / name).is_file(), name
    for png in ("success.png", "latency.png"):
        img = cv2.imread(str(smoke_run / png))
        assert img is not None and img.shape[0] > 200 and img.shape[1] > 400 and img.std() > 10


def test_results_rows_are_paired_and_labelled(smoke_run):
    rows = [json.loads(line) for line in (smoke_run / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 3 and all(r["status"] == "ok" for r in rows)
    assert all(r["label"] == LABEL and r["test_double"] for r in rows)
    align = {(r["task"], r["episode"]): r for r in rows if r["method"] == "align"}
    trans = {(r["task"], r["episode"]): r for r in rows if r["method"] == "translate"}
    assert align.keys() == trans.keys()
    for k in align:
        assert align[k]["seed"] == trans[k]["seed"] and align[k]["source_text"] == trans[k]["source_text"]
        assert align[k]["instruction"] == align[k]["source_text"] and trans[k]["instruction"] == trans[k]["translation"]
        assert align[k]["embed_info"]["route"] == "zh" and trans[k]["embed_info"]["route"] == "en"
    assert any(k.startswith("embed.") and k != "embed.total_ms" for k in align[("wood", 0)]["goal_ms"])
    # the control gets another task's Chinese phrasing (the fixed derangement) on the same seed
    from eval.methods import control_pairs
    from eval.tasks import load_tasks

    suite = {t.name: t for t in load_tasks()}
    other = control_pairs(list(suite.values()))
    for r in rows:
        if r["method"] == "control":
            assert r["seed"] == align[(r["task"], r["episode"])]["seed"]
            assert other[r["task"]] != r["task"]
            assert r["instruction"] == suite[other[r["task"]]].zh_for_episode(r["episode"]).text


def test_summary_has_both_methods_success_and_latency(smoke_run):
    s = json.loads((smoke_run / "summary.json").read_text())
    assert s["label"] == LABEL and s["meta"]["translator"] == "tiny random Marian (offline stand-in)"
    assert s["meta"]["random_weights"] is True
    for m in ("align", "translate"):
        block = s["methods"][m]
        assert block["success"]["n"] == 4 and len(block["success"]["ci95"]) == 2
        lat = block["latency"]
        assert lat["policy_step_ms"]["p50"] > 0 and lat["env_step_ms"]["p95"] >= lat["env_step_ms"]["p50"]
        assert "total_ms" in lat["goal_ms"]
    assert "translate.generate_ms" in s["methods"]["translate"]["latency"]["goal_ms"]
    assert s["paired_difference"]["per_task"]["wood"]["n_pairs"] == 2
    md = (smoke_run / "summary.md").read_text()
    assert md.startswith(f"# {LABEL}") and "| wood |" in md and "align − translate" in md
    # counts beside rates, the control comparison, and the data checks
    assert "## Scores (count-based" in md and "align − control" in md and "## Data checks" in md
    assert s["tasks"]["wood"]["control"]["n"] == 2 and s["tasks"]["wood"]["align"]["unit"] == "items"
    assert s["comparisons"]["align − control"]["per_task"]["inventory"]["score"]["n"] == 2


def test_help_and_bad_input_exit_cleanly(tmp_path):
    r = subprocess.run([sys.executable, "-m", "eval.run_tasks", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--resume" in r.stdout and "--marian" in r.stdout
    code = run_tasks.main(["--env", "fake", "--agent-config", "random", "--tasks", "flying", "--out", str(tmp_path)])
    assert code == 2
