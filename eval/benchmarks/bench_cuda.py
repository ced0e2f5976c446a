"""The agent on a CUDA GPU: policy step latency and per-step KL per dtype, batched env-steps/s, instruction → goal.

    python -m eval.benchmarks.bench_cuda [--out runs/bench/cuda.json] [--steps 60] [--n 1 2 4 8 16 32 64]

Full-size architectures with RANDOM weights (architecture cost only; never Minecraft results). For each ``dtype``
setting (float32 with TF32 off, float32 with TF32 matmuls, bfloat16, float16, autocast) the policy runs
``attention_memory_size + 2`` warm-up steps (the attention memory is full), then ``--steps`` timed steps, unguided
and guided (CFG 6) interleaved, each step synchronised. The guided log-probs of every setting are compared with
float32's (TF32 off) on the same frames: the per-step KL of the guided buttons and camera distributions.
Writes ``--out`` (JSON) and the same path with ``.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from zh_steve.precision import compute_context, storage_dtype

from ..stats import percentiles

LABEL = "full-size architectures, RANDOM weights (architecture cost only)"
SETTINGS = ("float32", "tf32", "bfloat16", "float16", "autocast")
COND_SCALE = 6.0


@contextlib.contextmanager
def _tf32(on: bool):
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _kl(ref: torch.Tensor, got: torch.Tensor) -> float:
    """KL(ref ‖ got) of two log-prob rows (float64)."""
    ref, got = ref.double().log_softmax(-1), got.double().log_softmax(-1)
    return float((ref.exp() * (ref - got)).sum())


def policy_settings(device: torch.device, steps: int, warmup: int | None = None, seed: int = 0) -> dict:
    from zh_steve.policy import PolicyConfig, Steve1Policy

    torch.manual_seed(seed)
    base = Steve1Policy(PolicyConfig.full_size()).eval().requires_grad_(False)
    warmup = base.config.attention_memory_size + 2 if warmup is None else warmup
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (16, 128, 128, 3), generator=gen, dtype=torch.uint8).to(device)
    goal = torch.randn(1, 512, generator=gen).to(device)
    policies = {}
    for s in SETTINGS:
        dtype = storage_dtype("float32" if s == "tf32" else s)
        policies[s] = copy.deepcopy(base).to(device=device, dtype=dtype)
    states = {(s, m): policies[s].initial_state(1 if m == "unguided" else 2) for s in SETTINGS
              for m in ("unguided", "guided")}
    times = {(s, m): [] for s in SETTINGS for m in ("unguided", "guided")}
    kls = {s: {"buttons": [], "camera": []} for s in SETTINGS}
    with torch.inference_mode():
        for i in range(warmup + steps):
            img = frames[i % len(frames)][None]
            guided = {}
            for s in SETTINGS:
                g = goal.to(next(policies[s].parameters()).dtype)
                with _tf32(s == "tf32"), compute_context("autocast" if s == "autocast" else "float32", device):
                    for m in ("unguided", "guided"):
                        _sync(device)
                        t0 = time.perf_counter()
                        out, states[(s, m)] = policies[s].act(img, g, states[(s, m)],
                                                              cond_scale=None if m == "unguided" else COND_SCALE)
                        _sync(device)
                        if i >= warmup:
                            times[(s, m)].append((time.perf_counter() - t0) * 1e3)
                        if m == "guided":
                            guided[s] = (out.buttons_logp[0].float(), out.camera_logp[0].float())
            if i >= warmup:
                for s in SETTINGS:
                    kls[s]["buttons"].append(_kl(guided["float32"][0], guided[s][0]))
                    kls[s]["camera"].append(_kl(guided["float32"][1], guided[s][1]))
    rows = {}
    for s in SETTINGS:
        rows[s] = {f"{m}_p50_ms": percentiles(times[(s, m)])["p50"] for m in ("unguided", "guided")}
        for head in ("buttons", "camera"):
            rows[s][f"kl_{head}_mean"] = float(np.mean(kls[s][head]))
            rows[s][f"kl_{head}_max"] = float(np.max(kls[s][head]))
    return {"warmup_steps": warmup, "timed_steps": steps, "settings": rows}


def device_parts(device: torch.device):
    """The full-size random agent parts (``parts.full_size_random_parts``), float32, on ``device``: built once, shared
    by the batched and instruction → goal timings (every setting timed there stores float32 weights)."""
    import dataclasses

    from .parts import full_size_random_parts

    parts = full_size_random_parts()
    parts.chinese_encoder.tower.to(device)
    return dataclasses.replace(parts, policy=parts.policy.to(device), prior=parts.prior.to(device),
                               alignment=parts.alignment.to(device), device=device)


def batched_throughput(parts, n_envs: list[int], steps: int, setting: str) -> dict:
    from zh_steve.agent import AgentConfig
    from zh_steve.batched_agent import BatchedZhSteveAgent

    device = parts.device
    if storage_dtype(setting) != parts.dtype:
        raise ValueError(f"dtype setting {setting!r} stores {storage_dtype(setting)}, the parts are {parts.dtype}")
    rng = np.random.default_rng(0)
    frames = [{"pov": rng.integers(0, 256, size=(360, 640, 3), dtype=np.uint8)} for _ in range(8)]
    rows = {}
    for n in n_envs:
        agent = BatchedZhSteveAgent(parts, AgentConfig(seed=0, tiny=None, dtype=setting, device=str(device)))
        for i in range(n):
            agent.reset(i, ["砍树", "挖泥土", "去游泳"][i % 3])
        ids = list(range(n))
        times = []
        for step in range(steps + 3):   # the agent applies its dtype setting (autocast) itself
            obs = [frames[(step + i) % len(frames)] for i in ids]
            _sync(device)
            t0 = time.perf_counter()
            agent.act_batch(obs, ids)
            _sync(device)
            if step >= 3:
                times.append(time.perf_counter() - t0)
        p50 = float(np.median(times))
        rows[str(n)] = {"step_p50_ms": p50 * 1e3, "env_steps_per_s": n / p50}
    return rows


def instruction_to_goal(parts, repeats: int = 30) -> dict:
    """Latency of the instruction "砍树" → goal, Chinese-CLIP tower in float32 then bfloat16 (left in bf16)."""
    device, enc, alignment, prior = parts.device, parts.chinese_encoder, parts.alignment, parts.prior
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        enc.tower.to(dtype)
        times = []
        with torch.inference_mode():
            for i in range(repeats + 3):
                _sync(device)
                t0 = time.perf_counter()
                x = enc.encode(["砍树"]).to(device)
                z = prior.sample(alignment(x), deterministic=True)
                _sync(device)
                if i >= 3:
                    times.append((time.perf_counter() - t0) * 1e3)
        assert torch.isfinite(z).all()
        out[f"chinese_clip_{str(dtype).removeprefix('torch.')}_p50_ms"] = percentiles(times)["p50"]
    return out


def to_markdown(r: dict) -> str:
    lines = [f"# zh-steve on CUDA — {LABEL}", "", f"{r['gpu']}, torch {r['torch']}.", "",
             "| dtype setting | unguided p50 | guided (CFG 6) p50 | KL buttons mean / max | KL camera mean / max |",
             "|---|---|---|---|---|"]
    for s, row in r["policy"]["settings"].items():
        lines.append(f"| {s} | {row['unguided_p50_ms']:.2f} ms | {row['guided_p50_ms']:.2f} ms | "
                     f"{row['kl_buttons_mean']:.2e} / {row['kl_buttons_max']:.2e} | "
                     f"{row['kl_camera_mean']:.2e} / {row['kl_camera_max']:.2e} |")
    for setting, rows in r.get("batched", {}).items():
        lines += ["", f"Batched agent ({setting}, CFG 6, 360×640 frames, sampling included):", "",
                  "| N envs | step p50 | env-steps/s |", "|---|---|---|"]
        lines += [f"| {n} | {row['step_p50_ms']:.1f} ms | {row['env_steps_per_s']:.1f} |" for n, row in rows.items()]
    if "instruction_to_goal" in r:
        lines += ["", "Instruction → goal (\"砍树\": Chinese-CLIP tower + alignment MLP + prior): " + ", ".join(
            f"{k} {v:.2f} ms" for k, v in r["instruction_to_goal"].items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench/cuda.json"))
    p.add_argument("--steps", type=int, default=60, help="timed policy steps per dtype setting and mode")
    p.add_argument("--n", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64], help="batched env counts")
    p.add_argument("--batched-steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=None, help="policy warm-up steps (default: memory size + 2)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run of this script")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_cuda needs a CUDA GPU (torch.cuda.is_available() is False)")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU dry run ({platform.processor()})"
    result = {"what": "zh-steve on CUDA", "label": LABEL, "gpu": gpu,
              "torch": torch.__version__, "machine": platform.machine()}
    result["policy"] = policy_settings(device, args.steps, args.warmup)
    print(json.dumps(result["policy"]["settings"], indent=1), flush=True)
    parts = device_parts(device)
    result["batched"] = {s: batched_throughput(parts, args.n, args.batched_steps, s) for s in ("float32", "autocast")}
    print(json.dumps(result["batched"], indent=1), flush=True)
    result["instruction_to_goal"] = instruction_to_goal(parts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(to_markdown(result), encoding="utf-8")
    print(to_markdown(result))
    return result


if __name__ == "__main__":
    main()
