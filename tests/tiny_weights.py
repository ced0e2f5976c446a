"""Tiny random STEVE-1 weights written in both real layouts (official files and the MineStudio file).

For offline tests and demos: the key NAMES are exactly those of the real files (the models are the real
classes at small sizes; the MineCLIP parts STEVE-1 never reads are a few synthetic tensors under real names),
so every loader, check and conversion runs its real code path.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from publish import hub_state_dict_from_official, official_hub_config, save_hub_layout

from zh_steve.checkpoint import Shape
from zh_steve.published import ATTN_TEXT_PREFIX, COMPONENT_FILE, OFFICIAL_FILES, OFFICIAL_TEMPERATURE
from zh_steve.testing.sizes import TINY_POLICY
from zh_steve.weights.expected import Expectations
from zh_steve.weights.minestudio import OFFICIAL_BEHAVIOUR

# policy trunk: the tiny agent's (zh_steve.testing.sizes); prior and MineCLIP text tower of the tiny files below.
# The goal / MineCLIP embedding size stays 512 as in the real models (config.json does not record it).
TINY_FILE_PRIOR: dict[str, int] = {"input_dim": 512, "hidden_dim": 16, "latent_dim": 8}
TINY_FILE_TEXT: dict[str, int] = {"embed_dim": 512, "width": 32, "layers": 1, "heads": 2, "context_length": 77,
                                  "vocab_size": 1000}
# a few of the MineCLIP tensors STEVE-1 never reads, under their real names (shapes shrunk)
_OTHER_MINECLIP: dict[str, Shape] = {
    "clip_model.logit_scale": (),
    "clip_model.vision_model.cls_token": (16,),
    "clip_model.vision_model.pos_embed": (5, 16),
    "temporal_encoder.attn.model.norm.weight": (32,),
    "reward_head.video_residual_weight": (32,),
}
_VISION_ALIAS = "clip_model.vision_model."


@dataclass
class TinyWeights:
    """One set of tiny random weights in official key space, plus what checks should expect of it."""

    policy_kwargs: dict[str, Any]
    temperature: float
    policy: dict[str, torch.Tensor]
    prior: dict[str, torch.Tensor]
    mineclip_text: dict[str, torch.Tensor]
    mineclip_other: dict[str, torch.Tensor]
    behaviour: dict[str, Any] = field(default_factory=dict)

    def attn_state_dict(self) -> dict[str, torch.Tensor]:
        """``attn.pth['state_dict']`` as MineCLIP writes it, alias copies included."""
        out: dict[str, torch.Tensor] = {}
        for k, v in self.mineclip_text.items():
            out[ATTN_TEXT_PREFIX + k] = v
            out["model.reward_head.clip_model.text_model." + k] = v
        for k, v in self.mineclip_other.items():
            out["model." + k] = v
            if k.startswith("clip_model."):
                out["model.reward_head." + k] = v
            if k.startswith(_VISION_ALIAS):
                out["model.image_encoder." + k[len(_VISION_ALIAS):]] = v
        return out

    def hub_state_dict(self) -> dict[str, torch.Tensor]:
        return hub_state_dict_from_official(self.policy, self.prior, self.attn_state_dict())

    def expectations(self) -> Expectations:
        hub = {k: tuple(v.shape) for k, v in self.hub_state_dict().items()}
        return Expectations.from_hub_shapes(hub, attn_md5=None)


def _randomise(sd: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
    # distinct noise in every tensor, so a swapped or mis-mapped tensor cannot go unnoticed
    return {k: (torch.randn(v.shape, generator=gen) * 0.2).to(torch.float32) for k, v in sd.items()}


def tiny_weights(seed: int = 0, temperature: float = OFFICIAL_TEMPERATURE) -> TinyWeights:
    from zh_steve.policy import PolicyConfig, Steve1Policy
    from zh_steve.prior import PriorConfig, Steve1Prior
    from zh_steve.text.mineclip_text import MineClipTextConfig, MineClipTextModel

    gen = torch.Generator().manual_seed(seed)
    kwargs, _ = PolicyConfig.full_size().to_kwargs()
    kwargs.update(TINY_POLICY)
    with torch.device("meta"):
        policy = Steve1Policy(PolicyConfig.from_kwargs(kwargs, {"temperature": temperature}))
        prior = Steve1Prior(PriorConfig(**TINY_FILE_PRIOR))
        text = MineClipTextModel(MineClipTextConfig(**TINY_FILE_TEXT))
    other = {k: torch.randn(s, generator=gen) for k, s in _OTHER_MINECLIP.items()}
    behaviour = dict(OFFICIAL_BEHAVIOUR)
    behaviour.update({k: kwargs[k] for k in ("timesteps", "attention_memory_size")})
    return TinyWeights(kwargs, temperature, _randomise(policy.state_dict(), gen), _randomise(prior.state_dict(), gen),
                       _randomise(text.state_dict(), gen), other, behaviour)


def two_x_model_bytes(policy_kwargs: dict[str, Any], temperature: float | None) -> bytes:
    """A ``2x.model`` pickle (plain containers only, like VPT's) for the given kwargs."""
    args: dict[str, Any] = {"net": {"args": dict(policy_kwargs)}}
    if temperature is not None:
        args["pi_head_opts"] = {"temperature": temperature}
    return pickle.dumps({"model": {"args": args}}, protocol=4)


def write_official_dir(root: str | Path, tw: TinyWeights, *, with_2x: bool = True, flat: bool = False) -> dict[str, Path]:
    """The four official files under ``root`` (STEVE-1's layout, or all directly in ``root`` if ``flat``)."""
    root = Path(root)
    paths = {n: root / (n if flat else f.relpath) for n, f in OFFICIAL_FILES.items()}
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    if with_2x:
        paths["2x.model"].write_bytes(two_x_model_bytes(tw.policy_kwargs, tw.temperature))
    else:
        del paths["2x.model"]
    torch.save({"state_dict": tw.attn_state_dict()}, paths[COMPONENT_FILE["mineclip_text"]])
    torch.save(tw.policy, paths[COMPONENT_FILE["policy"]])
    torch.save(tw.prior, paths[COMPONENT_FILE["prior"]])
    return paths


def write_hub_dir(root: str | Path, tw: TinyWeights) -> Path:
    """``model.safetensors`` + ``config.json`` (MineStudio layout) under ``root``."""
    config_kwargs = {k: v for k, v in tw.policy_kwargs.items() if k != "mineclip_embed_dim"}
    return save_hub_layout(root, tw.hub_state_dict(), official_hub_config(config_kwargs))
