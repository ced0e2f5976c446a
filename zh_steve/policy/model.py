"""The STEVE-1 policy: VPT-2x ``MinecraftPolicy`` with a goal-embedding layer, plus its heads.

Forward order (per frame): uint8 image → /255 → IMPALA CNN → ``img_process.linear`` → + goal projection →
N residual transformer blocks (memory attention, pointwise MLP) → ReLU → ``lastlayer`` → ``final_ln`` →
action and value heads. State-dict keys equal the official ones (``net.*``, ``pi_head.*``, ``value_head.*``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..linear import Linear, count_parameters
from ..errors import InvalidGoalError, InvalidObservationError, ZhSteveError
from .attention import LayerMemory, MemoryAttention
from .config import PolicyConfig
from .guidance import guide
from .heads import ActionHead, ValueHead
from .impala import ImageEncoder, linear_layer


class PolicyStateError(ZhSteveError, ValueError):
    """A recurrent state does not fit the call (wrong batch size, layer count or device)."""


# ----------------------------------------------------------------------------------------------------------
# state and outputs
# ----------------------------------------------------------------------------------------------------------

@dataclass
class PolicyState:
    """Recurrent state: one attention memory per transformer block. Treat as opaque."""

    layers: tuple[LayerMemory, ...]

    @property
    def batch_size(self) -> int:
        return self.layers[0].k.shape[0]

    @property
    def device(self) -> torch.device:
        return self.layers[0].k.device

    def select(self, rows: torch.Tensor | list[int]) -> "PolicyState":
        """The state of the given batch rows (a copy), in that order."""
        idx = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        return PolicyState(tuple(m.map(lambda x: x.index_select(0, idx)) for m in self.layers))

    def put(self, rows: torch.Tensor | list[int], other: "PolicyState") -> "PolicyState":
        """A copy of this state with ``rows`` replaced by ``other``'s rows (in order)."""
        idx = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        return PolicyState(tuple(
            LayerMemory(*(a.index_copy(0, idx, b.to(a.dtype)) for a, b in ((m.mask, o.mask), (m.k, o.k), (m.v, o.v))))
            for m, o in zip(self.layers, other.layers)))

    @staticmethod
    def cat(states: "list[PolicyState]") -> "PolicyState":
        """Stack states along the batch axis."""
        return PolicyState(tuple(
            LayerMemory(*(torch.cat(parts) for parts in zip(*((m.mask, m.k, m.v) for m in layer))))
            for layer in zip(*(s.layers for s in states))))

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "PolicyState":
        def move(x: torch.Tensor) -> torch.Tensor:
            return x.to(device=device, dtype=dtype if x.is_floating_point() else None)
        return PolicyState(tuple(m.map(move) for m in self.layers))


@dataclass
class PolicyOutput:
    """Per-frame outputs of :meth:`Steve1Policy.forward`, all [B, T, ...]."""

    buttons_logp: torch.Tensor   # [B, T, 8641]  log_softmax(logits / temperature)
    camera_logp: torch.Tensor    # [B, T, 121]
    vpred: torch.Tensor          # [B, T]        denormalised value
    buttons_logits: torch.Tensor  # [B, T, 8641] raw, before temperature
    camera_logits: torch.Tensor  # [B, T, 121]
    vpred_raw: torch.Tensor      # [B, T]
    latent: torch.Tensor         # [B, T, hidsize] final_ln output
    img_feat: torch.Tensor       # [B, T, hidsize] img_process output (before the goal)


@dataclass
class StepOutput:
    """One :meth:`Steve1Policy.act` step. ``streams`` holds the per-stream outputs ([S, 1, ...]; with CFG
    S = 2: index 0 conditional, 1 unconditional)."""

    buttons_logp: torch.Tensor  # [1, 8641] guided when cond_scale is not None
    camera_logp: torch.Tensor   # [1, 121]
    vpred: torch.Tensor         # [1] value of the conditional stream
    streams: PolicyOutput


# ----------------------------------------------------------------------------------------------------------
# network
# ----------------------------------------------------------------------------------------------------------

