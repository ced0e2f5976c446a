"""CPU latency of the two text towers at full size, random weights (architecture cost, not accuracy).

    python -m eval.benchmarks.bench_text [--out runs/bench/text.json] [--repeats 20] [--threads 1 2]

Chinese-CLIP text tower: RoBERTa-wwm-ext base (12 layers, hidden 768, vocab 21128) + 768→512 projection.
MineCLIP text tower: CLIP text transformer (12 layers, width 512, 8 heads, context 77) + 512→512 projection.
Each instruction is encoded on its own (batch 1, tokenizer included), the way the agent does it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from zh_steve.linear import count_parameters
from zh_steve.precision import chinese_clip_dtype
from zh_steve.text.chinese_clip import ChineseClipTextEncoder, ChineseClipTextTower
from zh_steve.text.clip_tokenizer import MineClipTokenizer
from zh_steve.text.mineclip_text import MineClipTextConfig, MineClipTextEncoder, MineClipTextModel
from zh_steve.text.chinese_clip import cn_clip_vocab_path

ZH = ["砍树", "去挖泥土", "请帮我找到一些钻石", "在水里游泳", "用木头做一把镐子"]
EN = ["chop a tree", "dig dirt", "find some diamonds", "swim in the water", "craft a wooden pickaxe"]


def chinese_clip_full_random(dtype: torch.dtype | None = None) -> ChineseClipTextEncoder:
    """Full-size Chinese-CLIP ViT-B/16 text tower with random weights (vision tower never built), in ``dtype``;
    None = what a float32 agent runs on this CPU (``chinese_clip_dtype: auto``: bfloat16 where it is native)."""
    from transformers import BertTokenizer, ChineseCLIPConfig, ChineseCLIPTextModel

    config = ChineseCLIPConfig(
        text_config=dict(vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=512),
        projection_dim=512,
    )
    torch.manual_seed(0)
    tower = ChineseClipTextTower(ChineseCLIPTextModel(config.text_config, add_pooling_layer=False),
                                 torch.nn.Linear(768, 512, bias=False))
    tokenizer = BertTokenizer.from_pretrained(str(cn_clip_vocab_path().parent))
    encoder = ChineseClipTextEncoder(tower, tokenizer, identity="chinese-clip-text:full-size-random")
    if dtype is None:
        dtype = chinese_clip_dtype("auto", "float32", "cpu") or torch.float32
    return encoder.to_runtime(dtype)  # as the agent runs it (bfloat16 weights packed for oneDNN)


def mineclip_full_random() -> MineClipTextEncoder:
    torch.manual_seed(0)
    return MineClipTextEncoder(MineClipTextModel(MineClipTextConfig()), MineClipTokenizer.default(),
                               identity="mineclip-text:full-size-random")


def median_ms(encoder, texts: list[str], repeats: int) -> float:
    for t in texts[:2]:
        encoder.encode([t])  # warm-up
    times = []
    for _ in range(repeats):
        for t in texts:
            start = time.perf_counter()
            encoder.encode([t])
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/text.json"))
    parser.add_argument("--repeats", type=int, default=10, help="passes over the 5 instructions")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)

    towers = {"chinese_clip_text": (chinese_clip_full_random(), ZH),
              "mineclip_text": (mineclip_full_random(), EN)}
    old_threads = torch.get_num_threads()
    rows = []
    try:
        for name, (encoder, texts) in towers.items():
            params = count_parameters(encoder.tower if name == "chinese_clip_text" else encoder.model)
            for n in args.threads:
                torch.set_num_threads(n)
                rows.append({"tower": name, "threads": n, "params": params,
                             "median_ms_per_instruction": round(median_ms(encoder, texts, args.repeats), 3)})
    finally:
        torch.set_num_threads(old_threads)

    result = {
        "what": "median CPU latency per instruction (batch 1, tokenizer included), full-size architectures, "
                "RANDOM weights",
        "weights": "random (architecture cost only)",
        "repeats": args.repeats, "n_instructions": len(ZH),
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(f"{'tower':<20}{'threads':>8}{'params':>14}{'median ms':>12}   (random weights)")
    for r in rows:
        print(f"{r['tower']:<20}{r['threads']:>8}{r['params']:>14,}{r['median_ms_per_instruction']:>12.2f}")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
