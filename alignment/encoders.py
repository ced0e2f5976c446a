"""Build the frozen source (Chinese-CLIP) and target (MineCLIP) text encoders named by the training config.

Real models: Chinese-CLIP from a hub id or local directory, MineCLIP's text tower from ``attn.pth`` (or a
safetensors file holding it). Tiny random towers with the real tokenizers stand in for both offline.
A missing model raises :class:`WeightsNotFoundError` with one line saying what is missing and where to get it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from zh_steve.errors import ConfigError, WeightsNotFoundError
from zh_steve.text.base import TextEncoder

CHINESE_CLIP_HUB_ID = "OFA-Sys/chinese-clip-vit-base-patch16"
MINECLIP_HINT = (
    "get attn.pth from the Google Drive link in the MineCLIP README (or STEVE-1's download_weights.sh) into "
    "weights/mineclip/, or run `python -m zh_steve.download_weights --only text` (MineCLIP text tower + "
    "Chinese-CLIP into ~/.cache/zh-steve/weights), or pass --mineclip PATH"
)
CHINESE_CLIP_HINT = (
    f"download {CHINESE_CLIP_HUB_ID} with `python -m zh_steve.download_weights --only text` or "
    f"`hf download {CHINESE_CLIP_HUB_ID} --local-dir weights/chinese-clip-vit-base-patch16` on a machine with "
    "network access, then pass --chinese-clip DIR"
)


@dataclass
class SourceEncoderConfig:
    """The Chinese text tower whose raw output the alignment layer takes."""

    kind: str = "chinese_clip"                 # chinese_clip | tiny_chinese_clip
    name_or_path: str = CHINESE_CLIP_HUB_ID    # hub id or local directory
    revision: str | None = None
    local_files_only: bool | None = None
    search_cache: bool = True                  # also look in the zh-steve weights cache
    seed: int = 0                              # tiny only

    def __post_init__(self) -> None:
        if self.kind not in ("chinese_clip", "tiny_chinese_clip"):
            raise ConfigError(f"source_encoder.kind must be 'chinese_clip' or 'tiny_chinese_clip', got {self.kind!r}")


@dataclass
class TargetEncoderConfig:
    """The MineCLIP text tower whose raw space the alignment layer predicts."""

    kind: str = "mineclip"                     # mineclip | tiny_mineclip
    path: str = "weights/mineclip/attn.pth"    # attn.pth, or a safetensors file with the text tower
    search_cache: bool = True                  # also look in the zh-steve weights cache
    seed: int = 0                              # tiny only

    def __post_init__(self) -> None:
        if self.kind not in ("mineclip", "tiny_mineclip"):
            raise ConfigError(f"target_encoder.kind must be 'mineclip' or 'tiny_mineclip', got {self.kind!r}")


def _weights_cache() -> Path | None:
    try:
        from zh_steve.weights.resolve import default_cache_dir
    except ImportError:
        return None
    return default_cache_dir()


def mineclip_candidates(cfg: TargetEncoderConfig) -> list[Path]:
    """Where the MineCLIP text weights are looked for, in order."""
    paths = [Path(cfg.path).expanduser()]
    cache = _weights_cache() if cfg.search_cache else None
    if cache is not None:
        paths += [cache / "mineclip_text" / "mineclip_text_tower.safetensors", cache / "mineclip" / "attn.pth"]
    return paths


def build_target_encoder(cfg: TargetEncoderConfig, device: str = "cpu") -> TextEncoder:
    """MineCLIP text encoder (raw 512-d ``encode_text`` output)."""
    if cfg.kind == "tiny_mineclip":
        from zh_steve.text.tiny import tiny_mineclip_text_encoder

        return tiny_mineclip_text_encoder(seed=cfg.seed)
    from zh_steve.text.mineclip_text import MineClipTextEncoder

    found = next((p for p in mineclip_candidates(cfg) if p.is_file()), None)
    if found is None:
        raise WeightsNotFoundError(f"MineCLIP text weights not found at {cfg.path}: {MINECLIP_HINT}")
    return MineClipTextEncoder.from_checkpoint(found, device=device)


def build_source_encoder(cfg: SourceEncoderConfig, device: str = "cpu") -> TextEncoder:
    """Chinese-CLIP text encoder (raw 512-d projected [CLS] feature)."""
    if cfg.kind == "tiny_chinese_clip":
        from zh_steve.text.tiny import tiny_chinese_clip_encoder

        return tiny_chinese_clip_encoder(seed=cfg.seed)
    from zh_steve.text.chinese_clip import ChineseClipTextEncoder

    name = cfg.name_or_path
    cache = _weights_cache() if cfg.search_cache else None
    if name == CHINESE_CLIP_HUB_ID and cache is not None and (cache / name.split("/")[1] / "config.json").is_file():
        name = str(cache / name.split("/")[1])
    with _quiet_hub():
        try:
            return ChineseClipTextEncoder.from_pretrained(name, device=device, dtype=torch.float32,
                                                          revision=cfg.revision, local_files_only=cfg.local_files_only)
        except WeightsNotFoundError as e:
            where = (f"directory {name} not found" if Path(name).expanduser().is_absolute() or name.startswith(".")
                     else f"{name!r} is neither in the Hugging Face cache nor downloadable from here")
            raise WeightsNotFoundError(f"Chinese-CLIP {where}: {CHINESE_CLIP_HINT}") from e


@contextlib.contextmanager
def _quiet_hub():
    """Silence huggingface_hub / transformers retry warnings while probing; our one-line error says it all."""
    import huggingface_hub  # noqa: F401  (import first: importing them may reset their log levels)
    import transformers  # noqa: F401

    loggers = [logging.getLogger(n) for n in ("huggingface_hub", "transformers")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
