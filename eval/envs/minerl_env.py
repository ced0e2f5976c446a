"""MineRL 1.0 ``HumanSurvival`` configured exactly as STEVE-1 runs it, behind the 5-tuple protocol.

STEVE-1 builds ``HumanSurvival(**ENV_KWARGS).make()`` with fov 70, gamma 2, gui scale 1, 640×360,
cursor size 16 and frameskip 1. MineRL 1.0 still uses old gym (``step`` → 4-tuple, seeding via
``env.seed``); this adapter turns that into ``(obs, reward, terminated, truncated, info)`` with
``truncated = info["TimeLimit.truncated"]`` and copies ``info["isGuiOpen"]`` into ``obs`` when present.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Info, Obs, unavailable

STEVE1_ENV_KWARGS: dict[str, Any] = dict(
    fov_range=[70, 70],
    frameskip=1,
    gamma_range=[2, 2],
    guiscale_range=[1, 1],
    resolution=[640, 360],
    cursor_size_range=[16.0, 16.0],
)


def split_done(result: tuple) -> tuple[Obs, float, bool, bool, Info]:
    """Old-gym 4-tuple (or an already-new 5-tuple) → ``(obs, reward, terminated, truncated, info)``."""
    if len(result) == 5:
        obs, reward, terminated, truncated, info = result
        return obs, float(reward), bool(terminated), bool(truncated), dict(info or {})
    obs, reward, done, info = result
    info = dict(info or {})
    truncated = bool(info.get("TimeLimit.truncated", False))
    return obs, float(reward), bool(done) and not truncated, truncated, info


def _with_gui(obs: Obs, info: Info) -> Obs:
    if "isGuiOpen" not in obs and "isGuiOpen" in info:
        obs = dict(obs)
        obs["isGuiOpen"] = info["isGuiOpen"]
    return obs


class MineRLEnv:
    """``MineRLHumanSurvival-v0`` with STEVE-1's settings."""

    name = "minerl"
    is_test_double = False

    def __init__(self, **overrides: Any) -> None:
        try:
            from minerl.herobraine.env_specs.human_survival_specs import HumanSurvival
        except Exception as e:  # ImportError, or minerl's own import-time failures (numpy, gym pins)
            raise unavailable("minerl", e) from e
        self._env = HumanSurvival(**{**STEVE1_ENV_KWARGS, **overrides}).make()

    def reset(self, seed: int | None = None) -> tuple[Obs, Info]:
        if seed is not None:
            self._env.seed(int(seed))
        out = self._env.reset()
        obs, info = (out if isinstance(out, tuple) and len(out) == 2 else (out, {}))
        return _with_gui(obs, dict(info)), dict(info)

    def step(self, action: Mapping[str, Any]) -> tuple[Obs, float, bool, bool, Info]:
        obs, reward, terminated, truncated, info = split_done(self._env.step(dict(action)))
        return _with_gui(obs, info), reward, terminated, truncated, info

    def close(self) -> None:
        self._env.close()
