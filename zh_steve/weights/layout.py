"""Where a component's file sits and what layout it has: an official single-component file, the MineStudio
single file, or a text-tower block (what ``download_weights --only text`` writes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import read_safetensors_header
from ..errors import CheckpointError, WeightsNotFoundError
from ..published import COMPONENT_FILE, HUB_TEXT_PREFIX
from .expected import hub_component
from .minestudio import find_hub_file
from .official import find_official_file
from .ranged import TEXT_BLOCK_RELPATH

LAYOUT_OFFICIAL = "official"
LAYOUT_HUB = "minestudio-hub"
LAYOUT_TEXT_BLOCK = "text-block"


@dataclass
class ComponentSource:
    """Which file a component comes from."""

    path: Path
    layout: str    # official | minestudio-hub | text-block
    origin: str    # explicit | weights_dir | cache | hf-cache | download


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


def find_in_dir(root: Path, component: str) -> tuple[Path, str] | None:
    """The official file, else the MineStudio file, else (text tower only) a text-tower block under ``root``."""
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
