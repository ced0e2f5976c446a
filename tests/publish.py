"""Official files → MineStudio single-file layout (the inverse of :mod:`zh_steve.weights.minestudio`; tests).

Useful to build a hub-layout file from official files one already has, and for tests. Rules (prefixes only):
policy keys unchanged; prior keys get ``prior.``; ``attn.pth`` keys ``model.X`` become ``mineclip.X`` with the
alias copies (``model.image_encoder.*``, ``model.reward_head.clip_model.*``) dropped.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from zh_steve.checkpoint import load_manifest
from zh_steve.errors import CheckpointError
from zh_steve.published import HUB_CONFIG_FILE, HUB_WEIGHTS_FILE, POLICY_PREFIXES, PRIOR_PREFIX

_ALIASES = ("image_encoder.", "reward_head.clip_model.")


def hub_state_dict_from_official(
    policy: Mapping[str, torch.Tensor],
    prior: Mapping[str, torch.Tensor],
    attn: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Hub-key state dict from the official policy, prior and ``attn.pth['state_dict']`` dicts."""
    out: dict[str, torch.Tensor] = {}
    odd = [k for k in policy if not k.startswith(POLICY_PREFIXES)]
    if odd:
        raise CheckpointError(f"policy keys outside net./pi_head./value_head.: {odd[:10]}")
    out.update(policy)
    out.update({PRIOR_PREFIX + k: v for k, v in prior.items()})
    for key, value in attn.items():
        if not key.startswith("model."):
            raise CheckpointError(f"attn.pth key without the 'model.' prefix: {key}")
        rest = key[len("model."):]
        if rest.startswith(_ALIASES):
            continue
        out["mineclip." + rest] = value
    return out


def official_hub_config(policy_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``config.json`` MineStudio writes for STEVE-1 (optionally with other ``policy_kwargs``)."""
    config = copy.deepcopy(load_manifest("minestudio_steve1_config")["config_json"])
    if policy_kwargs is not None:
        config["policy_kwargs"] = dict(policy_kwargs)
    return config


def save_hub_layout(dest_dir: str | Path, state_dict: Mapping[str, torch.Tensor],
                    config: Mapping[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` + ``config.json`` into ``dest_dir``; returns the weights path."""
    from safetensors.torch import save_file

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}
    path = dest / HUB_WEIGHTS_FILE
    save_file(tensors, str(path))
    cfg = official_hub_config() if config is None else dict(config)
    (dest / HUB_CONFIG_FILE).write_text(json.dumps(cfg, sort_keys=True, indent=2), encoding="utf-8")
    return path
