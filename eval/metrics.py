"""Programmatic task metrics computed from MineRL-style observations, one step at a time.

Every metric reads a :class:`StepView` (the few fields metrics need, pulled out of ``obs`` and ``info``),
keeps a running score and reports it with :meth:`Metric.score`. Success is ``score >= threshold``.
A metric whose inputs the backend never provided scores ``None`` ("not measurable on this env").

Conventions (MineRL 1.0 / Minecraft): ``location_stats.pitch`` is negative when looking up (−90 straight
up); ``life_stats.air`` is 300 out of water and drops by one per tick while the head is under water.
Inventory and statistic metrics count what was *gained*: the value at a step minus the value at reset,
maximised over the episode (STEVE-1's programmatic evaluator takes the episode maximum of the inventory
count of items whose name contains a substring such as ``_log``, ``dirt`` or ``seed``).

MineRL 1.0 statistics (``mine_block``, ``kill_entity``, …) come from ``ObserveFromFullStats(stat)``, whose
keys are taken from ``mc_constants.1.16.json`` (``minerl_keys`` such as ``["mine_block", "oak_leaves"]``).
Public minerl versions differ in how they select those keys (``stat in keys`` vs ``keys[1] == stat``; the
latter matches nothing with the 1.16 two-element keys), so an always-empty statistic dict is treated as
"not provided" (score ``None``). Unconfirmed without a MineRL install: check one real observation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

# 1.16 (MineRL): walk_on_water / walk_under_water / swim (sprint-swimming); 1.11 (MineDojo): swim = on the
# surface, dive = under water (renamed walk_on_water / walk_under_water in Minecraft 1.13)
WATER_STAT_KEYS = ("walk_on_water_one_cm", "walk_under_water_one_cm", "swim_one_cm", "dive_one_cm")
MAX_AIR = 300.0


def _num(x: Any) -> float | None:
    """A plain float from a number / 0-d or 1-element array; None when absent or not numeric."""
    if x is None:
        return None
    try:
        arr = np.asarray(x, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    return float(arr[0]) if arr.size >= 1 else None


def _counts(d: Any) -> dict[str, float] | None:
    if not isinstance(d, Mapping):
        return None
    out = {}
    for k, v in d.items():
        n = _num(v)
        if n is not None:
            out[str(k)] = n
    return out


def _find_water_cm(obj: Any, depth: int = 0) -> float | None:
    """Sum of Minecraft's water-movement statistics wherever they sit in a nested observation."""
    if depth > 4 or not isinstance(obj, Mapping):
        return None
    total, found = 0.0, False
    for k, v in obj.items():
        name = str(k).split(":")[-1].split(".")[-1]
        if name in WATER_STAT_KEYS:
            n = _num(v)
            if n is not None:
                total, found = total + n, True
        elif isinstance(v, Mapping):
            sub = _find_water_cm(v, depth + 1)
            if sub is not None:
                total, found = total + sub, True
    return total if found else None


@dataclass
class StepView:
    """What metrics read from one step; ``None`` means the backend does not provide it."""

    inventory: dict[str, float] | None = None
    pos: tuple[float, float, float] | None = None
    pitch: float | None = None
    gui_open: bool | None = None
    air: float | None = None
    in_water: bool | None = None  # explicit flag, for a backend that has one (none of ours sets it today)
    water_cm: float | None = None  # cumulative water-movement statistics (cm)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)  # e.g. mine_block, kill_entity
    life: float | None = None  # health; 0 = dead (the death screen is a GUI too)
    action: Mapping[str, Any] | None = None  # the action that led to this observation (None at reset)

    @classmethod
    def from_obs(cls, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None,
                 action: Mapping[str, Any] | None = None) -> "StepView":
        info = info or {}
        loc = obs.get("location_stats")
        pos = None
        pitch = None
        if isinstance(loc, Mapping):
            x, y, z = (_num(loc.get(k)) for k in ("xpos", "ypos", "zpos"))
            if x is not None and y is not None and z is not None:
                pos = (x, y, z)
            pitch = _num(loc.get("pitch"))
        gui = obs.get("isGuiOpen", info.get("isGuiOpen"))
        life = obs.get("life_stats")
        air = _num(life.get("air")) if isinstance(life, Mapping) else None
        health = _num(life.get("life")) if isinstance(life, Mapping) else None
        in_water = obs.get("in_water")
        stats = {}
        for key in ("mine_block", "kill_entity", "pickup", "craft_item", "use_item"):
            c = _counts(obs.get(key))
            if c is not None:
                stats[key] = c
        return cls(
            inventory=_counts(obs.get("inventory")),
            pos=pos,
            pitch=pitch,
            gui_open=None if gui is None else bool(_num(gui)),
            air=air,
            in_water=None if in_water is None else bool(_num(in_water)),
            water_cm=_find_water_cm(obs),
            stats=stats,
            life=health,
            action=action,
        )


