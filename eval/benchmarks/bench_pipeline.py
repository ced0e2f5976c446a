"""Instruction → goal latency at full size: our path vs the translation baseline. RANDOM WEIGHTS.

    python -m eval.benchmarks.bench_pipeline [--out runs/bench/pipeline.json] [--repeats 10] [--threads 1]

ours (align):    Chinese-CLIP text tower (tokenizer included) → alignment layer (512→512→512) → prior sample
translate:       MarianMT zh→en generate (full opus-mt-zh-en architecture) → MineCLIP text tower → prior sample

All models are the full-size architectures with random weights, so this measures architecture cost, not quality.
Random Marian weights would stop or ramble at random, so generation is pinned to ``--marian-tokens`` new tokens
(the length of a short English instruction) and the source to ``--marian-src-tokens`` token ids.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from zh_steve.alignment_layer import AlignmentConfig, AlignmentLayer
from zh_steve.prior import PriorConfig, Steve1Prior

from ..stats import percentiles
from .bench_text import EN, ZH, chinese_clip_full_random, mineclip_full_random

LABEL = "full-size architectures, RANDOM WEIGHTS (architecture cost only, not Minecraft or translation quality)"


def marian_full_random():
    """opus-mt-zh-en's architecture (d_model 512, 6+6 layers, 8 heads, FFN 2048, vocab 65001), random weights."""
    from transformers import MarianConfig, MarianMTModel

    config = MarianConfig(vocab_size=65001, d_model=512, encoder_layers=6, decoder_layers=6,
                          encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048,
                          decoder_ffn_dim=2048, max_position_embeddings=512, pad_token_id=65000,
                          eos_token_id=0, decoder_start_token_id=65000, scale_embedding=True,
                          activation_function="swish", share_encoder_decoder_embeddings=True)
    torch.manual_seed(0)
    return MarianMTModel(config).eval()


def timed(fn: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    q = percentiles(ms)
    return {"p50_ms": round(q["p50"], 3), "p95_ms": round(q["p95"], 3), "n": len(ms)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.benchmarks.bench_pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/bench/pipeline.json"))
    p.add_argument("--repeats", type=int, default=10, help="timed repetitions per instruction")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--marian-tokens", type=int, default=8, help="new tokens generated per translation")
    p.add_argument("--marian-src-tokens", type=int, default=8, help="source token ids per Chinese instruction")
    p.add_argument("--beams", type=int, nargs="+", default=[1, 4], help="Marian beam sizes to time")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    print(f"building models ({LABEL}) …", flush=True)
    zh_enc, en_enc = chinese_clip_full_random(), mineclip_full_random()
    torch.manual_seed(1)
    align = AlignmentLayer(AlignmentConfig(kind="mlp")).eval()
    prior = Steve1Prior(PriorConfig()).eval()
    marian = marian_full_random()
    gen = torch.Generator().manual_seed(0)
    src = torch.randint(5, 64000, (1, args.marian_src_tokens), generator=gen)
    src[0, -1] = 0  # </s>

    stages: dict[str, list[float]] = {k: [] for k in (
        "chinese_clip", "alignment", "prior", "mineclip_text", *(f"marian_beam{b}" for b in args.beams))}
    with torch.inference_mode():
        for zh, en in zip(ZH, EN):
            zvec = zh_enc.encode([zh])
            stages["chinese_clip"] += timed(lambda: zh_enc.encode([zh]), args.repeats)
            stages["alignment"] += timed(lambda: align(zvec), args.repeats)
            evec = en_enc.encode([en])
            stages["mineclip_text"] += timed(lambda: en_enc.encode([en]), args.repeats)
            stages["prior"] += timed(lambda: prior.sample(evec, generator=gen), args.repeats)
            for b in args.beams:
                stages[f"marian_beam{b}"] += timed(
                    lambda: marian.generate(input_ids=src, attention_mask=torch.ones_like(src), num_beams=b,
                                            do_sample=False, min_new_tokens=args.marian_tokens,
                                            max_new_tokens=args.marian_tokens),
                    max(2, args.repeats // 2), warmup=1)

    stats = {k: summary(v) for k, v in stages.items()}
    p50 = {k: v["p50_ms"] for k, v in stats.items()}
    paths = {"align": p50["chinese_clip"] + p50["alignment"] + p50["prior"]}
    for b in args.beams:
        paths[f"translate_beam{b}"] = p50[f"marian_beam{b}"] + p50["mineclip_text"] + p50["prior"]
    result = {
        "label": LABEL, "threads": args.threads, "torch": torch.__version__, "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(), "marian_new_tokens": args.marian_tokens,
        "stages": stats, "instruction_to_goal_p50_ms": {k: round(v, 3) for k, v in paths.items()},
        "speedup_vs_translate": {k: round(v / paths["align"], 2) for k, v in paths.items() if k != "align"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(f"\n{LABEL}; CPU, {args.threads} thread(s)")
    print(f"{'stage':<22}{'p50 ms':>10}{'p95 ms':>10}")
    for k, v in stats.items():
        print(f"{k:<22}{v['p50_ms']:>10.2f}{v['p95_ms']:>10.2f}")
    print("\ninstruction → goal (sum of stage p50s):")
    for k, v in paths.items():
        extra = f"   ({v / paths['align']:.2f}× ours)" if k != "align" else ""
        print(f"  {k:<20}{v:>9.2f} ms{extra}")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
