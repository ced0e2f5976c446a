"""STEVE-1's own weights files: where they are published, where they sit in a weights dir, how to read them.

Layout (as STEVE-1's ``download_weights.sh`` writes it under ``data/weights/``)::

    DIR/vpt/2x.model             pickle of plain containers: policy kwargs + pi-head temperature
    DIR/mineclip/attn.pth        torch checkpoint {"state_dict": {"model.<key>": Tensor}}; md5 b5ece919…
    DIR/steve1/steve1.weights    torch state dict, bare keys net.* / pi_head.* / value_head.*
    DIR/steve1/steve1_prior.pt   torch state dict, keys encoder.* / decoder.*

The same files directly in ``DIR`` are accepted too. Readers return state dicts in official key space.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import restricted_pickle_load, safe_torch_load, select_prefix, strip_prefixes
from ..errors import CheckpointError, UnsafeCheckpointError
from .expected import ATTN_MD5, ATTN_TEXT_PREFIX

POLICY_STRIP = ("module.policy.", "policy.", "module.")
PRIOR_STRIP = ("_orig_mod.", "module.")


def drive_url(file_id: str) -> str:
    return f"https://drive.google.com/uc?id={file_id}"


@dataclass(frozen=True)
class OfficialFile:
    """One file of the official STEVE-1 release."""

    name: str
    component: str          # what it provides: policy_kwargs | mineclip_text | policy | prior
    relpath: str            # location inside a weights dir
    published_at: str       # URL
    fmt: str                # restricted-pickle | torch-weights-only
    manifest: str | None    # zh_steve/manifests/<manifest>.json describes its keys
    approx_size: str        # human-readable, from STEVE1_FACTS §6
    md5: str | None = None


OFFICIAL_FILES: dict[str, OfficialFile] = {
    f.name: f
    for f in (
        OfficialFile("2x.model", "policy_kwargs", "vpt/2x.model",
                     "https://openaipublic.blob.core.windows.net/minecraft-rl/models/2x.model",
                     "restricted-pickle", None, "a few KB"),
        OfficialFile("attn.pth", "mineclip_text", "mineclip/attn.pth",
                     drive_url("1uaZM1ZLBz2dZWcn85rZmjP7LV6Sg5PZW"),
                     "torch-weights-only", "mineclip", "≈0.6 GB (size not published)", ATTN_MD5),
        OfficialFile("steve1.weights", "policy", "steve1/steve1.weights",
                     drive_url("1E3fd_-H1rRZqMkUKHfiMhx-ppLLehQPI"),
                     "torch-weights-only", "steve1_policy", "≈952 MiB (998,183,672 B of fp32 tensors)"),
        OfficialFile("steve1_prior.pt", "prior", "steve1/steve1_prior.pt",
                     drive_url("1OdX5wiybK8jALVfP5_dEo0CWm9BQbDES"),
                     "torch-weights-only", "steve1_prior", "≈9.5 MB (9,467,904 B of fp32 tensors)"),
    )
}


def where_published(name: str) -> str:
    f = OFFICIAL_FILES[name]
    return f"{f.published_at} (put it at <weights dir>/{f.relpath})"


def find_official_file(weights_dir: str | Path, name: str) -> Path | None:
    """``DIR/<relpath>`` or ``DIR/<name>``, whichever exists (in that order)."""
    root = Path(weights_dir)
    for candidate in (root / OFFICIAL_FILES[name].relpath, root / name):
        if candidate.is_file():
            return candidate
    return None


def find_official_files(weights_dir: str | Path) -> dict[str, Path | None]:
    return {name: find_official_file(weights_dir, name) for name in OFFICIAL_FILES}


# ----------------------------------------------------------------------------------------------------------
# torch files
# ----------------------------------------------------------------------------------------------------------

# modules whose globals are never stood in for, even as inert placeholders: a file naming them is refused
_DANGEROUS_MODULES = ("builtins", "os", "posix", "nt", "subprocess", "sys", "importlib", "runpy", "shutil",
                      "socket", "pickle", "marshal", "types", "code", "ctypes", "pty", "io", "webbrowser",
                      "functools", "operator", "torch")


class _InertPlaceholder:
    """Stands in for a metadata class (e.g. a Lightning hyper-parameter container) of a checkpoint.

    It never runs any code of the original class: it only records what the pickle hands it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _placeholder_for(fqn: str) -> type:
    return type(fqn.rsplit(".", 1)[-1], (_InertPlaceholder,), {})


