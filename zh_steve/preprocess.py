"""Observation preprocessing: MineRL ``obs["pov"]`` (RGB uint8, H×W×3, any size) → the policy's 128×128 frame.

STEVE-1 squashes the frame to 128×128 with ``cv2.resize(..., INTER_LINEAR)`` (no crop, aspect ratio not kept)
and skips the resize when the frame is already that size. cv2's fixed-point bilinear is needed for exact
equality: a float bilinear differs by ±1 on ~7 % of pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from .errors import InvalidObservationError

AGENT_RESOLUTION: tuple[int, int] = (128, 128)  # (height, width); square, so cv2's (width, height) is the same
_EXPECTED = "an RGB uint8 numpy array of shape (H, W, 3) like MineRL's obs['pov']"


def _check_pov(pov: Any) -> None:
    if not isinstance(pov, np.ndarray):
        hint = " (call .cpu().numpy() on a tensor)" if hasattr(pov, "detach") else ""
        raise InvalidObservationError(f"expected {_EXPECTED}, got {type(pov).__name__}{hint}")
    shape = tuple(pov.shape)
    if pov.ndim == 2:
        raise InvalidObservationError(
            f"expected {_EXPECTED}, got a grayscale image of shape {shape}; convert it to RGB "
            "(e.g. cv2.cvtColor(img, cv2.COLOR_GRAY2RGB))"
        )
    if pov.ndim == 4:
        raise InvalidObservationError(f"expected {_EXPECTED}, got a batch of shape {shape}; pass one frame at a time")
    if pov.ndim != 3:
        raise InvalidObservationError(f"expected {_EXPECTED}, got an array of shape {shape}")
    if pov.shape[-1] != 3:
        if pov.shape[0] in (1, 3, 4) and pov.shape[-1] > 4:
            hint = "it looks channels-first (C, H, W), as MineDojo's obs['rgb']; transpose it with pov.transpose(1, 2, 0)"
        elif pov.shape[-1] == 4:
            hint = "it has 4 channels (RGBA); drop alpha with pov[..., :3]"
        elif pov.shape[-1] == 1:
            hint = "it has 1 channel (grayscale); convert it to RGB"
        else:
            hint = "the last axis must hold the 3 RGB channels"
        raise InvalidObservationError(f"expected {_EXPECTED}, got shape {shape}: {hint}")
    if pov.shape[0] < 1 or pov.shape[1] < 1:
        raise InvalidObservationError(f"expected {_EXPECTED} with H, W >= 1, got shape {shape}")
    if pov.dtype != np.uint8:
        hint = (" (if the values are in [0, 1], use (pov * 255).round().astype(np.uint8))"
                if np.issubdtype(pov.dtype, np.floating) else "")
        raise InvalidObservationError(f"expected {_EXPECTED}, got dtype {pov.dtype}{hint}")


def preprocess_pov(pov: np.ndarray) -> np.ndarray:
    """Validate one RGB frame and squash it to a new contiguous uint8 array ``[128, 128, 3]``."""
    _check_pov(pov)
    pov = np.ascontiguousarray(pov)  # cv2 rejects negative strides / non-contiguous views
    height, width = AGENT_RESOLUTION
    if pov.shape[:2] == (height, width):
        return pov.copy()
    return cv2.resize(pov, (width, height), interpolation=cv2.INTER_LINEAR)


def preprocess_obs(obs: Mapping[str, Any]) -> np.ndarray:
    """``preprocess_pov(obs["pov"])`` for a MineRL observation dict."""
    if not isinstance(obs, Mapping):
        raise InvalidObservationError(f"expected a MineRL observation dict with key 'pov', got {type(obs).__name__}")
    if "pov" not in obs:
        hint = " (a MineDojo observation? pass obs['rgb'].transpose(1, 2, 0) to preprocess_pov)" if "rgb" in obs else ""
        raise InvalidObservationError(f"observation has no 'pov' key (keys: {list(obs)[:20]}){hint}")
    return preprocess_pov(obs["pov"])
