"""Train the alignment layer: Chinese-CLIP text embeddings → MineCLIP's raw text space.

    python -m alignment.train [--config configs/alignment.yaml] [--out runs/alignment] [--device auto|cpu|cuda]
                              [--seed N] [--cache-dir DIR] [--chinese-clip NAME_OR_DIR] [--mineclip PATH]

Steps, top to bottom:
  1. build the instruction pairs from the lexicon, split by class (held-out verbs/objects) → pairs.jsonl
  2. embed every unique text once per encoder (on-disk cache; re-runs encode nothing)
  3. fit the ladder: mean vector (floor) → ridge (λ on val) → ridge + residual MLP (early-stopped on val top-1)
  4. evaluate every rung on train/val/test → metrics table + metrics.json
  5. save the rung with the best val top-1 whose val R² is within max_r2_drop of ridge's (the prior reads raw
     vectors, so retrieval alone is not enough) → alignment.safetensors + config.json (zh_steve.AlignmentLayer)

Outputs in --out: alignment.safetensors, config.json, metrics.json, train_log.jsonl (one line per epoch),
pairs.jsonl, train_config.json, and every rung under rungs/<kind>/.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from zh_steve.config_utils import from_dict, load_config, resolve_device, to_dict
from zh_steve.errors import ConfigError, WeightsNotFoundError, ZhSteveError
from zh_steve.text.base import TextEncoder
from zh_steve.text.language import route

from .cache import encode_cached
from .config_types import check_types
from .encoders import SourceEncoderConfig, TargetEncoderConfig, build_source_encoder, build_target_encoder
from .ladder import AlignmentData, MLPConfig, RidgeConfig, SplitData, evaluate, fit_mean, fit_ridge, train_mlp
from .metrics import format_table, knn_top1
from .pairs import SPLITS, Pair, PairsConfig, PairSet, build_pairs

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "alignment.yaml"
RUNGS = ("mean", "ridge", "mlp")


@dataclass
class TrainConfig:
    """Everything one training run depends on (YAML; unknown keys are errors)."""

    seed: int = 0
    out: str = "runs/alignment"
    device: str = "auto"                 # auto | cpu | cuda (training and encoding)
    num_threads: int | None = None       # torch CPU threads; None = torch's default
    cache_dir: str | None = None         # embedding cache; None = ~/.cache/zh-steve/embeddings
    encode_batch_size: int = 64
    source_encoder: SourceEncoderConfig = field(default_factory=SourceEncoderConfig)
    target_encoder: TargetEncoderConfig = field(default_factory=TargetEncoderConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    ridge: RidgeConfig = field(default_factory=RidgeConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)
    max_r2_drop: float = 0.1             # a rung may lose at most this much val R² to ridge to be chosen

    def __post_init__(self) -> None:
        check_types(self)
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.max_r2_drop < 0:
            raise ConfigError(f"max_r2_drop must be >= 0, got {self.max_r2_drop}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m alignment.train",
        description="Train the layer that maps Chinese-CLIP text embeddings into MineCLIP's raw text space "
                    "(what the STEVE-1 prior reads). Writes alignment.safetensors + config.json (load with "
                    "zh_steve.alignment_layer.AlignmentLayer.from_pretrained), metrics.json, train_log.jsonl "
                    "and pairs.jsonl into --out.",
        epilog="Offline smoke run on tiny random encoders: python -m alignment.train "
               "--config configs/alignment_tiny.yaml --out runs/tiny",
    )
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="YAML config (default: %(default)s)")
    p.add_argument("--out", default=None, help="output directory (default: the config's `out`, runs/alignment)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                   help="where to encode and train (default: the config's `device`, auto = CUDA when available)")
    p.add_argument("--seed", type=int, default=None, help="seed for the split, phrasings and training")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="embedding cache (default: the config's `cache_dir`, ~/.cache/zh-steve/embeddings)")
    p.add_argument("--chinese-clip", default=None, metavar="NAME_OR_DIR",
                   help="Chinese-CLIP hub id or local directory (overrides source_encoder.name_or_path)")
    p.add_argument("--mineclip", default=None, metavar="PATH",
                   help="MineCLIP attn.pth or text-tower safetensors (overrides target_encoder.path)")
    return p.parse_args(argv)


def load_train_config(args: argparse.Namespace) -> TrainConfig:
    cfg = from_dict(TrainConfig, load_config(args.config), where=str(args.config))
    if args.out is not None:
        cfg.out = args.out
    if args.device is not None:
        cfg.device = args.device
    if args.seed is not None:
        cfg.seed = args.seed
    if args.cache_dir is not None:
        cfg.cache_dir = args.cache_dir
    if args.chinese_clip is not None:
        cfg.source_encoder.name_or_path = args.chinese_clip
    if args.mineclip is not None:
        cfg.target_encoder.path = args.mineclip
    return cfg


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def hard_negative_matrix(pairset: PairSet) -> torch.Tensor:
    """[C, C] bool: composed classes sharing the verb or the object (never the class itself)."""
    verbs = [c.verb for c in pairset.classes]
    objs = [c.object for c in pairset.classes]
    vid = {v: i for i, v in enumerate(sorted({v for v in verbs if v}))}
    oid = {o: i for i, o in enumerate(sorted({o for o in objs if o}))}
    v = torch.tensor([vid.get(x, -1) for x in verbs])
    o = torch.tensor([oid.get(x, -1) for x in objs])
    same = ((v[:, None] == v[None, :]) & (v[:, None] >= 0)) | ((o[:, None] == o[None, :]) & (o[:, None] >= 0))
    return same & ~torch.eye(len(verbs), dtype=torch.bool)


def served_text(pair: Pair) -> str:
    """The text ZhSteveAgent would hand Chinese-CLIP for this Chinese instruction: normalised, Traditional converted
    to Simplified (zh_steve.text.language.route), so training and evaluation see exactly what the deployed path sees.
    English pairs (the "both sides" augmentation) never take that route at runtime and are encoded as written."""
    return pair.text if pair.lang == "en" else route(pair.text).text_for_encoder


def embed(pairset: PairSet, source: TextEncoder, target: TextEncoder, cfg: TrainConfig) -> AlignmentData:
    """Encode pair texts (source) and class prompts (target) through the cache; assemble the ladder's data."""
    class_ids = [c.class_id for c in pairset.classes]
    served = {p.text: served_text(p) for p in pairset.pairs}
    texts = list(dict.fromkeys(served.values()))
    t0 = time.time()
    class_emb, n_t = encode_cached(target, class_ids, cfg.cache_dir, batch_size=cfg.encode_batch_size, progress=True)
    text_emb, n_s = encode_cached(source, texts, cfg.cache_dir, batch_size=cfg.encode_batch_size, progress=True)
    print(f"embeddings: {len(class_ids)} class prompts ({n_t} newly encoded), {len(texts)} instructions "
          f"({n_s} newly encoded) in {time.time() - t0:.1f}s")
    row = {t: i for i, t in enumerate(texts)}
    row_of = {raw: row[text] for raw, text in served.items()}
    index = pairset.class_index()
    splits = {}
    for s in SPLITS:
        ps = pairset.split(s)
        splits[s] = SplitData(x=text_emb[[row_of[p.text] for p in ps]] if ps else torch.zeros(0, source.dim),
                              cls=torch.tensor([index[p.class_id] for p in ps], dtype=torch.long))
    train_classes = torch.tensor([i for i, c in enumerate(pairset.classes) if c.split == "train"], dtype=torch.long)
    return AlignmentData(splits=splits, class_emb=class_emb, train_classes=train_classes,
                         hard=hard_negative_matrix(pairset), source_identity=source.identity,
                         target_identity=target.identity)


