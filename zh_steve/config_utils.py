"""Reading YAML/JSON configs into dataclasses: the one validation path for every config dataclass.

:func:`from_dict` rejects unknown keys and checks every value against the field's type hint (recursively through
nested dataclasses, lists and ``X | None``), so a wrong YAML value is one :class:`ConfigError` naming where it is
(``ridge.lambdas[1]``), never a traceback deep inside a run. Hand-written rather than pydantic (see DEVELOPERS.md):
the project's configs are plain dataclasses with their own ``__post_init__`` checks, and YAML 1.1 needs one
lenient rule strict pydantic does not offer (``1e-3`` without a dot arrives as a string and is read as a float).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

if TYPE_CHECKING:
    import torch

from .errors import ConfigError

T = TypeVar("T")


def load_config(path_or_dict: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A config as a plain dict, from a mapping or a ``.yaml``/``.yml``/``.json`` file."""
    if isinstance(path_or_dict, Mapping):
        return dict(path_or_dict)
    path = Path(path_or_dict)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise ConfigError(f"could not parse {path}: {e}") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``: unknown keys and wrongly typed values raise :class:`ConfigError`.

    Nested dataclass fields are built recursively from nested mappings. Values are checked against the type hints:
    ``bool`` (true/false only), ``int`` (not bool), ``float`` (ints and numeric strings such as YAML's ``1e-3`` are
    converted), ``str``, ``list[X]``, ``X | None``, nested dataclasses (``true`` = the section's defaults); other hints are not checked. The
    dataclass's own ``__post_init__`` checks run last; their ``TypeError``/``ValueError`` become ``ConfigError``.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(fields)}")
    hints = _resolved_types(cls)
    kwargs = {name: _coerce(value, hints.get(name, Any), f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked (and normalised: int → float, "1e-3" → 0.001) against type hint ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            return value  # a real union: not checked here
        return _coerce(value, inner[0], where)
    if dataclasses.is_dataclass(hint):
        if dataclasses.is_dataclass(value) and isinstance(value, hint):
            return value
        if value is True:  # `section: true` = that section with its defaults
            return hint()
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(hint, value, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: must be a list, got {value!r}")
        return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false, got {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: must be a number, got {value!r}")
        return float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string, got {value!r}")
    return value


def _resolved_types(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:
        return {}


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; an explicit CUDA device without CUDA is a :class:`ConfigError`."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was requested but CUDA is not available; use cpu or auto")
    return device


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a JSON-friendly dict."""
    return dataclasses.asdict(obj)
