"""End-to-end wall time and peak RSS of the full-size alignment run, RANDOM weights, cold embedding cache.

    python -m eval.benchmarks.bench_train [--out runs/bench/train.json] [--work runs/bench/train_work]
                                          [--config configs/alignment.yaml] [--encode-dtype auto]
                                          [--set anchors.cedict_cap=8000 ...]

Writes, once, a random full-size Chinese-CLIP ViT-B/16 checkpoint directory (the dual model as the hub ships it,
vision tower included, safetensors + vocab.txt) and a MineCLIP text-tower safetensors file with the official
manifest's keys and shapes; then runs ``python -m alignment.train --chinese-clip DIR --mineclip FILE`` on the
default config with a fresh cache directory in a child process, exactly as a user's first run would (offline).
Reports the wall time, when each phase ended (from the trainer's own output lines), and the child's peak RSS.
Architecture cost only: random weights say nothing about alignment quality.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

# the trainer's output lines that close a phase → the phase's name
PHASES = (("pairs[test]", "pairs"), ("anchors:", "anchors built"), ("embeddings:", "pair + class-prompt embeddings"),
          ("source separability", "anchor embeddings"), ("split  rung", "ladder fitted"),
          ("free-form:", "free-form set"), ("chose ", "saved"))


def write_chinese_clip(dest: Path) -> Path:
    """A random full-size Chinese-CLIP ViT-B/16 (text 12×768 RoBERTa-wwm, vision ViT-B/16, projection 512)."""
    from transformers import ChineseCLIPConfig, ChineseCLIPModel

    from zh_steve.text.chinese_clip import cn_clip_vocab_path

    if (dest / "config.json").is_file():
        return dest
    config = ChineseCLIPConfig(
        text_config=dict(vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=512),
        vision_config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                           image_size=224, patch_size=16),
        projection_dim=512)
    torch.manual_seed(0)
    tmp = dest.with_name(dest.name + ".tmp")
    ChineseCLIPModel(config).save_pretrained(tmp, safe_serialization=True)
    shutil.copy(cn_clip_vocab_path(), tmp / "vocab.txt")
    tmp.rename(dest)
    return dest


def write_mineclip_text(dest: Path) -> Path:
    """A random MineCLIP text tower in attn.pth's key form, every key and shape from the official manifest."""
    from safetensors.torch import save_file

    from zh_steve.checkpoint import manifest_shapes
    from zh_steve.published import ATTN_TEXT_PREFIX

    if dest.is_file():
        return dest
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=g) * 0.02 for k, s in manifest_shapes("mineclip", ATTN_TEXT_PREFIX).items()}
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(dest.with_suffix(".tmp")))
    os.replace(dest.with_suffix(".tmp"), dest)
    return dest


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench/train.json"))
    p.add_argument("--work", type=Path, default=Path("runs/bench/train_work"),
                   help="where the random checkpoints are written once and reused")
    p.add_argument("--config", default="configs/alignment.yaml")
    p.add_argument("--encode-dtype", default=None, choices=["auto", "float32", "bfloat16"],
                   help="override the config's encode_dtype")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set anchors.cedict_cap=8000 (YAML value; repeatable)")
    args = p.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    print("writing random full-size checkpoints (once) ...", flush=True)
    zh_dir = write_chinese_clip(args.work / "chinese-clip-vit-base-patch16-random")
    mc_file = write_mineclip_text(args.work / "mineclip-text-random.safetensors")

    config = args.config
    overrides = {k: v for k, v in (item.split("=", 1) for item in args.set)}
    if args.encode_dtype:
        overrides["encode_dtype"] = args.encode_dtype
    if overrides:
        import yaml

        cfg = yaml.safe_load(Path(args.config).read_text(encoding="utf-8"))
        for key, value in overrides.items():
            *parents, leaf = key.split(".")
            node = cfg
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = yaml.safe_load(value)
        config = str(args.work / "config.yaml")
        Path(config).write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")

    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=args.work))   # cold: every text is encoded
    run_out = args.work / "out"
    cmd = [sys.executable, "-m", "alignment.train", "--config", config, "--chinese-clip", str(zh_dir),
           "--mineclip", str(mc_file), "--cache-dir", str(cache), "--out", str(run_out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ZS_NO_DOWNLOAD": "1"}
    print("running:", " ".join(cmd), flush=True)
    phases: dict[str, float] = {}
    lines: list[str] = []
    start = time.perf_counter()
    with open(args.work / "train_stderr.log", "w", encoding="utf-8") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        for line in proc.stdout:
            now = time.perf_counter() - start
            lines.append(line.rstrip("\n"))
            print(f"[{now:6.1f}s] {line}", end="", flush=True)
            for marker, name in PHASES:
                if line.startswith(marker) and name not in phases:
                    phases[name] = round(now, 1)
        rc = proc.wait()
    wall = time.perf_counter() - start
    shutil.rmtree(cache, ignore_errors=True)
    if rc != 0:
        raise SystemExit(f"alignment.train failed (exit {rc}); see {args.work / 'train_stderr.log'}")
    metrics = json.loads((run_out / "metrics.json").read_text(encoding="utf-8"))
    result = {
        "what": "python -m alignment.train end to end (cold embedding cache), full-size architectures, RANDOM weights",
        "weights": "random (architecture cost only; the metrics say nothing about alignment quality)",
        "wall_s": round(wall, 1), "trainer_seconds": round(metrics["seconds"], 1),
        "phase_end_s": phases, "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "encode_dtype": metrics.get("encode_dtype"), "chosen": metrics["chosen"],
        "pairs": sum(metrics["pairs"][s]["pairs"] for s in ("train", "val", "test")),
        "anchors": metrics["anchors"]["n"], "threads": torch.get_num_threads(),
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(), "config": args.config,
        "overrides": overrides,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
