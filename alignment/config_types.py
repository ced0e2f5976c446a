"""Type checks for the trainer's config dataclasses: a wrong YAML value is a one-line ConfigError, not a traceback.

``zh_steve.config_utils.from_dict`` checks keys, not values, so ``lambdas: abc`` or ``seed: abc`` used to fail deep
inside training with a TypeError. Each config's ``__post_init__`` calls :func:`check_types`, which raises
``TypeError`` (``from_dict`` turns it into :class:`ConfigError` naming the section). Floats given as strings
are accepted when they parse: PyYAML reads ``1e-3`` (no dot) as a string.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def check_types(obj: Any) -> None:
    """Check (and normalise: int → float, "1e-3" → 0.001) every field of dataclass ``obj`` against its hint."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        setattr(obj, f.name, _coerce(getattr(obj, f.name), hints[f.name], f.name))


def _coerce(value: Any, hint: Any, name: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            return value
        return _coerce(value, inner[0], name)
    if dataclasses.is_dataclass(hint):
        if not dataclasses.is_dataclass(value):
            raise TypeError(f"{name} must be a mapping, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list, got {value!r}")
        return [_coerce(v, args[0], f"{name}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be true or false, got {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, got {value!r}")
        return float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {value!r}")
    return value
