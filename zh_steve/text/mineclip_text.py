"""MineCLIP's text tower (the CLIP text transformer STEVE-1 uses to embed English instructions).

Architecture (facts from the official config): token + learned position embeddings, ``layers`` pre-LN residual
blocks (causal multi-head self-attention, QuickGELU MLP of width 4w), ``ln_final``, and the feature of the EOS
token (the position of the largest id in each row) multiplied by ``projection [width, embed_dim]``.
The output is the raw projected EOS feature: no L2 normalisation, no logit scale.

Parameter names equal the official ones below the prefix ``model.clip_model.text_model.`` of ``attn.pth``, so
an official state dict loads without renaming. Files are read by :mod:`zh_steve.weights`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_state_dict_strict
from ..errors import CheckpointError, ConfigError, ZhSteveError
from ..published import HUB_REPO_ID, HUB_WEIGHTS_FILE, where_published
from ..linear import linear, use_weight_major
from .batching import length_sorted_batches
from .clip_tokenizer import MineClipTokenizer

WEIGHTS_HINT = (f"The MineCLIP weights are attn.pth of the MineCLIP release ({where_published('attn.pth')}), or the "
                f"MineStudio hub file {HUB_REPO_ID} {HUB_WEIGHTS_FILE}; read them with zh_steve.weights")


class TokenShapeError(ZhSteveError, ValueError):
    """Token ids given to the text tower have the wrong shape, dtype or range."""


# ----------------------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------------------

@dataclass
class MineClipTextConfig:
    embed_dim: int = 512       # projection output
    width: int = 512
    layers: int = 12
    heads: int = 8
    context_length: int = 77
    vocab_size: int = 49408

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"MineClipTextConfig.{name} must be a positive int, got {value!r}")
        if self.width % self.heads:
            raise ConfigError(f"MineClipTextConfig: width {self.width} is not divisible by heads {self.heads}")


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention with a causal mask; q, k, v projections stacked by rows in ``in_proj_*``."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))  # rows: [q; k; v]
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [N, L, W]
        n, length, width = x.shape
        qkv = linear(x, self.in_proj_weight, self.in_proj_bias)              # [N, L, 3W]
        qkv = qkv.view(n, length, 3, self.heads, width // self.heads)        # [N, L, 3, H, D]
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                                  # each [N, H, L, D]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)          # scale 1/sqrt(D)
        return self.out_proj(y.transpose(1, 2).reshape(n, length, width))

    def forward_at(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """The attention output at one position per row: x [N, L, W], pos [N] → [N, W]. Keys and values of
        every position, the query at ``pos`` only, which sees positions ≤ ``pos`` (causal)."""
        n, length, width = x.shape
        heads, d = self.heads, width // self.heads
        rows = torch.arange(n, device=x.device)
        q = linear(x[rows, pos], self.in_proj_weight[:width], self.in_proj_bias[:width])        # [N, W]
        kv = linear(x, self.in_proj_weight[width:], self.in_proj_bias[width:])                 # [N, L, 2W]
        k, v = kv.view(n, length, 2, heads, d).permute(2, 0, 3, 1, 4)                          # [N, H, L, D]
        visible = torch.arange(length, device=x.device)[None, :] <= pos[:, None]               # [N, L]
        y = F.scaled_dot_product_attention(q.view(n, heads, 1, d), k, v, attn_mask=visible[:, None, None, :])
        return self.out_proj(y.reshape(n, width))


class Mlp(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.act = QuickGELU()
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.act(self.c_fc(x)))


class Block(nn.Module):
    """Pre-LN residual block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = Mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

    def forward_at(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """The block's output at one position per row ([N, L, W], [N] → [N, W])."""
        h = x[torch.arange(x.shape[0], device=x.device), pos] + self.attn.forward_at(self.ln_1(x), pos)
        return h + self.mlp(self.ln_2(h))


@dataclass
class MineClipTextOutput:
    text_embed: torch.Tensor            # [N, embed_dim]
    block_hidden: list[torch.Tensor]    # per block, [N, L, width]
    final_hidden: torch.Tensor          # after ln_final, [N, L, width]


class MineClipTextModel(nn.Module):
    """Token ids ``[N, L<=context_length]`` (EOS = largest id per row) → raw text embedding ``[N, embed_dim]``."""

    def __init__(self, config: MineClipTextConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MineClipTextConfig()
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.pos_embed = nn.Parameter(torch.empty(config.context_length, config.width))
        self.blocks = nn.ModuleList(Block(config.width, config.heads) for _ in range(config.layers))
        self.ln_final = nn.LayerNorm(config.width)
        self.projection = nn.Parameter(torch.empty(config.width, config.embed_dim))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None, scale: float = 1.0) -> None:
        """CLIP-style normal init (std ~ width^-1/2), multiplied by ``scale``; norms 1/0, biases 0."""
        if self.pos_embed.is_meta:
            return
        c = self.config
        attn_std, fc_std = c.width ** -0.5, (2 * c.width) ** -0.5
        proj_std = attn_std * (2 * c.layers) ** -0.5

        def normal_(t: torch.Tensor, std: float) -> None:
            t.copy_(torch.randn(t.shape, generator=generator) * std * scale)

        normal_(self.token_embedding.weight, 0.02)
        normal_(self.pos_embed, 0.01)
        for block in self.blocks:
            normal_(block.attn.in_proj_weight, attn_std)
            normal_(block.attn.out_proj.weight, proj_std)
            normal_(block.mlp.c_fc.weight, fc_std)
            normal_(block.mlp.c_proj.weight, proj_std)
            for name, p in block.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
            for ln in (block.ln_1, block.ln_2):
                ln.weight.fill_(1.0)
        self.ln_final.weight.fill_(1.0)
        self.ln_final.bias.zero_()
        normal_(self.projection, attn_std)

    def _check_tokens(self, tokens: torch.Tensor) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.dtype not in (torch.long, torch.int):
            raise TokenShapeError("tokens must be an integer tensor [N, L]")
        if tokens.shape[1] > self.config.context_length:
            raise TokenShapeError(f"tokens have length {tokens.shape[1]} > context {self.config.context_length}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.config.vocab_size):
            raise TokenShapeError(f"token ids must lie in [0, {self.config.vocab_size})")

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Checked token ids [N, L] → token + position embeddings [N, L, W]."""
        self._check_tokens(tokens)
        return self.token_embedding(tokens) + self.pos_embed[:tokens.shape[1]]

    def run(self, tokens: torch.Tensor) -> MineClipTextOutput:
        """Forward pass that also returns the hidden states (for golden comparisons and probing)."""
        x = self._embed(tokens)                                              # [N, L, W]
        hidden = []
        for block in self.blocks:
            x = block(x)
            hidden.append(x)
        x = self.ln_final(x)
        eos = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]  # [N, W]
        return MineClipTextOutput(text_embed=eos @ self.projection, block_hidden=hidden, final_hidden=x)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The text embedding alone: like :meth:`run`, but the last block computes only the EOS row of each text
        (all that the embedding reads; about 1/12 less work for a few-token text)."""
        x = self._embed(tokens)                                              # [N, L, W]
        for block in self.blocks[:-1]:
            x = block(x)
        eos = self.blocks[-1].forward_at(x, tokens.argmax(dim=-1))           # [N, W]
        return self.ln_final(eos) @ self.projection

    @classmethod
    def from_state_dict(
        cls, state_dict: Mapping[str, torch.Tensor], config: MineClipTextConfig | None = None
    ) -> MineClipTextModel:
        """Build (config inferred from shapes unless given) and load strictly; mismatches name every key."""
        config = config or config_from_state_dict(state_dict)
        model = cls(config)
        load_state_dict_strict(model, state_dict, what="MineCLIP text state dict", hint=WEIGHTS_HINT)
        return model.eval()


def config_from_state_dict(state_dict: Mapping[str, Any], heads: int | None = None) -> MineClipTextConfig:
    """Infer sizes from tensor shapes; ``heads`` is not recoverable from shapes (default ``width // 64``)."""
    def shape(key: str) -> tuple[int, ...]:
        if key not in state_dict:
            raise CheckpointError(f"MineCLIP text state dict lacks {key!r}; cannot infer its config. {WEIGHTS_HINT}")
        return tuple(state_dict[key].shape)

    vocab, width = shape("token_embedding.weight")
    context = shape("pos_embed")[0]
    embed_dim = shape("projection")[1]
    block_ids = {int(k.split(".")[1]) for k in state_dict if k.startswith("blocks.") and k.split(".")[1].isdigit()}
    layers = max(block_ids) + 1 if block_ids else 0
    if layers == 0:
        raise CheckpointError("MineCLIP text state dict has no blocks.N.* keys")
    return MineClipTextConfig(embed_dim=embed_dim, width=width, layers=layers,
                              heads=heads if heads is not None else max(1, width // 64),
                              context_length=context, vocab_size=vocab)


# ----------------------------------------------------------------------------------------------------------
# identity
# ----------------------------------------------------------------------------------------------------------

def state_dict_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Content hash of a state dict (names, shapes, dtypes and bytes); equal weights give equal digests."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().to("cpu").contiguous()
        h.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------------------
# encoder (TextEncoder protocol)
# ----------------------------------------------------------------------------------------------------------

class MineClipTextEncoder:
    """English instruction → MineCLIP text embedding (float32 CPU ``[N, embed_dim]``, unnormalised)."""

    def __init__(self, model: MineClipTextModel, tokenizer: MineClipTokenizer, identity: str) -> None:
        self.model = use_weight_major(model.eval().requires_grad_(False))  # few-token products read W once
        self.tokenizer = tokenizer
        self.identity = identity
        self.dim = model.config.embed_dim

    @classmethod
    def from_state_dict(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        tokenizer: MineClipTokenizer | None = None,
        heads: int | None = None,
    ) -> MineClipTextEncoder:
        """Build from an official-key text-tower state dict (from attn.pth, the hub file or a text block).

        The identity depends on the architecture, the weights and the tokenizer only, so the same weights give the
        same identity (and the same embedding-cache entries) whichever file layout they came from.
        """
        config = config_from_state_dict(state_dict, heads=heads)
        model = MineClipTextModel.from_state_dict(state_dict, config).to(device=device, dtype=dtype)
        tokenizer = tokenizer or MineClipTokenizer.default()
        identity = (f"mineclip-text:w{config.width}l{config.layers}h{config.heads}e{config.embed_dim}:"
                    f"weights={state_dict_digest(state_dict)}:tok={tokenizer.identity}")
        return cls(model, tokenizer, identity)

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        """Which texts exceed MineCLIP's 75 BPE tokens (callers may warn)."""
        return self.tokenizer.truncated(texts)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        tokens = self.tokenizer(texts)
        param = next(self.model.parameters())
        if len(tokens) == 0:
            return torch.zeros(0, self.dim, dtype=torch.float32)
        # Causal attention: the EOS feature depends only on positions up to the EOS, so everything after it is
        # cut. Batches hold texts of one length (sorted), so no position is wasted; rows return in input order.
        lengths = (tokens.argmax(dim=-1) + 1).tolist()
        out = torch.empty(len(tokens), self.dim, dtype=torch.float32)
        for rows in length_sorted_batches(lengths, batch_size, progress, "MineCLIP text"):
            batch = tokens[rows, : lengths[rows[0]]]
            out[rows] = self.model(batch.to(param.device)).float().cpu()
        return out
