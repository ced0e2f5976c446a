"""Train the alignment layer: Chinese-CLIP text embeddings → MineCLIP's raw text space.

    python -m alignment.train [--config configs/alignment.yaml] [--out runs/alignment] [--device auto|cpu|cuda]
                              [--seed N] [--cache-dir DIR] [--chinese-clip NAME_OR_DIR] [--mineclip PATH]

Steps, top to bottom:
  1. build the instruction pairs from the lexicon, split by class (held-out verbs/objects) → pairs.jsonl
  2. embed every unique text once per encoder (on-disk cache; re-runs encode nothing)
  3. fit the ladder: mean (floor) → identity (same-size spaces) → orthogonal Procrustes → ridge toward 0 and toward
     the best prior map (λ on val) → residual MLP on the best linear rung, cross-fitted on dev folds of train words
     (one MLP per fold, early-stopped on the fold's held-out words, averaged; `dev.folds: 0` = early stopping on
     val); shrunk rungs: Procrustes blended toward identity (β on val) and the MLP residual × α (α on the dev
     folds); word-level
     anchors (lexicon words and CC-CEDICT) join the train pairs in the closed-form fits and the MLP loss
  4. calibrate every rung's output norm (train), evaluate every rung on train/val/test → metrics.json
  5. save the rung with the best val top-1 (the MLP only if its val R² is within max_r2_drop of its linear base's:
     the prior reads raw vectors) → alignment.safetensors + config.json (zh_steve.AlignmentLayer),
     plus the prompt bank (every class prompt, target-encoded) for the run-time goal modes
  6. score the free-form set (alignment/data/freeform_zh.tsv) with the saved layer → metrics.json["freeform"]

Outputs in --out: alignment.safetensors, config.json, prompt_bank.safetensors + prompt_bank.json, metrics.json,
train_log.jsonl (one line per epoch), pairs.jsonl, anchors.jsonl, train_config.json, every rung under rungs/<rung>/.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from zh_steve.config_utils import from_dict, load_config, resolve_device, to_dict
from zh_steve.errors import ConfigError, WeightsNotFoundError, ZhSteveError
from zh_steve.text.base import TextEncoder
from zh_steve.goal import PromptBank, hub_reference
from zh_steve.text.language import route

from .anchors import AnchorsConfig, build_anchors, held_out_filter
from .cache import encode_cached
from .encode_pool import default_workers
from .encoders import (ENCODE_DTYPES, SourceEncoderConfig, TargetEncoderConfig, build_source_encoder,
                       build_target_encoder, bulk_encoder, resolve_encode_dtype)
from .evaluate import DEFAULT_FREEFORM, choose_blend_margin, evaluate_freeform, read_freeform, score
from .ladder import (LINEAR_RUNGS, AlignmentData, AnchorData, DevFold, MLPConfig, RidgeConfig, SplitData,
                     blend_linear, calibrate_norm, choose_on_val, cross_fit_mlp, evaluate, fit_identity, fit_mean,
                     fit_procrustes, fit_ridge, predict, refit_like, shrink_residual, train_mlp, val_metrics)
from .metrics import format_table, knn_top1, retrieval
from .pairs import SPLITS, PairsConfig, PairSet, build_pairs, dev_folds

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "alignment.yaml"
RUNGS = ("mean", "identity", "procrustes", "procrustes_identity", "ridge", "ridge_prior", "mlp", "mlp_shrunk")
RUNG_KINDS = {"procrustes_identity": "procrustes", "ridge_prior": "ridge", "mlp_shrunk": "mlp"}  # rung → layer kind
R2_GATED = ("mlp", "mlp_shrunk")         # rungs shipped only within max_r2_drop of the MLP's linear base


@dataclass
class DevConfig:
    """Dev folds carved from train (other words than val/test): the MLP's early stopping and α are chosen on them."""

    folds: int = 3                  # 0: the old way (early stopping and α on val)
    verbs_per_fold: int = 3
    object_fraction: float = 0.08   # of all lexicon objects, per fold
    final_fit: bool = False         # ship one MLP fitted on all of train for the folds' mean best epoch count
                                    # instead of the folds' average

    def __post_init__(self) -> None:
        if self.folds < 0 or self.verbs_per_fold < 0 or not 0 <= self.object_fraction < 0.3:
            raise ConfigError("dev: folds and verbs_per_fold must be >= 0, object_fraction in [0, 0.3)")


