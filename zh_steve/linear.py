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
