"""VPT's hierarchical action space: 8641 joint button combinations × 121 joint camera bins.

The policy emits two indices. ``buttons_idx`` enumerates one choice per button group (``itertools.product``
order, the last group varies fastest) plus a final special combination "inventory" (8640). ``camera_idx`` is
``x_bin * 11 + y_bin`` where x is the env's ``camera[0]`` (pitch) and y is ``camera[1]`` (yaw).

Quirks of the official mapping that are reproduced on purpose:

* a combination whose camera group is "none" forces the null camera (bins 5, 5) whatever ``camera_idx`` says;
* "inventory" is not flagged camera-off, so its camera bins pass through to the env unchanged;
* env → agent: opposing keys (forward+back, left+right) cancel, otherwise the last pressed option of a group
  wins (sneak over sprint, the highest hotbar slot); inventory overrides everything and nulls the camera;
  ESC / pickItem / swapHands are ignored.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .camera import CAMERA_QUANTIZER
from .errors import InvalidActionError

# factored button vector order (VPT ``Buttons.ALL``)
BUTTONS: tuple[str, ...] = (
    "attack", "back", "forward", "jump", "left", "right", "sneak", "sprint", "use", "drop", "inventory",
    *(f"hotbar.{i}" for i in range(1, 10)),
)
BUTTON_INDEX: dict[str, int] = {name: i for i, name in enumerate(BUTTONS)}

# env keys the policy never emits and env_to_agent ignores
IGNORED_ENV_KEYS: tuple[str, ...] = ("ESC", "pickItem", "swapHands")

# button groups in itertools.product order; option 0 is always "none". "camera" is the camera meta group.
BUTTON_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hotbar", ("none", *(f"hotbar.{i}" for i in range(1, 10)))),
    ("fore_back", ("none", "forward", "back")),
    ("left_right", ("none", "left", "right")),
    ("sprint_sneak", ("none", "sprint", "sneak")),
    ("use", ("none", "use")),
    ("drop", ("none", "drop")),
    ("attack", ("none", "attack")),
    ("jump", ("none", "jump")),
    ("camera", ("none", "camera")),
)
_CANCELLING_GROUPS = frozenset({"fore_back", "left_right"})  # both keys pressed → "none"

N_CAMERA_BINS: int = CAMERA_QUANTIZER.n_bins                    # 11 per axis
N_CAMERA_JOINT: int = N_CAMERA_BINS * N_CAMERA_BINS             # 121
CAMERA_NULL_IDX: int = CAMERA_QUANTIZER.null_bin * (N_CAMERA_BINS + 1)  # 5*11 + 5 = 60

_GROUP_SIZES = [len(options) for _, options in BUTTON_GROUPS]
# mixed-radix strides: the last group varies fastest
_STRIDES = [int(np.prod(_GROUP_SIZES[i + 1:])) for i in range(len(_GROUP_SIZES))]
INVENTORY_IDX: int = int(np.prod(_GROUP_SIZES))                # 8640
N_BUTTON_COMBINATIONS: int = INVENTORY_IDX + 1                  # 8641
NULL_BUTTONS_IDX: int = 0


def _build_button_tables() -> tuple[np.ndarray, np.ndarray, list[tuple[str, ...] | str]]:
    factored = np.zeros((N_BUTTON_COMBINATIONS, len(BUTTONS)), dtype=np.uint8)   # [8641, 20]
    camera_off = np.zeros(N_BUTTON_COMBINATIONS, dtype=np.uint8)                  # [8641]
    combos: list[tuple[str, ...] | str] = []
    for idx, combo in enumerate(itertools.product(*(options for _, options in BUTTON_GROUPS))):
        *buttons, camera = combo
        for name in buttons:
            if name != "none":
                factored[idx, BUTTON_INDEX[name]] = 1
        camera_off[idx] = camera == "none"
        combos.append(combo)
    factored[INVENTORY_IDX, BUTTON_INDEX["inventory"]] = 1
    combos.append("inventory")
    return factored, camera_off, combos


BUTTON_IDX_TO_FACTORED, BUTTON_IDX_TO_CAMERA_META_OFF, _COMBINATIONS = _build_button_tables()
CAMERA_IDX_TO_FACTORED: np.ndarray = np.stack(                    # [121, 2] int64: (x_bin, y_bin)
    np.divmod(np.arange(N_CAMERA_JOINT, dtype=np.int64), N_CAMERA_BINS), axis=1
)
CAMERA_BIN_TO_DEG: np.ndarray = CAMERA_QUANTIZER.bin_centers()    # [11] float64
for _table in (BUTTON_IDX_TO_FACTORED, BUTTON_IDX_TO_CAMERA_META_OFF, CAMERA_IDX_TO_FACTORED, CAMERA_BIN_TO_DEG):
    _table.flags.writeable = False


def combination(buttons_idx: int) -> tuple[str, ...] | str:
    """The group choices of one button index (one name per group), or ``"inventory"`` for 8640."""
    return _COMBINATIONS[int(_as_indices(buttons_idx, N_BUTTON_COMBINATIONS, "buttons_idx")[0])]


# ----------------------------------------------------------------------------------------------------------
# agent → env
# ----------------------------------------------------------------------------------------------------------

def _as_indices(value: Any, size: int, what: str) -> np.ndarray:
    """Scalar / array / tensor of indices → flat int64 array, range-checked."""
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer) or arr.size == 0:
        raise InvalidActionError(f"{what} must be a non-empty integer index or array, got {value!r}")
    arr = arr.reshape(-1).astype(np.int64)
    if arr.min() < 0 or arr.max() >= size:
        raise InvalidActionError(f"{what} must lie in [0, {size - 1}], got {arr.tolist()}")
    return arr


def agent_to_factored(buttons_idx: ArrayLike, camera_idx: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Joint indices ``[B]`` → (pressed buttons uint8 ``[B, 20]`` in ``BUTTONS`` order, camera bins int64 ``[B, 2]``).

    Camera bins are forced to the null bin where the combination's camera group is "none".
    """
    b = _as_indices(buttons_idx, N_BUTTON_COMBINATIONS, "buttons_idx")
    c = _as_indices(camera_idx, N_CAMERA_JOINT, "camera_idx")
    if b.shape != c.shape:
        raise InvalidActionError(f"buttons_idx and camera_idx differ in size: {b.size} vs {c.size}")
    pressed = BUTTON_IDX_TO_FACTORED[b]                          # [B, 20]
    bins = CAMERA_IDX_TO_FACTORED[c].copy()                      # [B, 2]
    bins[BUTTON_IDX_TO_CAMERA_META_OFF[b].astype(bool)] = CAMERA_QUANTIZER.null_bin
    return pressed, bins


