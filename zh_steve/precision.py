"""Runtime precision of the agent's models: the ``dtype`` setting of :class:`zh_steve.agent.AgentConfig`.

* ``float32`` (default), ``float64``, ``float16``, ``bfloat16``: the weights are stored in that dtype. Whatever the
  dtype, the policy head casts its logits to float32 before temperature and log-softmax, and guidance and the
  Gumbel noise stay float32 (as the official code does), so the action distribution is kept.
* ``autocast``: float32 weights, matrix products under ``torch.autocast`` (float16 on CUDA as in the official GPU
  runs, bfloat16 on CPU); norms and softmax stay float32.
* ``int8-dynamic`` (CPU only, opt-in): every linear layer of the policy becomes a dynamically quantised int8
  linear (weights int8 per tensor, activations quantised per call). Its per-step KL to float32 is reported by
  ``python -m eval.benchmarks`` (``precision`` section).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from .errors import ConfigError
from .linear import Linear, cpu_native_bf16, pack_linears

STORAGE_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64,
    "autocast": torch.float32, "int8-dynamic": torch.float32,
}


def storage_dtype(name: str) -> torch.dtype:
    """The dtype the weights are stored in for the ``dtype`` setting ``name``."""
    if name not in STORAGE_DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(STORAGE_DTYPES)}, got {name!r}")
    return STORAGE_DTYPES[name]


def native_bf16(device: str) -> bool:
    """Whether ``device`` multiplies bfloat16 natively (CUDA with bf16; a CPU with AVX512-BF16 or AMX)."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_native_bf16()


CHINESE_CLIP_DTYPES = ("auto", "float32", "bfloat16")


def chinese_clip_dtype(name: str, agent_dtype: str, device: str) -> torch.dtype | None:
    """The Chinese-CLIP tower's run-time dtype for the ``chinese_clip_dtype`` setting, or None to follow ``dtype``.

    ``auto``: bfloat16 for a float32 agent on a device with native bf16, else follow ``dtype``. For a few tokens
    the tower is bound by reading its 344 MB of weights; in bfloat16 it reads half (measured: "砍树" 22.5 → 18.1 ms
    p50 on 2 cores; cosine to float32 min 0.99989 over the 187 free-form instructions, random full-size weights),
    and the alignment layer was trained on bfloat16-computed embeddings anyway (``alignment.train``'s bulk pass).
    The policy is not affected."""
    if name not in CHINESE_CLIP_DTYPES:
        raise ConfigError(f"chinese_clip_dtype must be one of {list(CHINESE_CLIP_DTYPES)}, got {name!r}")
    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        return torch.bfloat16
    return torch.bfloat16 if agent_dtype == "float32" and native_bf16(device) else None


def autocast_dtype(device: torch.device) -> torch.dtype:
    """float16 on CUDA (the official GPU runs), bfloat16 elsewhere (CPU autocast)."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


@contextlib.contextmanager
def compute_context(name: str, device: torch.device) -> Iterator[None]:
    """``torch.autocast`` for ``dtype: autocast``; nothing otherwise."""
    if name == "autocast":
        with torch.autocast(device_type=device.type, dtype=autocast_dtype(device)):
            yield
    else:
        yield


def quantize_int8_dynamic(module: nn.Module) -> nn.Module:
    """Replace every linear layer inside ``module`` by a dynamically quantised int8 one (CPU); in place.

    Returns ``module``. Idempotent (already quantised layers are skipped)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear
    from torch.ao.quantization import default_dynamic_qconfig

    for p in module.parameters():
        if p.device.type != "cpu":
            raise ConfigError("dtype 'int8-dynamic' runs on the CPU only; use device: cpu (or dtype: autocast)")
        break
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) in (nn.Linear, Linear):
                child.__class__ = nn.Linear  # (our weight-major subclass has the same parameters)
                child.qconfig = default_dynamic_qconfig
                with warnings.catch_warnings():  # torch.ao.quantization's deprecation notice
                    warnings.simplefilter("ignore")
                    q = DynamicQuantizedLinear.from_float(child.float())
                setattr(parent, name, q)
    return module


def prepare_parts(parts, name: str):
    """Apply the ``dtype`` setting's module transform to an agent's parts, in place (idempotent):

    * ``int8-dynamic``: the policy's linear layers are quantised. The text towers stay float32: int8 moved their
      features to cosine 0.9987 of float32 on the eval phrasings (full-size random weights), below the 0.999 bar;
      the prior and the alignment layer are tiny.
    * ``bfloat16`` on a CPU with native bf16: the policy's linear weights are packed for oneDNN once
      (:func:`zh_steve.linear.pack_linears`; full-size guided step 78.8 → 72.1 ms on 2 cores)."""
    storage_dtype(name)
    if name == "int8-dynamic":
        quantize_int8_dynamic(parts.policy)
    if name == "bfloat16":
        pack_linears(parts.policy)  # only bf16 CPU weights on a native-bf16 CPU; a CUDA policy is left alone
    return parts