class FieldTracker:
    """Which observation fields an episode saw, and whether each ever changed (data-quality checks).

    MineRL's observation handlers fill a field Minecraft never reports with zeros, so a missing statistic
    reads as a real 0 (and a missing position as the origin). The report flags a field that never changed
    in any episode of a run, and a start position at exactly (0, 0, 0).
    """

    def __init__(self) -> None:
        self.first: dict[str, Any] = {}
        self.changed: dict[str, bool] = {}
        self.start_pos: tuple[float, float, float] | None = None

    @staticmethod
    def _fields(v: StepView) -> dict[str, Any]:
        out: dict[str, Any] = {"inventory": v.inventory, "position": v.pos, "pitch": v.pitch, "gui_open": v.gui_open,
                               "air": v.air, "water_cm": v.water_cm, "life": v.life}
        out.update({f"stats.{k}": d for k, d in v.stats.items()})
        return {k: x for k, x in out.items() if x is not None}

    def update(self, v: StepView) -> None:
        if self.start_pos is None and not self.first:
            self.start_pos = v.pos
        for k, x in self._fields(v).items():
            if k not in self.first:
                self.first[k] = x
                self.changed[k] = False
            elif x != self.first[k]:
                self.changed[k] = True

    def summary(self) -> dict[str, Any]:
        return {"fields": {k: "changed" if c else "constant" for k, c in sorted(self.changed.items())},
                "start_pos": list(self.start_pos) if self.start_pos is not None else None}


# which observation fields each metric reads (for the report's data checks)
def metric_fields(name: str, params: Mapping[str, Any]) -> list[str]:
    return {
        "inventory_count": ["inventory"], "stat_gain": [f"stats.{params.get('stat')}"],
        "travel_distance": ["position"], "depth": ["position"], "height": ["position"], "pitch_up": ["pitch"],
        "gui_open_steps": ["gui_open"], "water_steps": ["water_cm", "air"], "breath_used": ["air"],
    }.get(name, [])


def _matches(name: str, items: Iterable[str], exclude: Iterable[str]) -> bool:
    return any(s in name for s in items) and not any(s in name for s in exclude)


class Metric:
    """Base class: ``update`` once per observation (the reset observation included), then ``score``."""

    name: ClassVar[str]
    params: ClassVar[dict[str, type]] = {}  # extra YAML keys this metric takes (besides name, threshold)
    required: ClassVar[dict[str, bool]] = {}  # True = param is required
    unit: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        self.p = params
        self.measured = False

    def update(self, v: StepView) -> None:
        raise NotImplementedError

    def score(self) -> float | None:
        raise NotImplementedError


class _GainMetric(Metric):
    """Max over the episode of (count now − count at reset) summed over matching names."""

    params = {"items": list, "exclude": list}
    required = {"items": True, "exclude": False}
    unit = "items"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.items = [str(s) for s in params["items"]]
        self.exclude = [str(s) for s in params.get("exclude", [])]
        self.start: float | None = None
        self.best = 0.0

    def _counts(self, v: StepView) -> dict[str, float] | None:
        raise NotImplementedError

    def update(self, v: StepView) -> None:
        counts = self._counts(v)
        if counts is None:
            return
        total = sum(c for k, c in counts.items() if _matches(k, self.items, self.exclude))
        if self.start is None:
            self.start = total
        self.measured = True
        self.best = max(self.best, total - self.start)

    def score(self) -> float | None:
        return self.best if self.measured else None


