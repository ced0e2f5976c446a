"""Safe checkpoint reading and strict state-dict loading shared by every loader.

Rules: never unpickle code. Torch pickles go through ``torch.load(weights_only=True)``; the VPT ``.model``
pickle (plain config containers) goes through :class:`RestrictedUnpickler`; our own files are safetensors.
Key mismatches are reported by name (missing, unexpected, mis-shaped) in one error.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from .errors import CheckpointError, UnsafeCheckpointError, WeightsNotFoundError

Shape = tuple[int, ...]

# safetensors dtype strings: bytes per value, and which of them hold weights
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})
MAX_HEADER_BYTES = 100 << 20


# ----------------------------------------------------------------------------------------------------------
# reading files
# ----------------------------------------------------------------------------------------------------------

def _require_file(path: str | Path, hint: str = "") -> Path:
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"checkpoint not found: {path}" + (f". {hint}" if hint else ""))
    return path


def safe_torch_load(path: str | Path, *, safe_globals: Iterable[Any] = (), hint: str = "") -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; refusals become :class:`UnsafeCheckpointError`.

    ``safe_globals`` is an explicit allowlist of extra classes/functions the file may reference (passed to
    ``torch.serialization.safe_globals``); never a blanket unsafe load.
    """
    path = _require_file(path, hint)
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f"refused to load {path}: it references objects outside the weights-only allowlist "
            f"({str(e).splitlines()[0][:300]}). zh-steve never unpickles arbitrary code; if this file is "
            f"genuine, convert it to safetensors on a trusted machine."
        ) from e
    except Exception as e:  # junk or truncated bytes surface as KeyError, ValueError, RuntimeError, EOFError, …
        reason = " ".join(str(e).split())[:300] or "no message"
        raise CheckpointError(
            f"could not read {path} as a torch checkpoint ({type(e).__name__}: {reason}); the file may be corrupt "
            f"or truncated: download it again" + (f". {hint}" if hint else "")
        ) from e


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that builds only plain data: dict, list, tuple, str, numbers, bool, None, OrderedDict, set.

    Any other global (a class, a function such as ``os.system``) raises :class:`UnsafeCheckpointError`.
    """

    ALLOWED: frozenset[tuple[str, str]] = frozenset({
        ("collections", "OrderedDict"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
    })

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise UnsafeCheckpointError(
            f"refused to unpickle global {module}.{name}: only plain containers and numbers are allowed"
        )


def restricted_pickle_load(path: str | Path, hint: str = "") -> Any:
    """Load a pickle of plain containers (e.g. VPT's ``2x.model``) without executing code."""
    path = _require_file(path, hint)
    data = path.read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafeCheckpointError as e:
        raise UnsafeCheckpointError(f"{path}: {e}") from None
    except Exception as e:  # corrupt pickle, wrong file type
        raise CheckpointError(f"could not read {path} as a plain pickle: {e}") from e


def read_safetensors(path: str | Path, hint: str = "") -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, on CPU."""
    from safetensors.torch import load_file

    path = _require_file(path, hint)
    try:
        return load_file(str(path), device="cpu")
    except Exception as e:
        raise CheckpointError(f"could not read {path} as safetensors: {e}") from e


def read_safetensors_header(f: BinaryIO) -> tuple[int, dict[str, Any]]:
    """``(header length, parsed header)`` of a safetensors file open in binary mode (read from byte 0).

    Layout: ``<u64 little-endian header length><JSON header><data>``; the header maps each tensor name to its
    ``dtype``, ``shape`` and ``data_offsets`` (plus an optional ``__metadata__``).
    """
    f.seek(0)
    raw = f.read(8)
    if len(raw) != 8:
        raise CheckpointError("not a safetensors file: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw)
    if not 0 < n <= MAX_HEADER_BYTES:
        raise CheckpointError(f"not a safetensors file: header length {n} is implausible")
    text = f.read(n)
    if len(text) != n:
        raise CheckpointError(f"safetensors header truncated: {len(text)} of {n} bytes")
    try:
        header = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"safetensors header is not JSON: {e}") from e
    if not isinstance(header, dict):
        raise CheckpointError("safetensors header is not a JSON object")
    return n, header


def is_safetensors(path: str | Path) -> bool:
    """True when ``path`` starts with a parseable safetensors header (whatever its file name)."""
    try:
        with open(path, "rb") as f:
            read_safetensors_header(f)
        return True
    except (CheckpointError, OSError):
        return False


def file_md5(path: str | Path) -> str:
    """Hex md5 of a file, streamed (published checkpoints are identified by md5, e.g. MineCLIP's attn.pth)."""
    import hashlib

    digest = hashlib.md5()
    with open(path, "rb") as f:  # chunked: hashlib.file_digest exists only from Python 3.11
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------------------
# key handling
# ----------------------------------------------------------------------------------------------------------

def strip_prefixes(state_dict: Mapping[str, Any], prefixes: Iterable[str]) -> dict[str, Any]:
    """Remove the first matching prefix (tried in the given order) from every key."""
    prefixes = list(prefixes)
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        for p in prefixes:
            if key.startswith(p):
                key = key[len(p):]
                break
        out[key] = value
    return out


def select_prefix(state_dict: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Keys that start with ``prefix``, with the prefix removed; the rest is dropped."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


@dataclass
class KeyReport:
    """Differences between an expected key→shape map and a state dict."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    misshaped: list[tuple[str, Shape, Shape]] = field(default_factory=list)  # key, expected, got

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.misshaped)

    def describe(self, limit: int = 40) -> str:
        def cut(items: list[str]) -> str:
            more = f" … and {len(items) - limit} more" if len(items) > limit else ""
            return ", ".join(items[:limit]) + more

        parts = []
        if self.missing:
            parts.append(f"missing {len(self.missing)} key(s): {cut(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)} key(s): {cut(self.unexpected)}")
        if self.misshaped:
            shown = [f"{k} (expected {list(e)}, got {list(g)})" for k, e, g in self.misshaped]
            parts.append(f"mis-shaped {len(self.misshaped)} key(s): {cut(shown)}")
        return "; ".join(parts) if parts else "all keys and shapes match"


def _shape(v: Any) -> Shape:
    return tuple(v.shape) if hasattr(v, "shape") else tuple(v)


def compare_keys(expected: Mapping[str, Any], got: Mapping[str, Any]) -> KeyReport:
    """Compare key sets and shapes. Values may be tensors, arrays or shape sequences."""
    report = KeyReport()
    report.missing = [k for k in expected if k not in got]
    report.unexpected = [k for k in got if k not in expected]
    for k in expected:
        if k in got:
            e, g = _shape(expected[k]), _shape(got[k])
            if e != g:
                report.misshaped.append((k, e, g))
    return report


def load_state_dict_strict(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    what: str,
    allowed_missing: Iterable[str] = (),
    hint: str = "",
) -> KeyReport:
    """Load ``state_dict`` into ``module``; any mismatch raises one :class:`CheckpointError` naming every key.

    Keys in ``allowed_missing`` may be absent (they keep the module's current values); the returned report
    lists them in ``missing`` so callers can tell the user.
    """
    expected = module.state_dict()
    report = compare_keys(expected, state_dict)
    allowed = set(allowed_missing)
    fatal = KeyReport(
        missing=[k for k in report.missing if k not in allowed],
        unexpected=report.unexpected,
        misshaped=report.misshaped,
    )
    if not fatal.ok:
        raise CheckpointError(f"{what} does not match the model: {fatal.describe()}" + (f". {hint}" if hint else ""))
    with torch.no_grad():
        for k, v in state_dict.items():
            target = expected[k]
            if not torch.is_floating_point(v) and torch.is_floating_point(target):
                raise CheckpointError(f"{what}: key {k} has dtype {v.dtype}, expected a floating tensor")
            target.copy_(v.to(dtype=target.dtype))
    return KeyReport(missing=[k for k in report.missing if k in allowed])


# ----------------------------------------------------------------------------------------------------------
# manifests of the official checkpoint files (shipped as package data)
# ----------------------------------------------------------------------------------------------------------

def load_manifest(name: str) -> dict[str, Any]:
    """Parsed JSON of ``zh_steve/manifests/<name>`` (``.json`` may be omitted)."""
    if not name.endswith(".json"):
        name += ".json"
    text = resources.files("zh_steve").joinpath("manifests", name).read_text(encoding="utf-8")
    return json.loads(text)


def manifest_shapes(name: str, prefix: str = "") -> dict[str, Shape]:
    """key → shape of a manifest, restricted to keys under ``prefix`` (prefix kept)."""
    keys = load_manifest(name)["keys"]
    out: dict[str, Shape] = {}
    for k, v in keys.items():
        if k.startswith(prefix):
            out[k] = tuple(v["shape"] if isinstance(v, dict) else v)
    return out
