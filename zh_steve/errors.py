"""Exception types raised by zh-steve.

Every error a user can cause (bad instruction, bad observation, bad config, bad or missing checkpoint)
is raised as a subclass of :class:`ZhSteveError`, with a message that says what to do.
"""

from __future__ import annotations


class ZhSteveError(Exception):
    """Base class for all errors raised deliberately by zh-steve."""


class ConfigError(ZhSteveError, ValueError):
    """A config file or dict is malformed: unknown keys, wrong types, impossible values."""


class CheckpointError(ZhSteveError):
    """A checkpoint exists but cannot be used: wrong format, missing/unexpected/mis-shaped keys."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint would need arbitrary code to be unpickled; it was refused."""


class WeightsNotFoundError(CheckpointError, FileNotFoundError):
    """A required weights file is missing; the message says where it is published."""


class InvalidInstructionError(ZhSteveError, ValueError):
    """An instruction is empty, whitespace-only, too long or otherwise unusable."""


class InvalidObservationError(ZhSteveError, ValueError):
    """An observation has the wrong type, shape or dtype."""


class InvalidGoalError(ZhSteveError, ValueError):
    """A goal embedding is not finite or has the wrong shape."""


class EnvironmentUnavailableError(ZhSteveError, ImportError):
    """A Minecraft environment backend (MineRL, MineDojo) is not installed; the message says how."""
