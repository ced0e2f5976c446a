"""CPU step latency of the full-size STEVE-1 policy, random weights (architecture cost, not behaviour).

    python -m eval.benchmarks.bench_policy [--out runs/bench/policy.json] [--steps 30] [--warmup 3] [--threads 2]

Modes, one 128×128 frame per step with the recurrent state carried:
  unguided      cond_scale=None, batch 1
  guided_shared cond_scale=6, the CNN runs once and feeds both streams (Steve1Policy.act)
  guided_naive  cond_scale=6, CNN on a duplicated batch of 2 (what the official code does)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from zh_steve.policy import PolicyConfig, Steve1Policy, guide
from zh_steve.policy.loading import GOAL_KEYS

from ..stats import percentiles

COND_SCALE = 6.0


def _naive_guided_step(policy: Steve1Policy, img, goal, state, scale: float):
    """The official CFG step: duplicate the frame, zero row 1's goal, run the whole network on batch 2."""
    frames = img[:, None].expand(2, -1, -1, -1, -1)
    goals = torch.cat([goal, torch.zeros_like(goal)])[:, None]
    out, state = policy(frames, goals, torch.zeros(2, 1, dtype=torch.bool), state)
    return guide(out.buttons_logp[0:1, 0], out.buttons_logp[1:2, 0], scale), state


def time_modes(policy: Steve1Policy, modes: list[str], frames: torch.Tensor, goal: torch.Tensor,
               steps: int, warmup: int) -> dict[str, list[float]]:
    """Per-step milliseconds of each mode. Modes are interleaved step by step (each with its own state),
    so background load on the machine affects them alike."""
    states = {m: policy.initial_state(1 if m == "unguided" else 2) for m in modes}
    times: dict[str, list[float]] = {m: [] for m in modes}
    with torch.no_grad():
        for i in range(warmup + steps):
            img = frames[i % len(frames)][None]
            for mode in modes:
                start = time.perf_counter()
                if mode == "unguided":
                    _, states[mode] = policy.act(img, goal, states[mode], cond_scale=None)
                elif mode == "guided_shared":
                    _, states[mode] = policy.act(img, goal, states[mode], cond_scale=COND_SCALE)
                elif mode == "guided_naive":
                    _, states[mode] = _naive_guided_step(policy, img, goal, states[mode], COND_SCALE)
                else:
                    raise SystemExit(f"unknown mode {mode!r}")
                if i >= warmup:
                    times[mode].append((time.perf_counter() - start) * 1e3)
    return times


def parameter_counts(policy: Steve1Policy) -> dict[str, int]:
    sd = policy.state_dict()

    def count(prefix: str) -> int:
        return sum(v.numel() for k, v in sd.items() if k.startswith(prefix))

    total = count("")
    return {
        "steve1_total": total,
        "vpt_2x_without_goal_layer": total - sum(sd[k].numel() for k in GOAL_KEYS),
        "goal_layer": sum(sd[k].numel() for k in GOAL_KEYS),
        "image_encoder": count("net.img_process."),
        "transformer": count("net.recurrent_layer."),
        "heads": count("pi_head.") + count("value_head."),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/policy.json"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["unguided", "guided_shared", "guided_naive"])
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = PolicyConfig.full_size()
    t0 = time.perf_counter()
    policy = Steve1Policy(config).eval()
    build_s = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (8, *config.img_shape), dtype=torch.uint8, generator=gen)
    goal = torch.randn(1, config.mineclip_embed_dim, generator=gen) * 0.5

    rows = {}
    for mode, times in time_modes(policy, args.modes, frames, goal, args.steps, args.warmup).items():
        q = percentiles(times)
        rows[mode] = {"p50_ms": q["p50"], "p95_ms": q["p95"], "mean_ms": q["mean"], "steps": len(times)}

    result = {
        "benchmark": "STEVE-1 policy step latency (full size, random weights)",
        "weights": "random weights",
        "threads": args.threads,
        "warmup_steps": args.warmup,
        "schedule": "modes interleaved step by step, each with its own recurrent state",
        "cond_scale": COND_SCALE,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "build_seconds": round(build_s, 2),
        "cpu_count": os.cpu_count(),
        "load_average_1m_after": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "parameters": parameter_counts(policy),
        "modes": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    print(f"STEVE-1 policy, full size, random weights, CPU, {args.threads} thread(s), "
          f"{args.steps} steps after {args.warmup} warm-up (1-min load average after: "
          f"{result['load_average_1m_after']} on {os.cpu_count()} CPUs)")
    print(f"{'mode':<15}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for mode, r in rows.items():
        print(f"{mode:<15}{r['p50_ms']:>10.1f}{r['p95_ms']:>10.1f}{r['mean_ms']:>10.1f}")
    print("parameters: " + ", ".join(f"{k}={v:,}" for k, v in result["parameters"].items()))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