@dataclass
class HubConfig:
    """The prompt bank's hubness correction (snap/blend ranking; regress never changes), chosen on the dev folds."""

    weights: list[float] = field(default_factory=lambda: [0.0])  # grid for w; [0] = plain centred cosine
    k: int = 5                      # neighbours in the hubness term
    seen_fraction: float = 0.1      # train phrasings held out per dev fold as seen-class queries (when choosing)

    def __post_init__(self) -> None:
        if not self.weights or any(w < 0 for w in self.weights) or self.k < 1 or not 0 <= self.seen_fraction < 0.5:
            raise ConfigError("hub: weights must be a non-empty list of numbers >= 0, k >= 1, seen_fraction in "
                              "[0, 0.5)")

    @property
    def active(self) -> bool:
        return any(w > 0 for w in self.weights)


@dataclass
class TrainConfig:
    """Everything one training run depends on (YAML; unknown keys are errors)."""

    seed: int = 0
    out: str = "runs/alignment"
    device: str = "auto"                 # auto | cpu | cuda (training and encoding)
    num_threads: int | None = None       # torch CPU threads; None = torch's default
    cache_dir: str | None = None         # embedding cache; None = ~/.cache/zh-steve/embeddings
    encode_batch_size: int = 64
    encode_dtype: str = "auto"          # bulk embedding pass: auto (bfloat16 where native) | float32 | bfloat16
    encode_workers: int | None = None    # CPU embedding pass in this many forked 1-thread workers; None = one per
                                         # torch thread (1: in process)
    source_encoder: SourceEncoderConfig = field(default_factory=SourceEncoderConfig)
    target_encoder: TargetEncoderConfig = field(default_factory=TargetEncoderConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    anchors: AnchorsConfig = field(default_factory=AnchorsConfig)
    ridge: RidgeConfig = field(default_factory=RidgeConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)
    dev: DevConfig = field(default_factory=DevConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    max_r2_drop: float = 0.1             # the MLP may lose at most this much val R² to its linear base
    residual_alphas: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])  # mlp_shrunk (val)
    identity_betas: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])   # procrustes_identity
    calibrate_norm: bool = True          # rescale outputs so they sit at the targets' norms (retrieval unchanged)
    freeform: str | None = str(DEFAULT_FREEFORM)  # free-form instructions scored at the end (None: skip)

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.max_r2_drop < 0:
            raise ConfigError(f"max_r2_drop must be >= 0, got {self.max_r2_drop}")
        if self.encode_workers is not None and self.encode_workers < 1:
            raise ConfigError(f"encode_workers must be >= 1 (or null: one per CPU thread), got {self.encode_workers}")
        if self.encode_dtype not in ENCODE_DTYPES:
            raise ConfigError(f"encode_dtype must be one of {list(ENCODE_DTYPES)}, got {self.encode_dtype!r}")


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
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override one config value, e.g. --set pairs.phrasings_per_class=3 or --set "
                        "hub.weights=[0,0.5] (the value is read as YAML; repeatable)")
    return p.parse_args(argv)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """``KEY=VALUE`` strings (dotted keys, YAML values) written into the raw config dict."""
    import yaml

    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (e.g. pairs.phrasings_per_class=3), got {item!r}")
        node = raw
        *parents, leaf = key.strip().split(".")
        for part in parents:
            if not isinstance(node.get(part, {}), dict):
                raise ConfigError(f"--set {key}: {part!r} is not a config section")
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return raw


def load_train_config(args: argparse.Namespace) -> TrainConfig:
    cfg = from_dict(TrainConfig, apply_overrides(load_config(args.config), getattr(args, "overrides", [])),
                    where=str(args.config))
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


