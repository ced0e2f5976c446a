"""The error raised for unusable actions (wrong indices, keys or values)."""

from __future__ import annotations

from ..errors import ZhSteveError


class InvalidActionError(ZhSteveError, ValueError):
    """An agent or MineRL action has an out-of-range index, a missing/unknown key or a bad value."""
