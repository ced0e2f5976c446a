"""What a usable weights file must contain: key → shape maps per component, in official key space.

Everything defaults to the shipped manifests of the real files. Tests (and anyone checking a small test
model) pass their own maps; the checking code never hard-codes a shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from ..checkpoint import Shape, manifest_shapes
from ..published import ATTN_MD5, ATTN_TEXT_PREFIX, HUB_TEXT_PREFIX, POLICY_PREFIXES, PRIOR_PREFIX

HUB_MANIFEST = "minestudio_steve1_safetensors"
# hub-file prefixes → component (zh_steve.published): the policy keys keep their prefix, the others lose it

COMPONENTS = ("policy", "prior", "mineclip_text")


def hub_component(key: str) -> tuple[str, str] | None:
    """``(component, official key)`` for a hub-file key, or None for tensors STEVE-1 inference never reads."""
    if key.startswith(POLICY_PREFIXES):
        return "policy", key
    if key.startswith(PRIOR_PREFIX):
        return "prior", key[len(PRIOR_PREFIX):]
    if key.startswith(HUB_TEXT_PREFIX):
        return "mineclip_text", key[len(HUB_TEXT_PREFIX):]
    return None


def split_hub_shapes(hub: Mapping[str, Shape]) -> dict[str, dict[str, Shape]]:
    """Hub key → shape map split into the official key spaces of the three components."""
    out: dict[str, dict[str, Shape]] = {c: {} for c in COMPONENTS}
    for key, shape in hub.items():
        hit = hub_component(key)
        if hit is not None:
            out[hit[0]][hit[1]] = tuple(shape)
    return out


@lru_cache(maxsize=1)
def _hub_manifest_shapes() -> dict[str, Shape]:
    return manifest_shapes(HUB_MANIFEST)


@lru_cache(maxsize=1)
def _text_shapes_from_mineclip_manifest() -> dict[str, Shape]:
    full = manifest_shapes("mineclip", ATTN_TEXT_PREFIX)
    return {k[len(ATTN_TEXT_PREFIX):]: v for k, v in full.items()}


@dataclass
class Expectations:
    """Expected key → shape maps (official key space) and the expected md5 of ``attn.pth``.

    ``hub`` is the full 490-key map of the MineStudio file (hub key space); the three component maps are what
    the policy / prior / MineCLIP text tower loaders receive.
    """

    policy: dict[str, Shape] = field(default_factory=lambda: dict(manifest_shapes("steve1_policy")))
    prior: dict[str, Shape] = field(default_factory=lambda: dict(manifest_shapes("steve1_prior")))
    mineclip_text: dict[str, Shape] = field(default_factory=lambda: dict(_text_shapes_from_mineclip_manifest()))
    hub: dict[str, Shape] = field(default_factory=lambda: dict(_hub_manifest_shapes()))
    attn_md5: str | None = ATTN_MD5

    @classmethod
    def from_hub_shapes(cls, hub: Mapping[str, Shape], attn_md5: str | None = None) -> "Expectations":
        """Expectations for a (e.g. tiny) hub-layout file: the component maps are derived from ``hub``."""
        parts = split_hub_shapes(hub)
        return cls(policy=parts["policy"], prior=parts["prior"], mineclip_text=parts["mineclip_text"],
                   hub={k: tuple(v) for k, v in hub.items()}, attn_md5=attn_md5)

    def component(self, name: str) -> dict[str, Shape]:
        if name not in COMPONENTS:
            raise KeyError(f"unknown component {name!r}; expected one of {COMPONENTS}")
        return getattr(self, name)

    def hub_text_shapes(self) -> dict[str, Shape]:
        """The text-tower part of ``hub`` (hub key space): what a ranged text-block file must hold."""
        return {k: v for k, v in self.hub.items() if k.startswith(HUB_TEXT_PREFIX)}


def payload_bytes(shapes: Mapping[str, Shape], bytes_per_value: int = 4) -> int:
    """Bytes of tensor data for a key → shape map (fp32 by default)."""
    total = 0
    for shape in shapes.values():
        n = 1
        for d in shape:
            n *= int(d)
        total += n * bytes_per_value
    return total
