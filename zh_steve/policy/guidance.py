"""Classifier-free guidance and Gumbel-max action sampling."""

from __future__ import annotations

import torch

from ..errors import ZhSteveError
from .heads import at_least_float32


def guide(logp_cond: torch.Tensor, logp_uncond: torch.Tensor, cond_scale: float) -> torch.Tensor:
    """STEVE-1's guided log-scores ``(1 + s)·logp_cond − s·logp_uncond`` (not renormalised)."""
    s = float(cond_scale)
    return (1.0 + s) * at_least_float32(logp_cond) - s * at_least_float32(logp_uncond)


def gumbel_argmax(logp: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Index of ``argmax(logp − log(−log u))`` over the last axis, ``u ~ U[0, 1)``: a sample ∝ exp(logp).

    The noise is float32 at least: in bfloat16 ``−log(−log u)`` would be capped near 5.5 (16 in float32) and the
    sampling nearly greedy."""
    logp = at_least_float32(logp)
    gen_device = generator.device if generator is not None else logp.device
    u = torch.rand(logp.shape, generator=generator, device=gen_device, dtype=logp.dtype).to(logp.device)
    return torch.argmax(logp - torch.log(-torch.log(u)), dim=-1)


def _one_row(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.dim() == 2 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 1 or x.numel() == 0:
        raise ZhSteveError(f"sample_action: {name} must have shape [N] or [1, N], got {list(x.shape)}")
    return x


def sample_action(
    buttons_logp: torch.Tensor,
    camera_logp: torch.Tensor,
    generator: torch.Generator | None = None,
    deterministic: bool = False,
) -> tuple[int, int]:
    """(buttons_idx, camera_idx) from one step's (guided) log-scores; Gumbel-max, or argmax if deterministic."""
    buttons_logp = _one_row(buttons_logp.detach(), "buttons_logp")
    camera_logp = _one_row(camera_logp.detach(), "camera_logp")
    if deterministic:
        return int(buttons_logp.argmax()), int(camera_logp.argmax())
    return int(gumbel_argmax(buttons_logp, generator)), int(gumbel_argmax(camera_logp, generator))
