"""STEVE-1 weights: the official files, the MineStudio single-file hub layout, ranged text-tower fetch, resolution.

Public entry points:
    resolve_weights(WeightsSpec(...)) -> ResolvedWeights   (policy/prior/mineclip_text state dicts, policy kwargs)
    HubCheckpoint(path)                                     (strict, lazy reader of the MineStudio file)
    fetch_tensor_block(source, dest)                        (byte-range fetch of the MineCLIP text tower)
    OFFICIAL_FILES                                          (where each official file is published)
CLIs: ``python -m zh_steve.check_weights DIR`` and ``python -m zh_steve.download_weights``.
"""

from .expected import Expectations
from ..hub import default_cache_dir, local_snapshot
from ..published import HUB_REPO_ID, OFFICIAL_FILES, OfficialFile
from .minestudio import OFFICIAL_BEHAVIOUR, HubCheckpoint, check_hub_config
from .official import read_2x_model
from .ranged import BlockFile, fetch_tensor_block, read_text_block_state_dict
from .resolve import ComponentSource, PolicySettings, ResolvedWeights, WeightsSpec, resolve_weights

__all__ = [
    "Expectations", "HUB_REPO_ID", "OFFICIAL_BEHAVIOUR", "HubCheckpoint", "check_hub_config", "OFFICIAL_FILES",
    "OfficialFile", "read_2x_model", "BlockFile", "fetch_tensor_block", "read_text_block_state_dict",
    "ComponentSource", "PolicySettings", "ResolvedWeights", "WeightsSpec", "default_cache_dir", "local_snapshot",
    "resolve_weights",
]
