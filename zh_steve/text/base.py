"""The one interface every text encoder implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class TextEncoder(Protocol):
    """A frozen text encoder: a list of strings in, a float32 CPU tensor ``[N, dim]`` out.

    ``identity`` names the exact model (architecture + weights source + tokenizer) so embedding caches
    can key on it; two encoders with different weights must never share an identity.
    """

    identity: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> torch.Tensor: ...