class TransformerBlock(nn.Module):
    """``pre_r_ln`` → memory attention (adds its output to the normed x) → ``x + mlp1(mlp0(x))``."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        h = config.hidsize
        self.use_mlp = config.use_pointwise_layer
        if self.use_mlp:  # registered before pre_r_ln / r, matching the official key order
            self.mlp0 = linear_layer(h, h * config.pointwise_ratio)
            self.mlp1 = linear_layer(h * config.pointwise_ratio, h, layer_norm=False,
                                     relu=config.pointwise_use_activation)
        self.pre_r_ln = nn.LayerNorm(h)
        self.r = MemoryAttention(h, config.attention_heads, config.maxlen)

    def forward(self, x: torch.Tensor, first0: torch.Tensor, memory: LayerMemory
                ) -> tuple[torch.Tensor, LayerMemory]:
        x, memory = self.r(self.pre_r_ln(x), first0, memory)
        if self.use_mlp:
            x = x + self.mlp1(self.mlp0(x))
        return x, memory


class TransformerStack(nn.Module):
    """``recurrent_layer``: the N transformer blocks."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_recurrence_layers))

    def forward(self, x: torch.Tensor, first: torch.Tensor, state: PolicyState
                ) -> tuple[torch.Tensor, PolicyState]:
        first0 = first[:, 0]
        new = []
        for block, memory in zip(self.blocks, state.layers):
            x, memory = block(x, first0, memory)
            new.append(memory)
        return x, PolicyState(tuple(new))


