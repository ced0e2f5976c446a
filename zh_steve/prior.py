"""STEVE-1's prior: a conditional VAE mapping a MineCLIP text embedding to a "visual-like" goal embedding.

Architecture of the official ``TranslatorVAE`` (``steve1_prior.pt``, 20 keys, 2,366,976 parameters at 512/512/512):

    encoder: Linear(2D→H) · LayerNorm(H) · ReLU · Linear(H→H) · LayerNorm(H) · ReLU · Linear(H→2L)
             input cat([visual, text]) → (mu, logvar)                       (training only)
    decoder: Linear(L+D→H) · LayerNorm(H) · ReLU · Linear(H→H) · LayerNorm(H) · ReLU · Linear(H→D)
             input cat([z, text])  (z first)

Inference ignores the encoder: z ~ N(0, I) (one sample per instruction; ``deterministic`` uses z = 0).
Nothing is normalised: the input is MineCLIP's raw ``encode_text`` output and the output goes straight to the
policy as its goal. Files are read by :mod:`zh_steve.weights` (``read_state_dict(path, "prior")``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .checkpoint import load_state_dict_strict
from .errors import CheckpointError, InvalidGoalError
from .published import HUB_REPO_ID, PRIOR_PREFIX, where_published

PRIOR_HINT = (f"The STEVE-1 prior is steve1_prior.pt from the STEVE-1 release ({where_published('steve1_prior.pt')}) "
              f"or the {PRIOR_PREFIX}* keys of the MineStudio hub file {HUB_REPO_ID}; read it with zh_steve.weights.")


@dataclass(frozen=True)
class PriorConfig:
    input_dim: int = 512   # D: MineCLIP embedding size (text in, visual out)
    hidden_dim: int = 512  # H
    latent_dim: int = 512  # L


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    # indices 0,1,3,4,6 carry weights: the official state-dict layout
    return nn.Sequential(
        nn.Linear(d_in, d_hidden), nn.LayerNorm(d_hidden), nn.ReLU(),
        nn.Linear(d_hidden, d_hidden), nn.LayerNorm(d_hidden), nn.ReLU(),
        nn.Linear(d_hidden, d_out),
    )


class Steve1Prior(nn.Module):
    def __init__(self, config: PriorConfig = PriorConfig()) -> None:
        super().__init__()
        self.config = config
        d, h, latent = config.input_dim, config.hidden_dim, config.latent_dim
        self.encoder = _mlp(2 * d, h, 2 * latent)  # [N, 2D] → [N, 2L]
        self.decoder = _mlp(latent + d, h, d)      # [N, L+D] → [N, D]

    # -- input checks --------------------------------------------------------------------------------------
    def _check(self, x: torch.Tensor, dim: int, what: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InvalidGoalError(f"{what} must be a torch.Tensor [N, {dim}], got {type(x).__name__}")
        if x.ndim != 2 or x.shape[-1] != dim:
            raise InvalidGoalError(f"{what} must have shape [N, {dim}], got {list(x.shape)}")
        if not torch.is_floating_point(x):
            raise InvalidGoalError(f"{what} must be a floating tensor, got {x.dtype}")
        if not bool(torch.isfinite(x).all()):
            raise InvalidGoalError(f"{what} contains NaN or inf")
        ref = self.decoder[0].weight
        return x.to(device=ref.device, dtype=ref.dtype)

    # -- the two halves ------------------------------------------------------------------------------------
    def encode(self, visual: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """[N, D], [N, D] → [N, 2L]; ``mu, logvar = out.chunk(2, dim=-1)``. Used only in training."""
        d = self.config.input_dim
        visual, text = self._check(visual, d, "visual embedding"), self._check(text, d, "text embedding")
        return self.encoder(torch.cat([visual, text], dim=-1))

    def decode(self, z: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """[N, L], [N, D] → goal embedding [N, D]."""
        z = self._check(z, self.config.latent_dim, "latent z")
        text = self._check(text, self.config.input_dim, "text embedding")
        if z.shape[0] != text.shape[0]:
            raise InvalidGoalError(f"z and text batch sizes differ: {z.shape[0]} vs {text.shape[0]}")
        return self.decoder(torch.cat([z, text], dim=-1))

    def sample(
        self,
        text_embed: torch.Tensor,
        generator: torch.Generator | None = None,
        deterministic: bool = False,
    ) -> torch.Tensor:
        """MineCLIP text embeddings [N, D] → goal embeddings [N, D].

        z ~ N(0, I) is drawn as float32 ``torch.randn([N, L])`` from ``generator`` (on its device) or, when None,
        from the global RNG of the model's device, as the official code does; then cast to the model's dtype.
        ``deterministic`` uses z = 0.
        """
        text = self._check(text_embed, self.config.input_dim, "text embedding")
        shape = (text.shape[0], self.config.latent_dim)
        if deterministic:
            z = torch.zeros(shape, device=text.device, dtype=text.dtype)
        else:
            device = generator.device if generator is not None else text.device
            z = torch.randn(shape, generator=generator, device=device, dtype=torch.float32).to(text)
        return self.decode(z, text)

    def forward(
        self, text_embed: torch.Tensor, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.sample(text_embed, generator=generator, deterministic=deterministic)

    # -- loading -------------------------------------------------------------------------------------------
    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, torch.Tensor], config: PriorConfig | None = None) -> Steve1Prior:
        """Build (sizes read from the tensors unless ``config`` is given) and load strictly; eval mode."""
        model = cls(config or config_from_state_dict(state_dict))
        load_state_dict_strict(model, state_dict, what="STEVE-1 prior state dict", hint=PRIOR_HINT)
        return model.eval()


def config_from_state_dict(state_dict: Mapping[str, torch.Tensor]) -> PriorConfig:
    """Read D, H, L from the decoder's first and last Linear (mismatches elsewhere are caught by strict loading)."""
    need = ("decoder.0.weight", "decoder.6.weight")
    missing = [k for k in need if k not in state_dict]
    if missing:
        raise CheckpointError(f"not a STEVE-1 prior state dict: missing {missing} (keys: {list(state_dict)[:10]})")
    d_out, hidden = tuple(state_dict["decoder.6.weight"].shape)   # [D, H]
    hidden0, d_in = tuple(state_dict["decoder.0.weight"].shape)   # [H, L+D]
    if hidden0 != hidden or d_in <= d_out:
        raise CheckpointError(
            f"inconsistent STEVE-1 prior shapes: decoder.0.weight {[hidden0, d_in]}, decoder.6.weight {[d_out, hidden]}"
        )
    return PriorConfig(input_dim=d_out, hidden_dim=hidden, latent_dim=d_in - d_out)
