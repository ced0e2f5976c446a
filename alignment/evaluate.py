"""Score a trained alignment layer on free-form Chinese instructions.

    python -m alignment.evaluate --layer DIR --input FILE.tsv [--goal-mode regress|snap|blend|all] [--json [PATH]]

FILE.tsv: ``instruction<TAB>English class prompt`` per line (``#`` comments, blank lines and an optional
``instruction<TAB>prompt`` header are skipped); the default set is ``alignment/data/freeform_zh.tsv`` (hand-written).
The layer directory is what ``python -m alignment.train`` writes into ``--out``: the layer, its prompt bank (every
class prompt, target-encoded, with its train/val/test split) and ``train_config.json``, which names the source
encoder to rebuild. A class is *seen* when it was a train class, *unseen* otherwise (held-out verbs/objects).

Printed: top-1 / top-5 / MRR among all bank prompts (centred cosine, as in training), overall and split into seen
and unseen, the norm ratio, and for each goal mode how close the goal lands to the true prompt's embedding
(centred cosine; ``hit`` = the goal *is* the true prompt's embedding).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from zh_steve.alignment_layer import AlignmentLayer
from zh_steve.config_utils import from_dict
from zh_steve.errors import ConfigError, ZhSteveError
from zh_steve.goal import GOAL_MODES, PromptBank
from zh_steve.text.language import route

from .metrics import retrieval

DEFAULT_FREEFORM = Path(__file__).resolve().parent / "data" / "freeform_zh.tsv"


class FreeformFormatError(ZhSteveError, ValueError):
    """A line of a free-form TSV is malformed or names a prompt the layer does not know."""


@dataclass(frozen=True)
class FreeformItem:
    line: int
    text: str
    prompt: str


def read_freeform(path: str | Path) -> list[FreeformItem]:
    """Parse a free-form TSV; a malformed line is a one-line :class:`FreeformFormatError` naming the line."""
    path = Path(path)
    if not path.is_file():
        raise FreeformFormatError(f"free-form file not found: {path}")
    items: list[FreeformItem] = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 2 or not cols[0].strip() or not cols[1].strip():
            raise FreeformFormatError(f"{path}:{n}: expected 'instruction<TAB>prompt', got {line!r}")
        text, prompt = cols[0].strip(), cols[1].strip()
        if not items and (text, prompt) == ("instruction", "prompt"):
            continue
        items.append(FreeformItem(n, text, prompt))
    if not items:
        raise FreeformFormatError(f"{path}: no instructions found")
    return items


def resolve_prompts(items: list[FreeformItem], bank: PromptBank, path: str | Path = "input") -> torch.Tensor:
    """Bank row of each item's prompt; an unknown prompt is a one-line error naming the line."""
    rows = []
    for it in items:
        i = bank.index(it.prompt)
        if i is None:
            raise FreeformFormatError(f"{path}:{it.line}: unknown class prompt {it.prompt!r} (not in the layer's "
                                      "prompt bank; use one of the English class prompts the layer was trained with)")
        rows.append(i)
    return torch.tensor(rows, dtype=torch.long)


def goal_metrics(pred: torch.Tensor, cls: torch.Tensor, bank: PromptBank, mode: str,
                 margin: float | None = None) -> dict[str, float]:
    """How close each mode's goal lands to the true prompt: centred cosine, hit rate, norm ratio, snap rate.

    The same decision rule as :func:`zh_steve.goal.choose_goal`, vectorised over the rows of ``pred``."""
    if mode not in GOAL_MODES:
        raise ConfigError(f"goal mode must be one of {list(GOAL_MODES)}, got {mode!r}")
    sims = bank.scores(pred)                                                # [N, C] the runtime's ranking
    top = sims.topk(min(2, sims.shape[1]), dim=1)
    gap = top.values[:, 0] - top.values[:, 1] if sims.shape[1] > 1 else torch.full((len(pred),), float("inf"))
    threshold = bank.blend_margin if margin is None else margin
    snap = torch.full((len(pred),), mode == "snap") if mode != "blend" else gap >= threshold
    g = torch.where(snap[:, None], bank.emb[top.indices[:, 0]], pred.float()).double()
    t = bank.emb[cls].double()
    c = bank.center.double()
    return {
        "centred_cos": F.cosine_similarity(g - c, t - c, dim=-1).mean().item(),
        "hit": (g - t).norm(dim=-1).le(1e-6 * t.norm(dim=-1).clamp_min(1e-12)).double().mean().item(),
        "norm_ratio": (g.norm(dim=-1) / t.norm(dim=-1).clamp_min(1e-12)).mean().item(),
        "snap_rate": snap.double().mean().item(),
    }


def score(pred: torch.Tensor, cls: torch.Tensor, bank: PromptBank, modes: tuple[str, ...] = GOAL_MODES,
          margin: float | None = None) -> dict[str, dict]:
    """Retrieval + goal-mode metrics overall and for seen (train) / unseen (other) classes. Retrieval is by plain
    centred cosine; with a hubness-corrected bank (``hub_weight`` > 0) ``m["hub"]`` also ranks by the bank's
    scores (:meth:`zh_steve.goal.PromptBank.scores`, what snap and blend use)."""
    seen = torch.tensor([bank.splits[int(i)] == "train" for i in cls], dtype=torch.bool)
    out: dict[str, dict] = {}
    for name, mask in (("all", torch.ones_like(seen)), ("seen", seen), ("unseen", ~seen)):
        n = int(mask.sum())
        if n == 0:
            out[name] = {"n": 0}
            continue
        p, y = pred[mask], cls[mask]
        m = retrieval(p, y, bank.emb, bank.center)
        if bank.penalty is not None:
            m["hub"] = retrieval(p, y, bank.emb, bank.center, penalty=bank.penalty)
        m["norm_ratio"] = (p.double().norm(dim=-1) / bank.emb[y].double().norm(dim=-1).clamp_min(1e-12)).mean().item()
        m["n"] = n
        m["goal"] = {mode: goal_metrics(p, y, bank, mode, margin) for mode in modes}
        out[name] = m
    return out


