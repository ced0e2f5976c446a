"""Tiny random text towers for tests, CI and ``configs/*_tiny.yaml`` (no downloads).

Both keep the real output size (512) so the alignment layer has its real shape, and both go through the real
code paths: the tiny Chinese-CLIP is written with ``save_pretrained`` and read back by
:meth:`ChineseClipTextEncoder.from_pretrained`; the tiny MineCLIP tower uses the real offline CLIP tokenizer.
Weights are random with a non-trivial scale so that different texts give clearly different embeddings.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..text.chinese_clip import ChineseClipTextEncoder, cn_clip_vocab_path
from ..text.clip_tokenizer import MineClipTokenizer
from ..text.mineclip_text import MineClipTextConfig, MineClipTextEncoder, MineClipTextModel
from .sizes import TINY_CHINESE_CLIP_TEXT, TINY_CHINESE_CLIP_VISION, TINY_MINECLIP_TEXT

TINY_FORMAT = 1  # bump when the tiny recipe changes so cached dirs are rebuilt
MARKER = "zh_steve_tiny.json"


def _default_cache() -> Path:
    return Path(os.environ.get("ZS_TINY_CACHE", Path(tempfile.gettempdir()) / "zh_steve_tiny"))


@torch.no_grad()
def _spread_weights(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Re-draw matrices with std 1/sqrt(fan_in) (embeddings std 1) and jitter norms/biases.

    The HF default (std 0.02) makes a 2-layer tower nearly input-independent at [CLS]; this keeps it varied.
    """
    for name, p in module.named_parameters():
        if p.dim() == 2:
            std = 1.0 if "embeddings" in name else p.shape[1] ** -0.5
            p.copy_(torch.randn(p.shape, generator=generator) * std)
        elif name.endswith("weight"):  # LayerNorm gains
            p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator))
        else:
            p.copy_(0.1 * torch.randn(p.shape, generator=generator))


def tiny_chinese_clip_dir(out_dir: str | Path, seed: int = 0) -> Path:
    """Write (or reuse) a tiny random ``ChineseCLIPModel`` + ``BertTokenizer`` directory; returns its path.

    Text tower: :data:`~zh_steve.testing.sizes.TINY_CHINESE_CLIP_TEXT`; projection 512.
    """
    from transformers import BertTokenizer, ChineseCLIPConfig, ChineseCLIPModel

    out_dir = Path(out_dir)
    marker = out_dir / MARKER
    want = {"kind": "chinese-clip", "seed": seed, "format": TINY_FORMAT}
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == want:
                return out_dir
        except (OSError, json.JSONDecodeError):
            pass

    config = ChineseCLIPConfig(text_config=dict(TINY_CHINESE_CLIP_TEXT), vision_config=dict(TINY_CHINESE_CLIP_VISION),
                               projection_dim=512)
    torch.manual_seed(seed)
    model = ChineseCLIPModel(config).eval()
    gen = torch.Generator().manual_seed(seed)
    _spread_weights(model.text_model, gen)
    _spread_weights(model.text_projection, gen)

    # Build next to the target and rename, so concurrent builders never see a half-written directory.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        shutil.copyfile(cn_clip_vocab_path(), tmp / "vocab.txt")
        BertTokenizer.from_pretrained(str(tmp)).save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps(want))
        if out_dir.exists():
            shutil.rmtree(out_dir, ignore_errors=True)
        try:
            os.replace(tmp, out_dir)
        except OSError:  # another process won the race with the same content
            if not (marker.is_file() and json.loads(marker.read_text()) == want):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def tiny_chinese_clip_encoder(seed: int = 0, cache_dir: str | Path | None = None) -> ChineseClipTextEncoder:
    """A tiny random Chinese-CLIP text encoder loaded through the real ``from_pretrained`` path."""
    root = Path(cache_dir) if cache_dir is not None else _default_cache()
    path = tiny_chinese_clip_dir(root / f"chinese_clip_tiny_s{seed}_v{TINY_FORMAT}", seed=seed)
    return ChineseClipTextEncoder.from_pretrained(path, local_files_only=True)


def tiny_mineclip_text_config() -> MineClipTextConfig:
    """Real vocabulary/context/output size, small trunk (:data:`~zh_steve.testing.sizes.TINY_MINECLIP_TEXT`)."""
    return MineClipTextConfig(**TINY_MINECLIP_TEXT)


def tiny_mineclip_text_encoder(seed: int = 0) -> MineClipTextEncoder:
    """A seeded random MineCLIP text tower with the real offline CLIP tokenizer."""
    model = MineClipTextModel(tiny_mineclip_text_config())
    gen = torch.Generator().manual_seed(seed)
    model.reset_parameters(gen)
    with torch.no_grad():  # CLIP's 0.02/0.01 embedding std would make the tiny tower nearly text-independent
        model.token_embedding.weight.normal_(0.0, 1.0, generator=gen)
        model.pos_embed.normal_(0.0, 0.5, generator=gen)
    tokenizer = MineClipTokenizer.default()
    return MineClipTextEncoder(model, tokenizer, identity=f"mineclip-text:tiny-random:seed={seed}:"
                                                          f"tok={tokenizer.identity}")
