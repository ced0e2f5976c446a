"""Loading an official-key policy state dict into :class:`Steve1Policy`, strictly.

Files are read by :mod:`zh_steve.weights` (``resolve_weights(...).policy_state_dict()`` or
``read_state_dict(path, "policy")``), which also strips the ``module.policy.`` / ``policy.`` / ``module.`` prefixes.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..checkpoint import KeyReport, compare_keys, load_state_dict_strict
from ..errors import CheckpointError
from ..published import where_published
from .config import PolicyConfig
from .model import Steve1Policy

GOAL_KEYS = ("net.mineclip_embed_linear.weight", "net.mineclip_embed_linear.bias")
_WHERE = f"steve1.weights is published at {where_published('steve1.weights')}"


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


def policy_from_state_dict(state_dict: Mapping[str, torch.Tensor], config: PolicyConfig,
                           allow_missing_goal: bool = False, what: str = "policy weights") -> Steve1Policy:
    """A :class:`Steve1Policy` of ``config`` with ``state_dict`` loaded strictly (see :func:`load_policy_weights`),
    in eval mode."""
    policy = Steve1Policy(config)
    load_policy_weights(policy, state_dict, allow_missing_goal=allow_missing_goal, what=what)
    return policy.eval()
