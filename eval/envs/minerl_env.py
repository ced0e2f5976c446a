"""MineRL 1.0 ``HumanSurvival`` configured exactly as STEVE-1 runs it, behind the 5-tuple protocol.

STEVE-1 builds ``HumanSurvival(**ENV_KWARGS).make()`` with fov 70, gamma 2, gui scale 1, 640×360,
cursor size 16 and frameskip 1. MineRL 1.0 still uses old gym (``reset`` → obs, ``step`` → 4-tuple, seeding
via ``env.seed(int)`` before *every* reset: MineRL forgets the seed after each reset); this adapter turns
that into ``(obs, reward, terminated, truncated, info)`` with ``truncated = info["TimeLimit.truncated"]``
and copies ``info["isGuiOpen"]`` (a *monitor* in MineRL 1.0, so it is in ``info``, not ``obs``) into ``obs``.

Facts checked against minerl v1.0 (``minerl/env/_multiagent.py``, ``herobraine/hero/handlers``):

- When the socket to Minecraft times out or breaks, ``step`` does not raise: it returns
  ``observation_space.sample()`` (a *random* inventory, position, …), ``done=True`` and
  ``info == {"error": "Connection timed out!"}``; the next ``step`` raises. Scoring that random observation
  would invent successes, so the adapter raises :class:`EnvCrashedError` instead and the harness restarts
  the env and reruns the episode.
- Actions are turned into Minecraft commands with ``str()`` of each value (``"attack 1"``,
  ``"camera 0.6 -1.6"``), so a Python/numpy ``bool`` would be sent as ``"attack True"``. The adapter sends
  buttons as ints 0/1 and ``camera`` as float32 ``(2,)`` [pitch, yaw] degrees (a ``(1, 2)`` batch is
  flattened).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import EnvCrashedError, Info, Obs, unavailable

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


def to_env_action(action: Mapping[str, Any]) -> dict[str, Any]:
    """A MineRL action dict with buttons as ints 0/1 and ``camera`` as float32 ``(2,)`` (see module doc)."""
    out: dict[str, Any] = {}
    for key, value in action.items():
        arr = np.asarray(value)
        if key == "camera":
            cam = arr.astype(np.float32).reshape(-1)
            if cam.shape != (2,):
                raise ValueError(f"action['camera'] must hold 2 numbers [pitch, yaw], got shape {arr.shape}")
            out[key] = cam
        else:
            flat = arr.reshape(-1)
            out[key] = int(bool(flat[0])) if flat.size else 0
    return out


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
        obs, reward, terminated, truncated, info = split_done(self._env.step(to_env_action(action)))
        if "error" in info:
            raise EnvCrashedError(f"MineRL lost its Minecraft connection ({info['error']}); the observation it "
                                  "returned is a random sample, not the game state")
        return _with_gui(obs, info), reward, terminated, truncated, info

    def close(self) -> None:
        self._env.close()
