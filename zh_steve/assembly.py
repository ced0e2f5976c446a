"""Assembly: an agent config → the frozen models an agent runs (:class:`AgentParts`), real or tiny.

    AgentConfig ─► build_parts ──────► AgentParts(chinese_encoder, alignment, mineclip_encoder*, prior, policy,
               └─► build_tiny_parts ─┘             device, dtype, random_weights, sources)
    AgentConfig ─► build_text ───────► TextParts(chinese_encoder, alignment, mineclip_encoder*, random_weights, sources)
    * loaded on first use: only English instructions (and the translation baseline) need the MineCLIP tower.

Both agent builders take their text side from :func:`build_text`, which ``python -m zh_steve.explain`` uses alone
(no policy or prior is loaded to explain an instruction).

Real weights come through :mod:`zh_steve.weights` (the only code that opens checkpoint files), Chinese-CLIP through
``ChineseClipTextEncoder.from_pretrained``, the alignment layer from ``python -m alignment.train``'s ``--out``.
Every runtime (``ZhSteveAgent``, a batched agent) takes the same :class:`AgentParts`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config_utils import from_dict, load_config, resolve_device
from .errors import ConfigError, WeightsNotFoundError
from .goal import GOAL_MODES
from .precision import CHINESE_CLIP_DTYPES, STORAGE_DTYPES, chinese_clip_dtype
from .published import CHINESE_CLIP_HUB_ID
from .testing.sizes import TINY_AGENT

DTYPES = STORAGE_DTYPES  # dtype setting → weight storage dtype (autocast / int8-dynamic: see zh_steve.precision)


# --------------------------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------------------------

@dataclass
class TinyAgentConfig:
    """A tiny randomly initialised agent of the real architectures, for tests and offline smoke runs."""

    seed: int = 0
    hidsize: int = TINY_AGENT["hidsize"]
    attention_heads: int = TINY_AGENT["attention_heads"]
    n_recurrence_layers: int = TINY_AGENT["n_recurrence_layers"]
    impala_width: int = TINY_AGENT["impala_width"]
    attention_memory_size: int = TINY_AGENT["attention_memory_size"]
    timesteps: int = TINY_AGENT["timesteps"]
    prior_hidden_dim: int = TINY_AGENT["prior_hidden_dim"]
    prior_latent_dim: int = TINY_AGENT["prior_latent_dim"]
    cache_dir: str | None = None  # where the tiny Chinese-CLIP is written (default: a per-user cache dir)


@dataclass
class AgentConfig:
    """Everything `ZhSteveAgent.from_config` reads. Unknown keys are rejected."""

    weights: str | None = "weights"  # official layout (vpt/, mineclip/, steve1/) or the hub file; then the cache
    allow_download: bool | None = None  # fetch missing weights from the hub; None = yes unless ZS_NO_DOWNLOAD=1
    alignment: str | None = "runs/alignment"  # dir written by `python -m alignment.train`
    chinese_clip: str = CHINESE_CLIP_HUB_ID  # hub id or local dir
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "float32"  # float32 | float16 | bfloat16 | autocast | int8-dynamic (CPU); see zh_steve.precision
    chinese_clip_dtype: str = "auto"  # auto (bf16 for a float32 agent where bf16 is native) | float32 | bfloat16
    cond_scale: float | None = 6.0  # STEVE-1's text default; None disables classifier-free guidance
    temperature: float | None = None  # pi-head temperature; None = from 2x.model, else the official one
    seed: int | None = None  # seeds the prior sample and the action sampling
    action_sampling: str = "stochastic"  # stochastic (Gumbel-max, as STEVE-1) | argmax
    prior_sampling: str = "stochastic"  # stochastic (z ~ N(0, I), as STEVE-1) | deterministic (z = 0)
    instruction_cache_size: int = 64  # LRU of instruction → MineCLIP-space vector (before the prior)
    goal_mode: str = "regress"  # regress | snap | blend (zh_steve.goal): what the prior gets for Chinese text
    goal_prompts: str | None = None  # extra English prompts for the snap/blend bank (text file, one per line)
    tiny: TinyAgentConfig | None = None  # set → ignore weights paths and build a tiny random agent

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.chinese_clip_dtype not in CHINESE_CLIP_DTYPES:
            raise ConfigError(f"chinese_clip_dtype must be one of {list(CHINESE_CLIP_DTYPES)}, "
                              f"got {self.chinese_clip_dtype!r}")
        if self.action_sampling not in ("stochastic", "argmax"):
            raise ConfigError(f"action_sampling must be 'stochastic' or 'argmax', got {self.action_sampling!r}")
        if self.prior_sampling not in ("stochastic", "deterministic"):
            raise ConfigError(f"prior_sampling must be 'stochastic' or 'deterministic', got {self.prior_sampling!r}")
        if self.cond_scale is not None and not np.isfinite(float(self.cond_scale)):
            raise ConfigError(f"cond_scale must be a finite number or null, got {self.cond_scale!r}")
        if self.instruction_cache_size < 0:
            raise ConfigError("instruction_cache_size must be >= 0")
        if self.goal_mode not in GOAL_MODES:
            raise ConfigError(f"goal_mode must be one of {list(GOAL_MODES)}, got {self.goal_mode!r}")
        if isinstance(self.tiny, Mapping):
            self.tiny = from_dict(TinyAgentConfig, self.tiny, "agent config: tiny")
        elif self.tiny is True:
            self.tiny = TinyAgentConfig()

    @classmethod
    def load(cls, path_or_dict: str | Path | Mapping[str, Any] | AgentConfig) -> AgentConfig:
        """A YAML/JSON file, a dict or an :class:`AgentConfig` (unknown keys → ConfigError)."""
        if isinstance(path_or_dict, AgentConfig):
            return path_or_dict
        return from_dict(cls, load_config(path_or_dict), "agent config")


# --------------------------------------------------------------------------------------------------------------
# the parts
# --------------------------------------------------------------------------------------------------------------

class _LazyMineClip:
    """``mineclip_encoder``: built on first access by the dataclass's ``mineclip_loader`` field and kept in its
    ``_mineclip`` field (only English instructions need it); ``mineclip_loaded`` says whether that has happened."""

    mineclip_loader: Callable[[], Any]
    _mineclip: Any

    @property
    def mineclip_encoder(self) -> Any:
        if self._mineclip is None:
            self._mineclip = self.mineclip_loader()
        return self._mineclip

    @property
    def mineclip_loaded(self) -> bool:
        return self._mineclip is not None


@dataclass
class AgentParts(_LazyMineClip):
    """The frozen models an agent runs, on ``device`` in ``dtype`` (the alignment layer stays float32); the MineCLIP
    text tower is loaded lazily (:class:`_LazyMineClip`).
    """

    chinese_encoder: Any  # TextEncoder (Chinese-CLIP)
    alignment: torch.nn.Module  # Chinese-CLIP space → MineCLIP space
    prior: torch.nn.Module  # Steve1Prior
    policy: torch.nn.Module  # Steve1Policy
    mineclip_loader: Callable[[], Any]  # () → TextEncoder (MineCLIP)
    device: torch.device
    dtype: torch.dtype
    random_weights: bool
    sources: dict[str, Any] = field(default_factory=dict)
    _mineclip: Any = field(default=None, repr=False)


def build(config: AgentConfig) -> AgentParts:
    """:func:`build_tiny_parts` when ``config.tiny`` is set, else :func:`build_parts`."""
    return build_tiny_parts(config) if config.tiny is not None else build_parts(config)


def _warn_on_encoder_mismatch(alignment: Any, source: str | None = None, target: str | None = None) -> None:
    """The alignment layer only means something for the encoders it was trained on: say so when they differ."""
    try:
        alignment.check_encoders(source=source, target=target)
    except ConfigError as e:
        warnings.warn(str(e), stacklevel=3)


def _freeze(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    return module.to(device=device, dtype=dtype).requires_grad_(False).eval()


@dataclass
class TextParts(_LazyMineClip):
    """The text side of an agent: Chinese-CLIP, the alignment layer (float32), and the MineCLIP text tower built on
    first access by ``mineclip_loader`` (checked against the encoders the layer was trained on). No policy, no prior:
    what ``python -m zh_steve.explain`` needs."""

    chinese_encoder: Any
    alignment: torch.nn.Module
    mineclip_loader: Callable[[], Any]
    random_weights: bool
    sources: dict[str, Any] = field(default_factory=dict)
    _mineclip: Any = field(default=None, repr=False)


def build_text(config: AgentConfig) -> TextParts:
    """The text side of ``config`` (tiny random or real), without the policy and prior."""
    device, dtype = resolve_device(config.device), DTYPES[config.dtype]
    text = _tiny_text(config) if config.tiny is not None else _real_text(config, device, dtype)
    text.alignment = _freeze(text.alignment, device, torch.float32)
    zh_dtype = chinese_clip_dtype(config.chinese_clip_dtype, config.dtype, device.type)
    # the tower's run-time precision (its identity names the checkpoint, not the dtype); bf16 weights get packed
    text.chinese_encoder.to_runtime(zh_dtype)
    text.sources["chinese_clip_dtype"] = str(next(text.chinese_encoder.tower.parameters()).dtype).removeprefix("torch.")
    loader = text.mineclip_loader

    def checked_mineclip() -> Any:
        encoder = loader()
        _warn_on_encoder_mismatch(text.alignment, target=encoder.identity)
        return encoder

    text.mineclip_loader = checked_mineclip
    return text


def _tiny_text(config: AgentConfig) -> TextParts:
    from .alignment_layer import AlignmentConfig, AlignmentLayer
    from .testing.tiny_text import tiny_chinese_clip_encoder, tiny_mineclip_text_encoder

    tiny = config.tiny
    assert tiny is not None
    zh = tiny_chinese_clip_encoder(seed=tiny.seed, cache_dir=tiny.cache_dir)
    if config.alignment is not None:  # e.g. the layer `configs/alignment_tiny.yaml` trained on these encoders
        alignment = AlignmentLayer.from_pretrained(config.alignment)
        _warn_on_encoder_mismatch(alignment, source=zh.identity)
    else:  # random residual MLP of the real shape (the tiny MineCLIP tower's output size), from its own seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(tiny.seed + 2)
            alignment = AlignmentLayer(AlignmentConfig(kind="mlp", in_dim=zh.dim, out_dim=512,
                                                       source_encoder=zh.identity, target_encoder=""))

    def load_mineclip() -> Any:
        with torch.random.fork_rng(devices=[]):
            return tiny_mineclip_text_encoder(seed=tiny.seed)

    return TextParts(zh, alignment, load_mineclip, random_weights=True,
                     sources={"alignment": str(config.alignment) if config.alignment else "random"})


def _check_alignment_dir(config: AgentConfig) -> None:
    if config.alignment is None or not Path(config.alignment).is_dir():
        raise WeightsNotFoundError(
            f"alignment layer not found at {config.alignment!r}: train it with `python -m alignment.train "
            f"--out {config.alignment or 'runs/alignment'}` (or set `alignment:` in the agent config)"
        )


def _real_text(config: AgentConfig, device: torch.device, dtype: torch.dtype) -> TextParts:
    from .alignment_layer import AlignmentLayer
    from .hub import local_snapshot
    from .text.chinese_clip import ChineseClipTextEncoder
    from .text.mineclip_text import MineClipTextEncoder
    from .weights import WeightsSpec, resolve_weights

    _check_alignment_dir(config)
    zh = ChineseClipTextEncoder.from_pretrained(local_snapshot(config.chinese_clip), device=device, dtype=dtype)
    alignment = AlignmentLayer.from_pretrained(config.alignment)
    _warn_on_encoder_mismatch(alignment, source=zh.identity)
    sources = {"chinese_clip": config.chinese_clip, "alignment": str(config.alignment),
               "mineclip_text": "not loaded yet (loaded by the first English instruction)"}
    spec = WeightsSpec(weights_dir=config.weights, allow_download=config.allow_download, need=("mineclip_text",))

    def load_mineclip() -> Any:
        text = resolve_weights(spec)
        sources["mineclip_text"] = text.describe()["mineclip_text"]
        return MineClipTextEncoder.from_state_dict(text.mineclip_text_state_dict(), device=device, dtype=dtype)

    return TextParts(zh, alignment, load_mineclip, random_weights=False, sources=sources)


def build_tiny_parts(config: AgentConfig) -> AgentParts:
    """Tiny random models of the real architectures with the real tokenizers (offline).

    Each random module comes from its own seed inside ``torch.random.fork_rng``: the caller's RNG is untouched
    and repeated builds are identical.
    """
    from .policy import PolicyConfig, Steve1Policy
    from .prior import PriorConfig, Steve1Prior
    from .published import OFFICIAL_TEMPERATURE, TEMPERATURE_DEFAULT_SOURCE

    tiny = config.tiny
    assert tiny is not None
    policy_kwargs, _ = PolicyConfig.full_size().to_kwargs()
    policy_kwargs.update(
        hidsize=tiny.hidsize, attention_heads=tiny.attention_heads, n_recurrence_layers=tiny.n_recurrence_layers,
        impala_width=tiny.impala_width, attention_memory_size=tiny.attention_memory_size, timesteps=tiny.timesteps,
    )
    temperature = OFFICIAL_TEMPERATURE if config.temperature is None else float(config.temperature)
    text = build_text(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tiny.seed)
        policy = Steve1Policy(PolicyConfig.from_kwargs(policy_kwargs, {"temperature": temperature}))
        torch.manual_seed(tiny.seed + 1)
        prior = Steve1Prior(PriorConfig(input_dim=512, hidden_dim=tiny.prior_hidden_dim,
                                        latent_dim=tiny.prior_latent_dim))
    sources = {"all": f"tiny random weights (seed {tiny.seed}) — not a trained agent", **text.sources,
               "temperature": temperature, "temperature_source": TEMPERATURE_DEFAULT_SOURCE
               if config.temperature is None else "config"}
    return _assemble(text, prior, policy, config, sources)


def build_parts(config: AgentConfig) -> AgentParts:
    """The real models: STEVE-1 policy + prior (+ the MineCLIP text tower, on first use) from ``config.weights``
    (official files or the MineStudio hub file, resolved by :mod:`zh_steve.weights`), Chinese-CLIP from the hub or
    a local dir, and the alignment layer trained by ``python -m alignment.train``."""
    from .policy import policy_config, policy_from_state_dict
    from .prior import Steve1Prior
    from .weights import WeightsSpec, resolve_weights

    _check_alignment_dir(config)  # fail fast, before the big files
    spec = WeightsSpec(weights_dir=config.weights, temperature=config.temperature,
                       allow_download=config.allow_download)
    resolved = resolve_weights(replace(spec, need=("policy", "prior")))
    settings = resolved.policy_kwargs()  # kwargs from 2x.model / hub config.json; temperature and its source
    policy = policy_from_state_dict(resolved.policy_state_dict(), policy_config(settings))
    prior = Steve1Prior.from_state_dict(resolved.prior_state_dict())
    text = build_text(config)
    sources = text.sources  # updated in place: the MineCLIP loader records where its weights came from here
    merged = {**resolved.describe(), **sources, "temperature": settings.temperature,
              "temperature_source": settings.temperature_source}
    sources.clear()
    sources.update(merged)
    return _assemble(text, prior, policy, config, sources)


def _assemble(text: TextParts, prior: torch.nn.Module, policy: torch.nn.Module, config: AgentConfig,
              sources: dict[str, Any]) -> AgentParts:
    """Freeze prior and policy on the config's device in its dtype beside the text side (alignment float32)."""
    device, dtype = resolve_device(config.device), DTYPES[config.dtype]
    return AgentParts(
        chinese_encoder=text.chinese_encoder,
        alignment=text.alignment,
        prior=_freeze(prior, device, dtype),
        policy=_freeze(policy, device, dtype),
        mineclip_loader=text.mineclip_loader,
        device=device,
        dtype=dtype,
        random_weights=text.random_weights,
        sources=sources,
    )