def load_torch_file(path: str | Path, *, mmap: bool = True, allow_placeholders: bool = False,
                    hint: str = "") -> Any:
    """``torch.load(weights_only=True)`` on CPU, memory-mapped when the file format allows it.

    ``allow_placeholders``: a checkpoint whose only non-tensor content is metadata objects (Lightning
    hyper-parameters, OmegaConf…) is loaded with inert stand-ins for those classes — no code of theirs runs.
    Globals from code-running modules (os, builtins, subprocess, …) are always refused.
    """
    path = Path(path)
    try:
        return _torch_load(path, mmap=mmap, extra=(), hint=hint)
    except UnsafeCheckpointError:
        if not allow_placeholders:
            raise
    names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    dangerous = [n for n in names if n.split(".", 1)[0] in _DANGEROUS_MODULES]
    if dangerous or not names:
        raise UnsafeCheckpointError(
            f"refused to load {path}: it references {sorted(dangerous or names)}, which could run code. "
            f"zh-steve never unpickles code. {hint}".strip()
        )
    # metadata containers are usually dict subclasses (pickled as NEWOBJ + SETITEMS): plain dicts stand in;
    # other objects get an inert placeholder class
    try:
        return _torch_load(path, mmap=mmap, extra=[(dict, n) for n in names], hint=hint)
    except Exception:  # noqa: BLE001 - the dict stand-in does not fit this object; try the placeholder
        return _torch_load(path, mmap=mmap, extra=[(_placeholder_for(n), n) for n in names], hint=hint)


def _torch_load(path: Path, *, mmap: bool, extra: Any, hint: str) -> Any:
    if not mmap:
        return safe_torch_load(path, safe_globals=extra, hint=hint)
    if not path.is_file():
        return safe_torch_load(path, hint=hint)  # raises WeightsNotFoundError with the hint
    import pickle

    try:
        with torch.serialization.safe_globals(list(extra)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        return safe_torch_load(path, safe_globals=extra, hint=hint)  # same refusal, worded by checkpoint.py
    except (RuntimeError, ValueError, OSError, EOFError):
        # legacy (non-zip) torch files cannot be memory-mapped: plain weights-only load
        return safe_torch_load(path, safe_globals=extra, hint=hint)


def _tensor_dict(obj: Any, path: Path, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a state dict (mapping of tensors) for {what}, got {type(obj).__name__}")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: {what} holds non-tensor entries: {bad[:10]}")
    return dict(obj)


def read_policy_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """``steve1.weights`` → state dict with bare keys (``module.policy.``/``policy.``/``module.`` stripped)."""
    path = Path(path)
    sd = _tensor_dict(load_torch_file(path, hint=f"steve1.weights is published at {where_published('steve1.weights')}"),
                      path, "the STEVE-1 policy")
    return strip_prefixes(sd, POLICY_STRIP)


def read_prior_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """``steve1_prior.pt`` → state dict with keys ``encoder.*`` / ``decoder.*``."""
    path = Path(path)
    sd = _tensor_dict(load_torch_file(path, hint=f"steve1_prior.pt is published at {where_published('steve1_prior.pt')}"),
                      path, "the STEVE-1 prior")
    return strip_prefixes(sd, PRIOR_STRIP)


def read_attn_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """All ``model.*`` tensors of MineCLIP's ``attn.pth`` (keys keep ``model.``)."""
    path = Path(path)
    obj = load_torch_file(path, allow_placeholders=True,
                          hint=f"attn.pth is published at {where_published('attn.pth')}")
    if isinstance(obj, Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected {{'state_dict': {{...}}}} (MineCLIP checkpoint), got {type(obj).__name__}")
    return {k: v for k, v in obj.items() if isinstance(k, str) and k.startswith("model.") and isinstance(v, torch.Tensor)}


def read_mineclip_text_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The 149 text-tower tensors of ``attn.pth``, keys relative to ``model.clip_model.text_model.``."""
    return select_prefix(read_attn_state_dict(path), ATTN_TEXT_PREFIX)


# ----------------------------------------------------------------------------------------------------------
# 2x.model
# ----------------------------------------------------------------------------------------------------------

@dataclass
class TwoXModel:
    """What STEVE-1 reads from ``2x.model``: the policy kwargs and the pi-head temperature (None if absent)."""

    policy_kwargs: dict[str, Any]
    temperature: float | None


def read_2x_model(path: str | Path) -> TwoXModel:
    """Parse ``2x.model`` (plain-container pickle) without executing code."""
    path = Path(path)
    pkl = restricted_pickle_load(path, hint=f"2x.model is published at {where_published('2x.model')}")
    try:
        args = pkl["model"]["args"]
        net = args["net"]["args"]
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: not a VPT .model file: no ['model']['args']['net']['args'] ({e!r})") from e
    if not isinstance(net, Mapping):
        raise CheckpointError(f"{path}: ['model']['args']['net']['args'] is {type(net).__name__}, expected a mapping")
    temperature = None
    opts = args.get("pi_head_opts") if isinstance(args, Mapping) else None
    if isinstance(opts, Mapping) and "temperature" in opts:
        try:
            temperature = float(opts["temperature"])
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: pi_head_opts.temperature is not a number: {opts['temperature']!r}") from e
        if not temperature > 0:
            raise CheckpointError(f"{path}: pi_head_opts.temperature must be > 0, got {temperature}")
    return TwoXModel(policy_kwargs=dict(net), temperature=temperature)
