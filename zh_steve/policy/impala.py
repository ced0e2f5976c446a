"""VPT's IMPALA-style image encoder (``net.img_process``).

Every layer is "norm → conv/linear → ReLU" (:class:`NormLayer`); module names follow the official
state-dict keys (``stacks.N.firstconv``, ``stacks.N.n``, ``blocks.M.conv0`` …, ``dense``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..linear import Linear
from .config import PolicyConfig


class NormLayer(nn.Module):
    """Optional norm, then a conv or linear layer, then an optional ReLU. Keys: ``norm.*``, ``layer.*``."""

    def __init__(self, norm: nn.Module | None, layer: nn.Module, relu: bool = True):
        super().__init__()
        self.norm = norm  # a registered submodule, or a plain None attribute
        self.layer = layer
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            x = self.norm(x)
        x = self.layer(x)
        return F.relu(x, inplace=True) if self.relu else x  # x is this layer's fresh output


def conv_layer(cin: int, cout: int, groups: int | None) -> NormLayer:
    """3×3 same-padding conv; GroupNorm before it when ``groups`` is given (then the conv has no bias)."""
    norm = nn.GroupNorm(groups, cin) if groups is not None else None
    return NormLayer(norm, nn.Conv2d(cin, cout, 3, padding=1, bias=norm is None))


def linear_layer(din: int, dout: int, *, layer_norm: bool = True, bias: bool | None = None,
                 relu: bool = True) -> NormLayer:
    """LayerNorm → Linear → ReLU; the linear has a bias only when there is no norm (unless told)."""
    norm = nn.LayerNorm(din) if layer_norm else None
    return NormLayer(norm, Linear(din, dout, bias=(not layer_norm) if bias is None else bias), relu)


class ResidualBlock(nn.Module):
    """``x + conv1(conv0(x))``; both convs are GroupNorm → conv → ReLU."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.conv0 = conv_layer(channels, channels, groups)
        self.conv1 = conv_layer(channels, channels, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(self.conv0(x))


class DownStack(nn.Module):
    """firstconv → max-pool 3/2/1 → GroupNorm ``n`` → residual blocks. Halves the spatial size."""

    def __init__(self, cin: int, cout: int, *, norm_first: bool, groups: int, post_pool_groups: int,
                 n_blocks: int = 2):
        super().__init__()
        self.firstconv = conv_layer(cin, cout, groups if norm_first else None)
        self.n = nn.GroupNorm(post_pool_groups, cout)
        self.blocks = nn.ModuleList(ResidualBlock(cout, groups) for _ in range(n_blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.firstconv(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        x = self.n(x)
        for block in self.blocks:
            x = block(x)
        return x


class ImpalaCNN(nn.Module):
    """[N, 3, H, W] in [0, 1] → [N, 256] (three down-stacks, flatten in C, H, W order, LayerNorm → Linear → ReLU)."""

    out_dim = 256

    def __init__(self, config: PolicyConfig):
        super().__init__()
        groups = config.init_norm_kwargs["group_norm_groups"]
        post = config.impala_kwargs["post_pool_groups"]
        chans = (config.img_shape[2],) + config.channels
        self.stacks = nn.ModuleList(
            DownStack(chans[i], chans[i + 1], norm_first=i > 0, groups=groups, post_pool_groups=post)
            for i in range(len(config.channels))
        )
        self.dense = linear_layer(config.cnn_flat_dim, self.out_dim)
        # channels-last conv weights: with the NHWC frames oneDNN convolves without re-ordering activations or
        # weights on every call (same values and keys; measured bit-identical on the full-size CNN)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)  # (a no-op for the permuted NHWC frames)
        for stack in self.stacks:
            x = stack(x)
        return self.dense(x.flatten(1))


class ImageEncoder(nn.Module):
    """``net.img_process``: uint8 frames [B, T, H, W, 3] → features [B, T, hidsize]."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.cnn = ImpalaCNN(config)
        self.linear = linear_layer(ImpalaCNN.out_dim, config.hidsize)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        b, t = img.shape[:2]
        dtype = self.cnn.stacks[0].firstconv.layer.weight.dtype  # (linear layers may be int8-quantised)
        x = img.to(dtype) / 255.0                               # [B, T, H, W, 3]
        x = x.reshape(b * t, *img.shape[2:]).permute(0, 3, 1, 2)  # [B*T, 3, H, W]
        x = self.linear(self.cnn(x))                            # [B*T, hidsize]
        return x.reshape(b, t, -1)
