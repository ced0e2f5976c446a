"""The user-facing MineRL 1.0 action dict (HumanSurvival action space, 24 keys).

Buttons are python ints 0/1 (the env's ``Discrete(2)``); ``camera`` is a float32 numpy array ``(2,)`` =
(pitch, yaw) in degrees, the dtype of MineRL's ``Box(-180, 180, (2,))``. Decoded bin centres are at most
±10° and far from bin boundaries, so the float64 → float32 cast never changes which bin they re-encode to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .errors import InvalidActionError
from .mapping import BUTTONS, IGNORED_ENV_KEYS, agent_to_env

MINERL_ACTION_KEYS: tuple[str, ...] = tuple(sorted((*BUTTONS, *IGNORED_ENV_KEYS, "camera")))
MINERL_CAMERA_LIMIT: float = 180.0  # the env's Box bound in degrees


def noop_action() -> dict[str, Any]:
    """All buttons released, no camera movement."""
    return {k: (np.zeros(2, dtype=np.float32) if k == "camera" else 0) for k in MINERL_ACTION_KEYS}


def to_minerl_action(buttons_idx: ArrayLike, camera_idx: ArrayLike) -> dict[str, Any]:
    """One policy action (two joint indices, scalars or size-1 arrays/tensors) → a MineRL 1.0 action dict."""
    env = agent_to_env(buttons_idx, camera_idx)
    if env["camera"].shape[0] != 1:
        raise InvalidActionError(
            f"to_minerl_action converts one action; got a batch of {env['camera'].shape[0]} (use agent_to_env)"
        )
    action = noop_action()
    for name in BUTTONS:
        action[name] = int(env[name][0])
    action["camera"] = env["camera"][0].astype(np.float32)  # (pitch, yaw) degrees
    return action


def validate_minerl_action(action: Mapping[str, Any], *, camera_limit: float = MINERL_CAMERA_LIMIT) -> None:
    """Raise :class:`InvalidActionError` unless ``action`` is a valid MineRL 1.0 action dict.

    Exactly the 24 keys; each button a single int/bool equal to 0 or 1; camera 2 finite numbers
    (shape (2,)) within ±``camera_limit`` degrees.
    """
    if not isinstance(action, Mapping):
        raise InvalidActionError(f"a MineRL action must be a dict, got {type(action).__name__}")
    missing = [k for k in MINERL_ACTION_KEYS if k not in action]
    unknown = [k for k in action if k not in MINERL_ACTION_KEYS]
    if missing or unknown:
        raise InvalidActionError(f"MineRL action keys are wrong: missing {missing}, unknown {unknown}")
    for key in MINERL_ACTION_KEYS:
        value = action[key]
        if key == "camera":
            cam = np.asarray(value)
            if cam.shape != (2,) or not (np.issubdtype(cam.dtype, np.floating) or np.issubdtype(cam.dtype, np.integer)):
                raise InvalidActionError(f"action['camera'] must be a numeric array of shape (2,), got {value!r}")
            if not np.all(np.isfinite(cam)) or np.any(np.abs(cam) > camera_limit):
                raise InvalidActionError(
                    f"action['camera'] must be finite and within ±{camera_limit}°, got {cam.tolist()}"
                )
            continue
        arr = np.asarray(value)
        if arr.shape != () or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
            raise InvalidActionError(f"action[{key!r}] must be an int 0 or 1, got {value!r}")
        if int(arr) not in (0, 1):
            raise InvalidActionError(f"action[{key!r}] must be 0 or 1, got {int(arr)}")
