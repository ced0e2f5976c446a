"""``FakeMinecraftEnv``: a scripted test double of the environment protocol. NOT Minecraft.

A tiny deterministic world (per seed) that answers MineRL 1.0 actions with MineRL-style observations, so
the harness, the metrics and the agent plumbing can be exercised end to end without Java:

- Movement: forward/back/left/right move 0.2 blocks a step along the yaw (sprint ×1.3, sneak ×0.3);
  the ground height follows gentle hills; ``camera`` changes pitch (clamped ±90°) and yaw.
- The frame is drawn from the state: sky above a horizon that moves with pitch, ground coloured by the
  material underfoot, a tree (trunk + leaves) and a pig drawn where they are relative to the yaw, a blue
  tint under water, a grey panel while the inventory GUI is open.
- What the crosshair is on (tree trunk/leaves, pig, grass or flowers ahead, the block below when looking
  down) decides what holding ``attack`` does: breaking takes a few steps, then the block is counted in
  ``mine_block`` and its drop lands in ``inventory`` (logs, dirt/sand/gravel, seeds, flowers, saplings);
  the pig dies after 10 hits (``kill_entity``); digging straight down lowers you one block per block.
- A lake: inside it you are in water (``walk_on_water_one_cm`` grows as you move); without ``jump``
  you sink, and with the head under water ``life_stats.air`` drops one per step.
- ``inventory`` toggles the GUI (``isGuiOpen``), ``ESC`` closes it; no movement while it is open.
- ``crash_at_step=k`` makes step k fail: ``crash_mode="exception"`` raises once; ``"dead"`` raises
  :class:`EnvCrashedError` and every later call (close included) raises too, like a dead process.

More fault modes, for the watchdog and the Ray workers (each names what it imitates):

- ``hang_at_step=k`` (``hang_in="step"``, or ``"reset"``: the reset of that episode): the call blocks forever in
  a way Python cannot interrupt from inside (a Minecraft that stopped answering its socket). Only a watchdog
  that runs the env in another process (:class:`eval.envs.watchdog.SubprocessEnv`) can get out of it.
- ``leak_mb_per_episode=m`` with ``oom_after_mb=M``: every reset keeps ``m`` MiB that are never freed (reported
  in ``info["leaked_mb"]``); the reset that would pass ``M`` fails with ``MemoryError``, as a leaking
  MineRL eventually does. ``--recycle-every`` (a fresh env every K episodes) avoids it.
- ``kill_worker_at_step=k``: SIGKILL the evaluation worker that owns this env (``$ZS_EVAL_WORKER_PID``, set by
  the Ray worker; else this process), like a worker lost to the OOM killer.
- ``end_early_at_step=k``: step k returns ``terminated=True`` (an env that ends the episode on its own).
- ``frozen=["location_stats", ...]``: those fields read as MineRL's zero fill (all zeros, never changing),
  as when Minecraft does not report a field.
- ``fault_once_dir=DIR``: each of the faults above fires only once per (fault, seed) across processes (a marker
  file in DIR), so the retry of an episode on a fresh env succeeds.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import TEST_DOUBLE_LABEL, EnvCrashedError, Info, Obs

SKY = np.array([120, 167, 255], np.uint8)
COLOURS = {
    "grass_block": (95, 159, 53), "dirt": (134, 96, 67), "sand": (219, 207, 163), "gravel": (136, 126, 126),
    "water": (47, 83, 190), "trunk": (102, 76, 51), "leaves": (48, 110, 30), "pig": (240, 160, 160),
    "gui": (198, 198, 198),
}
HARDNESS = {"oak_log": 12, "oak_leaves": 3, "dirt": 6, "grass_block": 6, "sand": 6, "gravel": 7, "grass": 1,
            "dandelion": 1, "poppy": 1}
DROPS = {"oak_log": "oak_log", "dirt": "dirt", "grass_block": "dirt", "sand": "sand", "gravel": "gravel",
         "dandelion": "dandelion", "poppy": "poppy"}
SPEED, MAX_AIR = 0.2, 300


def _angle_diff(a: float, b: float) -> float:
    return (a - b + 180.0) % 360.0 - 180.0


class FakeMinecraftEnv:
    """Scripted, deterministic stand-in for MineRL ``HumanSurvival`` (see module docstring)."""

    name = "fake"
    is_test_double = True
    label = TEST_DOUBLE_LABEL

    def __init__(
        self,
        height: int = 360,
        width: int = 640,
        crash_at_step: int | None = None,
        crash_mode: str = "exception",
        hang_at_step: int | None = None,
        hang_in: str = "step",
        leak_mb_per_episode: float = 0.0,
        oom_after_mb: float | None = None,
        kill_worker_at_step: int | None = None,
        end_early_at_step: int | None = None,
        frozen: list[str] | tuple[str, ...] = (),
        fault_once_dir: str | None = None,
    ) -> None:
        if crash_mode not in ("exception", "dead"):
            raise ValueError(f"crash_mode must be 'exception' or 'dead', got {crash_mode!r}")
        if hang_in not in ("step", "reset"):
            raise ValueError(f"hang_in must be 'step' or 'reset', got {hang_in!r}")
        self.h, self.w = int(height), int(width)
        self.crash_at_step, self.crash_mode = crash_at_step, crash_mode
        self.hang_at_step, self.hang_in = hang_at_step, hang_in
        self.leak_mb_per_episode, self.oom_after_mb = float(leak_mb_per_episode), oom_after_mb
        self.kill_worker_at_step, self.end_early_at_step = kill_worker_at_step, end_early_at_step
        self.frozen = tuple(frozen)
        self.fault_once_dir = fault_once_dir
        self.leaked: list[bytearray] = []
        self.dead = False
        self.closed = False
        self._first_reset = True
        self.reset(seed=0)
        self._first_reset = False

    # ---------------------------------------------------------------- fault injection
    def _fires(self, fault: str) -> bool:
        """Whether ``fault`` fires now: always, or once per (fault, seed) with ``fault_once_dir``."""
        if self.fault_once_dir is None:
            return True
        os.makedirs(self.fault_once_dir, exist_ok=True)
        marker = os.path.join(self.fault_once_dir, f"{fault}-{self.seed}")
        try:
            with open(marker, "x"):
                return True
        except FileExistsError:
            return False

    @staticmethod
    def _block_forever() -> None:
        while True:  # a blocked native call: nothing inside this process will end it
            threading.Event().wait(3600)

    def _leak(self) -> None:
        if not self.leak_mb_per_episode:
            return
        held = len(self.leaked) * self.leak_mb_per_episode
        if self.oom_after_mb is not None and held + self.leak_mb_per_episode > self.oom_after_mb:
            raise MemoryError(f"fake Minecraft ran out of memory after leaking {held:.0f} MiB over "
                              f"{len(self.leaked)} episodes")
        self.leaked.append(bytearray(int(self.leak_mb_per_episode * (1 << 20))))

    # ---------------------------------------------------------------- world layout (fixed per seed)
    def _layout(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.phase = rng.uniform(0, 2 * math.pi, size=2)
        self.base_y = 64.0
        # yaw convention of Minecraft: 0 faces +z, 90 faces −x
        self.yaw0 = float(rng.uniform(-180, 180))
        self.tree = self._polar(self.yaw0 + rng.uniform(-60, 60), 3.0)
        self.pig = self._polar(rng.uniform(-180, 180), 5.0)
        self.lake_c, self.lake_r = self._polar(rng.uniform(-180, 180), 12.0), 4.0
        self.gravel_c = self._polar(rng.uniform(-180, 180), 7.0)

    @staticmethod
    def _polar(yaw: float, dist: float) -> tuple[float, float]:
        r = math.radians(yaw)
        return (-math.sin(r) * dist, math.cos(r) * dist)

    def ground(self, x: float, z: float) -> float:
        """Terrain height (hills of ±3 blocks) minus the lake bed and any dug hole."""
        h = self.base_y + round(1.5 * math.sin(x / 6 + self.phase[0]) + 1.5 * math.sin(z / 8 + self.phase[1]))
        if self.in_lake(x, z):
            h = self.base_y - 3
        return h - self.holes.get((math.floor(x), math.floor(z)), 0)

    def in_lake(self, x: float, z: float) -> bool:
        return math.hypot(x - self.lake_c[0], z - self.lake_c[1]) < self.lake_r

    def material(self, x: float, z: float) -> str:
        if math.hypot(x - self.lake_c[0], z - self.lake_c[1]) < self.lake_r + 2:
            return "sand"
        if math.hypot(x - self.gravel_c[0], z - self.gravel_c[1]) < 2.0:
            return "gravel"
        return "grass_block" if (math.floor(x), math.floor(z)) not in self.holes else "dirt"

    def _vegetation(self, x: float, z: float) -> str | None:
        cell = (math.floor(x), math.floor(z))
        if cell in self.picked:
            return None
        h = (cell[0] * 73856093 ^ cell[1] * 19349663 ^ self.seed) % 100
        return "dandelion" if h < 6 else "poppy" if h < 10 else "grass" if h < 60 else None

    # ---------------------------------------------------------------- protocol
    def reset(self, seed: int | None = None) -> tuple[Obs, Info]:
        self._check_alive()
        self.seed = int(seed) if seed is not None else 0
        if not self._first_reset:
            if self.hang_at_step is not None and self.hang_in == "reset" and self._fires("hang_reset"):
                self._block_forever()
            self._leak()
        self.holes: dict[tuple[int, int], int] = {}
        self.picked: set[tuple[int, int]] = set()
        self._layout(self.seed)
        self.x, self.z = 0.0, 0.0
        self.y = self.ground(0.0, 0.0)
        self.yaw, self.pitch = self.yaw0, 0.0
        self.gui = False
        self.prev_inv_key = False
        self.air = MAX_AIR
        self.sink = 0.0
        self.inventory: dict[str, int] = {}
        # like MineRL, every statistic the world can produce is present from the start (zeros)
        self.mine_block: dict[str, int] = dict.fromkeys(HARDNESS, 0)
        self.kill_entity: dict[str, int] = {"pig": 0}
        self.water_cm = {"walk_on_water_one_cm": 0, "walk_under_water_one_cm": 0}
        self.breaking: tuple[str, int] | None = None
        self.pig_hp = 10
        self.t = 0
        return self._obs(), self._info()

    def step(self, action: Mapping[str, Any]) -> tuple[Obs, float, bool, bool, Info]:
        self._check_alive()
        self.t += 1
        if self.crash_at_step is not None and self.t == self.crash_at_step:
            if self.crash_mode == "dead":
                self.dead = True
                raise EnvCrashedError(f"fake Minecraft process died at step {self.t}")
            raise RuntimeError(f"fake env exception at step {self.t}")
        if self.hang_in == "step" and self.t == self.hang_at_step and self._fires("hang"):
            self._block_forever()
        if self.t == self.kill_worker_at_step and self._fires("kill_worker"):
            os.kill(int(os.environ.get("ZS_EVAL_WORKER_PID", os.getpid())), signal.SIGKILL)
            time.sleep(60)  # the signal is on its way
        a = {k: _flag(v) for k, v in action.items() if k != "camera"}
        inv_key = a.get("inventory", False)
        if inv_key and not self.prev_inv_key:
            self.gui = not self.gui
        self.prev_inv_key = inv_key
        if a.get("ESC"):
            self.gui = False
        if not self.gui:
            cam = np.asarray(action.get("camera", (0.0, 0.0)), dtype=np.float64).reshape(-1)
            self.pitch = float(np.clip(self.pitch + cam[0], -90.0, 90.0))
            self.yaw = (self.yaw + cam[1] + 180.0) % 360.0 - 180.0
            self._move(a)
            self._attack(a.get("attack", False))
        else:
            self.breaking = None
        self._water(a.get("jump", False))
        terminated = self.t == self.end_early_at_step and self._fires("end_early")
        return self._obs(), 0.0, bool(terminated), False, self._info()

    def _info(self) -> Info:
        info: Info = {"isGuiOpen": self.gui, "test_double": True}
        if self.leak_mb_per_episode:
            info["leaked_mb"] = len(self.leaked) * self.leak_mb_per_episode
        return info

    def close(self) -> None:
        if self.dead:
            raise EnvCrashedError("fake Minecraft process is dead; close() failed")
        self.closed = True

    def _check_alive(self) -> None:
        if getattr(self, "dead", False):
            raise EnvCrashedError("fake Minecraft process is dead")

    # ---------------------------------------------------------------- dynamics
    def _move(self, a: dict[str, bool]) -> None:
        fwd = int(a.get("forward", False)) - int(a.get("back", False))
        side = int(a.get("left", False)) - int(a.get("right", False))
        if not fwd and not side:
            return
        speed = SPEED * (1.3 if a.get("sprint") else 1.0) * (0.3 if a.get("sneak") else 1.0)
        r = math.radians(self.yaw)
        fx, fz = -math.sin(r), math.cos(r)  # facing
        lx, lz = fz, -fx  # to the left of facing
        dx, dz = (fwd * fx + side * lx) * speed, (fwd * fz + side * lz) * speed
        nx, nz = self.x + dx, self.z + dz
        if self.ground(nx, nz) - self.y > 1.0 and not a.get("jump"):
            return  # a step higher than one block needs a jump
        self.x, self.z = nx, nz
        if self.in_lake(nx, nz):
            key = "walk_under_water_one_cm" if self.sink >= 1.5 else "walk_on_water_one_cm"
            self.water_cm[key] += int(round(math.hypot(dx, dz) * 100))
        else:
            self.y = self.ground(nx, nz)

    def _water(self, jump: bool) -> None:
        if self.in_lake(self.x, self.z):
            self.sink = max(0.0, self.sink - 0.3) if jump else min(2.5, self.sink + 0.1)
            self.y = self.base_y - 0.5 - self.sink
        else:
            self.sink = 0.0
        self.air = max(0, self.air - 1) if self.sink >= 1.5 else min(MAX_AIR, self.air + 5)

    def target(self) -> str | None:
        """What the crosshair is on (the thing ``attack`` would hit)."""
        if self.gui:
            return None
        for thing, pos, reach in (("tree", self.tree, 4.5), ("pig", self.pig, 3.5)):
            dx, dz = pos[0] - self.x, pos[1] - self.z
            dist = math.hypot(dx, dz)
            bearing = math.degrees(math.atan2(-dx, dz))
            if dist <= reach and abs(_angle_diff(bearing, self.yaw)) <= 20:
                if thing == "pig" and abs(self.pitch) <= 35:
                    return "pig"
                if thing == "tree":
                    if -60 <= self.pitch < -20:
                        return "oak_leaves"
                    if -20 <= self.pitch <= 30:
                        return "oak_log"
        if self.pitch >= 60:
            return "water" if self.in_lake(self.x, self.z) else self.material(self.x, self.z)
        if 20 <= self.pitch < 60:
            r = math.radians(self.yaw)
            fx, fz = self.x - math.sin(r) * 1.5, self.z + math.cos(r) * 1.5
            return self._vegetation(fx, fz) or ("water" if self.in_lake(fx, fz) else self.material(fx, fz))
        return None

    def _attack(self, attacking: bool) -> None:
        tgt = self.target() if attacking else None
        if tgt is None or tgt == "water":
            self.breaking = None
            return
        if tgt == "pig":
            self.pig_hp -= 1
            if self.pig_hp <= 0:
                self._add(self.kill_entity, "pig")
                self._add(self.inventory, "porkchop")
                self.pig = self._polar(float(self.rng.uniform(-180, 180)), 5.0)
                self.pig_hp = 10
            return
        progress = self.breaking[1] + 1 if self.breaking and self.breaking[0] == tgt else 1
        self.breaking = (tgt, progress)
        if progress < HARDNESS[tgt]:
            return
        self.breaking = None
        self._add(self.mine_block, tgt)
        if tgt == "oak_leaves":
            if self.rng.random() < 0.25:
                self._add(self.inventory, "oak_sapling")
        elif tgt == "grass":
            if self.rng.random() < 0.3:
                self._add(self.inventory, "wheat_seeds")
        else:
            self._add(self.inventory, DROPS[tgt])
        r = math.radians(self.yaw)
        ahead = (math.floor(self.x - math.sin(r) * 1.5), math.floor(self.z + math.cos(r) * 1.5))
        if tgt in ("grass", "dandelion", "poppy"):
            self.picked.add(ahead)
        elif tgt in ("dirt", "grass_block", "sand", "gravel") and self.pitch >= 60:
            cell = (math.floor(self.x), math.floor(self.z))
            self.holes[cell] = self.holes.get(cell, 0) + 1
            self.y = self.ground(self.x, self.z)

    @staticmethod
    def _add(d: dict[str, int], key: str, n: int = 1) -> None:
        d[key] = d.get(key, 0) + n

    # ---------------------------------------------------------------- observation
    def _obs(self) -> Obs:
        obs = {
            "pov": self.render(),
            "inventory": dict(self.inventory),
            "location_stats": {"xpos": self.x, "ypos": self.y, "zpos": self.z, "pitch": self.pitch, "yaw": self.yaw},
            "life_stats": {"life": 20.0, "food": 20, "air": self.air},
            "mine_block": dict(self.mine_block),
            "kill_entity": dict(self.kill_entity),
            "custom": dict(self.water_cm),
            "isGuiOpen": self.gui,
            "test_double": True,
        }
        for key in self.frozen:  # MineRL's zero fill for a field Minecraft does not report
            if key not in obs or key == "pov":
                raise ValueError(f"frozen: unknown observation field {key!r}")
            v = obs[key]
            obs[key] = {k: 0 for k in v} if isinstance(v, dict) else type(v)(0)
        return obs

    def render(self) -> np.ndarray:
        h, w = self.h, self.w
        img = np.empty((h, w, 3), np.uint8)
        px_per_deg = h / 70.0  # vertical fov 70°
        horizon = int(np.clip(h / 2 - self.pitch * px_per_deg, 0, h))  # looking down (pitch > 0) raises it
        img[:horizon] = SKY
        ground = "water" if self.in_lake(self.x, self.z) else self.material(self.x, self.z)
        img[horizon:] = COLOURS[ground]
        # stripes that move with the yaw so turning changes the frame even on open ground
        stripe = (np.arange(w) + int(self.yaw * w / 100)) // max(4, w // 16) % 2 == 0
        img[horizon:, stripe] = (img[horizon:, stripe].astype(np.int16) * 9 // 10).astype(np.uint8)
        hfov = 2 * math.degrees(math.atan(math.tan(math.radians(35)) * w / h))
        self._draw_thing(img, self.tree, horizon, hfov, kind="tree")
        self._draw_thing(img, self.pig, horizon, hfov, kind="pig")
        if self.sink >= 1.5:
            img[:] = (img.astype(np.uint16) * 2 // 5 + np.array(COLOURS["water"], np.uint16) * 3 // 5).astype(np.uint8)
        if self.gui:
            img[h // 5 : 4 * h // 5, w // 4 : 3 * w // 4] = COLOURS["gui"]
        c = (h // 2, w // 2)
        img[c[0] - 1 : c[0] + 2, c[1] - 6 : c[1] + 7] = 255
        img[c[0] - 6 : c[0] + 7, c[1] - 1 : c[1] + 2] = 255
        return img

    def _draw_thing(self, img: np.ndarray, pos: tuple[float, float], horizon: int, hfov: float, kind: str) -> None:
        h, w = img.shape[:2]
        dx, dz = pos[0] - self.x, pos[1] - self.z
        dist = max(0.5, math.hypot(dx, dz))
        off = _angle_diff(math.degrees(math.atan2(-dx, dz)), self.yaw)
        if abs(off) > hfov / 2 + 10:
            return
        col = int(w / 2 - off / hfov * w)  # things to the left of facing appear on the left
        size = int(h * 0.6 / dist)
        if kind == "tree":
            tw = max(2, size // 3)
            top = horizon - 2 * size
            img[max(0, top) : max(0, horizon + size // 3), max(0, col - tw // 2) : max(0, col + tw // 2)] = COLOURS["trunk"]
            lt = horizon - 4 * size
            img[max(0, lt) : max(0, top), max(0, col - size) : max(0, col + size)] = COLOURS["leaves"]
        else:
            img[max(0, horizon - size // 3) : max(0, horizon + size // 4), max(0, col - size // 2) : max(0, col + size // 2)] = COLOURS["pig"]


def _flag(v: Any) -> bool:
    arr = np.asarray(v).reshape(-1)
    return bool(arr[0]) if arr.size else False