@torch.no_grad()
def evaluate_freeform(layer: AlignmentLayer, source, bank: PromptBank, items: list[FreeformItem],
                      cache_dir: str | None = None, path: str | Path = "input",
                      modes: tuple[str, ...] = GOAL_MODES) -> dict[str, dict]:
    """Encode the instructions as the agent routes them, map them, and :func:`score` them against the bank."""
    from .cache import encode_cached

    cls = resolve_prompts(items, bank, path)
    texts = [route(it.text, lang="zh").text_for_encoder for it in items]
    x, _ = encode_cached(source, texts, cache_dir)
    pred = layer.eval()(x.to(layer.x_mean.device, layer.x_mean.dtype)).float().cpu()
    return score(pred, cls, bank, modes)


def choose_blend_margin(pred: torch.Tensor, cls: torch.Tensor, bank: PromptBank,
                        grid: tuple[float, ...] = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 1.0)) -> float:
    """The blend margin with the best mean centred cosine of goal to true prompt on (val) predictions."""
    return max(grid, key=lambda m: goal_metrics(pred, cls, bank, "blend", m)["centred_cos"])


# ----------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------

def find_train_config(layer_dir: Path) -> Path | None:
    """``train_config.json`` of the run that wrote ``layer_dir`` (the layer's dir, or ``<out>/rungs/<rung>``)."""
    for d in (layer_dir, layer_dir.parent.parent):
        if (d / "train_config.json").is_file():
            return d / "train_config.json"
    return None


def find_bank_dir(layer_dir: Path) -> Path:
    for d in (layer_dir, layer_dir.parent.parent):
        if (d / "prompt_bank.json").is_file():
            return d
    return layer_dir


def load_for_eval(layer_dir: str | Path, config: str | None = None):
    """(layer, source encoder, bank) for a trained layer directory; the encoder must match the layer's identity."""
    from zh_steve.config_utils import load_config

    from .encoders import SourceEncoderConfig, build_source_encoder

    layer_dir = Path(layer_dir)
    layer = AlignmentLayer.from_pretrained(layer_dir)
    cfg_path = Path(config) if config else find_train_config(layer_dir)
    if cfg_path is None:
        raise ConfigError(f"no train_config.json beside {layer_dir}: pass --config with the training YAML")
    section = load_config(cfg_path).get("source_encoder", {})
    source = build_source_encoder(from_dict(SourceEncoderConfig, section, f"{cfg_path}: source_encoder"))
    layer.check_encoders(source=source.identity)
    bank = PromptBank.load(find_bank_dir(layer_dir))
    return layer, source, bank


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m alignment.evaluate",
                                description="Score a trained alignment layer on free-form Chinese instructions "
                                            "(top-1/top-5/MRR, seen vs unseen classes, norm ratio, goal modes).")
    p.add_argument("--layer", required=True, help="directory written by python -m alignment.train (--out)")
    p.add_argument("--input", default=str(DEFAULT_FREEFORM), help="TSV: instruction<TAB>prompt (default: %(default)s)")
    p.add_argument("--goal-mode", choices=(*GOAL_MODES, "all"), default="all", help="goal modes to score")
    p.add_argument("--config", default=None, help="training YAML naming the source encoder (default: the run's "
                                                  "train_config.json)")
    p.add_argument("--cache-dir", default=None, help="embedding cache (default ~/.cache/zh-steve/embeddings)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                   help="write the results as one JSON object (to PATH, or stdout without one)")
    return p.parse_args(argv)


def format_report(res: dict[str, dict]) -> str:
    lines = [f"{'classes':<8} {'n':>4} {'top1':>6} {'top5':>6} {'mrr':>6} {'norm':>6}   goal centred cos (hit)"]
    for name, m in res.items():
        if not m.get("n"):
            lines.append(f"{name:<8} {0:>4}")
            continue
        goals = "  ".join(f"{k} {v['centred_cos']:.3f} ({v['hit']:.2f})" for k, v in m["goal"].items())
        lines.append(f"{name:<8} {m['n']:>4} {m['top1']:>6.3f} {m['top5']:>6.3f} {m['mrr']:>6.3f} "
                     f"{m['norm_ratio']:>6.3f}   {goals}")
        if "hub" in m:
            h = m["hub"]
            lines.append(f"{'  +hub':<8} {m['n']:>4} {h['top1']:>6.3f} {h['top5']:>6.3f} {h['mrr']:>6.3f}"
                         "          (ranked by the bank's hubness-corrected scores, as snap/blend do)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        items = read_freeform(args.input)
        resolve_prompts(items, PromptBank.load(find_bank_dir(Path(args.layer))), args.input)  # before any model loads
        layer, source, bank = load_for_eval(args.layer, args.config)
        modes = GOAL_MODES if args.goal_mode == "all" else (args.goal_mode,)
        res = evaluate_freeform(layer, source, bank, items, args.cache_dir, args.input, modes)
    except ZhSteveError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2 if isinstance(e, (ConfigError, FreeformFormatError)) else 1
    report = {"layer": str(args.layer), "input": str(args.input), "source_encoder": source.identity,
              "target_encoder": layer.config.target_encoder, "blend_margin": bank.blend_margin, **res}
    if args.json is not None:
        text = json.dumps(report, indent=2, ensure_ascii=False)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    if args.json != "-":
        print(format_report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
