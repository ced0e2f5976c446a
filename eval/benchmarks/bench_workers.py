"""Episodes per minute of ``eval.run_tasks`` with 1, 2, 4 workers — on the TEST DOUBLE with the tiny agent.

    python -m eval.benchmarks.bench_workers --workers 1 2 4 --batch-envs 4 --out runs/bench/workers.json

Times the episode phase only (after every worker has built its agent; Ray start-up and actor builds are
reported separately). The test double and the tiny random agent are cheap, so this measures the harness's
overhead and scaling on this machine's cores, not Minecraft's: a MineRL step costs 15–50 ms of JVM time per env.
Every number is labelled "TEST DOUBLE — not Minecraft results". Rows are checked to be identical across
worker counts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..envs import TEST_DOUBLE_LABEL
from ..methods import METHODS_FOR_LANG
from ..runner import RunSettings, run_evaluation, start_run
from ..worker import WorkerRecipe

REPO = Path(__file__).resolve().parents[2]


def run_once(workers: int, tasks: list[str], episodes: int, steps: int, work: Path, batch_envs: int = 1
             ) -> dict[str, Any]:
    recipe = WorkerRecipe(env_kind="fake", agent_config=str(REPO / "configs" / "agent_tiny.yaml"),
                          method_names=list(METHODS_FOR_LANG["zh"]), tasks_file=str(REPO / "configs" / "eval_tasks.yaml"),
                          task_names=tasks, marian="tiny", cache_dir=str(work / "cache"), torch_threads=1)
    out = work / f"w{workers}b{batch_envs}"
    settings = RunSettings(out_dir=out, episodes=episodes, max_steps_override=steps, progress=False, overwrite=True)
    meta = {"env": "fake", "test_double": True, "base_seed": 0, "max_steps_override": steps, "agent": "tiny",
            "translator": "tiny", "tasks_file_sha256": "bench", "shard": None}
    t0 = time.perf_counter()
    if workers == 1:
        import torch

        torch.set_num_threads(1)
        task_objs, methods, agent, _ = recipe.build(batched=batch_envs > 1)
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        if batch_envs > 1:
            from ..batched import run_batched

            rows = run_batched(task_objs, methods, agent, recipe.env_factory(), settings, meta, batch_envs)
        else:
            rows = run_evaluation(task_objs, methods, agent, recipe.env_factory(), settings, meta)
    else:
        from ..parallel import ParallelSettings, RayPool, run_parallel
        from ..translate import build_tiny_marian

        task_objs, suite = recipe.load_tasks()
        build_tiny_marian(recipe.cache_dir, recipe.translator_texts(suite))
        pool = RayPool(recipe, settings, ParallelSettings(workers=workers), TEST_DOUBLE_LABEL)
        try:
            import ray

            ray.get([a.describe.remote() for a in pool.actors])  # every actor built
            startup = time.perf_counter() - t0
            t1 = time.perf_counter()
            specs, todo, writer = start_run(task_objs, recipe.method_names, settings, meta)
            rows = run_parallel(pool, specs, todo, writer, meta)
        finally:
            pool.shutdown()
    wall = time.perf_counter() - t1
    ok = [r for r in rows if r.get("status") == "ok"]
    return {"workers": workers, "batch_envs": batch_envs, "episodes": len(ok), "episode_phase_s": wall, "startup_s": startup,
            "episodes_per_min": 60.0 * len(ok) / wall,
            "rows": sorted((r["task"], r["method"], r["seed"], r["success"], r["score"]) for r in ok)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.benchmarks.bench_workers", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--batch-envs", type=int, nargs="*", default=[4],
                   help="also time one process with one batched agent over this many envs")
    p.add_argument("--tasks", nargs="+", default=["wood", "sky", "explore", "dig"])
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--max-steps", type=int, default=50)
    p.add_argument("--out", default="runs/bench/workers.json")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_workers_"))
    try:
        results = [run_once(w, args.tasks, args.episodes, args.max_steps, work) for w in args.workers]
        results += [run_once(1, args.tasks, args.episodes, args.max_steps, work, b) for b in args.batch_envs]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    same = all(r["rows"] == results[0]["rows"] for r in results)
    report = {"label": TEST_DOUBLE_LABEL, "what": "episodes per minute of the episode phase, tiny random agent on "
              "the scripted test double (3 methods: align, translate with a tiny Marian, control)",
              "cpu_count": os.cpu_count(), "tasks": args.tasks, "episodes_per_task": args.episodes,
              "max_steps": args.max_steps, "rows_identical_across_worker_counts": same,
              "results": [{k: v for k, v in r.items() if k != "rows"} for r in results]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"{TEST_DOUBLE_LABEL} ({os.cpu_count()} CPUs):")
    for r in report["results"]:
        what = f"batch-envs {r['batch_envs']} (1 process)" if r["batch_envs"] > 1 else f"workers {r['workers']}"
        print(f"  {what}: {r['episodes_per_min']:.1f} episodes/min ({r['episodes']} episodes in "
              f"{r['episode_phase_s']:.1f} s; start-up {r['startup_s']:.1f} s)")
    print(f"  rows identical across worker counts: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
