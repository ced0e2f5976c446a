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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import hub
from ..checkpoint import compare_keys, load_manifest, read_safetensors_header
from ..errors import CheckpointError, ConfigError, WeightsNotFoundError
from ..hub import default_cache_dir, local_snapshot
from ..published import (COMPONENT_FILE, HUB_APPROX_SIZE, HUB_CONFIG_FILE, HUB_REPO_ID, HUB_TEXT_PREFIX, HUB_URL,
                         HUB_WEIGHTS_FILE, OFFICIAL_FILES, OFFICIAL_TEMPERATURE, TEMPERATURE_DEFAULT_SOURCE)
from .expected import COMPONENTS, Expectations, hub_component, payload_bytes
from .minestudio import HubCheckpoint, check_hub_config, find_hub_file, read_hub_config
from .official import find_official_file, read_policy_kwargs, read_state_dict
from .ranged import TEXT_BLOCK_RELPATH, fetch_tensor_block, hub_source, read_text_block_state_dict

__all__ = ["ComponentSource", "PolicySettings", "ResolvedWeights", "WeightsSpec", "default_cache_dir",
           "detect_layout", "local_snapshot", "resolve_weights"]

LAYOUT_OFFICIAL = "official"
LAYOUT_HUB = "minestudio-hub"
LAYOUT_TEXT_BLOCK = "text-block"


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class WeightsSpec:
    """Where to look for weights. Every field is optional; see the module docstring for the order."""

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


@dataclass
class ComponentSource:
    """Which file a component comes from."""

    path: Path
    layout: str    # official | minestudio-hub | text-block
    origin: str    # explicit | weights_dir | cache | hf-cache | download


@dataclass
class PolicySettings:
    """Policy constructor kwargs plus the pi-head temperature, and which source decided each."""

    policy_kwargs: dict[str, Any]
    kwargs_source: str
    temperature: float
    temperature_source: str   # TEMPERATURE_DEFAULT_SOURCE | 2x.model | config
    ignored_keys: list[str] = field(default_factory=list)  # set by zh_steve.policy.policy_config


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


# ----------------------------------------------------------------------------------------------------------
# finding files
# ----------------------------------------------------------------------------------------------------------

