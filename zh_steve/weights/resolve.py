"""Find the weights the agent (or alignment training) needs: explicit paths → local dirs/caches → hub download.

``resolve_weights(spec)`` decides, per component (policy, prior, MineCLIP text tower, policy kwargs and
pi-head temperature), which file and layout it comes from, and returns a :class:`ResolvedWeights` whose
``*_state_dict()`` methods give official-key-space state dicts for both layouts alike.

Order for each component:
  1. explicit paths in the spec (``policy``, ``prior``, ``mineclip``, ``hub_file``);
  2. ``weights_dir`` (official layout, then the MineStudio file, then a text-tower block);
  3. the zh-steve cache (``$ZS_WEIGHTS_CACHE``, default ``~/.cache/zh-steve/weights``), then the standard
     Hugging Face cache — no network;
  4. a hub download into the zh-steve cache, announced with its size first — unless downloads are refused
     (``allow_download=False`` or ``ZS_NO_DOWNLOAD=1``) or ``HF_HUB_OFFLINE=1`` is set; then a clear error names
     each missing file and where it is published.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import hub
from ..checkpoint import compare_keys
from ..errors import CheckpointError, ConfigError, WeightsNotFoundError
from ..hub import default_cache_dir, local_snapshot
from ..published import COMPONENT_FILE, HUB_CONFIG_FILE, HUB_WEIGHTS_FILE
from .download import download_hub_layout, fetch_missing
from .expected import COMPONENTS, Expectations
from .layout import LAYOUT_HUB, LAYOUT_OFFICIAL, LAYOUT_TEXT_BLOCK, ComponentSource, detect_layout, find_in_dir
from .minestudio import HubCheckpoint
from .official import read_state_dict
from .ranged import read_text_block_state_dict
from .settings import PolicySettings, policy_settings
from .spec import WeightsSpec

__all__ = ["LAYOUT_HUB", "LAYOUT_OFFICIAL", "LAYOUT_TEXT_BLOCK", "ComponentSource", "PolicySettings",
           "ResolvedWeights", "WeightsSpec", "default_cache_dir", "detect_layout", "download_hub_layout",
           "local_snapshot", "resolve_weights"]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class ResolvedWeights:
    """Per-component sources, and loaders that return official-key-space state dicts (fp32)."""

    sources: dict[str, ComponentSource]
    settings: PolicySettings | None
    expected: Expectations = field(default_factory=Expectations)
    _hubs: dict[Path, HubCheckpoint] = field(default_factory=dict, repr=False)

    def _hub(self, path: Path) -> HubCheckpoint:
        if path not in self._hubs:
            self._hubs[path] = HubCheckpoint(path, self.expected)
        return self._hubs[path]

    def _load(self, component: str) -> dict[str, torch.Tensor]:
        if component not in self.sources:
            raise WeightsNotFoundError(f"{component} was not resolved (it was not in WeightsSpec.need)")
        src = self.sources[component]
        if src.layout == LAYOUT_HUB:
            return self._hub(src.path).state_dict(component)
        if src.layout == LAYOUT_TEXT_BLOCK:
            return read_text_block_state_dict(src.path, self.expected.hub_text_shapes())
        sd = {k: v.to(torch.float32) for k, v in read_state_dict(src.path, component).items()}
        report = compare_keys(self.expected.component(component), sd)
        if not report.ok:
            raise CheckpointError(f"{src.path} ({component}, as in {COMPONENT_FILE[component]}) does not match the "
                                  f"official manifest: {report.describe()}")
        return sd

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        return self._load("policy")

    def prior_state_dict(self) -> dict[str, torch.Tensor]:
        return self._load("prior")

    def mineclip_text_state_dict(self) -> dict[str, torch.Tensor]:
        return self._load("mineclip_text")

    def policy_kwargs(self) -> PolicySettings:
        if self.settings is None:
            raise WeightsNotFoundError("policy settings were not resolved (policy was not in WeightsSpec.need)")
        return self.settings

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary for config dumps."""
        out: dict[str, Any] = {c: {"path": str(s.path), "layout": s.layout, "origin": s.origin}
                               for c, s in self.sources.items()}
        if self.settings is not None:
            out["policy_settings"] = {"kwargs_source": self.settings.kwargs_source,
                                      "temperature": self.settings.temperature,
                                      "temperature_source": self.settings.temperature_source}
        return out


def resolve_weights(spec: WeightsSpec | None = None) -> ResolvedWeights:
    """Decide where every needed component comes from (downloading if allowed). See the module docstring."""
    spec = spec or WeightsSpec()
    notify = spec.notify or _stderr
    expected = spec.expected or Expectations()
    need = [c for c in spec.need if c in COMPONENTS]
    unknown = [c for c in spec.need if c not in COMPONENTS]
    if unknown:
        raise ConfigError(f"WeightsSpec.need: unknown component(s) {unknown}; valid: {list(COMPONENTS)}")
    cache = Path(spec.cache_dir).expanduser() if spec.cache_dir else default_cache_dir()
    sources: dict[str, ComponentSource] = {}

    # 1. explicit paths
    explicit = {"policy": spec.policy, "prior": spec.prior, "mineclip_text": spec.mineclip}
    for c in need:
        path = explicit[c] or spec.hub_file
        if path is not None:
            path = Path(path).expanduser()
            sources[c] = ComponentSource(path, detect_layout(path), "explicit")
            if sources[c].layout == LAYOUT_TEXT_BLOCK and c != "mineclip_text":
                raise CheckpointError(f"{path} holds only the MineCLIP text tower; it cannot provide the {c}")

    # 2. weights_dir, 3. caches
    dirs = [(Path(spec.weights_dir).expanduser(), "weights_dir")] if spec.weights_dir else []
    dirs.append((cache, "cache"))
    for c in need:
        for root, origin in dirs:
            if c in sources:
                break
            hit = find_in_dir(root, c)
            if hit is not None:
                sources[c] = ComponentSource(hit[0], hit[1], origin)
    missing = [c for c in need if c not in sources]
    if missing:
        cached = hub.cached_file(spec.repo_id, HUB_WEIGHTS_FILE, spec.revision)
        if cached is not None and hub.cached_file(spec.repo_id, HUB_CONFIG_FILE, spec.revision) is not None:
            for c in missing:
                sources[c] = ComponentSource(cached, LAYOUT_HUB, "hf-cache")
            missing = []

    # 4. download (if allowed)
    if missing:
        sources.update(fetch_missing(missing, spec, cache, expected, notify))

    settings = None
    if "policy" in need:
        settings = policy_settings(spec, sources["policy"], [root for root, _ in dirs])
    resolved = ResolvedWeights(sources=sources, settings=settings, expected=expected)
    for c, src in sources.items():  # a hub file is checked strictly as soon as it is chosen
        if src.layout == LAYOUT_HUB:
            resolved._hub(src.path)
    return resolved
