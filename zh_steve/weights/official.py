"""Single-component weights files: STEVE-1's own files (where they sit in a weights dir, how to read them safely)
and the same tensors saved as safetensors in any documented key form.

Layout (as STEVE-1's ``download_weights.sh`` writes it under ``data/weights/``)::

    DIR/vpt/2x.model             pickle of plain containers: policy kwargs + pi-head temperature
    DIR/mineclip/attn.pth        torch checkpoint {"state_dict": {"model.<key>": Tensor}}; md5: published.ATTN_MD5
    DIR/steve1/steve1.weights    torch state dict, bare keys net.* / pi_head.* / value_head.*
    DIR/steve1/steve1_prior.pt   torch state dict, keys encoder.* / decoder.*

The same files directly in ``DIR`` are accepted too. :func:`read_state_dict` returns official key space; where
each file is published lives in :mod:`zh_steve.published`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import is_safetensors, restricted_pickle_load, safe_torch_load
from ..config_utils import load_config
from ..errors import CheckpointError, ConfigError, UnsafeCheckpointError, WeightsNotFoundError
from ..published import (ATTN_TEXT_PREFIX, COMPONENT_FILE, HUB_TEXT_PREFIX, OFFICIAL_FILES, POLICY_PREFIXES,
                         PRIOR_PREFIX, OfficialFile, where_published)

__all__ = ["KEY_FORMS", "OFFICIAL_FILES", "OfficialFile", "PolicyKwargsFile", "component_keys", "find_official_file",
           "load_torch_file", "read_2x_model", "read_attn_state_dict", "read_policy_kwargs", "read_state_dict"]


def find_official_file(weights_dir: str | Path, name: str) -> Path | None:
    """``DIR/<relpath>`` or ``DIR/<name>``, whichever exists (in that order)."""
    root = Path(weights_dir)
    for candidate in (root / OFFICIAL_FILES[name].relpath, root / name):
        if candidate.is_file():
            return candidate
    return None


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


# ----------------------------------------------------------------------------------------------------------
# single-component files: every documented form → official key space
# ----------------------------------------------------------------------------------------------------------

# prefixes stripped from the keys of a single-component file (first match wins), per component: DDP / accelerate /
# torch.compile wrappers, the MineStudio file's component prefixes, and attn.pth's text-model prefix
KEY_FORMS: dict[str, tuple[str, ...]] = {
    "policy": ("module.policy.", "policy.", "module."),
    "prior": (PRIOR_PREFIX, "_orig_mod.", "module."),
    "mineclip_text": (ATTN_TEXT_PREFIX, HUB_TEXT_PREFIX),
}
_OTHER_COMPONENT_PREFIXES = (PRIOR_PREFIX, "mineclip.", "model.")  # keys of other parts in a multi-part file


def component_keys(keys: list[str], component: str, where: str | Path) -> dict[str, str]:
    """official key → file key for ``component`` in a file holding ``keys`` (any documented key form).

    * policy: bare ``net.* / pi_head.* / value_head.*``, optionally under ``module.policy.``, ``policy.`` or
      ``module.``; in a multi-part file (the MineStudio layout) only the policy keys are taken.
    * prior: ``encoder.* / decoder.*``, optionally under ``prior.`` (MineStudio), ``_orig_mod.`` or ``module.``.
    * mineclip_text: ``model.clip_model.text_model.*`` (attn.pth), ``mineclip.clip_model.text_model.*``
      (MineStudio / text block) or bare keys; other MineCLIP tensors are ignored.
    """
    if component == "mineclip_text":
        for prefix in KEY_FORMS["mineclip_text"]:
            if any(k.startswith(prefix) for k in keys):
                return {k[len(prefix):]: k for k in keys if k.startswith(prefix)}
        if any(k.startswith(("model.", "mineclip.")) for k in keys):
            raise CheckpointError(f"{where} holds MineCLIP tensors but no {ATTN_TEXT_PREFIX}* or {HUB_TEXT_PREFIX}* "
                                  f"keys (the text tower). attn.pth is published at {where_published('attn.pth')}")
        return {k: k for k in keys}
    if component == "prior" and any(k.startswith(PRIOR_PREFIX) for k in keys):
        keys = [k for k in keys if k.startswith(PRIOR_PREFIX)]
    if component == "policy" and any(k.startswith(_OTHER_COMPONENT_PREFIXES) for k in keys) \
            and any(k.startswith(POLICY_PREFIXES) for k in keys):
        keys = [k for k in keys if k.startswith(POLICY_PREFIXES)]
    out: dict[str, str] = {}
    for key in keys:
        official = next((key[len(p):] for p in KEY_FORMS[component] if key.startswith(p)), key)
        out[official] = key
    return out


def _hint(component: str) -> str:
    name = COMPONENT_FILE[component]
    return f"{name} is published at {where_published(name)}"


def _unwrap(obj: Any, path: Path, component: str) -> Mapping[str, Any]:
    """The state dict inside a torch file: attn.pth wraps it in ``{"state_dict": ...}``; the others are flat."""
    if component == "mineclip_text" and isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a state dict (mapping of tensors) for the {component}, "
                              f"got {type(obj).__name__}")
    if component != "mineclip_text":  # attn.pth also holds non-model entries; the others must be flat
        bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
        if bad:
            raise CheckpointError(f"{path}: expected a flat state dict (str → Tensor) for the {component}; "
                                  f"non-tensor entries: {bad[:10]}")
    return obj


def read_state_dict(path: str | Path, component: str) -> dict[str, torch.Tensor]:
    """One component of a single file, in official key space (dtypes as stored).

    The file is a torch checkpoint (``steve1.weights``, ``steve1_prior.pt``, ``attn.pth``: weights-only,
    memory-mapped) or a safetensors file (only the component's tensors are read), in any key form
    :func:`component_keys` documents.
    """
    if component not in KEY_FORMS:
        raise KeyError(f"unknown component {component!r}; expected one of {list(KEY_FORMS)}")
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{component} weights not found: {path}. {_hint(component)}")
    if path.suffix == ".safetensors" or is_safetensors(path):
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                mapping = component_keys(list(f.keys()), component, path)
                return {ok: f.get_tensor(fk) for ok, fk in mapping.items()}
        except CheckpointError:
            raise
        except Exception as e:  # safetensors raises its own types for corrupt data
            raise CheckpointError(f"could not read {path} as safetensors: {e}") from e
    obj = _unwrap(load_torch_file(path, allow_placeholders=component == "mineclip_text", hint=_hint(component)),
                  path, component)
    mapping = component_keys([k for k in obj if isinstance(k, str)], component, path)
    bad = [fk for fk in mapping.values() if not isinstance(obj[fk], torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: {component} entries that are not tensors: {bad[:10]}")
    return {ok: obj[fk] for ok, fk in mapping.items()}


def read_attn_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """All ``model.*`` tensors of MineCLIP's ``attn.pth`` (keys keep ``model.``): what check_weights counts."""
    path = Path(path)
    obj = _unwrap(load_torch_file(path, allow_placeholders=True, hint=_hint("mineclip_text")), path,
                  "mineclip_text")
    return {k: v for k, v in obj.items() if isinstance(k, str) and k.startswith("model.") and isinstance(v, torch.Tensor)}


# ----------------------------------------------------------------------------------------------------------
# 2x.model
# ----------------------------------------------------------------------------------------------------------

@dataclass
class PolicyKwargsFile:
    """What STEVE-1 reads from ``2x.model``: the policy kwargs and the pi-head temperature (None if absent)."""

    policy_kwargs: dict[str, Any]
    temperature: float | None


def read_policy_kwargs(path: str | Path) -> PolicyKwargsFile:
    """Policy kwargs (+ optional temperature) from ``2x.model`` or a YAML/JSON file.

    YAML/JSON: ``{policy_kwargs: {...}, pi_head_kwargs: {temperature: T}}`` or the bare kwargs (optionally with a
    top-level ``temperature``). Key names are checked later, by ``zh_steve.policy.PolicyConfig.from_kwargs``.
    """
    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        return read_2x_model(path)
    data = load_config(path)
    head: Any = {}
    if "policy_kwargs" in data:
        unknown = sorted(set(data) - {"policy_kwargs", "pi_head_kwargs", "temperature"})
        if unknown:
            raise ConfigError(f"{path}: unknown top-level key(s) {unknown}; expected 'policy_kwargs' and optionally "
                              "'pi_head_kwargs'")
        kwargs, head = data["policy_kwargs"], data.get("pi_head_kwargs") or {}
    else:
        kwargs = {k: v for k, v in data.items() if k not in ("temperature", "pi_head_kwargs")}
        head = data.get("pi_head_kwargs") or {}
    if not isinstance(kwargs, Mapping) or not isinstance(head, Mapping):
        raise ConfigError(f"{path}: policy_kwargs and pi_head_kwargs must be mappings")
    unknown = sorted(set(head) - {"temperature"})
    if unknown:
        raise ConfigError(f"{path}: pi_head_kwargs: unknown key(s) {unknown}; only 'temperature' is supported")
    temperature = head.get("temperature", data.get("temperature"))
    return PolicyKwargsFile(dict(kwargs), _temperature(temperature, path))


def _temperature(value: Any, path: Path) -> float | None:
    if value is None:
        return None
    try:
        t = float(value)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: the pi-head temperature is not a number: {value!r}") from e
    if not t > 0:
        raise CheckpointError(f"{path}: the pi-head temperature must be > 0, got {t}")
    return t


def read_2x_model(path: str | Path) -> PolicyKwargsFile:
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
    opts = args.get("pi_head_opts") if isinstance(args, Mapping) else None
    temperature = _temperature(opts.get("temperature"), path) if isinstance(opts, Mapping) else None
    return PolicyKwargsFile(policy_kwargs=dict(net), temperature=temperature)
