"""Action head (``pi_head``: buttons + camera) and value head (``value_head``) of the VPT policy."""

from __future__ import annotations

import torch
from torch import nn

from ..linear import Linear

N_BUTTONS = 8641  # joint button combinations of CameraHierarchicalMapping (8640 + "inventory")
N_CAMERA = 121    # 11 × 11 joint camera bins


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 → float32; float32/float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class CategoricalHead(nn.Module):
    """One categorical distribution: ``linear_layer`` logits; log-probs are ``log_softmax(logits / T)``."""

    def __init__(self, hidsize: int, n: int):
        super().__init__()
        self.linear_layer = Linear(hidsize, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(x)


class ActionHead(nn.Module):
    """``pi_head``: buttons [.., 8641] and camera [.., 121] (registered camera first, as officially)."""

    def __init__(self, hidsize: int, temperature: float):
        super().__init__()
        self.temperature = float(temperature)
        self.camera = CategoricalHead(hidsize, N_CAMERA)
        self.buttons = CategoricalHead(hidsize, N_BUTTONS)

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """``log_softmax(logits / T)`` computed in float32 at least (half-precision logits are cast first, as
        the official code does), so low-precision runs keep the action distribution."""
        return torch.log_softmax(at_least_float32(logits) / self.temperature, dim=-1)


class EwmaNormalizer(nn.Module):
    """Value normaliser statistics (non-trainable parameters, stored in the checkpoint).

    The debiased mean is ``running_mean / max(debiasing_term, eps)``; the variance is
    ``running_mean_sq / max(debiasing_term, eps) - mean²``, floored at ``min_var``.
    """

    def __init__(self, eps: float = 1e-5, min_var: float = 1e-2):
        super().__init__()
        self.eps, self.min_var = eps, min_var
        self.running_mean = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.running_mean_sq = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.debiasing_term = nn.Parameter(torch.tensor(0.0), requires_grad=False)

    def mean_var(self) -> tuple[torch.Tensor, torch.Tensor]:
        debias = self.debiasing_term.clamp(min=self.eps)
        mean = self.running_mean / debias
        var = (self.running_mean_sq / debias - mean**2).clamp(min=self.min_var)
        return mean, var

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean_var()
        return x * var.sqrt() + mean


class ValueHead(nn.Module):
    """``value_head``: ``linear`` (hidsize → 1) and the EWMA ``normalizer``."""

    def __init__(self, hidsize: int):
        super().__init__()
        self.linear = Linear(hidsize, 1)
        self.normalizer = EwmaNormalizer()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[..., hidsize] → (raw [...], denormalised [...])."""
        raw = self.linear(x)[..., 0]
        return raw, self.normalizer.denormalize(raw)
