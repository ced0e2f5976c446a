"""Configuration of the STEVE-1 policy, built from VPT's official ``policy_kwargs``.

The official 2x model stores its network arguments in the ``2x.model`` pickle under
``pkl["model"]["args"]["net"]["args"]`` and the action-head options under ``...["pi_head_opts"]``.
:class:`PolicyConfig` accepts exactly those keys (plus STEVE-1's ``mineclip_embed_dim`` and the head
``temperature``) and refuses values this implementation does not reproduce, instead of guessing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..checkpoint import load_manifest
from ..errors import ConfigError
from ..published import HUB_CONFIG_FILE, OFFICIAL_TEMPERATURE

# Official defaults of arguments that the 2x pickle does not carry but MinecraftPolicy accepts; they are
# accepted only at these values (anything else changes the architecture in ways we do not implement).
_FIXED_OPTIONAL_KWARGS: dict[str, Any] = {
    "dense_init_norm_kwargs": {"layer_norm": True},
    "first_conv_norm": False,
    "img_statistics": None,
}


@dataclass
class PolicyConfig:
    """Sizes and switches of the VPT ``MinecraftPolicy`` network with STEVE-1's goal layer.

    Field names are the official ``policy_kwargs`` keys. ``diff_mlp_embedding`` and ``only_img_input``
    are carried for completeness (the official code ignores them for this model).
    """

    attention_heads: int = 16
    attention_mask_style: str = "clipped_causal"
    attention_memory_size: int = 256
    diff_mlp_embedding: bool = False
    hidsize: int = 2048
    img_shape: tuple[int, int, int] = (128, 128, 3)
    impala_chans: tuple[int, ...] = (16, 32, 32)
    impala_kwargs: dict[str, Any] = field(default_factory=lambda: {"post_pool_groups": 1})
    impala_width: int = 8
    init_norm_kwargs: dict[str, Any] = field(
        default_factory=lambda: {"batch_norm": False, "group_norm_groups": 1}
    )
    n_recurrence_layers: int = 4
    only_img_input: bool = True
    pointwise_ratio: int = 4
    pointwise_use_activation: bool = False
    recurrence_is_residual: bool = True
    recurrence_type: str = "transformer"
    timesteps: int = 128
    use_pointwise_layer: bool = True
    use_pre_lstm_ln: bool = False
    # STEVE-1 constructor argument (not in the pickle) and the pi-head option.
    mineclip_embed_dim: int = 512
    temperature: float = OFFICIAL_TEMPERATURE
    # Accepted official arguments that must keep their defaults.
    dense_init_norm_kwargs: dict[str, Any] = field(default_factory=lambda: {"layer_norm": True})
    first_conv_norm: bool = False
    img_statistics: Any = None

    # ------------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        try:
            self.img_shape = tuple(int(v) for v in self.img_shape)  # type: ignore[assignment]
            self.impala_chans = tuple(int(v) for v in self.impala_chans)
            self.impala_kwargs = dict(self.impala_kwargs or {})
            self.init_norm_kwargs = dict(self.init_norm_kwargs or {})
            self.temperature = float(self.temperature)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"policy config: malformed value ({e})") from None
        self._validate()

    def _validate(self) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"policy config: {msg}")

        if self.recurrence_type != "transformer":
            raise bad(f"recurrence_type={self.recurrence_type!r} is not supported; only 'transformer' "
                      "(the STEVE-1 / VPT-2x setting) is implemented")
        if self.attention_mask_style != "clipped_causal":
            raise bad(f"attention_mask_style={self.attention_mask_style!r} is not supported; only "
                      "'clipped_causal' is implemented")
        for name in ("attention_heads", "attention_memory_size", "hidsize", "impala_width",
                     "n_recurrence_layers", "pointwise_ratio", "timesteps", "mineclip_embed_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(f"{name} must be a positive integer, got {value!r}")
        if self.hidsize % self.attention_heads:
            raise bad(f"hidsize {self.hidsize} is not divisible by attention_heads {self.attention_heads}")
        if self.attention_memory_size <= self.timesteps:
            raise bad(f"attention_memory_size ({self.attention_memory_size}) must exceed timesteps "
                      f"({self.timesteps}): the attention memory is their difference")
        if len(self.img_shape) != 3 or self.img_shape[2] != 3 or min(self.img_shape) < 1:
            raise bad(f"img_shape must be [height, width, 3], got {list(self.img_shape)}")
        if not self.impala_chans or min(self.impala_chans) < 1:
            raise bad(f"impala_chans must be a non-empty list of positive ints, got {list(self.impala_chans)}")
        unknown = sorted(set(self.impala_kwargs) - {"post_pool_groups"})
        if unknown:
            raise bad(f"impala_kwargs keys {unknown} are not supported (only 'post_pool_groups')")
        groups = self.impala_kwargs.get("post_pool_groups")
        if not isinstance(groups, int) or groups < 1:
            raise bad(f"impala_kwargs.post_pool_groups must be a positive integer, got {groups!r}")
        unknown = sorted(set(self.init_norm_kwargs) - {"batch_norm", "group_norm_groups"})
        if unknown:
            raise bad(f"init_norm_kwargs keys {unknown} are not supported")
        if self.init_norm_kwargs.get("batch_norm", False):
            raise bad("init_norm_kwargs.batch_norm=True is not supported (VPT-2x uses GroupNorm)")
        gn = self.init_norm_kwargs.get("group_norm_groups")
        if not isinstance(gn, int) or gn < 1:
            raise bad(f"init_norm_kwargs.group_norm_groups must be a positive integer, got {gn!r}")
        for ch in self.channels:
            if ch % gn or ch % groups:
                raise bad(f"CNN width {ch} is not divisible by the GroupNorm group counts ({gn}, {groups})")
        if self.diff_mlp_embedding:
            raise bad("diff_mlp_embedding=True adds a module STEVE-1 does not use; it is not supported")
        if self.use_pre_lstm_ln:
            raise bad("use_pre_lstm_ln=True is not supported (VPT-2x / STEVE-1 use False)")
        if not (self.temperature > 0.0):
            raise bad(f"temperature must be > 0, got {self.temperature}")
        for name, default in _FIXED_OPTIONAL_KWARGS.items():
            if getattr(self, name) != default:
                raise bad(f"{name}={getattr(self, name)!r} is not supported (only the official default "
                          f"{default!r})")

    # ------------------------------------------------------------------------------------------------
    @property
    def channels(self) -> tuple[int, ...]:
        """Output channels of the CNN stacks (``impala_chans * impala_width``)."""
        return tuple(c * self.impala_width for c in self.impala_chans)

    @property
    def maxlen(self) -> int:
        """Number of past frames held in each attention memory."""
        return self.attention_memory_size - self.timesteps

    @property
    def head_dim(self) -> int:
        return self.hidsize // self.attention_heads

    @property
    def cnn_flat_dim(self) -> int:
        """Size of the flattened feature map fed to the CNN's dense layer."""
        h, w = self.img_shape[0], self.img_shape[1]
        for _ in self.channels:  # each stack halves (rounding up) with a 3/2/1 max-pool
            h, w = (h + 1) // 2, (w + 1) // 2
        return self.channels[-1] * h * w

    # ------------------------------------------------------------------------------------------------
    @classmethod
    def from_kwargs(
        cls,
        policy_kwargs: Mapping[str, Any],
        pi_head_kwargs: Mapping[str, Any] | None = None,
        *,
        where: str = "policy_kwargs",
    ) -> "PolicyConfig":
        """Build from the official ``policy_kwargs`` and ``pi_head_kwargs`` dicts; unknown keys → ConfigError."""
        if not isinstance(policy_kwargs, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(policy_kwargs).__name__}")
        names = {f.name for f in dataclasses.fields(cls)} - {"temperature"}
        unknown = sorted(set(policy_kwargs) - names)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(names)}")
        head = dict(pi_head_kwargs or {})
        unknown = sorted(set(head) - {"temperature"})
        if unknown:
            raise ConfigError(f"pi_head_kwargs: unknown key(s) {unknown}; only 'temperature' is supported")
        try:
            temperature = float(head.get("temperature", OFFICIAL_TEMPERATURE))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"pi_head_kwargs.temperature must be a number: {e}") from e
        try:
            return cls(**dict(policy_kwargs), temperature=temperature)
        except TypeError as e:
            raise ConfigError(f"{where}: {e}") from e

    @classmethod
    def full_size(cls) -> "PolicyConfig":
        """The official VPT-2x / STEVE-1 configuration (from the shipped ``vpt_2x_model_kwargs`` manifest)."""
        data = load_manifest("vpt_2x_model_kwargs")
        kwargs = dict(data["policy_kwargs"])
        kwargs.update(data.get("steve1_extra_constructor_default", {}))
        return cls.from_kwargs(kwargs, data.get("pi_head_kwargs_vpt_hardcoded_default"))

    def to_kwargs(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(policy_kwargs, pi_head_kwargs)`` in the official form (lists, not tuples)."""
        d = dataclasses.asdict(self)
        temperature = d.pop("temperature")
        for name in _FIXED_OPTIONAL_KWARGS:
            d.pop(name)
        d["img_shape"] = list(d["img_shape"])
        d["impala_chans"] = list(d["impala_chans"])
        return d, {"temperature": temperature}


def policy_config(settings: Any) -> PolicyConfig:
    """A :class:`PolicyConfig` from resolved settings (``zh_steve.weights.PolicySettings``: ``policy_kwargs``,
    ``kwargs_source``, ``temperature``). Extra keys of a MineStudio ``config.json`` (which MineStudio itself
    ignores) are dropped and listed in ``settings.ignored_keys``; from any other source unknown keys are an error."""
    kwargs = dict(settings.policy_kwargs)
    if settings.kwargs_source.endswith(HUB_CONFIG_FILE):  # MineStudio swallows unknown kwargs; so do we, visibly
        known = {f.name for f in dataclasses.fields(PolicyConfig)} - {"temperature"}
        settings.ignored_keys = sorted(set(kwargs) - known)
        kwargs = {k: v for k, v in kwargs.items() if k in known}
    return PolicyConfig.from_kwargs(kwargs, {"temperature": settings.temperature}, where=settings.kwargs_source)