def detect_layout(path: str | Path) -> str:
    """From the file itself: ``minestudio-hub`` (a safetensors file with the tensors of several components, i.e. the
    MineStudio file), ``text-block`` (only ``mineclip.clip_model.text_model.*`` tensors: what the ranged fetch
    writes) or ``official`` (one component: an official torch file, or safetensors in any key form that
    :func:`~zh_steve.weights.official.component_keys` documents)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file not found: {path}")
    try:
        with open(path, "rb") as f:
            _, header = read_safetensors_header(f)
    except CheckpointError:
        return LAYOUT_OFFICIAL  # not safetensors: a torch file
    keys = [k for k in header if k != "__metadata__"]
    if keys and all(k.startswith(HUB_TEXT_PREFIX) for k in keys):
        return LAYOUT_TEXT_BLOCK
    parts = {hit[0] for hit in map(hub_component, keys) if hit is not None}
    return LAYOUT_HUB if len(parts) > 1 else LAYOUT_OFFICIAL


def _find_in_dir(root: Path, component: str) -> tuple[Path, str] | None:
    official = find_official_file(root, COMPONENT_FILE[component])
    if official is not None:
        return official, LAYOUT_OFFICIAL
    hub_file = find_hub_file(root)
    if hub_file is not None:
        return hub_file, LAYOUT_HUB
    if component == "mineclip_text":
        block = root / TEXT_BLOCK_RELPATH
        if block.is_file():
            return block, LAYOUT_TEXT_BLOCK
    return None


def _missing_message(missing: list[str], why: str) -> str:
    lines = [f"STEVE-1 weights missing: {', '.join(missing)}. {why}", "Get them from either source:"]
    for c in missing:
        f = OFFICIAL_FILES[COMPONENT_FILE[c]]
        lines.append(f"  - {c}: official {f.name} ({f.approx_size}) from {f.published_at} "
                     f"-> <weights dir>/{f.relpath}")
    lines.append(f"  - or all of them in one file: {HUB_WEIGHTS_FILE} + {HUB_CONFIG_FILE} ({HUB_APPROX_SIZE}) from {HUB_URL}")
    lines.append("Run `python -m zh_steve.download_weights` (or `--only text` for the 242 MiB text tower), or pass "
                 "--weights-dir / explicit paths; `python -m zh_steve.check_weights DIR` checks a directory.")
    return "\n".join(lines)


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
            hit = _find_in_dir(root, c)
            if hit is not None:
                sources[c] = ComponentSource(hit[0], hit[1], origin)
    missing = [c for c in need if c not in sources]
    if missing:
        cached = hub.cached_file(spec.repo_id, HUB_WEIGHTS_FILE, spec.revision)
        if cached is not None and hub.cached_file(spec.repo_id, HUB_CONFIG_FILE, spec.revision) is not None:
            for c in missing:
                sources[c] = ComponentSource(cached, LAYOUT_HUB, "hf-cache")
            missing = []

    # 4. download
    if missing:
        if hub.is_offline():
            raise WeightsNotFoundError(_missing_message(missing, "HF_HUB_OFFLINE is set, so zh-steve did not "
                                                                 "try to download them."))
        allowed = spec.allow_download if spec.allow_download is not None else not hub.downloads_refused()
        if not allowed:
            raise WeightsNotFoundError(_missing_message(missing, "Downloads are switched off (allow_download=False "
                                                                 "or ZS_NO_DOWNLOAD=1)."))
        if missing == ["mineclip_text"]:
            mib = payload_bytes(expected.hub_text_shapes()) / 2**20
            notify(f"zh-steve: fetching only the MineCLIP text tower (≈{mib:.0f} MiB in fp32) by byte range from "
                   f"{HUB_URL} into {cache / TEXT_BLOCK_RELPATH}")
            commit, files = hub.repo_files(spec.repo_id, spec.revision)  # pin the commit the bytes come from
            if HUB_WEIGHTS_FILE not in files:
                raise WeightsNotFoundError(f"{spec.repo_id}@{commit[:10]} has no {HUB_WEIGHTS_FILE}")
            with hub.network_errors(f"the MineCLIP text tower of {spec.repo_id}"):  # ranged reads over HTTP
                got = fetch_tensor_block(hub_source(spec.repo_id, HUB_WEIGHTS_FILE, commit),
                                         cache / TEXT_BLOCK_RELPATH, expected=expected.hub_text_shapes(),
                                         progress=True)
            sources["mineclip_text"] = ComponentSource(got.path, LAYOUT_TEXT_BLOCK, "download")
        else:
            path = download_hub_layout(cache / "minestudio", spec.repo_id, spec.revision, notify)
            for c in missing:
                sources[c] = ComponentSource(path, LAYOUT_HUB, "download")

    settings = None
    if "policy" in need:
        settings = _policy_settings(spec, sources["policy"], dirs)
    resolved = ResolvedWeights(sources=sources, settings=settings, expected=expected)
    for c, src in sources.items():  # a hub file is checked strictly as soon as it is chosen
        if src.layout == LAYOUT_HUB:
            resolved._hub(src.path)
    return resolved


def download_hub_layout(dest: Path, repo_id: str = HUB_REPO_ID, revision: str | None = None,
                        notify: Callable[[str], None] = _stderr) -> Path:
    """Download ``model.safetensors`` + ``config.json`` into ``dest`` (announcing the size first)."""
    commit, files = hub.repo_files(repo_id, revision)
    info = files.get(HUB_WEIGHTS_FILE)
    if info is None:
        raise WeightsNotFoundError(f"{repo_id}@{commit[:10]} has no {HUB_WEIGHTS_FILE}")
    size = f"{info.size / 1e9:.2f} GB" if info.size else "size unknown"
    notify(f"zh-steve: downloading {repo_id}/{HUB_WEIGHTS_FILE} ({size}) and {HUB_CONFIG_FILE} into {dest} "
           f"(set ZS_NO_DOWNLOAD=1 to refuse, or pass official files with --weights-dir)")
    hub.download_file(repo_id, HUB_CONFIG_FILE, dest, commit)
    return hub.download_file(repo_id, HUB_WEIGHTS_FILE, dest, commit)


# ----------------------------------------------------------------------------------------------------------
# policy kwargs and temperature
# ----------------------------------------------------------------------------------------------------------

def _policy_settings(spec: WeightsSpec, policy_src: ComponentSource, dirs: list[tuple[Path, str]]) -> PolicySettings:
    kwargs: dict[str, Any] | None = None
    kwargs_source = ""
    file_temperature: tuple[float, str] | None = None

    p = Path(spec.policy_kwargs).expanduser() if spec.policy_kwargs is not None else None
    for root, _ in ([] if p is not None else dirs):
        p = find_official_file(root, COMPONENT_FILE["policy_kwargs"])
        if p is not None:
            break
    if p is not None:
        got = read_policy_kwargs(p)
        kwargs, kwargs_source = got.policy_kwargs, str(p)
        if got.temperature is not None:
            is_config = p.suffix.lower() in (".yaml", ".yml", ".json")
            file_temperature = (got.temperature, "config" if is_config else "2x.model")

    if policy_src.layout == LAYOUT_HUB:
        config_path = policy_src.path.parent / HUB_CONFIG_FILE
        if policy_src.origin == "hf-cache":
            config_path = hub.cached_file(spec.repo_id, HUB_CONFIG_FILE, spec.revision) or config_path
        hub_kwargs = check_hub_config(read_hub_config(config_path), spec.expected_behaviour, str(config_path))
        if kwargs is None:
            kwargs, kwargs_source = hub_kwargs, str(config_path)
    if kwargs is None:
        kwargs = dict(load_manifest("vpt_2x_model_kwargs")["policy_kwargs"])
        kwargs_source = "default-official-2x (VPT hard-coded kwargs; no 2x.model found)"

    if spec.temperature is not None:
        if not spec.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {spec.temperature}")
        temperature, t_source = float(spec.temperature), "config"
    elif file_temperature is not None:
        temperature, t_source = file_temperature
    else:
        temperature, t_source = OFFICIAL_TEMPERATURE, TEMPERATURE_DEFAULT_SOURCE
    return PolicySettings(kwargs, kwargs_source, temperature, t_source)