def embed(pairset: PairSet, anchors: list, source: TextEncoder, target: TextEncoder,
          cfg: TrainConfig, bulk: tuple[TextEncoder, TextEncoder] | None = None) -> AlignmentData:
    """Encode pair texts (source) and class prompts (target) through the cache; assemble the ladder's data.

    ``bulk`` (source, target): the encoders for the many pair texts and anchors (e.g. bfloat16 copies, see
    :func:`alignment.encoders.bulk_encoder`). The class prompts always go through ``target`` itself: they are the
    prompt bank that the agent feeds the prior at run time, and the pairs' regression targets.

    Every source-side input goes through the agent's routing rule for the Chinese tower (``route(text, lang="zh")``:
    normalised, Traditional → Simplified, English "both sides" inputs as written), so training sees exactly the text
    the deployed path hands the encoder."""
    class_ids = [c.class_id for c in pairset.classes]
    served = {p.text: route(p.text, lang="zh").text_for_encoder for p in pairset.pairs}
    texts = list(dict.fromkeys(served.values()))
    bulk_source, bulk_target = bulk or (source, target)
    enc = dict(batch_size=cfg.encode_batch_size, progress=True, workers=cfg.encode_workers or default_workers())
    t0 = time.time()
    class_emb, n_t = encode_cached(target, class_ids, cfg.cache_dir, **enc)
    text_emb, n_s = encode_cached(bulk_source, texts, cfg.cache_dir, **enc)
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
    anchor_data = None
    if anchors:
        ax, _ = encode_cached(bulk_source, [route(a.zh, lang="zh").text_for_encoder for a in anchors], cfg.cache_dir,
                              **enc)
        ay, _ = encode_cached(bulk_target, [a.en for a in anchors], cfg.cache_dir, **enc)
        if cfg.anchors.both_sides:  # the English gloss through the source tower → the same target
            ax_en, _ = encode_cached(bulk_source, [route(a.en, lang="zh").text_for_encoder for a in anchors], cfg.cache_dir,
                                     **enc)
            ax, ay = torch.cat([ax, ax_en]), torch.cat([ay, ay])
        anchor_data = AnchorData(ax, ay, cfg.anchors.weight)
    return AlignmentData(splits=splits, class_emb=class_emb, train_classes=train_classes,
                         hard=hard_negative_matrix(pairset), source_identity=source.identity,
                         target_identity=target.identity, anchors=anchor_data)