def agent_to_env(buttons_idx: ArrayLike, camera_idx: ArrayLike) -> dict[str, np.ndarray]:
    """Policy indices → the batched env action the official agent sends.

    Returns the 20 ``BUTTONS`` keys as int64 arrays ``[B]`` (0/1) plus ``camera`` float64 ``[B, 2]`` =
    (pitch, yaw) in degrees. A scalar pair gives B = 1.
    """
    pressed, bins = agent_to_factored(buttons_idx, camera_idx)
    action: dict[str, np.ndarray] = {name: pressed[:, i].astype(np.int64) for i, name in enumerate(BUTTONS)}
    action["camera"] = CAMERA_QUANTIZER.decode(bins)            # [B, 2] float64 degrees
    return action


# ----------------------------------------------------------------------------------------------------------
# env → agent
# ----------------------------------------------------------------------------------------------------------

def _as_button(value: Any, key: str) -> bool:
    arr = np.asarray(value)
    if arr.size != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise InvalidActionError(f"action[{key!r}] must be a single 0/1 integer, got {value!r}")
    v = int(arr.reshape(-1)[0])
    if v not in (0, 1):
        raise InvalidActionError(f"action[{key!r}] must be 0 or 1, got {v}")
    return bool(v)


def _as_camera(value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size != 2 or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InvalidActionError(f"action['camera'] must be 2 numbers (pitch, yaw) in degrees, got {value!r}")
    arr = arr.reshape(2)
    if not np.all(np.isfinite(arr)):
        raise InvalidActionError(f"action['camera'] must be finite, got {arr.tolist()}")
    return arr


def env_to_factored(action: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """One unbatched MineRL action → (pressed uint8 ``[20]`` in ``BUTTONS`` order, camera bins int64 ``[2]``)."""
    if not isinstance(action, Mapping):
        raise InvalidActionError(f"an env action must be a dict, got {type(action).__name__}")
    required = (*BUTTONS, "camera")
    missing = [k for k in required if k not in action]
    unknown = [k for k in action if k not in required and k not in IGNORED_ENV_KEYS]
    if missing or unknown:
        raise InvalidActionError(f"env action keys are wrong: missing {missing}, unknown {unknown}")
    pressed = np.array([_as_button(action[k], k) for k in BUTTONS], dtype=np.uint8)
    bins = CAMERA_QUANTIZER.encode(_as_camera(action["camera"]))
    return pressed, bins


def factored_to_agent(pressed: ArrayLike, camera_bins: ArrayLike) -> tuple[int, int]:
    """Pressed buttons ``[20]`` + camera bins ``[2]`` → (buttons_idx, camera_idx) with the official tie rules."""
    on = {name: bool(p) for name, p in zip(BUTTONS, np.asarray(pressed).reshape(-1))}
    x_bin, y_bin = (int(v) for v in np.asarray(camera_bins).reshape(2))
    if on["inventory"]:
        return INVENTORY_IDX, CAMERA_NULL_IDX
    camera_moves = (x_bin, y_bin) != (CAMERA_QUANTIZER.null_bin, CAMERA_QUANTIZER.null_bin)
    buttons_idx = 0
    for (group, options), stride in zip(BUTTON_GROUPS, _STRIDES):
        if group == "camera":
            choice = int(camera_moves)
        else:
            chosen = [j for j in range(1, len(options)) if on[options[j]]]
            if group in _CANCELLING_GROUPS and len(chosen) == 2:
                chosen = []
            choice = chosen[-1] if chosen else 0
        buttons_idx += choice * stride
    camera_idx = x_bin * N_CAMERA_BINS + y_bin if camera_moves else CAMERA_NULL_IDX
    return buttons_idx, camera_idx


def env_to_agent(action: Mapping[str, Any]) -> tuple[int, int]:
    """One unbatched MineRL action dict → (buttons_idx, camera_idx), as the official agent encodes it.

    Needs the 20 ``BUTTONS`` keys and ``camera`` (pitch, yaw degrees; its float dtype is kept, which matters
    only for inputs on a bin boundary); ESC/pickItem/swapHands may be present and are ignored.
    """
    return factored_to_agent(*env_to_factored(action))
