"""Reading STEVE-1 / VPT policy weights and building a ready policy.

``steve1.weights`` and VPT ``*.weights`` are torch pickles of a plain state dict (read with
``weights_only=True``); our own copies are safetensors. Keys may carry ``module.policy.``, ``policy.`` or
``module.`` prefixes (DDP / accelerate saves); they are stripped, then loading is strict.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from ..checkpoint import (
    KeyReport,
    compare_keys,
    load_state_dict_strict,
    read_safetensors,
    safe_torch_load,
    strip_prefixes,
)
from ..errors import CheckpointError
from .config import PolicyConfig, load_policy_kwargs
from .model import Steve1Policy

PREFIXES = ("module.policy.", "policy.", "module.")
GOAL_KEYS = ("net.mineclip_embed_linear.weight", "net.mineclip_embed_linear.bias")
_WHERE = ("steve1.weights is published by the STEVE-1 authors (download_weights.sh, Google Drive id "
          "1E3fd_-H1rRZqMkUKHfiMhx-ppLLehQPI)")


def load_policy_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """State dict of a policy weights file (torch pickle or safetensors) with known prefixes stripped."""
    path = Path(path)
    if path.suffix == ".safetensors":
        raw = read_safetensors(path, hint=_WHERE)
    else:
        raw = safe_torch_load(path, hint=_WHERE)
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items()
    ):
        raise CheckpointError(f"{path}: expected a flat state dict (str → Tensor) at the top level, "
                              f"got {type(raw).__name__}")
    return strip_prefixes(raw, PREFIXES)


def load_policy_weights(
    policy: Steve1Policy,
    state_dict: Mapping[str, torch.Tensor],
    allow_missing_goal: bool = False,
    what: str = "policy weights",
) -> KeyReport:
    """Load strictly. One :class:`CheckpointError` names all missing, unexpected and mis-shaped keys.

    A file lacking only ``net.mineclip_embed_linear.*`` is a VPT-only checkpoint: refused with a message
    saying so, unless ``allow_missing_goal`` (then the goal layer keeps its current values, and the
    returned report lists those keys as missing).
    """
    state_dict = strip_prefixes(state_dict, PREFIXES)
    report = compare_keys(policy.state_dict(), state_dict)
    vpt_only = bool(report.missing) and set(report.missing) <= set(GOAL_KEYS)
    if vpt_only and not allow_missing_goal and not report.unexpected and not report.misshaped:
        raise CheckpointError(
            f"{what} is a VPT-only file (no goal layer: missing {', '.join(report.missing)}). STEVE-1 needs "
            f"steve1.weights, which adds net.mineclip_embed_linear; {_WHERE}. Pass allow_missing_goal=True "
            "only to run the unconditioned VPT policy.")
    hint = "a VPT-only file lacks net.mineclip_embed_linear; STEVE-1 needs steve1.weights" if vpt_only else ""
    return load_state_dict_strict(
        policy, state_dict, what=what, allowed_missing=GOAL_KEYS if allow_missing_goal else (), hint=hint
    )


def build_policy(
    weights_path: str | Path,
    kwargs_path: str | Path | None = None,
    config: PolicyConfig | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    allow_missing_goal: bool = False,
) -> Steve1Policy:
    """A policy in eval mode with the weights of ``weights_path``.

    The architecture comes from ``config``, else from ``kwargs_path`` (``2x.model`` or YAML/JSON), else the
    official full size. The module is built on the meta device (no random init), then materialised.
    """
    if config is not None and kwargs_path is not None:
        raise CheckpointError("build_policy: pass either config or kwargs_path, not both")
    if config is None:
        config = (PolicyConfig.from_kwargs(*load_policy_kwargs(kwargs_path)) if kwargs_path is not None
                  else PolicyConfig.full_size())
    state_dict = load_policy_state_dict(weights_path)
    with torch.device("meta"):
        policy = Steve1Policy(config)
    policy = policy.to_empty(device=device).to(dtype)
    if allow_missing_goal:  # the goal layer would stay uninitialised memory: zero it (goal has no effect)
        with torch.no_grad():
            policy.net.mineclip_embed_linear.weight.zero_()
            policy.net.mineclip_embed_linear.bias.zero_()
    load_policy_weights(policy, state_dict, allow_missing_goal=allow_missing_goal, what=str(weights_path))
    return policy.eval()