def build_dev_folds(pairset: PairSet, anchors: list, n_anchor_rows: int, cfg: DevConfig, seed: int,
                    seen_fraction: float = 0.0) -> list[DevFold]:
    """Masks over the train pairs and anchor rows for each dev fold (:func:`alignment.pairs.dev_folds`): the fold's
    classes (a dev verb or object) leave the fit, their Chinese pairs become its dev set, and anchors containing a
    dev word (either language) leave the fit too. ``seen_fraction``: that share of the other Chinese train texts
    (as the encoder sees them, so a Traditional twin goes with its Simplified text) also leaves the fold's fit, as
    seen-class queries (``DevFold.seen``)."""
    train_pairs = pairset.split("train")
    served = [route(p.text, lang="zh").text_for_encoder for p in train_pairs]
    folds = []
    for k, words in enumerate(dev_folds(pairset, cfg.folds, cfg.verbs_per_fold, cfg.object_fraction, seed)):
        dv, do = set(words["dev_verbs"]), set(words["dev_objects"])
        out_cls = {c.class_id for c in pairset.classes if c.split == "train" and (c.verb in dv or c.object in do)}
        gone = torch.tensor([p.class_id in out_cls for p in train_pairs], dtype=torch.bool)
        zh = torch.tensor([p.lang != "en" for p in train_pairs], dtype=torch.bool)
        dev = gone & zh
        seen = None
        if seen_fraction > 0:
            pool = sorted({t for t, g, z in zip(served, gone.tolist(), zh.tolist()) if z and not g})
            picked = set(random.Random(f"seen-dev|{seed}|{k}").sample(pool, round(seen_fraction * len(pool))))
            seen = torch.tensor([t in picked for t in served], dtype=torch.bool) & zh & ~gone
        ok = held_out_filter(replace(pairset, held_out={"val_verbs": sorted(dv), "val_objects": sorted(do),
                                                       "test_verbs": [], "test_objects": []}))
        amask = torch.tensor([ok(a.zh, a.en) for a in anchors], dtype=torch.bool)
        if n_anchor_rows and n_anchor_rows != amask.numel():  # anchors.both_sides: the English rows follow
            amask = amask.repeat(n_anchor_rows // max(1, amask.numel()))
        keep_cls = torch.tensor([i for i, c in enumerate(pairset.classes) if c.split == "train"
                                 and c.class_id not in out_cls], dtype=torch.long)
        folds.append(DevFold(train=~gone if seen is None else ~gone & ~seen, dev=dev,
                             anchors=amask if n_anchor_rows else None, train_classes=keep_cls,
                             name=f"verbs {','.join(sorted(dv))} + {len(do)} objects", seen=seen))
    return folds


def choose_rung(val: dict[str, dict[str, float]], max_r2_drop: float, mlp_base: str = "ridge") -> str:
    """Best val top-1 (then R²) among the closed-form rungs, and the MLP if its val R² is within ``max_r2_drop`` of
    the linear rung it was trained from (``mlp_base``).

    Retrieval says the right class comes out; R² says the raw vector is where the target encoder would put it. The
    STEVE-1 prior reads the raw vector, so an MLP that wins retrieval by bending the raw geometry away from its
    linear base (InfoNCE overpowering MSE) is not shipped. The closed-form rungs (identity, Procrustes, ridge) are
    plain linear maps fitted by least squares or constrained to an isometry: none of them trades geometry for
    retrieval, so they compete on val top-1 alone (an isometry keeps full-length deviations and so scores a lower R²
    than a shrunken ridge map on the same retrieval, which is not a reason to refuse it).
    """
    base = mlp_base if mlp_base in val else "ridge"
    floor = val[base]["r2"] - max_r2_drop if base in val else float("-inf")
    eligible = [r for r in val if r in RUNGS and (r not in R2_GATED or val[r]["r2"] >= floor)]
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

    anchors = build_anchors(cfg.anchors, pairset)
    with open(out / "anchors.jsonl", "w", encoding="utf-8") as f:
        for a in anchors:
            f.write(json.dumps({"zh": a.zh, "en": a.en, "source": a.source}, ensure_ascii=False) + "\n")
    print(f"anchors: {len(anchors)} word-level pairs (weight {cfg.anchors.weight:g}) "
          f"{dict(sorted(Counter(a.source for a in anchors).items()))}")

    # 2. embeddings (cached); the bulk pass in bfloat16 where the device multiplies it natively (2x on CPU)
    encode_dtype = resolve_encode_dtype(cfg.encode_dtype, device)
    print(f"embedding pass: {str(encode_dtype).removeprefix('torch.')} (class prompts and free-form set: float32)")
    data = embed(pairset, anchors, source, target, cfg,
                 bulk=(bulk_encoder(source, encode_dtype), bulk_encoder(target, encode_dtype)))
    diagnostics = {f"source_knn_top1_{s}": knn_top1(d.x, d.cls) for s, d in data.splits.items()}
    print("source separability (leave-one-out 1-NN class top-1 in the source space): "
          + ", ".join(f"{k.rsplit('_', 1)[1]} {v:.3f}" for k, v in diagnostics.items()))

    # 3. the ladder (the MLP cross-fitted on dev folds carved from train)
    n_anchor_rows = data.anchors.x.shape[0] if data.anchors is not None else 0
    if cfg.hub.active and not cfg.dev.folds:
        raise ConfigError("hub.weights > 0 are chosen on the dev folds: set dev.folds >= 1 (or hub.weights: [0])")
    folds = build_dev_folds(pairset, anchors, n_anchor_rows, cfg.dev, cfg.seed,
                            cfg.hub.seen_fraction if cfg.hub.active else 0.0)
    for f in folds:
        print(f"dev fold {f.name}: {int(f.dev.sum())} dev pairs, {int(f.train.sum())} train pairs"
              + (f", {int(f.seen.sum())} seen-class dev pairs" if f.seen is not None else ""))
    t_fit = time.time()
    layers, ridge_rows, mlp_base, shrink_rows = fit_ladder(data, cfg, device, out, folds)
    fit_seconds = time.time() - t_fit

    # 4. metrics for every rung on every split (outputs norm-calibrated first)
    if cfg.calibrate_norm:
        for layer in layers.values():
            calibrate_norm(layer, data)
    metrics = evaluate(layers, data)
    print(format_table(metrics))
    chosen = choose_rung(metrics["val"], cfg.max_r2_drop, mlp_base=mlp_base)
    report = {**metrics, "chosen": chosen, "mlp_base": mlp_base, "ridge_lambdas": ridge_rows, "shrink": shrink_rows,
              "diagnostics": diagnostics, "fit_seconds": fit_seconds,
              "dev_folds": [f.name for f in folds],
              "pairs": summary, "anchors": {"n": len(anchors), **Counter(a.source for a in anchors)},
              "source_encoder": data.source_identity, "target_encoder": data.target_identity,
              "out_scale": {r: float(l.out_scale) for r, l in layers.items()}, "device": device,
              "encode_dtype": str(encode_dtype).removeprefix("torch.")}

    # 5. save: the chosen rung at the top of --out, every rung under rungs/, the prompt bank beside the layer
    for rung, layer in layers.items():
        layer.save_pretrained(out / "rungs" / rung)
    layers[chosen].save_pretrained(out)
    center = layers[chosen].y_mean.detach().cpu()
    pred = {s: predict(layers[chosen], data.splits[s].x) for s in SPLITS}   # the chosen rung's, used below
    hub_weight = next((r["hub_weight"] for r in shrink_rows.get("hub_weight_dev", []) if r.get("chosen")), 0.0)
    tr = data.splits["train"]
    bank = PromptBank(texts=[c.class_id for c in pairset.classes], emb=data.class_emb,
                      splits=[c.split for c in pairset.classes], encoder=target.identity, center=center,
                      hub_ref=hub_reference(pred["train"], tr.cls, center) if hub_weight > 0 else None,
                      hub_k=cfg.hub.k, hub_weight=hub_weight)
    if bank.penalty is not None:   # its own rows: the snap/blend ranking, beside the plain-cosine metrics above
        report["hub"] = {"weight": hub_weight, "k": cfg.hub.k, **{
            s: retrieval(pred[s], data.splits[s].cls, bank.emb, bank.center,
                         penalty=bank.penalty) for s in SPLITS}}
        print(f"hubness-corrected ranking (snap/blend; w={hub_weight:g}, k={cfg.hub.k}, on the dev folds): " + ", ".join(
            f"{s} top-1 {report['hub'][s]['top1']:.3f} top-5 {report['hub'][s]['top5']:.3f}" for s in ("val", "test")))
    bank.blend_margin = choose_blend_margin(pred["val"], data.splits["val"].cls, bank)
    bank.save(out)
    report["goal_modes"] = {"blend_margin": bank.blend_margin, **{
        s: score(pred[s], data.splits[s].cls, bank)["all"] for s in ("val", "test")}}
    print("goal modes (test, centred cos of goal to true prompt): " + ", ".join(
        f"{k} {v['centred_cos']:.3f}" for k, v in report["goal_modes"]["test"]["goal"].items())
        + f"; blend margin {bank.blend_margin:g} (val)")

    # 6. the free-form set, through the saved layer exactly as alignment.evaluate scores it
    if cfg.freeform:
        items = read_freeform(cfg.freeform)
        known = [it for it in items if bank.index(it.prompt) is not None]  # a subsampled run lacks some classes
        report["freeform"] = evaluate_freeform(layers[chosen], source, bank, known, cache_dir=cfg.cache_dir,
                                               path=cfg.freeform)
        report["freeform"]["skipped_unknown_prompts"] = len(items) - len(known)
        ff = report["freeform"]
        print("free-form: " + ", ".join(f"{k} top-1 {v['top1']:.3f} top-5 {v['top5']:.3f} (n={v['n']})"
                                        for k, v in ff.items() if isinstance(v, dict) and v["n"]))
    report["seconds"] = time.time() - t_start
    (out / "metrics.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"chose '{chosen}' (val top-1 {metrics['val'][chosen]['top1']:.3f}); wrote {out}/alignment.safetensors "
          f"+ config.json + prompt_bank in {time.time() - t_start:.1f}s")
    return report


def fit_ladder(data: AlignmentData, cfg: TrainConfig, device: str, out: Path,
               folds: list[DevFold] | None = None) -> tuple[dict, list[dict], str, dict[str, list[dict]]]:
    """Every rung: mean, identity (if the sizes match), Procrustes, Procrustes blended toward identity (β on val),
    ridge (toward 0), ridge toward the better prior map, the residual MLP on the best linear rung by val top-1, and
    that MLP with its residual scaled by α. With dev ``folds`` the MLP is cross-fitted (:func:`cross_fit_mlp`:
    early stopping and α on train words held out per fold; val is left for the rung choice); without, early
    stopping and α use val. Also returns the α/β grids' rows."""
    layers = {"mean": fit_mean(data)}
    identity = fit_identity(data)
    if identity is not None:
        layers["identity"] = identity
    layers["procrustes"] = fit_procrustes(data)
    shrink_rows: dict[str, list[dict]] = {}
    if identity is not None:   # W = (1 − β)·I + β·W_procrustes: the rotation only part of the way (β on val)
        layers["procrustes_identity"], shrink_rows["identity_beta"] = choose_on_val(
            lambda b: blend_linear(identity, layers["procrustes"], b, kind="procrustes"), cfg.identity_betas, data,
            "beta")
        print("procrustes toward identity (val): " + ", ".join(f"β={r['beta']:g} top1={r['val_top1']:.3f}"
                                                                for r in shrink_rows["identity_beta"]))
    layers["ridge"], ridge_rows = fit_ridge(data, cfg.ridge)
    print("ridge λ grid (val): " + ", ".join(f"λ={r['lambda']:g} top1={r['val_top1']:.3f}" for r in ridge_rows)
          + f" → λ={layers['ridge'].config.ridge_lambda:g}")
    val = {r: val_metrics(layer, data) for r, layer in layers.items()}
    priors = [p for p in cfg.ridge.priors if p in layers]
    if priors:
        prior = max(priors, key=lambda p: (val[p]["top1"], val[p]["r2"]))
        layers["ridge_prior"], rows = fit_ridge(data, cfg.ridge, prior=layers[prior])
        val["ridge_prior"] = val_metrics(layers["ridge_prior"], data)
        print(f"ridge toward {prior} (val): " + ", ".join(f"λ={r['lambda']:g} top1={r['val_top1']:.3f}" for r in rows)
              + f" → λ={layers['ridge_prior'].config.ridge_lambda:g}")
        ridge_rows = ridge_rows + [{**r, "prior": prior} for r in rows]
    base = max((r for r in LINEAR_RUNGS if r in layers), key=lambda r: (val[r]["top1"], val[r]["r2"]))
    print(f"linear rungs (val top-1): " + ", ".join(f"{r} {val[r]['top1']:.3f}" for r in layers if r != "mean")
          + f" → the MLP starts from {base}")
    with open(out / "train_log.jsonl", "w", encoding="utf-8") as log_file:
        def log(row: dict) -> None:
            log_file.write(json.dumps(row) + "\n")
            log_file.flush()

        if folds:
            layers["mlp"], alpha, fold_rows = cross_fit_mlp(
                data, layers[base], cfg.mlp, folds, cfg.residual_alphas, lambda fd: refit_like(layers[base], fd),
                device=device, seed=cfg.seed, log=log, progress=True, max_r2_drop=cfg.max_r2_drop,
                final_fit=cfg.dev.final_fit, hub=(cfg.hub.weights, cfg.hub.k) if cfg.hub.active else None)
            hub_rows = [r for r in fold_rows if "hub_weight" in r]
            fold_rows = [r for r in fold_rows if "hub_weight" not in r]
        else:  # early stopping keeps only epochs that choose_rung could ship
            layers["mlp"] = train_mlp(data, layers[base], cfg.mlp, device=device, seed=cfg.seed, log=log,
                                      progress=True, min_val_r2=val[base]["r2"] - cfg.max_r2_drop)
    if folds:
        layers["mlp_shrunk"] = shrink_residual(layers["mlp"], alpha)
        shrink_rows["residual_alpha_dev"] = fold_rows
        if hub_rows:
            shrink_rows["hub_weight_dev"] = hub_rows
            print("hubness weight (mean over folds of ½(unseen + seen dev top-1)): " + ", ".join(
                f"w={w:g} {sum(r['balanced_top1'] for r in hub_rows if r.get('hub_weight') == w and 'fold' in r) / len(folds):.3f}"
                for w in cfg.hub.weights) + f" → w={hub_rows[-1]['hub_weight']:g}")
        print(f"mlp: {len(folds)} dev-fold residuals averaged; residual × α (mean dev top-1 over folds): " + ", ".join(
            f"α={a:g} {sum(r['dev_top1'] for r in fold_rows if r['alpha'] == a) / len(folds):.3f}"
            for a in cfg.residual_alphas) + f" → α={alpha:g}")
    else:
        # the residual scaled by α: val holds out other words than test, so a full residual can overfit val's
        layers["mlp_shrunk"], shrink_rows["residual_alpha"] = choose_on_val(
            lambda a: shrink_residual(layers["mlp"], a), cfg.residual_alphas, data, "alpha")
        print("mlp residual × α (val): " + ", ".join(f"α={r['alpha']:g} top1={r['val_top1']:.3f}"
                                                     for r in shrink_rows["residual_alpha"]))
    return layers, ridge_rows, base, shrink_rows


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
