"""Action handling: camera quantiser, VPT hierarchical joint actions, MineRL 1.0 action dicts.

``agent_to_env`` / ``env_to_agent`` reproduce the official agent's conversions exactly (golden-tested);
``to_minerl_action`` is what zh-steve hands to an environment.
"""

from .camera import CAMERA_QUANTIZER, CameraQuantizer
from .errors import InvalidActionError
from .mapping import (
    BUTTON_GROUPS,
    BUTTON_IDX_TO_CAMERA_META_OFF,
    BUTTON_IDX_TO_FACTORED,
    BUTTONS,
    CAMERA_BIN_TO_DEG,
    CAMERA_IDX_TO_FACTORED,
    CAMERA_NULL_IDX,
    IGNORED_ENV_KEYS,
    INVENTORY_IDX,
    N_BUTTON_COMBINATIONS,
    N_CAMERA_BINS,
    N_CAMERA_JOINT,
    NULL_BUTTONS_IDX,
    agent_to_env,
    agent_to_factored,
    combination,
    env_to_agent,
    env_to_factored,
    factored_to_agent,
)
from .minerl import MINERL_ACTION_KEYS, MINERL_CAMERA_LIMIT, noop_action, to_minerl_action, validate_minerl_action

__all__ = [
    "BUTTONS", "BUTTON_GROUPS", "BUTTON_IDX_TO_CAMERA_META_OFF", "BUTTON_IDX_TO_FACTORED", "CAMERA_BIN_TO_DEG",
    "CAMERA_IDX_TO_FACTORED", "CAMERA_NULL_IDX", "CAMERA_QUANTIZER", "CameraQuantizer", "IGNORED_ENV_KEYS",
    "INVENTORY_IDX", "InvalidActionError", "MINERL_ACTION_KEYS", "MINERL_CAMERA_LIMIT", "N_BUTTON_COMBINATIONS",
    "N_CAMERA_BINS", "N_CAMERA_JOINT", "NULL_BUTTONS_IDX", "agent_to_env", "agent_to_factored", "combination",
    "env_to_agent", "env_to_factored", "factored_to_agent", "noop_action", "to_minerl_action",
    "validate_minerl_action",
]
