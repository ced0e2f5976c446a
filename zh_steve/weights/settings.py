"""Policy constructor kwargs and the pi-head temperature, merged from their sources (and which source decided each).

kwargs: explicit ``policy_kwargs`` file (``2x.model`` or YAML/JSON) → ``2x.model`` in a weights dir → the MineStudio
``config.json`` beside the hub file (always checked for STEVE-1's behaviour-only settings) → VPT's hard-coded kwargs.
temperature: explicit → the kwargs file → VPT's default (:data:`zh_steve.published.OFFICIAL_TEMPERATURE`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import hub
from ..checkpoint import load_manifest
from ..errors import ConfigError
from ..published import COMPONENT_FILE, HUB_CONFIG_FILE, OFFICIAL_TEMPERATURE, TEMPERATURE_DEFAULT_SOURCE
from .layout import LAYOUT_HUB, ComponentSource
from .minestudio import check_hub_config, read_hub_config
from .official import find_official_file, read_policy_kwargs
from .spec import WeightsSpec


@dataclass
class PolicySettings:
    """Policy constructor kwargs plus the pi-head temperature, and which source decided each."""

    policy_kwargs: dict[str, Any]
    kwargs_source: str
    temperature: float
    temperature_source: str   # TEMPERATURE_DEFAULT_SOURCE | 2x.model | config
    ignored_keys: list[str] = field(default_factory=list)  # set by zh_steve.policy.policy_config


def policy_settings(spec: WeightsSpec, policy_src: ComponentSource, dirs: list[Path]) -> PolicySettings:
    """Merge the sources (see the module docstring); ``dirs`` are searched for ``2x.model`` in order."""
    kwargs: dict[str, Any] | None = None
    kwargs_source = ""
    file_temperature: tuple[float, str] | None = None

    p = Path(spec.policy_kwargs).expanduser() if spec.policy_kwargs is not None else None
    for root in ([] if p is not None else dirs):
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
