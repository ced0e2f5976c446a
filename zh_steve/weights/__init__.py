"""STEVE-1 weights: the only code that opens checkpoint files (besides ``zh_steve.checkpoint``'s safe readers).

    resolve.py    resolve_weights(WeightsSpec(...)) -> ResolvedWeights: search order (explicit → weights_dir → caches)
    download.py   step 4 of the search: hub download / ranged text-tower fetch, if allowed
    settings.py   PolicySettings: policy kwargs + pi-head temperature merged from 2x.model / config.json / defaults
    layout.py     which layout a file has (official single-component file, MineStudio file, text block)
    official.py   read_state_dict(path, component) for every documented single-file form; 2x.model / YAML kwargs
    minestudio.py HubCheckpoint: the MineStudio single file, checked strictly, read lazily per component
    ranged.py     fetch_tensor_block: the MineCLIP text tower out of the MineStudio file by byte range
    expected.py   Expectations: key → shape maps from the manifests (tests pass tiny ones)

Every state dict handed out is in official key space; model modules only take state dicts (``from_state_dict``).
Where each file is published: :mod:`zh_steve.published`. Network calls: :mod:`zh_steve.hub`.
CLIs: ``python -m zh_steve.check_weights DIR`` and ``python -m zh_steve.download_weights``.
"""

from ..hub import default_cache_dir, local_snapshot
from ..published import HUB_REPO_ID, OFFICIAL_FILES, OfficialFile
from .expected import Expectations
from .minestudio import OFFICIAL_BEHAVIOUR, HubCheckpoint, check_hub_config
from .official import read_2x_model, read_policy_kwargs, read_state_dict
from .ranged import BlockFile, fetch_tensor_block, read_text_block_state_dict
from .resolve import ComponentSource, ResolvedWeights, WeightsSpec, resolve_weights
from .settings import PolicySettings

__all__ = [
    "Expectations", "HUB_REPO_ID", "OFFICIAL_BEHAVIOUR", "HubCheckpoint", "check_hub_config", "OFFICIAL_FILES",
    "OfficialFile", "read_2x_model", "read_policy_kwargs", "read_state_dict", "BlockFile", "fetch_tensor_block",
    "read_text_block_state_dict", "ComponentSource", "PolicySettings", "ResolvedWeights", "WeightsSpec",
    "default_cache_dir", "local_snapshot", "resolve_weights",
]
