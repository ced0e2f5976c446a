"""What to look for and where: the input of :func:`zh_steve.weights.resolve_weights`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..published import HUB_REPO_ID
from .expected import COMPONENTS, Expectations


@dataclass
class WeightsSpec:
    """Where to look for weights. Every field is optional; see the module docstring for the order (zh_steve.weights.resolve)."""

    weights_dir: str | Path | None = None
    policy: str | Path | None = None          # steve1.weights (or a MineStudio model.safetensors)
    prior: str | Path | None = None           # steve1_prior.pt (or a MineStudio model.safetensors)
    mineclip: str | Path | None = None        # attn.pth, a text-tower block, or a MineStudio model.safetensors
    hub_file: str | Path | None = None        # MineStudio model.safetensors (config.json beside it)
    policy_kwargs: str | Path | None = None   # 2x.model, or YAML/JSON with policy kwargs
    temperature: float | None = None          # explicit pi-head temperature (wins over 2x.model)
    cache_dir: str | Path | None = None
    allow_download: bool | None = None        # None: allowed unless ZS_NO_DOWNLOAD=1
    repo_id: str = HUB_REPO_ID
    revision: str | None = None
    need: tuple[str, ...] = COMPONENTS
    expected: Expectations | None = None      # default: the manifests of the real files
    expected_behaviour: Mapping[str, Any] | None = None  # default: official behaviour-only policy settings
    notify: Callable[[str], None] | None = None
