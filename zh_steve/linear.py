"""Linear layers for few-row inference: every product streams its weight once, at close to memory bandwidth.

At inference the policy and the text towers multiply a handful of rows (1 frame, 2 CFG streams, N envs, a few
tokens) by large fp32 weights, so every product is bound by reading the weight. Measured on this project's
2-core dev machine (AMD EPYC, 2 threads, DRAM streams at ~27–32 GB/s), per product:

- MKL's ``x @ W.T`` (what ``F.linear`` does) runs single-threaded for one row (~18 GB/s) and re-reads the weight
  for each of 2–16 rows (8192×2048 layer: 3.5 ms for 1 row, 7.9 ms for 2);
- oneDNN's inner-product (``torch.ops.mkldnn._linear_pointwise`` on the plain fp32 weight, no repacked copy)
  streams it with both threads: 8192×2048 in 2.1 ms for 1 row, 2048×8192 in 1.7 ms for 1 row and 2.5 ms for 2;
- the weight-major ``W @ x.T`` is best for 2–64 rows when the weight is tall (out ≥ in): 8192×2048, 2 rows 2.5 ms;
  768×768 and 3072×768 with 4 rows at ~27 GB/s, where oneDNN reaches ~18.

So: 2 rows on a tall weight (out ≥ in: the CFG pair), and 3–4 rows on a small tall one (< 4 M elements: a few
tokens through a text tower), go weight-major; every other 1..64-row product goes to oneDNN (one row, wide weights
(in > out: 768×3072 with 4 rows 0.49 ms vs 0.75 ms weight-major), and
3+ rows on the policy's large weights, e.g. batched envs: 8192×2048 with 4 rows 4.1 ms vs 7.2 ms weight-major);
everything else (more rows, autograd, other dtypes or devices) is plain ``F.linear``.
All three compute the same dot products in float32; they differ only in summation order (~1e-6 relative).

:class:`Linear` is a drop-in ``nn.Linear`` (same parameters and state-dict keys). :func:`use_weight_major`
switches the ``nn.Linear`` modules of an existing model (e.g. a transformers BERT) to it.

bfloat16 weights take another route: oneDNN's bf16 inner product on its own blocked weight layout.
:func:`pack_linears` re-lays a frozen model's bf16 weights once (:class:`PackedLinear`, no second copy kept).
Same results, bit for bit, as ``F.linear`` (which re-orders the plain weight on every call); per product, 4 rows,
2 threads: 3072×768 0.52 → 0.30 ms, 768×3072 0.30 → 0.20 ms, 768×768 0.107 → 0.073 ms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Row counts served by the few-row paths. Above it the product is compute-bound and MKL's usual layout is as good.
FEW_ROWS = (1, 64)
# Weights below this many elements fit the weight-major product for 3–4 rows (the text towers' 768×768, 3072×768).
SMALL_WEIGHT = 4 * 2**20


def _has_onednn_linear() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


HAS_ONEDNN = _has_onednn_linear()


def cpu_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); ``precision.native_bf16`` asks this."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes: assume not
        return False


def few_row_path(rows: int, out_features: int, in_features: int) -> str:
    """Which product serves ``rows`` rows of a CPU fp32 ``[out, in]`` weight: 'onednn', 'weight_major' or 'mkl'."""
    lo, hi = FEW_ROWS
    if not lo <= rows <= hi:
        return "mkl"
    tall = out_features >= in_features
    if tall and (rows == 2 or (3 <= rows <= 4 and out_features * in_features < SMALL_WEIGHT)):
        return "weight_major"
    if HAS_ONEDNN:
        return "onednn"
    return "weight_major" if rows >= 2 else "mkl"


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear`` with the few-row paths above (CPU, float32, 2-D weight, no autograd); [..., in] → [..., out]."""
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    if (x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32 or weight.dim() != 2
            or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))):
        return F.linear(x, weight, bias)
    path = few_row_path(rows, weight.shape[0], weight.shape[1])
    if path == "mkl":
        return F.linear(x, weight, bias)
    x2 = x.reshape(rows, x.shape[-1])
    if path == "onednn":
        out = torch.ops.mkldnn._linear_pointwise(x2.contiguous(), weight.contiguous(), bias, "none", [], "")
        return out.reshape(*x.shape[:-1], weight.shape[0])
    if bias is None:
        out = torch.mm(weight, x2.t())                                    # [out, rows]
    else:
        out = torch.addmm(bias[:, None], weight, x2.t())
    return out.t().contiguous().reshape(*x.shape[:-1], weight.shape[0])   # [..., out]