def choose_rung(val: dict[str, dict[str, float]], max_r2_drop: float) -> str:
    """Best val top-1 (then R²) among the rungs whose val R² is within ``max_r2_drop`` of ridge's.

    Retrieval says the right class comes out; R² says the raw vector is where MineCLIP would put it. The STEVE-1
    prior reads the raw vector, so a rung that wins retrieval by bending the raw geometry away (e.g. InfoNCE
    overpowering MSE) is not shipped. The mean floor is always eligible as a last resort.
    """
    floor = val["ridge"]["r2"] - max_r2_drop if "ridge" in val else float("-inf")
    eligible = [r for r in RUNGS if r in val and (val[r]["r2"] >= floor or r in ("mean", "ridge"))]
    return max(eligible, key=lambda r: (val[r]["top1"], val[r]["r2"]))


def run(cfg: TrainConfig) -> dict:
    t_start = time.time()
    seed_everything(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = str(resolve_device(cfg.device))  # "cpu" / "cuda": the encoders and ladder take a string
    # 0. the frozen encoders first, so a missing model fails fast with one line
    target = build_target_encoder(cfg.target_encoder, device=device)
    source = build_source_encoder(cfg.source_encoder, device=device)

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n", encoding="utf-8")

    # 1. pairs, split by class
    pairset = build_pairs(cfg.pairs, cfg.seed)
    pairset.write_jsonl(out / "pairs.jsonl")
    summary = pairset.summary()
    for s in SPLITS:
        print(f"pairs[{s}]: {summary[s]['pairs']} pairs, {summary[s]['classes']} classes, {summary[s]['by_lang']}")
    if not pairset.split("val") or not pairset.split("train"):
        raise ConfigError("the split left train or val empty; lower the held-out counts or raise max_classes_per_split")

    # 2. embeddings (cached)
    data = embed(pairset, source, target, cfg)
    diagnostics = {f"source_knn_top1_{s}": knn_top1(d.x, d.cls) for s, d in data.splits.items()}
    print("source separability (leave-one-out 1-NN class top-1 in Chinese-CLIP space): "
          + ", ".join(f"{k.rsplit('_', 1)[1]} {v:.3f}" for k, v in diagnostics.items()))

    # 3. the ladder
    layers = {"mean": fit_mean(data)}
    layers["ridge"], ridge_rows = fit_ridge(data, cfg.ridge)
    print("ridge λ grid (val): " + ", ".join(f"λ={r['lambda']:g} top1={r['val_top1']:.3f}" for r in ridge_rows)
          + f" → λ={layers['ridge'].config.ridge_lambda:g}")
    ridge_val_r2 = next(r["val_r2"] for r in ridge_rows if r["lambda"] == layers["ridge"].config.ridge_lambda)
    with open(out / "train_log.jsonl", "w", encoding="utf-8") as log_file:
        def log(row: dict) -> None:
            log_file.write(json.dumps(row) + "\n")
            log_file.flush()

        # early stopping keeps only epochs that choose_rung could ship
        layers["mlp"] = train_mlp(data, layers["ridge"], cfg.mlp, device=device, seed=cfg.seed, log=log,
                                  progress=True, min_val_r2=ridge_val_r2 - cfg.max_r2_drop)

    # 4. metrics for every rung on every split
    metrics = evaluate(layers, data)
    print(format_table(metrics))
    chosen = choose_rung(metrics["val"], cfg.max_r2_drop)
    report = {**metrics, "chosen": chosen, "ridge_lambdas": ridge_rows, "diagnostics": diagnostics,
              "pairs": summary, "source_encoder": data.source_identity, "target_encoder": data.target_identity,
              "device": device, "seconds": time.time() - t_start}
    (out / "metrics.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    # 5. save: the chosen rung at the top of --out, every rung under rungs/
    for rung, layer in layers.items():
        layer.save_pretrained(out / "rungs" / rung)
    layers[chosen].save_pretrained(out)
    print(f"chose '{chosen}' (val top-1 {metrics['val'][chosen]['top1']:.3f}); wrote {out}/alignment.safetensors "
          f"+ config.json in {time.time() - t_start:.1f}s")
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_train_config(args)
        run(cfg)
    except WeightsNotFoundError as e:
        print(f"missing: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except ConfigError as e:
        print(f"config error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except ZhSteveError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
