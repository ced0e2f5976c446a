"""The MineStudio single-file layout: ``CraftJarvis/MineStudio_STEVE-1.official`` (model.safetensors + config.json).

One safetensors file holds every tensor of ``steve1.weights``, ``steve1_prior.pt`` and ``attn.pth`` (490 keys).
We read it lazily with ``safe_open`` (only the tensors asked for), check it strictly against the manifest —
MineStudio's own loader is non-strict and would silently keep random weights — and hand out state dicts in
official key space:

    net.* / pi_head.* / value_head.*        → policy (unchanged)
    prior.*                                  → prior (``prior.`` stripped)
    mineclip.clip_model.text_model.*         → MineCLIP text tower (keys relative to the text model)
    everything else (vision, temporal, …)    → ignored
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import FLOAT_DTYPES, Shape, compare_keys, load_manifest
from ..errors import CheckpointError, WeightsNotFoundError
from ..published import HUB_CONFIG_FILE, HUB_REPO_ID, HUB_URL, HUB_WEIGHTS_FILE
from .expected import COMPONENTS, Expectations, hub_component

__all__ = ["HUB_CONFIG_FILE", "HUB_REPO_ID", "HUB_URL", "HUB_WEIGHTS_FILE", "OFFICIAL_BEHAVIOUR", "HubCheckpoint",
           "check_hub_config", "find_hub_file", "read_hub_config"]

def _dig(d: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            raise KeyError(dotted)
        cur = cur[part]
    return cur


# settings of config.json -> policy_kwargs that change behaviour but not any tensor shape; official values from the
# vpt_2x_model_kwargs manifest
BEHAVIOUR_KEYS = ("attention_mask_style", "timesteps", "attention_memory_size", "recurrence_is_residual",
                  "pointwise_use_activation", "init_norm_kwargs.group_norm_groups", "impala_kwargs.post_pool_groups")
OFFICIAL_BEHAVIOUR: dict[str, Any] = {
    k: _dig(load_manifest("vpt_2x_model_kwargs")["policy_kwargs"], k) for k in BEHAVIOUR_KEYS
}


def read_hub_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{path} not found: the MineStudio layout needs config.json next to "
                                   f"model.safetensors (both from {HUB_URL})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"could not parse {path}: {e}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def check_hub_config(config: Mapping[str, Any], expected_behaviour: Mapping[str, Any] | None = None,
                     where: str = "config.json") -> dict[str, Any]:
    """Check the behaviour-only policy settings of a hub ``config.json``; return its ``policy_kwargs``.

    Every difference from the official values (or from ``expected_behaviour``) is named in one error.
    """
    expected = OFFICIAL_BEHAVIOUR if expected_behaviour is None else expected_behaviour
    pk = config.get("policy_kwargs")
    if not isinstance(pk, Mapping):
        raise CheckpointError(f"{where}: no 'policy_kwargs' object; this is not a MineStudio STEVE-1 config")
    problems = []
    for key, want in expected.items():
        try:
            got = _dig(pk, key)
        except KeyError:
            problems.append(f"policy_kwargs.{key} is missing (official: {want!r})")
            continue
        if got != want or isinstance(got, bool) != isinstance(want, bool):
            problems.append(f"policy_kwargs.{key} = {got!r} (official: {want!r})")
    if problems:
        raise CheckpointError(
            f"{where} describes a policy that would behave differently from STEVE-1: " + "; ".join(problems)
            + ". These settings are not visible in the weights, so the file cannot be used as STEVE-1."
        )
    return dict(pk)


class HubCheckpoint:
    """A MineStudio ``model.safetensors``, checked strictly on open, read lazily per component.

    ``expected``: what the file must hold (default: the 490-key manifest of the real file).
    """

    def __init__(self, path: str | Path, expected: Expectations | None = None) -> None:
        from safetensors import safe_open

        self.path = Path(path)
        if not self.path.is_file():
            raise WeightsNotFoundError(f"{self.path} not found (the MineStudio file is {HUB_WEIGHTS_FILE} "
                                       f"from {HUB_URL})")
        self.expected = expected or Expectations()
        try:
            with safe_open(str(self.path), framework="pt") as f:
                keys = list(f.keys())
                self.shapes: dict[str, Shape] = {k: tuple(f.get_slice(k).get_shape()) for k in keys}
                self.dtypes: dict[str, str] = {k: f.get_slice(k).get_dtype() for k in keys}
                self.metadata: dict[str, str] = f.metadata() or {}
        except Exception as e:  # safetensors raises its own error types for corrupt headers
            raise CheckpointError(f"could not read {self.path} as safetensors: {e}") from e
        self._check()

    def _check(self) -> None:
        report = compare_keys(self.expected.hub, self.shapes)
        if not report.ok:
            raise CheckpointError(
                f"{self.path} is not the MineStudio STEVE-1 file ({len(self.expected.hub)} tensors expected, "
                f"{len(self.shapes)} found): {report.describe()}. MineStudio itself would load this silently "
                f"with random weights in the gaps; zh-steve refuses."
            )
        bad = sorted(k for k, d in self.dtypes.items() if d not in FLOAT_DTYPES)
        if bad:
            raise CheckpointError(f"{self.path}: non-float tensors where weights are expected: "
                                  + ", ".join(f"{k} ({self.dtypes[k]})" for k in bad[:20]))

    def component_keys(self, component: str) -> dict[str, str]:
        """official key → hub key for one of ``policy``, ``prior``, ``mineclip_text``."""
        if component not in COMPONENTS:
            raise KeyError(f"unknown component {component!r}; expected one of {COMPONENTS}")
        out = {}
        for key in self.shapes:
            hit = hub_component(key)
            if hit is not None and hit[0] == component:
                out[hit[1]] = key
        return out

    def state_dict(self, component: str) -> dict[str, torch.Tensor]:
        """One component in official key space, fp32, reading only its tensors."""
        from safetensors import safe_open

        mapping = self.component_keys(component)
        with safe_open(str(self.path), framework="pt") as f:
            return {ok: f.get_tensor(hk).to(torch.float32) for ok, hk in mapping.items()}


def find_hub_file(weights_dir: str | Path) -> Path | None:
    """``DIR/model.safetensors`` or ``DIR/minestudio/model.safetensors`` (the download_weights layout)."""
    root = Path(weights_dir)
    for candidate in (root / HUB_WEIGHTS_FILE, root / "minestudio" / HUB_WEIGHTS_FILE):
        if candidate.is_file():
            return candidate
    return None
