"""Clipped-causal self-attention over a rolling key/value memory, with a learned relative-position bias.

Shapes: B batch, t new frames, L = ``maxlen`` remembered frames, T = L + t keys, h heads, d head size.

Semantics (matching the official VPT transformer, pinned by the golden fixtures):

* keys/values of the new frames are appended to the L remembered ones; the last L are kept as memory;
* query i (the frame at key position L + i) may attend key j when it lies ``δ = (L + i) − j`` frames
  back with ``0 <= δ < L``: itself and the ``L - 1`` frames before it;
* a memory slot (j < L) is also hidden when its ``mask`` bit is off (a fresh memory is all off, so the
  zero keys are never seen) or when the chunk's **first** frame has ``first=True``. Only ``first[:, 0]``
  is consulted, as in the official code; a ``first`` in the middle of a chunk does not cut the attention;
* logits are ``q·k / d`` (muP scale) plus a relative-position bias indexed by how many frames back the
  key is, ``δ = (L + i) − j`` (0 = the frame itself, L − 1 = the oldest visible one):
  ``bias[i, j] = Σ_n r[i, n] · b_nd[n, δ]`` where ``r = r_layer(x)`` holds ``nbasis`` weights per head
  (laid out head-major: ``[..., (h, n)]``);
* the block returns ``x + proj(attention)`` (x is the already layer-normed input).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..linear import Linear

N_BASIS = 10  # relative-position basis functions per head (official constant)


@dataclass
class LayerMemory:
    """Attention memory of one block: ``mask`` bool [B, 1, L], ``k``/``v`` [B, L, hidsize]."""

    mask: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor

    def map(self, fn) -> "LayerMemory":
        return LayerMemory(fn(self.mask), fn(self.k), fn(self.v))


def relative_bias(r: torch.Tensor, b_nd: torch.Tensor, t: int) -> torch.Tensor:
    """[B, h, t, n] weights × [n, L] basis → [B, h, t, L + t] bias; zero outside the visible band."""
    maxlen = b_nd.shape[1]
    per_delta = torch.einsum("bhtn,nl->bhtl", r, b_nd)                     # [B, h, t, L]; l = frames back
    per_delta = torch.nn.functional.pad(per_delta, (0, 1))                 # slot L holds 0
    rows = torch.arange(t, device=r.device)[:, None]
    cols = torch.arange(maxlen + t, device=r.device)[None, :]
    delta = rows + maxlen - cols                                           # [t, T]
    delta = torch.where((delta >= 0) & (delta < maxlen), delta, torch.full_like(delta, maxlen))
    return per_delta.gather(-1, delta.expand(*per_delta.shape[:2], t, maxlen + t))


def attention_mask(memory_mask: torch.Tensor, first0: torch.Tensor, t: int) -> torch.Tensor:
    """Bool [B, 1, t, T]: which keys each new frame may attend (see the module docstring)."""
    maxlen = memory_mask.shape[-1]
    rows = torch.arange(t, device=first0.device)[:, None]
    cols = torch.arange(maxlen + t, device=first0.device)[None, :]
    delta = rows + maxlen - cols                                           # frames back, [t, T]
    band = (delta >= 0) & (delta < maxlen)
    past_ok = memory_mask[:, 0, :] & ~first0[:, None]                      # [B, L]
    ones = torch.ones(first0.shape[0], t, dtype=torch.bool, device=first0.device)
    key_ok = torch.cat([past_ok, ones], dim=1)                             # [B, T]
    return (band[None] & key_ok[:, None, :])[:, None]


def next_memory_mask(memory_mask: torch.Tensor, first0: torch.Tensor, t: int) -> torch.Tensor:
    """Shift in ``t`` visible slots; older slots survive only if the chunk did not start an episode."""
    b, _, maxlen = memory_mask.shape
    kept = memory_mask[:, :, t:] & ~first0[:, None, None]
    fresh = torch.ones(b, 1, min(t, maxlen), dtype=torch.bool, device=memory_mask.device)
    return torch.cat([kept, fresh], dim=-1)


class RelativeSelfAttention(nn.Module):
    """``orc_block``: q (bias), k, v (no bias), proj (bias), ``r_layer`` and ``b_nd`` for the position bias."""

    def __init__(self, hidsize: int, heads: int, maxlen: int):
        super().__init__()
        self.heads, self.maxlen = heads, maxlen
        self.b_nd = nn.Parameter(torch.randn(N_BASIS, maxlen) * 0.01)
        self.q_layer = Linear(hidsize, hidsize)
        self.k_layer = Linear(hidsize, hidsize, bias=False)
        self.v_layer = Linear(hidsize, hidsize, bias=False)
        self.proj_layer = Linear(hidsize, hidsize)
        self.r_layer = Linear(hidsize, N_BASIS * heads)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, -1).transpose(1, 2)            # [B, h, n, d]

    def forward(self, x: torch.Tensor, first0: torch.Tensor, memory: LayerMemory
                ) -> tuple[torch.Tensor, LayerMemory]:
        b, t, hid = x.shape
        keys = torch.cat([memory.k, self.k_layer(x)], dim=1)                # [B, T, hid]
        values = torch.cat([memory.v, self.v_layer(x)], dim=1)
        q, k, v = self._split(self.q_layer(x)), self._split(keys), self._split(values)
        d = q.shape[-1]
        r = self.r_layer(x).reshape(b, t, self.heads, N_BASIS).transpose(1, 2)  # [B, h, t, n]
        # softmax(q·kᵀ / d + position bias, masked) · v; SDPA reads k and v in their strided [B, h, T, d] views
        # (an explicit q @ kᵀ copies the transposed keys every step)
        bias = relative_bias(r, self.b_nd, t)                                # [B, h, t, T]
        bias = bias.masked_fill(~attention_mask(memory.mask, first0, t), float("-inf"))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0 / d)
        out = out.transpose(1, 2).reshape(b, t, hid)
        new_memory = LayerMemory(
            mask=next_memory_mask(memory.mask, first0, t),
            k=keys[:, -self.maxlen:],
            v=values[:, -self.maxlen:],
        )
        return x + self.proj_layer(out), new_memory


class MemoryAttention(nn.Module):
    """``r``: wraps :class:`RelativeSelfAttention` under the official ``orc_block`` name."""

    def __init__(self, hidsize: int, heads: int, maxlen: int):
        super().__init__()
        self.orc_block = RelativeSelfAttention(hidsize, heads, maxlen)

    def forward(self, x: torch.Tensor, first0: torch.Tensor, memory: LayerMemory
                ) -> tuple[torch.Tensor, LayerMemory]:
        return self.orc_block(x, first0, memory)
