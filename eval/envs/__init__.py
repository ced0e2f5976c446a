"""Minecraft environments behind one protocol: MineRL 1.0, MineDojo 0.1 (both imported lazily) and a test double."""

from __future__ import annotations

from typing import Any

from .base import INSTALL_HELP, TEST_DOUBLE_LABEL, EnvCrashedError, MinecraftEnv, unavailable
from .fake import FakeMinecraftEnv

ENV_KINDS = ("minerl", "minedojo", "fake")


def make_env(kind: str, **kwargs: Any) -> MinecraftEnv:
    """Build the ``kind`` backend; a missing backend raises EnvironmentUnavailableError with install steps."""
    if kind == "fake":
        return FakeMinecraftEnv(**kwargs)
    if kind == "minerl":
        from .minerl_env import MineRLEnv

        return MineRLEnv(**kwargs)
    if kind == "minedojo":
        from .minedojo_env import MineDojoEnv

        return MineDojoEnv(**kwargs)
    raise ValueError(f"unknown env kind {kind!r}; choose one of {list(ENV_KINDS)}")


__all__ = [
    "ENV_KINDS", "INSTALL_HELP", "TEST_DOUBLE_LABEL", "EnvCrashedError", "FakeMinecraftEnv", "MinecraftEnv",
    "make_env", "unavailable",
]