class InventoryCount(_GainMetric):
    name = "inventory_count"

    def _counts(self, v: StepView) -> dict[str, float] | None:
        return v.inventory


class StatGain(_GainMetric):
    """A Minecraft statistic such as ``mine_block`` (blocks broken) or ``kill_entity`` (mobs killed).

    MineRL fills a statistic dict with every block/entity (zeros by default), so a dict that stays empty for
    the whole episode means the backend's handler produced no keys at all: the score is then ``None``
    (not measurable), never a silent 0.
    """

    name = "stat_gain"
    params = {"stat": str, "items": list, "exclude": list}
    required = {"stat": True, "items": True, "exclude": False}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.saw_keys = False

    def _counts(self, v: StepView) -> dict[str, float] | None:
        counts = v.stats.get(self.p["stat"])
        self.saw_keys = self.saw_keys or bool(counts)
        return counts

    def score(self) -> float | None:
        return super().score() if self.saw_keys else None


class _PositionMetric(Metric):
    unit = "blocks"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.origin: tuple[float, float, float] | None = None
        self.best = 0.0

    def _value(self, origin: tuple[float, float, float], pos: tuple[float, float, float]) -> float:
        raise NotImplementedError

    def update(self, v: StepView) -> None:
        if v.pos is None:
            return
        if self.origin is None:
            self.origin = v.pos
        self.measured = True
        self.best = max(self.best, self._value(self.origin, v.pos))

    def score(self) -> float | None:
        return self.best if self.measured else None


class TravelDistance(_PositionMetric):
    """Maximum horizontal (x–z) distance from the spawn point (STEVE-1's ``travel_dist``)."""

    name = "travel_distance"

    def _value(self, o: tuple[float, float, float], p: tuple[float, float, float]) -> float:
        return math.hypot(p[0] - o[0], p[2] - o[2])


class Depth(_PositionMetric):
    """How deep the agent *dug*: blocks below the spawn height, at most the blocks it broke.

    Definition: ``min(y at reset − lowest y reached out of water, blocks broken since reset)``, where blocks
    broken is the gain of Minecraft's ``mine_block`` statistic (all blocks). Falling into a ravine or a cave
    breaks nothing, so it is capped by the blocks broken; sinking in water (breath dropping, or the
    water-movement statistics growing) does not count as depth at all. On a backend without ``mine_block``
    (MineDojo; see the data checks in the report) only the water exclusion applies.
    """

    name = "depth"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.mined_start: float | None = None
        self.mined = 0.0
        self.saw_mine_stats = False
        self.prev_air: float | None = None
        self.prev_cm: float | None = None

    def update(self, v: StepView) -> None:
        blocks = v.stats.get("mine_block")
        if blocks:
            self.saw_mine_stats = True
            total = sum(blocks.values())
            self.mined_start = total if self.mined_start is None else self.mined_start
            self.mined = max(self.mined, total - self.mined_start)
        wet = (v.air is not None and v.air < MAX_AIR) or (
            v.water_cm is not None and self.prev_cm is not None and v.water_cm > self.prev_cm)
        self.prev_air, self.prev_cm = v.air, v.water_cm
        if v.pos is None:
            return
        if self.origin is None:
            self.origin = v.pos
        self.measured = True
        if not wet:
            self.best = max(self.best, self.origin[1] - v.pos[1])

    def score(self) -> float | None:
        if not self.measured:
            return None
        return min(self.best, self.mined) if self.saw_mine_stats else self.best


class Height(_PositionMetric):
    """How far above the spawn height the agent got (max y − y at reset)."""

    name = "height"

    def _value(self, o: tuple[float, float, float], p: tuple[float, float, float]) -> float:
        return p[1] - o[1]