class Steve1Net(nn.Module):
    """``net``: image encoder, goal projection, transformer, ``lastlayer`` and ``final_ln``."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        h = config.hidsize
        self.img_process = ImageEncoder(config)
        self.recurrent_layer = TransformerStack(config)
        self.lastlayer = linear_layer(h, h)
        self.final_ln = nn.LayerNorm(h)
        self.mineclip_embed_linear = Linear(config.mineclip_embed_dim, h)

    def core(self, img_feat: torch.Tensor, goal: torch.Tensor, first: torch.Tensor, state: PolicyState
             ) -> tuple[torch.Tensor, PolicyState]:
        """Everything after the image encoder: [B, T, hidsize] features + [B, T, 512] goals → latent."""
        x = img_feat + self.mineclip_embed_linear(goal)   # the goal is used raw (not normalised)
        x, state = self.recurrent_layer(x, first, state)
        x = self.lastlayer(F.relu(x))
        return self.final_ln(x), state


class Steve1Policy(nn.Module):
    """STEVE-1 goal-conditioned VPT policy: ``net``, ``value_head``, ``pi_head``."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        self.net = Steve1Net(config)
        self.value_head = ValueHead(config.hidsize)
        self.pi_head = ActionHead(config.hidsize, config.temperature)

    # -- state ------------------------------------------------------------------------------------------
    def initial_state(self, batch_size: int) -> PolicyState:
        """Fresh memory for ``batch_size`` streams: zero keys/values, all slots masked out."""
        if batch_size < 1:
            raise PolicyStateError(f"batch_size must be >= 1, got {batch_size}")
        p = self.net.final_ln.weight
        L, h = self.config.maxlen, self.config.hidsize
        layers = tuple(
            LayerMemory(
                mask=torch.zeros(batch_size, 1, L, dtype=torch.bool, device=p.device),
                k=torch.zeros(batch_size, L, h, dtype=p.dtype, device=p.device),
                v=torch.zeros(batch_size, L, h, dtype=p.dtype, device=p.device),
            )
            for _ in range(self.config.n_recurrence_layers)
        )
        return PolicyState(layers)

    def _check_state(self, state: PolicyState, batch_size: int) -> PolicyState:
        if not isinstance(state, PolicyState) or len(state.layers) != self.config.n_recurrence_layers:
            raise PolicyStateError("state must come from this policy's initial_state()")
        if state.batch_size != batch_size:
            raise PolicyStateError(
                f"state has batch size {state.batch_size} but the call needs {batch_size} "
                "(with CFG the state is initial_state(2); without it initial_state(1))")
        p = self.net.final_ln.weight
        if state.device != p.device or state.layers[0].k.dtype != p.dtype:
            state = state.to(p.device, p.dtype)
        return state

    # -- inputs -----------------------------------------------------------------------------------------
    def _check_img(self, img: torch.Tensor, lead: int) -> torch.Tensor:
        shape = tuple(self.config.img_shape)
        if not isinstance(img, torch.Tensor):
            raise InvalidObservationError(f"image must be a torch.Tensor, got {type(img).__name__}")
        if img.dim() != lead + 3 or tuple(img.shape[lead:]) != shape:
            raise InvalidObservationError(
                f"image must have shape [{', '.join('B T'.split()[:lead])}, {', '.join(map(str, shape))}], "
                f"got {list(img.shape)}")
        if img.dtype != torch.uint8 and not img.is_floating_point():
            raise InvalidObservationError(f"image must be uint8 (or float pixels 0..255), got {img.dtype}")
        return img.to(self.net.final_ln.weight.device)

    def _check_goal(self, goal: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        p = self.net.final_ln.weight
        if not isinstance(goal, torch.Tensor) or tuple(goal.shape) != shape:
            got = list(goal.shape) if isinstance(goal, torch.Tensor) else type(goal).__name__
            raise InvalidGoalError(f"goal must have shape {list(shape)}, got {got}")
        if not goal.is_floating_point() or not torch.isfinite(goal).all():
            raise InvalidGoalError("goal must be a finite floating-point tensor")
        return goal.to(device=p.device, dtype=p.dtype)

    # -- compute ----------------------------------------------------------------------------------------
    def _heads(self, latent: torch.Tensor, img_feat: torch.Tensor) -> PolicyOutput:
        buttons = self.pi_head.buttons(latent)
        camera = self.pi_head.camera(latent)
        vpred_raw, vpred = self.value_head(latent)
        return PolicyOutput(
            buttons_logp=self.pi_head.log_probs(buttons), camera_logp=self.pi_head.log_probs(camera),
            vpred=vpred, buttons_logits=buttons, camera_logits=camera, vpred_raw=vpred_raw,
            latent=latent, img_feat=img_feat,
        )

    def forward(self, img: torch.Tensor, goal: torch.Tensor, first: torch.Tensor, state: PolicyState
                ) -> tuple[PolicyOutput, PolicyState]:
        """Sequence forward. img uint8 [B, T, H, W, 3], goal [B, T, 512], first bool [B, T].

        Only ``first[:, 0]`` resets attention to the memory (official behaviour); start a new episode with
        a fresh :meth:`initial_state` or ``first[:, 0] = True``.
        """
        img = self._check_img(img, lead=2)
        b, t = img.shape[:2]
        goal = self._check_goal(goal, (b, t, self.config.mineclip_embed_dim))
        if not isinstance(first, torch.Tensor) or tuple(first.shape) != (b, t):
            raise InvalidObservationError(f"first must be a bool tensor of shape [{b}, {t}]")
        first = first.to(device=img.device, dtype=torch.bool)
        state = self._check_state(state, b)
        img_feat = self.net.img_process(img)
        latent, state = self.net.core(img_feat, goal, first, state)
        return self._heads(latent, img_feat), state

    @torch.no_grad()
    def act(self, img: torch.Tensor, goal: torch.Tensor, state: PolicyState, cond_scale: float | None = None
            ) -> tuple[StepOutput, PolicyState]:
        """One agent step. img uint8 [1, H, W, 3], goal [1, 512].

        With ``cond_scale`` the state has batch 2 (conditional, unconditional = zero goal); the CNN runs once
        and its feature feeds both streams, and the log-probs are combined as ``(1+s)·cond − s·uncond``.
        """
        img = self._check_img(img, lead=1)
        if img.shape[0] != 1:
            raise InvalidObservationError(f"act() takes one frame [1, H, W, 3], got batch {img.shape[0]}")
        return self.act_batch(img, goal, state, cond_scale)

    @torch.no_grad()
    def act_batch(self, img: torch.Tensor, goal: torch.Tensor, state: PolicyState,
                  cond_scale: float | None = None) -> tuple[StepOutput, PolicyState]:
        """One step of N environments in one forward. img uint8 [N, H, W, 3], goal [N, 512].

        The state has batch N without guidance, 2N with ``cond_scale``: rows 0..N-1 conditional, N..2N-1
        unconditional (zero goal) for the same envs. The CNN runs once per frame (N images) and feeds both
        streams. Returns per-env guided log-scores [N, 8641] / [N, 121] and the conditional value [N].
        """
        img = self._check_img(img, lead=1)
        n = img.shape[0]
        goal = self._check_goal(goal, (n, self.config.mineclip_embed_dim))
        streams = 1 if cond_scale is None else 2
        state = self._check_state(state, streams * n)
        img_feat = self.net.img_process(img[:, None])               # [N, 1, hidsize], once per frame
        goals = goal[:, None]                                       # [N, 1, 512]
        if streams == 2:
            img_feat = torch.cat([img_feat, img_feat])              # [2N, 1, hidsize]
            goals = torch.cat([goals, torch.zeros_like(goals)])     # rows N..2N-1: unconditional
        first = torch.zeros(streams * n, 1, dtype=torch.bool, device=img.device)
        latent, state = self.net.core(img_feat, goals, first, state)
        out = self._heads(latent, img_feat)
        if cond_scale is None:
            buttons, camera = out.buttons_logp[:, 0], out.camera_logp[:, 0]
        else:
            buttons = guide(out.buttons_logp[:n, 0], out.buttons_logp[n:, 0], cond_scale)
            camera = guide(out.camera_logp[:n, 0], out.camera_logp[n:, 0], cond_scale)
        return StepOutput(buttons, camera, out.vpred[:n, 0], out), state

    def num_parameters(self) -> int:
        """Number of elements in the state dict (trainable weights plus the value-normaliser statistics)."""
        return count_parameters(self)  # a bf16 policy's packed linear weights count as the plain ones
