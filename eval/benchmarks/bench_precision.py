"""How far low precision moves the outputs: policy action distributions and text-tower features.

    python -m eval.benchmarks.bench_precision [--out runs/bench/precision.json]

Policy: per-step KL(float32 ‖ X) of the GUIDED action distribution (and each setting's guided step time) (buttons and camera, CFG 6), X ∈ {bfloat16,
autocast, int8-dynamic}, on the golden sequences (the official small policy's real fixture weights and frames,
``tests/fixtures/golden``) and on a full-size random policy (random frames). Text towers: cosine of the
bfloat16 / int8-dynamic feature to the float32 one over the eval suite's Chinese phrasings (simplified,
traditional, colloquial) and English prompts, full-size RANDOM weights. A setting is kept for the text towers only
if the minimum cosine is >= 0.999 (here measured on random weights: real weights must be re-checked).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from zh_steve.precision import compute_context, quantize_int8_dynamic

SETTINGS = ("bfloat16", "autocast", "int8-dynamic")


def _variant(policy: torch.nn.Module, setting: str) -> torch.nn.Module:
    p = copy.deepcopy(policy)
    if setting == "bfloat16":
        return p.to(torch.bfloat16)
    if setting == "int8-dynamic":
        return quantize_int8_dynamic(p)
    return p


def _guided(policy, frames: torch.Tensor, goal: torch.Tensor, setting: str, times: list | None = None
            ) -> list[tuple[torch.Tensor, ...]]:
    dtype = next(policy.parameters()).dtype
    state, out = policy.initial_state(2), []
    with torch.inference_mode(), compute_context(setting, torch.device("cpu")):
        for f in frames:
            t0 = time.perf_counter()
            step, state = policy.act(f[None], goal.to(dtype), state, cond_scale=6.0)
            if times is not None:
                times.append((time.perf_counter() - t0) * 1e3)
            out.append((step.buttons_logp[0].double(), step.camera_logp[0].double()))
    return out


def _kl(ref: torch.Tensor, got: torch.Tensor) -> float:
    """KL(p_ref ‖ p_got) of the distributions the guided log-scores sample from (renormalised)."""
    a, b = torch.log_softmax(ref, -1), torch.log_softmax(got, -1)
    return float((a.exp() * (a - b)).sum())


def policy_kl(policy, frames, goal) -> dict:
    """KL per setting, and the p50 guided step time of each (first 2 steps are warm-up)."""
    t32: list[float] = []
    ref = _guided(policy, frames, goal, "float32", t32)
    rows = {"float32": {"guided_step_p50_ms": round(statistics.median(t32[2:] or t32), 2)}}
    for setting in SETTINGS:
        ts: list[float] = []
        got = _guided(_variant(policy, setting), frames, goal, setting, ts)
        kb = [_kl(r[0], g[0]) for r, g in zip(ref, got)]
        kc = [_kl(r[1], g[1]) for r, g in zip(ref, got)]
        agree = sum(int(r[0].argmax() == g[0].argmax()) for r, g in zip(ref, got)) / len(ref)
        rows[setting] = {"kl_buttons_mean": sum(kb) / len(kb), "kl_buttons_max": max(kb),
                         "kl_camera_mean": sum(kc) / len(kc), "kl_camera_max": max(kc),
                         "argmax_buttons_agree": agree, "steps": len(kb),
                         "guided_step_p50_ms": round(statistics.median(ts[2:] or ts), 2)}
    return rows


def golden_policy():
    from zh_steve.checkpoint import read_safetensors
    from zh_steve.policy import PolicyConfig, Steve1Policy, load_policy_weights

    root = Path("tests/fixtures/golden")
    name = sorted(p.name[: -len(".config.json")] for p in root.glob("vpt_policy_small*.config.json"))[0]
    cfg = json.loads((root / f"{name}.config.json").read_text())
    policy = Steve1Policy(PolicyConfig.from_kwargs(cfg["policy_kwargs"], cfg["pi_head_kwargs"]))
    load_policy_weights(policy, read_safetensors(root / f"{name}.weights.safetensors"))
    inputs = read_safetensors(root / f"{name}.inputs.safetensors")
    return name, policy.eval(), inputs["frames"], inputs["goal_embed"].float()


def text_cosines() -> dict:
    from .bench_text import chinese_clip_full_random, mineclip_full_random
    from .parts import free_form_chinese

    zh, en = free_form_chinese()
    out = {}
    def chinese_clip_fp32():
        return chinese_clip_full_random(torch.float32)  # the float32 reference, whatever the CPU's default

    for name, make, texts, attr in (("chinese_clip_text", chinese_clip_fp32, zh, "tower"),
                                    ("mineclip_text", mineclip_full_random, en, "model")):
        enc = make()
        ref = enc.encode(texts)
        rows = {}
        for setting in ("bfloat16", "int8-dynamic"):
            e = make()
            module = getattr(e, attr)
            if setting == "bfloat16":
                setattr(e, attr, module.to(torch.bfloat16))
            else:
                quantize_int8_dynamic(module)
            cos = torch.nn.functional.cosine_similarity(e.encode(texts), ref)
            rows[setting] = {"cos_min": round(float(cos.min()), 6), "cos_mean": round(float(cos.mean()), 6),
                             "keep (min >= 0.999)": bool(cos.min() >= 0.999)}
        out[name] = {"n_texts": len(texts), **rows}
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench/precision.json"))
    p.add_argument("--full-steps", type=int, default=12, help="steps of the full-size random policy")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from zh_steve.policy import PolicyConfig, Steve1Policy

    name, policy, frames, goal = golden_policy()
    result = {"policy_golden": {"fixture": name, "weights": "golden fixture (official small policy)",
                                **policy_kl(policy, frames, goal)}}
    print(json.dumps(result, indent=1), flush=True)
    torch.manual_seed(0)
    full = Steve1Policy(PolicyConfig.full_size()).eval()
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (args.full_steps, 128, 128, 3), generator=gen, dtype=torch.uint8)
    goal = torch.randn(1, 512, generator=gen) * 0.5
    result["policy_full_size"] = {"weights": "RANDOM", **policy_kl(full, frames, goal)}
    del full
    result["text_towers"] = {"weights": "full-size RANDOM", **text_cosines()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "policy_golden"}, indent=1))
    return result


if __name__ == "__main__":
    main()