class Linear(nn.Linear):
    """``nn.Linear`` with the few-row products of :func:`linear` (same parameters, keys and results)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def use_weight_major(module: nn.Module) -> nn.Module:
    """Switch every plain ``nn.Linear`` inside ``module`` to :class:`Linear` in place; returns ``module``."""
    for m in module.modules():
        if type(m) is nn.Linear:
            m.__class__ = Linear
    return module


class PackedLinear(nn.Module):
    """Inference-only linear on a oneDNN-packed bfloat16 weight (CPU); results equal ``F.linear`` bit for bit.

    Holds only the packed weight (an opaque oneDNN tensor) and the bias. ``weight`` rebuilds the plain
    ``[out, in]`` tensor (a copy), and the state dict carries it under the usual ``weight`` key, so keys and
    values are those of the ``nn.Linear`` it replaced; ``load_state_dict`` re-packs a plain weight. Deep copies and
    pickles carry the plain weight. Not trainable; cast before packing (:func:`unpack_linears` undoes it)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, rows_hint: int = 4) -> None:
        super().__init__()
        if weight.dtype != torch.bfloat16 or weight.device.type != "cpu" or weight.dim() != 2:
            raise ValueError(f"PackedLinear packs 2-D bfloat16 CPU weights, got {weight.dtype} "
                             f"{list(weight.shape)} on {weight.device}")
        self.out_features, self.in_features = weight.shape
        self.rows_hint = rows_hint
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), rows_hint)  # blocked layout
        self.bias = None if bias is None else nn.Parameter(bias.detach(), requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        """The plain ``[out, in]`` weight, rebuilt from the packed one (a copy)."""
        return self.packed.to_dense()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.bfloat16 or x.device.type != "cpu":
            raise RuntimeError(f"PackedLinear multiplies bfloat16 CPU inputs, got {x.dtype} on {x.device}; "
                               "to change the model's dtype, unpack_linears() it first")
        x2 = x.reshape(-1, self.in_features).contiguous()
        out = torch.ops.mkldnn._linear_pointwise(x2, self.packed, self.bias, "none", [], "")
        return out.reshape(*x.shape[:-1], self.out_features)

    def _save_to_state_dict(self, destination, prefix, keep_vars):  # nn.Linear's keys, in its order
        destination[prefix + "weight"] = self.weight
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):  # a plain ``weight`` is re-packed; a mis-shaped one is reported as usual
        key = prefix + "weight"
        if key not in state_dict:
            missing_keys.append(key)
        elif tuple(state_dict[key].shape) != (self.out_features, self.in_features):
            error_msgs.append(f"size mismatch for {key}: copying a param with shape {tuple(state_dict[key].shape)}, "
                              f"the shape in current model is {(self.out_features, self.in_features)}.")
        else:
            weight = state_dict[key].detach().to(device="cpu", dtype=torch.bfloat16)
            self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), self.rows_hint)
        rest = {k: v for k, v in state_dict.items() if k != key}
        super()._load_from_state_dict(rest, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    # an opaque oneDNN tensor has no storage to copy or pickle: carry the plain weight and re-pack it
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["packed"] = self.packed.to_dense()
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        weight = state.pop("packed")
        super().__setstate__(state)
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, self.rows_hint)


def count_parameters(module: nn.Module) -> int:
    """Elements of ``module``'s parameters, a :class:`PackedLinear`'s packed weight counted as the plain one."""
    packed = sum(m.out_features * m.in_features for m in module.modules() if isinstance(m, PackedLinear))
    return sum(p.numel() for p in module.parameters()) + packed


def pack_linears(module: nn.Module, rows_hint: int = 4) -> int:
    """Replace every linear layer of ``module`` whose weight is bfloat16 on the CPU by a :class:`PackedLinear`,
    in place; returns how many. A no-op without oneDNN or on a CPU without native bfloat16 (where oneDNN would
    emulate it)."""
    if not (HAS_ONEDNN and hasattr(torch.ops.mkldnn, "_reorder_linear_weight") and cpu_native_bf16()):
        return 0
    n = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if (isinstance(child, nn.Linear) and child.weight.dtype == torch.bfloat16
                    and child.weight.device.type == "cpu"):
                setattr(parent, name, PackedLinear(child.weight, child.bias, rows_hint))
                n += 1
    if n:
        release_free_heap()
    return n


def release_free_heap() -> None:
    """Hand the heap pages freed by re-laid weights back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    The packed copies are new allocations and the plain weights they replace leave holes that glibc keeps:
    without this the full-size agent's peak RSS grew by ~60–115 MiB (``bench_memory``)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def unpack_linears(module: nn.Module) -> int:
    """Undo :func:`pack_linears`: every :class:`PackedLinear` becomes a :class:`Linear` again; returns how many."""
    n = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, PackedLinear):
                plain = Linear(child.in_features, child.out_features, bias=child.bias is not None,
                               device="meta")
                plain.weight = nn.Parameter(child.weight, requires_grad=False)
                if child.bias is not None:
                    plain.bias = nn.Parameter(child.bias.detach(), requires_grad=False)
                setattr(parent, name, plain)
                n += 1
    return n