class PitchUp(Metric):
    """Largest angle above the horizon the agent *held* (degrees; −pitch in Minecraft's convention).

    Definition: the maximum over every run of ``hold_steps`` consecutive observations (default 10, half a
    second at 20 fps) of the lowest upward angle within that run; a glance that sweeps past the sky does not
    count. An episode shorter than ``hold_steps`` uses all its observations.
    """

    name = "pitch_up"
    unit = "degrees"
    params = {"hold_steps": int}
    required = {"hold_steps": False}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.hold = int(params.get("hold_steps", 10))
        if self.hold < 1:
            raise ValueError(f"pitch_up: hold_steps must be >= 1, got {self.hold}")
        self.window: list[float] = []
        self.best = -90.0

    def update(self, v: StepView) -> None:
        if v.pitch is None:
            return
        self.window = (self.window + [-v.pitch])[-self.hold:]
        if len(self.window) == self.hold:
            self.best = max(self.best, min(self.window))
        self.measured = True

    def score(self) -> float | None:
        if not self.measured:
            return None
        return self.best if len(self.window) == self.hold else min(self.window)

class GuiOpenSteps(Metric):
    """Steps with the inventory screen open, opened by the agent's own ``inventory`` key.

    Definition: a screen counts from the step where the GUI went from closed to open, if the agent pressed
    ``inventory`` on that step or on one of the ``key_window - 1`` steps before it (default 3: Minecraft may show
    the screen a tick or two after the key press), until it closes. Screens opened otherwise (``use`` on a crafting table,
    chest or furnace; the death screen; a GUI already open at reset) do not count, nor do steps with zero
    health. Without actions (a hand-made observation list) no screen can be attributed, so nothing counts.
    """

    name = "gui_open_steps"
    unit = "steps"
    params = {"key_window": int}
    required = {"key_window": False}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.window = int(params.get("key_window", 3))
        self.count = 0
        self.prev_open: bool | None = None
        self.own_screen = False
        self.since_press: int | None = None  # steps since the last inventory key press

    def update(self, v: StepView) -> None:
        if v.action is not None:
            pressed = _num(v.action.get("inventory")) == 1
            self.since_press = 0 if pressed else (None if self.since_press is None else self.since_press + 1)
        if v.gui_open is None:
            return
        self.measured = True
        if v.gui_open and self.prev_open is False:
            self.own_screen = self.since_press is not None and self.since_press < self.window
        if not v.gui_open or (v.life is not None and v.life <= 0):
            self.own_screen = False
        self.prev_open = v.gui_open
        self.count += int(v.gui_open and self.own_screen)

    def score(self) -> float | None:
        return float(self.count) if self.measured else None


class WaterSteps(Metric):
    """Number of steps spent swimming.

    Definition: a step counts when the backend says so explicitly (``in_water``), when Minecraft's
    water-movement statistics grew since the previous step, or when the agent is using up breath (air lower
    than on the previous step, or stuck at 0 while drowning). Air *refilling* after surfacing (air below the
    maximum but rising) does not count: that is time out of the water.
    """

    name = "water_steps"
    unit = "steps"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.count = 0
        self.prev_cm: float | None = None
        self.prev_air: float | None = None

    def update(self, v: StepView) -> None:
        signals = []
        if v.in_water is not None:
            signals.append(v.in_water)
        if v.water_cm is not None:
            signals.append(self.prev_cm is not None and v.water_cm > self.prev_cm)
            self.prev_cm = v.water_cm
        if v.air is not None:
            prev = self.prev_air
            signals.append(prev is not None and (v.air < prev or (v.air == 0 and prev == 0)))
            self.prev_air = v.air
        if not signals:
            return
        self.measured = True
        self.count += int(any(signals))

    def score(self) -> float | None:
        return float(self.count) if self.measured else None


class BreathUsed(Metric):
    """Breath used under water: air at reset − lowest air (≈ ticks spent with the head submerged)."""

    name = "breath_used"
    unit = "ticks"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.start: float | None = None
        self.lowest: float | None = None

    def update(self, v: StepView) -> None:
        if v.air is None:
            return
        if self.start is None:
            self.start = v.air
        self.lowest = v.air if self.lowest is None else min(self.lowest, v.air)

    def score(self) -> float | None:
        if self.start is None or self.lowest is None:
            return None
        return self.start - self.lowest


METRICS: dict[str, type[Metric]] = {
    m.name: m
    for m in (InventoryCount, StatGain, TravelDistance, Depth, Height, PitchUp, GuiOpenSteps, WaterSteps, BreathUsed)
}


def make_metric(name: str, params: Mapping[str, Any]) -> Metric:
    """A fresh metric instance (call once per episode)."""
    return METRICS[name](**dict(params))
