"""Build the frozen source (Chinese-CLIP) and target (MineCLIP) text encoders named by the training config.

Real models: Chinese-CLIP from a hub id or local directory, MineCLIP's text tower from ``attn.pth`` (or a
safetensors file holding it). Tiny random towers with the real tokenizers stand in for both offline.
A missing model raises :class:`WeightsNotFoundError` with one line saying what is missing and where to get it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from zh_steve.errors import ConfigError, WeightsNotFoundError
from zh_steve.linear import pack_linears
from zh_steve.precision import native_bf16
from zh_steve.text import proxy
from zh_steve.text.base import TextEncoder


from zh_steve.published import CHINESE_CLIP_HUB_ID

SOURCE_KINDS = ("chinese_clip", "tiny_chinese_clip", *proxy.SOURCE_KINDS)
TARGET_KINDS = ("mineclip", "tiny_mineclip", *proxy.TARGET_KINDS)
MINECLIP_HINT = (
    "get attn.pth from the Google Drive link in the MineCLIP README (or STEVE-1's download_weights.sh) into "
    "weights/mineclip/, or run `python -m zh_steve.download_weights --only text` (MineCLIP text tower + "
    "Chinese-CLIP into ~/.cache/zh-steve/weights), or pass --mineclip PATH"
)
CHINESE_CLIP_HINT = (
    f"download {CHINESE_CLIP_HUB_ID} with `python -m zh_steve.download_weights --only text` or "
    f"`hf download {CHINESE_CLIP_HUB_ID} --local-dir weights/{CHINESE_CLIP_HUB_ID.split('/')[-1]}` on a machine "
    "with network access, then pass --chinese-clip DIR"
)


@dataclass
class SourceEncoderConfig:
    """The Chinese text tower whose raw output the alignment layer takes."""

    kind: str = "chinese_clip"                 # chinese_clip | tiny_chinese_clip | proxy: use_m | e5_small
    name_or_path: str = CHINESE_CLIP_HUB_ID    # hub id or local directory
    revision: str | None = None
    local_files_only: bool | None = None
    search_cache: bool = True                  # also look in the zh-steve weights cache
    seed: int = 0                              # tiny only

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(f"source_encoder.kind must be one of {list(SOURCE_KINDS)}, got {self.kind!r}")


@dataclass
class TargetEncoderConfig:
    """The MineCLIP text tower whose raw space the alignment layer predicts.

    Resolution order (zh_steve.weights.resolve_weights): ``path`` if given → ``weights_dir`` (official layout
    ``mineclip/attn.pth``, a MineStudio hub file, or a text-tower block) → the zh-steve weights cache → the Hugging
    Face cache → a ranged download of just the text-tower block (≈242 MiB) of the MineStudio hub file.
    """

    kind: str = "mineclip"                     # mineclip | tiny_mineclip | proxy: use_m | minilm | wordllama
    path: str | None = None                    # explicit attn.pth, or a safetensors file with the text tower
    weights_dir: str | None = "weights"        # STEVE-1's data/weights layout or a dir with the hub file
    allow_download: bool | None = None         # None: allowed unless ZS_NO_DOWNLOAD=1 / HF_HUB_OFFLINE=1
    seed: int = 0                              # tiny only

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ConfigError(f"target_encoder.kind must be one of {list(TARGET_KINDS)}, got {self.kind!r}")


def build_target_encoder(cfg: TargetEncoderConfig, device: str = "cpu") -> TextEncoder:
    """MineCLIP text encoder (raw 512-d ``encode_text`` output), or a proxy stand-in."""
    if cfg.kind in proxy.TARGET_KINDS:
        return proxy.build_proxy_encoder(cfg.kind)
    if cfg.kind == "tiny_mineclip":
        from zh_steve.testing.tiny_text import tiny_mineclip_text_encoder

        return tiny_mineclip_text_encoder(seed=cfg.seed)
    from zh_steve.text.mineclip_text import MineClipTextEncoder
    from zh_steve.weights import WeightsSpec, resolve_weights

    if cfg.path is not None and not Path(cfg.path).expanduser().is_file():
        raise WeightsNotFoundError(f"MineCLIP text weights not found at {cfg.path}: {MINECLIP_HINT}")
    weights_dir = cfg.weights_dir if cfg.weights_dir and Path(cfg.weights_dir).expanduser().is_dir() else None
    spec = WeightsSpec(weights_dir=weights_dir, mineclip=cfg.path, need=("mineclip_text",),
                       allow_download=cfg.allow_download)
    try:
        resolved = resolve_weights(spec)
    except WeightsNotFoundError as e:
        where = cfg.path or f"{cfg.weights_dir}/mineclip/attn.pth"
        raise WeightsNotFoundError(f"MineCLIP text weights not found at {where} ({_first_line(e)}): "
                                   f"{MINECLIP_HINT}") from e
    return MineClipTextEncoder.from_state_dict(resolved.mineclip_text_state_dict(), device=device)


def _first_line(e: Exception) -> str:
    """The first sentence of an error message (the rest is advice that MINECLIP_HINT repeats)."""
    text = " ".join(str(e).split())
    end = text.find(". ")
    return (text[:end] if end > 0 else text)[:300] or type(e).__name__


def build_source_encoder(cfg: SourceEncoderConfig, device: str = "cpu") -> TextEncoder:
    """Chinese-CLIP text encoder (raw 512-d projected [CLS] feature), or a proxy stand-in."""
    if cfg.kind in proxy.SOURCE_KINDS:
        return proxy.build_proxy_encoder(cfg.kind)
    if cfg.kind == "tiny_chinese_clip":
        from zh_steve.testing.tiny_text import tiny_chinese_clip_encoder

        return tiny_chinese_clip_encoder(seed=cfg.seed)
    from zh_steve.text.chinese_clip import ChineseClipTextEncoder

    from zh_steve.weights import local_snapshot

    name = local_snapshot(cfg.name_or_path) if cfg.search_cache else cfg.name_or_path
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


# ---------------------------------------------------------------------------------------------------------------
# the training embedding pass in a faster compute dtype
# ---------------------------------------------------------------------------------------------------------------

ENCODE_DTYPES = ("auto", "float32", "bfloat16")


def resolve_encode_dtype(name: str, device: str) -> torch.dtype:
    """``encode_dtype`` → the dtype of the bulk embedding pass (``auto``: bfloat16 where it is native)."""
    if name not in ENCODE_DTYPES:
        raise ConfigError(f"encode_dtype must be one of {list(ENCODE_DTYPES)}, got {name!r}")
    if name == "auto":
        return torch.bfloat16 if native_bf16(device) else torch.float32
    return torch.bfloat16 if name == "bfloat16" else torch.float32


def tower_attr(encoder: TextEncoder) -> str | None:
    """The attribute holding ``encoder``'s torch tower (the project's Chinese-CLIP / MineCLIP encoders), or None
    for encoders without one (the proxy stand-ins)."""
    from zh_steve.text.chinese_clip import ChineseClipTextEncoder
    from zh_steve.text.mineclip_text import MineClipTextEncoder

    return {ChineseClipTextEncoder: "tower", MineClipTextEncoder: "model"}.get(type(encoder))


def bulk_encoder(encoder: TextEncoder, dtype: torch.dtype) -> TextEncoder:
    """A copy of ``encoder`` whose tower computes in ``dtype``, for the training embedding pass.

    Batched text towers are compute-bound: on an AVX512-BF16 CPU a bfloat16 tower encodes about twice as fast
    (Chinese-CLIP, 640 training instructions in batches of 64: 6.1 s → 3.1 s, cosine to float32 ≥ 0.9998, random
    full-size weights). The copy caches under its own identity (``…|compute=bfloat16``), so its embeddings never
    mix with float32 ones; the layer still records the float32 encoder it runs with. On a native-bf16 CPU the copy's
    linear weights are packed for oneDNN (:func:`zh_steve.linear.pack_linears`: bit-identical rows; Chinese-CLIP,
    768 dictionary words, 1 thread: 3.79 → 3.43 s). Encoders without a torch tower (the proxy stand-ins) and float32
    come back unchanged."""
    attr = tower_attr(encoder)
    if dtype == torch.float32 or attr is None:
        return encoder
    fast = copy.copy(encoder)
    tower = copy.deepcopy(getattr(encoder, attr)).to(dtype)
    pack_linears(tower)  # bf16 CPU weights on a native-bf16 CPU: the same products, without per-batch re-laying
    setattr(fast, attr, tower)
    fast.identity = f"{encoder.identity}|compute={str(dtype).removeprefix('torch.')}"
    return fast
