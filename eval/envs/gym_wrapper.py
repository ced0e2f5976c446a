"""A thin ``gymnasium.Env`` over the env protocol, with MineRL 1.0's spaces, so gymnasium wrappers and vector
envs apply (``pip install "zh-steve[gymnasium]"``).

- ``action_space``: ``Dict`` of the 24 MineRL 1.0 keys: ``ESC, attack, back, drop, forward, hotbar.1–9,
  inventory, jump, left, pickItem, right, sneak, sprint, swapHands, use`` as ``Discrete(2)`` and ``camera`` as
  ``Box(-180, 180, (2,), float32)`` ([pitch, yaw] degrees) — MineRL 1.0's own action space.
- ``observation_space``: ``Dict(pov=Box(0, 255, (H, W, 3), uint8))`` — MineRL 1.0's ``pov`` (640×360 for
  STEVE-1's ``HumanSurvival``). The other fields the backends report (``inventory``, ``location_stats``,
  ``life_stats``, statistics, ``isGuiOpen``) vary by backend and by item, so they are passed in
  ``info["observation"]`` instead of being forced into a space.
- ``reset(seed=...)`` → ``(obs, info)``; ``step`` → the 5-tuple; ``render()`` → the last ``pov`` (rgb_array).

How the backends reach it: MineRL 1.0 (old ``gym`` ≤ 0.23.1, 4-tuple) and MineDojo (``gym==0.21``,
``MultiDiscrete`` actions, channels-first ``rgb``) keep their own ``gym`` pins in their own environment
(``constraints/``); ``eval/envs/minerl_env.py`` and ``minedojo_env.py`` turn them into the 5-tuple protocol
(``TimeLimit.truncated`` → ``truncated``; MineDojo's actions and observations mapped to MineRL's), and this
wrapper puts that protocol behind ``gymnasium.Env``. With a ``SubprocessEnv`` (``python=`` a MineRL
virtualenv) gymnasium and the old ``gym`` never share an interpreter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from zh_steve.actions.minerl import MINERL_ACTION_KEYS
from zh_steve.errors import ConfigError

from .base import MinecraftEnv


def _gymnasium() -> Any:
    try:
        import gymnasium
    except ImportError as e:
        raise ConfigError('the gymnasium wrapper needs gymnasium: pip install "zh-steve[gymnasium]"') from e
    return gymnasium


def minerl_action_space() -> Any:
    spaces = _gymnasium().spaces
    return spaces.Dict({k: spaces.Box(-180.0, 180.0, (2,), np.float32) if k == "camera" else spaces.Discrete(2)
                        for k in MINERL_ACTION_KEYS})


def minerl_observation_space(height: int = 360, width: int = 640) -> Any:
    spaces = _gymnasium().spaces
    return spaces.Dict({"pov": spaces.Box(0, 255, (height, width, 3), np.uint8)})


def make_gym_env(kind: str = "minerl", **kwargs: Any) -> Any:
    """``MinecraftGymEnv`` over ``eval.envs.make_env(kind, **kwargs)`` (for ``gymnasium.vector`` env fns)."""
    from . import make_env

    env = make_env(kind, **kwargs)
    h, w = (kwargs.get("height", 360), kwargs.get("width", 640)) if kind == "fake" else (360, 640)
    return MinecraftGymEnv(env, height=h, width=w)


def _build_class() -> type:
    gymnasium = _gymnasium()

    class MinecraftGymEnv(gymnasium.Env):
        """``gymnasium.Env`` view of a :class:`~eval.envs.base.MinecraftEnv` (see the module docstring)."""

        metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

        def __init__(self, env: MinecraftEnv, height: int = 360, width: int = 640,
                     render_mode: str | None = "rgb_array") -> None:
            self.env = env
            self.render_mode = render_mode
            self.action_space = minerl_action_space()
            self.observation_space = minerl_observation_space(height, width)
            self._pov: np.ndarray | None = None

        def _split(self, obs: Mapping[str, Any], info: Mapping[str, Any]) -> tuple[dict, dict]:
            pov = np.asarray(obs["pov"], dtype=np.uint8)
            want = self.observation_space["pov"].shape
            if pov.shape != want:
                raise ConfigError(f"the env's pov is {pov.shape}, the observation space says {want}: pass the "
                                  "env's height and width to MinecraftGymEnv")
            self._pov = pov
            rest = {k: v for k, v in obs.items() if k != "pov"}
            return {"pov": pov}, {**dict(info), "observation": rest}

        def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
            super().reset(seed=seed)
            obs, info = self.env.reset(seed=seed)
            return self._split(obs, info)

        def step(self, action: Mapping[str, Any]) -> tuple[dict, float, bool, bool, dict]:
            obs, reward, terminated, truncated, info = self.env.step(action)
            o, i = self._split(obs, info)
            return o, float(reward), bool(terminated), bool(truncated), i

        def render(self) -> np.ndarray | None:
            return self._pov

        def close(self) -> None:
            self.env.close()

    return MinecraftGymEnv


try:
    MinecraftGymEnv = _build_class()  # type: ignore[misc]
except ConfigError:  # gymnasium not installed: importing this module still works; using it explains
    def MinecraftGymEnv(*args: Any, **kwargs: Any) -> Any:  # type: ignore[no-redef]  # noqa: N802
        _gymnasium()
