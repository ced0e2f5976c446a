"""Explain what the agent makes of one instruction: route, nearest English prompts, goal-mode decision.

    python -m zh_steve.explain "砍树" [--config configs/agent.yaml] [--top 5] [--goal-mode MODE] [--json]

``--config`` is an agent config (``configs/agent*.yaml``: the text towers and alignment layer the agent would use)
or an alignment training config (``configs/alignment*.yaml``: its encoders and the layer in its ``out`` directory,
e.g. the proxy encoders after ``make train-proxy``). The English prompts come from the prompt bank saved with the
layer; a layer without one (the tiny config's random layer) is compared against the lexicon's class prompts,
embedded on the spot by the target encoder. A warning is printed when the instruction looks out of distribution:
its best prompt is far (low centred cosine) or barely ahead of the next one (low margin).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config_utils import load_config
from .errors import ConfigError, ZhSteveError
from .goal import GOAL_MODES, PromptBank, bank_for, choose_goal
from .text.language import route

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "agent.yaml"
MIN_SCORE = 0.3    # best prompt's centred cosine below this: probably not a known task
MIN_MARGIN = 0.02  # top-1 − top-2 below this: the nearest prompts are a toss-up


@dataclass
class TextSide:
    """What explain needs: the two text towers, the alignment layer, the prompt bank, the goal mode."""

    source: Any          # TextEncoder for Chinese (and mixed) text
    target: Any          # TextEncoder for English text (MineCLIP or its proxy)
    alignment: torch.nn.Module
    bank: PromptBank
    bank_origin: str
    goal_mode: str
    label: str           # what these models are (real / tiny random / proxy encoders)


def _lexicon_bank(target, cache_dir: str | None = None) -> PromptBank:
    """Every class prompt of the lexicon, embedded by ``target`` (cached), when no bank was saved with the layer."""
    from alignment.cache import encode_cached
    from alignment.pairs import PairsConfig, build_classes

    classes, _ = build_classes(PairsConfig(), 0)
    texts = [c.class_id for c in classes]
    emb, _ = encode_cached(target, texts, cache_dir)
    return PromptBank(texts=texts, emb=emb, splits=[c.split for c in classes], encoder=target.identity)


def _bank(layer_dir: str | Path | None, target, prompts_file: str | Path | None = None) -> tuple[PromptBank, str]:
    """The bank the agent would use (``goal.bank_for``: saved with the layer, plus the user's prompts), or the
    lexicon's class prompts when the layer has none."""
    if layer_dir is not None and (Path(layer_dir) / "prompt_bank.json").is_file():
        return bank_for(layer_dir, prompts_file, target), f"saved with the layer ({layer_dir})"
    bank = _lexicon_bank(target)
    if prompts_file:
        bank = bank.extend_from_file(prompts_file, target)
    return bank, "lexicon class prompts embedded now (no bank saved with the layer)"


def load_text_side(config: str | Path) -> TextSide:
    """Build the text side from an agent config or an alignment training config."""
    raw = load_config(config)
    if "source_encoder" in raw or "target_encoder" in raw:
        from alignment.encoders import build_source_encoder, build_target_encoder
        from alignment.train import TrainConfig

        from .alignment_layer import AlignmentLayer
        from .config_utils import from_dict

        cfg = from_dict(TrainConfig, raw, where=str(config))
        source, target = build_source_encoder(cfg.source_encoder), build_target_encoder(cfg.target_encoder)
        if not (Path(cfg.out) / "config.json").is_file():
            raise ConfigError(f"no trained alignment layer in {cfg.out}: train it first with "
                              f"`python -m alignment.train --config {config}`"
                              + (" (make train-proxy)" if "proxy" in source.identity else ""))
        layer = AlignmentLayer.from_pretrained(cfg.out)
        layer.check_encoders(source.identity, target.identity)
        bank, origin = _bank(cfg.out, target)
        proxy = "proxy" in source.identity or "proxy" in target.identity
        label = ("PROXY ENCODERS (stand-ins, not Chinese-CLIP/MineCLIP)" if proxy else
                 "tiny random encoders" if "tiny" in cfg.source_encoder.kind else "Chinese-CLIP → MineCLIP")
        return TextSide(source, target, layer, bank, origin, "regress", label)
    from .assembly import AgentConfig, build_text

    acfg = AgentConfig.load(raw)
    text = build_text(acfg)  # the text side only: no policy or prior is loaded to explain an instruction
    bank, origin = _bank(acfg.alignment, text.mineclip_encoder, acfg.goal_prompts)
    label = "tiny random weights — not a trained agent" if text.random_weights else "Chinese-CLIP → MineCLIP"
    return TextSide(text.chinese_encoder, text.mineclip_encoder, text.alignment, bank, origin, acfg.goal_mode,
                    label)


@torch.no_grad()
def explain(text: str, side: TextSide, top: int = 5, goal_mode: str | None = None) -> dict[str, Any]:
    """The route, the top-``top`` prompts with centred-cosine scores, the goal-mode decision, and any warnings."""
    r = route(text)
    mode = goal_mode or side.goal_mode
    if r.uses_chinese_clip:
        x = side.source.encode([r.text_for_encoder])
        ref = next(side.alignment.buffers())
        vec = side.alignment(x.to(device=ref.device, dtype=ref.dtype)).float().cpu()
        tower = "source (Chinese) encoder → alignment layer"
    else:
        vec = side.target.encode([r.text_for_encoder]).float().cpu()
        tower = "target (English) encoder directly"
    # the agent applies goal modes to Chinese text only: English already is the target encoder's own embedding
    _, decision = choose_goal(vec, side.bank, mode if r.uses_chinese_clip else "regress", top=top)
    if not r.uses_chinese_clip:
        decision.reason = "English: the target encoder's own embedding goes to the prior (goal modes apply to Chinese)"
    warnings = []
    if decision.score is not None and decision.score < MIN_SCORE:
        warnings.append(f"looks out of distribution: the best prompt's centred cosine is only {decision.score:.3f} "
                        f"(< {MIN_SCORE}; the plain cosine, not the hubness-corrected ranking score); STEVE-1 may "
                        "not know this task")
    if decision.margin is not None and decision.margin < MIN_MARGIN:
        warnings.append(f"ambiguous: the top two prompts are {decision.margin:.3f} apart (< {MIN_MARGIN}); "
                        "a more specific instruction may help")
    return {
        "instruction": text, "models": side.label,
        "route": {"language": r.language, "traditional_to_simplified": r.traditional,
                  "text_for_encoder": r.text_for_encoder, "tower": tower, "reason": r.reason},
        "bank": {"prompts": len(side.bank.texts), "origin": side.bank_origin},
        "top": [{"prompt": p, "score": s} for p, s in decision.top],
        "goal": decision.as_dict(), "norm": float(vec.norm()), "warnings": warnings,
    }


def format_explanation(e: dict[str, Any]) -> str:
    r = e["route"]
    lines = [f"instruction: {e['instruction']}    [{e['models']}]",
             f"route: {r['language']}" + (" (Traditional → Simplified)" if r["traditional_to_simplified"] else "")
             + f" → {r['tower']}; encoder saw {r['text_for_encoder']!r}",
             f"nearest English prompts ({e['bank']['prompts']} in the bank: {e['bank']['origin']}):"]
    lines += [f"  {i + 1}. {t['score']:+.3f}  {t['prompt']}" for i, t in enumerate(e["top"])]
    g = e["goal"]
    lines.append(f"goal mode: {g['reason']}")
    lines += [f"warning: {w}" for w in e["warnings"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zh_steve.explain",
                                description="Show how an instruction is routed, which English prompts it lands "
                                            "nearest to, and what the goal mode does with it.")
    p.add_argument("instruction")
    p.add_argument("--config", default=str(DEFAULT_CONFIG),
                   help="agent config or alignment training config (default: %(default)s)")
    p.add_argument("--top", type=int, default=5, help="how many prompts to show (default: %(default)s)")
    p.add_argument("--goal-mode", choices=GOAL_MODES, default=None, help="override the config's goal mode")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = p.parse_args(argv)
    if args.top < 1:
        p.error("--top must be >= 1")
    try:
        side = load_text_side(args.config)
        e = explain(args.instruction, side, args.top, args.goal_mode)
    except ZhSteveError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    print(json.dumps(e, ensure_ascii=False, indent=2) if args.json else format_explanation(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
