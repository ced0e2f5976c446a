"""MineDojo 0.1 behind the 5-tuple protocol, driven by MineRL 1.0 action dicts (approximate).

MineDojo's ``minedojo.make(task_id, image_size=(H, W), cam_interval=c)`` wraps the simulator so that its
action space is ``MultiDiscrete([3, 3, 4, n, n, 8, 244, 36])`` with ``n = ceil(360 / c) + 1``
(``[3, 3, 4, 25, 25, 8, 244, 36]`` for the default c = 15°):

  0 forward/back (0 none, 1 forward, 2 back)      1 left/right (0 none, 1 left, 2 right)
  2 jump/sneak/sprint (0 none, 1 jump, 2 sneak, 3 sprint)
  3 camera pitch bin, 4 camera yaw bin: delta = bin · c − 180°, no-op bin (n − 1) // 2
  5 functional (0 no-op, 1 use, 2 drop, 3 attack, 4 craft, 5 equip, 6 place, 7 destroy)
  6 craft/smelt item argument (244)               7 inventory slot argument (36)

Camera: MineDojo does not bound ``cam_interval``, but its no-op bin is exactly 0° only when 180 / c is a
whole number, so the allowed settings are c = 180 / k. VPT's camera bins decode to about
±{0.615, 1.609, 3.215, 5.809, 10}°; with the default 15° every small turn would become ±15°. This adapter
uses c = 0.1° (k = 1800, n = 3601 bins): every VPT turn is reproduced within 0.05°.

What a MineRL 1.0 action cannot express in MineDojo (dropped, and counted in ``info["unexpressed"]``):
  - hotbar.1–9: there are no hotbar keys. The closest, ``equip`` of inventory slot k−1, is used when that
    slot holds an item and no other functional action is taken this step (MineDojo then runs two extra
    no-op ticks, as it does after every drop/craft/equip/place/destroy); otherwise the key is dropped.
  - inventory: no inventory GUI in MineDojo, so the ``inventory`` task cannot succeed there.
  - ESC, pickItem, swapHands: no equivalent.
  - one functional action per step: attack and use together become attack (then use, then drop);
    forward+back or left+right together cancel out; jump wins over sneak/sprint; sneak+sprint cancel.
Observations are mapped to MineRL-like keys: channels-first ``rgb`` → channels-last ``pov``; the 36-slot
inventory → ``{item: count}`` with Minecraft 1.11 names renamed to their 1.16 forms where the task metrics
need it (log/log2/leaves/flowers by variant); ``location_stats.pos`` → ``xpos``/``ypos``/``zpos``;
``life_stats.oxygen`` → ``air``; the water-movement statistics of ``full_stats`` (Minecraft 1.11 names
``swim_one_cm``, ``dive_one_cm``; keys assumed from MineDojo's stat-key rule, unchecked on an install) are
kept so the swim metric sees surface swimming, not only breath. Block/kill statistics are not available in
MineDojo's flat ``full_stats`` (only two-part stat keys go there), so the leaves and hunt tasks are
unmeasurable on MineDojo. Minecraft 1.11.2 also looks different from the 1.16.5 VPT was trained on.

Open: when a MineDojo step fails inside its bridge, ``MineDojoSim.step`` returns the *previous* observation
with ``done=True`` and no error flag; the adapter cannot tell this from a real end of episode, but the harness
treats every early end as an env fault (retried, recorded) unless the task sets ``allow_early_end``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import Info, Obs, unavailable
from .minerl_env import split_done

DEFAULT_CAM_INTERVAL = 0.1
N_CRAFT_ARGS = 244
N_INV_SLOTS = 36
FN_NOOP, FN_USE, FN_DROP, FN_ATTACK, FN_CRAFT, FN_EQUIP, FN_PLACE, FN_DESTROY = range(8)
UNEXPRESSIBLE_KEYS = ("inventory", "ESC", "pickItem", "swapHands")

# Minecraft 1.11 (item name, variant) → 1.16 name, only where the task metrics look for the 1.16 name
_LOG_VARIANTS = {("log", 0): "oak_log", ("log", 1): "spruce_log", ("log", 2): "birch_log",
                 ("log", 3): "jungle_log", ("log2", 0): "acacia_log", ("log2", 1): "dark_oak_log"}
_LEAF_VARIANTS = {("leaves", 0): "oak_leaves", ("leaves", 1): "spruce_leaves", ("leaves", 2): "birch_leaves",
                  ("leaves", 3): "jungle_leaves", ("leaves2", 0): "acacia_leaves", ("leaves2", 1): "dark_oak_leaves"}
_FLOWER_VARIANTS = {("yellow_flower", 0): "dandelion", ("red_flower", 0): "poppy", ("red_flower", 1): "blue_orchid",
                    ("red_flower", 2): "allium", ("red_flower", 3): "azure_bluet", ("red_flower", 4): "red_tulip",
                    ("red_flower", 5): "orange_tulip", ("red_flower", 6): "white_tulip",
                    ("red_flower", 7): "pink_tulip", ("red_flower", 8): "oxeye_daisy",
                    # tall flowers (variants 2 and 3 are tall grass and large fern, not flowers)
                    ("double_plant", 0): "sunflower", ("double_plant", 1): "lilac", ("double_plant", 4): "rose_bush",
                    ("double_plant", 5): "peony"}
_RENAMES = {**_LOG_VARIANTS, **_LEAF_VARIANTS, **_FLOWER_VARIANTS}


def check_cam_interval(cam_interval: float) -> float:
    """``cam_interval`` if 180 / c is a whole number (so MineDojo's no-op bin is exactly 0°), else ValueError."""
    k = 180.0 / cam_interval if cam_interval > 0 else math.nan
    if not math.isfinite(k) or abs(k - round(k)) > 1e-9:
        raise ValueError(f"cam_interval must be 180/k for a whole k (e.g. 15, 1, 0.5, 0.1), got {cam_interval}")
    return float(cam_interval)


def camera_bins(cam_interval: float) -> int:
    """Number of MineDojo camera bins per axis for ``cam_interval`` degrees (25 for 15°)."""
    return math.ceil(360 / cam_interval) + 1


def action_nvec(cam_interval: float = DEFAULT_CAM_INTERVAL) -> list[int]:
    n = camera_bins(cam_interval)
    return [3, 3, 4, n, n, 8, N_CRAFT_ARGS, N_INV_SLOTS]


def _on(action: Mapping[str, Any], key: str) -> bool:
    v = action.get(key, 0)
    return bool(np.asarray(v).reshape(-1)[0]) if np.size(v) else False


def minerl_to_minedojo(
    action: Mapping[str, Any],
    cam_interval: float = DEFAULT_CAM_INTERVAL,
    inventory_names: list[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """A MineRL 1.0 action dict → (MineDojo action vector int64 (8,), MineRL keys that were dropped).

    ``inventory_names`` (the 36 slot names of the last observation) lets hotbar keys become ``equip``.
    """
    n = camera_bins(cam_interval)
    centre = (n - 1) // 2
    out = np.array([0, 0, 0, centre, centre, FN_NOOP, 0, 0], dtype=np.int64)
    dropped: list[str] = []

    fwd, back = _on(action, "forward"), _on(action, "back")
    out[0] = 1 if fwd and not back else 2 if back and not fwd else 0
    left, right = _on(action, "left"), _on(action, "right")
    out[1] = 1 if left and not right else 2 if right and not left else 0
    jump, sneak, sprint = _on(action, "jump"), _on(action, "sneak"), _on(action, "sprint")
    if jump:
        out[2] = 1
        dropped += [k for k, on in (("sneak", sneak), ("sprint", sprint)) if on]
    elif sneak != sprint:
        out[2] = 2 if sneak else 3

    cam = np.asarray(action.get("camera", (0.0, 0.0)), dtype=np.float64).reshape(-1)
    for axis, deg in ((3, cam[0]), (4, cam[1])):  # camera = [pitch, yaw] degrees in both APIs
        out[axis] = int(np.clip(round(float(deg) / cam_interval) + centre, 0, n - 1))

    attack, use, drop = _on(action, "attack"), _on(action, "use"), _on(action, "drop")
    if attack:
        out[5] = FN_ATTACK
        dropped += [k for k, on in (("use", use), ("drop", drop)) if on]
    elif use:
        out[5] = FN_USE
        dropped += ["drop"] if drop else []
    elif drop:
        out[5] = FN_DROP
    hotbar = [i for i in range(1, 10) if _on(action, f"hotbar.{i}")]
    for i in hotbar:
        slot_free = inventory_names is not None and len(inventory_names) > i - 1 and inventory_names[i - 1] != "air"
        if out[5] == FN_NOOP and slot_free:
            out[5], out[7] = FN_EQUIP, i - 1
        else:
            dropped.append(f"hotbar.{i}")
    dropped += [k for k in UNEXPRESSIBLE_KEYS if _on(action, k)]
    return out, dropped


def _scalar(x: Any, default: float = 0.0) -> float:
    arr = np.asarray(x if x is not None else default, dtype=np.float64).reshape(-1)
    return float(arr[0]) if arr.size else default


def minedojo_obs_to_minerl(obs: Mapping[str, Any]) -> Obs:
    """MineDojo observation → MineRL-like dict (pov, inventory, location_stats, life_stats)."""
    rgb = np.asarray(obs["rgb"])
    out: Obs = {"pov": np.ascontiguousarray(rgb.transpose(1, 2, 0)).astype(np.uint8, copy=False)}
    inv = obs.get("inventory")
    if isinstance(inv, Mapping) and "name" in inv:
        counts: dict[str, float] = {}
        variants = inv.get("variant", np.zeros(len(inv["name"]), dtype=np.int64))
        for name, qty, var in zip(inv["name"], inv["quantity"], variants):
            name = str(name).replace(" ", "_")
            if name == "air":
                continue
            name = _RENAMES.get((name, int(var)), name)
            counts[name] = counts.get(name, 0.0) + float(qty)
        out["inventory"] = counts
    loc = obs.get("location_stats")
    if isinstance(loc, Mapping):
        pos = np.asarray(loc.get("pos", (0.0, 0.0, 0.0)), dtype=np.float64).reshape(-1)
        out["location_stats"] = {
            "xpos": float(pos[0]), "ypos": float(pos[1]), "zpos": float(pos[2]),
            "pitch": _scalar(loc.get("pitch")), "yaw": _scalar(loc.get("yaw")),
        }
    stats = obs.get("full_stats")
    if isinstance(stats, Mapping):
        water = {k: _scalar(v) for k, v in stats.items() if str(k) in ("swim_one_cm", "dive_one_cm")}
        if water:
            out["full_stats"] = water
    life = obs.get("life_stats")
    if isinstance(life, Mapping):
        out["life_stats"] = {
            "life": _scalar(life.get("life"), 20.0),
            "food": _scalar(life.get("food"), 20.0),
            "air": _scalar(life.get("oxygen"), 300.0),
        }
    return out


class MineDojoEnv:
    """A MineDojo task (default: the open-ended world) with MineRL-style actions and observations.

    Seeding: ``MineDojoSim.seed()`` only re-seeds a generator that MineDojo reads while *building* the
    simulator, and by default (``regenerate_world_after_reset=False``) every reset reuses one world, changed
    by the episodes before it. So paired methods would not see the same world. This adapter instead builds
    the simulator with ``world_seed=seed`` and ``regenerate_world_after_reset=True`` and rebuilds it whenever
    the episode seed changes: episodes that share a seed (the methods of one pair) each start in a freshly
    generated copy of the same world. A rebuild restarts Minecraft (tens of seconds). ``world_seed``,
    ``seed`` and ``regenerate_world_after_reset`` are ``MineDojoSim`` arguments; that the "open-ended" task
    passes them through from ``minedojo.make`` is assumed, not checked on a MineDojo install.
    """

    name = "minedojo"
    is_test_double = False

    def __init__(
        self,
        task_id: str = "open-ended",
        image_size: tuple[int, int] = (360, 640),
        cam_interval: float = DEFAULT_CAM_INTERVAL,
        **kwargs: Any,
    ) -> None:
        try:
            import minedojo
        except Exception as e:  # ImportError, or numpy>=1.24 failures inside minedojo
            raise unavailable("minedojo", e) from e
        self._minedojo = minedojo
        self.cam_interval = check_cam_interval(cam_interval)
        self._make_args = (task_id, tuple(image_size), dict(kwargs))
        self._env: Any = None
        self._world_seed: int | None = None
        self._inv_names: list[str] | None = None

    def _build(self, seed: int | None) -> None:
        task_id, image_size, kwargs = self._make_args
        if seed is not None:
            kwargs = {**kwargs, "world_seed": int(seed), "seed": int(seed), "regenerate_world_after_reset": True}
        if self._env is not None:
            self._env.close()
            self._env = None
        self._env = self._minedojo.make(task_id, image_size=image_size, cam_interval=self.cam_interval, **kwargs)
        self._world_seed = seed

    def _convert(self, raw: Mapping[str, Any]) -> Obs:
        inv = raw.get("inventory")
        if isinstance(inv, Mapping) and "name" in inv:
            self._inv_names = [str(n).replace(" ", "_") for n in inv["name"]]
        return minedojo_obs_to_minerl(raw)

    def reset(self, seed: int | None = None) -> tuple[Obs, Info]:
        if self._env is None or (seed is not None and int(seed) != self._world_seed):
            self._build(None if seed is None else int(seed))
        return self._convert(self._env.reset()), {"world_seed": self._world_seed}

    def step(self, action: Mapping[str, Any]) -> tuple[Obs, float, bool, bool, Info]:
        vec, dropped = minerl_to_minedojo(action, self.cam_interval, self._inv_names)
        obs, reward, terminated, truncated, info = split_done(self._env.step(vec))
        info["unexpressed"] = dropped
        return self._convert(obs), reward, terminated, truncated, info

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
