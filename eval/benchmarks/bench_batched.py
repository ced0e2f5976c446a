"""Throughput of BatchedZhSteveAgent: N environments per forward, env-steps/s. Full size, RANDOM weights.

    python -m eval.benchmarks.bench_batched [--out runs/bench/batched.json] [--n 1 2 4 8] [--steps 8]

Each step is ``act_batch`` on N MineRL-size frames (360×640, resized inside), CFG 6 (batch 2N), sampling
included. N = 1 is the single-env step through the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from zh_steve.agent import AgentConfig
from zh_steve.batched_agent import BatchedZhSteveAgent

from ..stats import percentiles
from .parts import full_size_random_parts

LABEL = "full-size architectures, RANDOM weights (architecture cost only)"


def run(n_envs: list[int], steps: int, warmup: int, parts=None) -> dict:
    parts = parts or full_size_random_parts()
    rng = np.random.default_rng(0)
    frames = [{"pov": rng.integers(0, 256, size=(360, 640, 3), dtype=np.uint8)} for _ in range(8)]
    rows = {}
    for n in n_envs:
        agent = BatchedZhSteveAgent(parts, AgentConfig(seed=0, tiny=None))
        for i in range(n):
            agent.reset(i, ["砍树", "挖泥土", "去游泳", "chop a tree"][i % 4])
        ids = list(range(n))
        times = []
        for s in range(warmup + steps):
            obs = [frames[(s + i) % len(frames)] for i in ids]
            t0 = time.perf_counter()
            agent.act_batch(obs, ids)
            if s >= warmup:
                times.append(time.perf_counter() - t0)
        q = percentiles([t * 1e3 for t in times])
        rows[n] = {"step_p50_ms": round(q["p50"], 1), "env_steps_per_s": round(n / (q["p50"] / 1e3), 2),
                   "steps": len(times)}
        print(f"  N={n}: {rows[n]['step_p50_ms']} ms/step, {rows[n]['env_steps_per_s']} env-steps/s", flush=True)
    base = rows[n_envs[0]]["env_steps_per_s"]
    for n in n_envs:
        rows[n]["speedup_vs_first"] = round(rows[n]["env_steps_per_s"] / base, 2)
    return {"label": LABEL, "threads": torch.get_num_threads(), "cond_scale": 6.0, "warmup": warmup,
            "torch": torch.__version__, "processor": platform.processor() or platform.machine(),
            "load_average_1m_after": round(os.getloadavg()[0], 2), "n_envs": rows}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench/batched.json"))
    p.add_argument("--n", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"batched agent throughput ({LABEL}), {args.threads} thread(s)", flush=True)
    result = run(args.n, args.steps, args.warmup)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
