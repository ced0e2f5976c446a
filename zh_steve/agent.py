"""`ZhSteveAgent`: a Chinese (or English) instruction in, MineRL 1.0 actions out.

    instruction ─► language.route ─┬─ zh/mixed ─► Chinese-CLIP text tower ─► alignment layer ─┐
                                   └─ en ───────► MineCLIP text tower ─────────────────────────┴─► MineCLIP-space
    text vector ─► STEVE-1 prior (one sample per instruction) ─► goal [1, 512], held for the episode
    obs["pov"] ─► 128×128 ─► STEVE-1 policy (CFG, recurrent memory) ─► sampled action ─► MineRL action dict

Typical use::

    agent = ZhSteveAgent.from_config("configs/agent.yaml")
    agent.reset("砍树")
    obs = env.reset()
    while True:
        obs, reward, done, info = env.step(agent.act(obs))
"""

from __future__ import annotations

import time
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
import torch

from .actions import to_minerl_action
from .policy import sample_action
from .config_utils import from_dict, load_config, resolve_device
from .errors import ConfigError, InvalidGoalError, InvalidInstructionError
from .preprocess import preprocess_obs
from .goal import GOAL_MODES, apply_goal_mode
from .text.language import detect_language, normalize_instruction, route as route_instruction

Lang = Literal["auto", "zh", "en"]
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


# --------------------------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------------------------

@dataclass
class TinyAgentConfig:
    """A tiny randomly initialised agent of the real architectures, for tests and offline smoke runs."""

    seed: int = 0
    hidsize: int = 64
    attention_heads: int = 4
    n_recurrence_layers: int = 2
    impala_width: int = 1
    attention_memory_size: int = 16
    timesteps: int = 8
    prior_hidden_dim: int = 64
    prior_latent_dim: int = 16
    cache_dir: str | None = None  # where the tiny Chinese-CLIP is written (default: a per-user cache dir)


@dataclass
class AgentConfig:
    """Everything `ZhSteveAgent.from_config` reads. Unknown keys are rejected."""

    weights: str | None = "weights"  # official layout (vpt/, mineclip/, steve1/) or the hub file; then the cache
    allow_download: bool | None = None  # fetch missing weights from the hub; None = yes unless ZS_NO_DOWNLOAD=1
    alignment: str | None = "runs/alignment"  # dir written by `python -m alignment.train`
    chinese_clip: str = "OFA-Sys/chinese-clip-vit-base-patch16"  # hub id or local dir
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "float32"  # float32 | float16 | bfloat16 (policy, prior and text towers)
    cond_scale: float | None = 6.0  # STEVE-1's text default; None disables classifier-free guidance
    temperature: float | None = None  # pi-head temperature; None = from 2x.model, else the official 2.0
    seed: int | None = None  # seeds the prior sample and the action sampling
    action_sampling: str = "stochastic"  # stochastic (Gumbel-max, as STEVE-1) | argmax
    prior_sampling: str = "stochastic"  # stochastic (z ~ N(0, I), as STEVE-1) | deterministic (z = 0)
    instruction_cache_size: int = 64  # LRU of instruction → MineCLIP-space vector (before the prior)
    goal_mode: str = "regress"  # regress | snap | blend (zh_steve.goal): what the prior gets for Chinese text
    goal_prompts: str | None = None  # extra English prompts for the snap/blend bank (text file, one per line)
    tiny: TinyAgentConfig | None = None  # set → ignore weights paths and build a tiny random agent

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ConfigError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
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


# --------------------------------------------------------------------------------------------------------------
# the agent
# --------------------------------------------------------------------------------------------------------------

@dataclass
class _Goal:
    instruction: str
    route: str
    text_embed: torch.Tensor  # [1, 512] MineCLIP-space (raw scale)
    goal: torch.Tensor  # [1, 512] prior sample fed to the policy


@dataclass
class AgentParts:
    """The frozen models an agent runs. Built by :func:`build_parts` (real weights) or :func:`build_tiny_parts`."""

    chinese_encoder: Any  # TextEncoder (Chinese-CLIP)
    alignment: torch.nn.Module  # Chinese-CLIP space → MineCLIP space
    mineclip_encoder: Any  # TextEncoder (MineCLIP)
    prior: torch.nn.Module  # Steve1Prior
    policy: torch.nn.Module  # Steve1Policy
    random_weights: bool
    sources: dict[str, Any] = field(default_factory=dict)


class ZhSteveAgent:
    """STEVE-1 commanded in Chinese or English. See the module docstring for the data flow."""

    def __init__(self, parts: AgentParts, config: AgentConfig | None = None) -> None:
        self.config = config or AgentConfig()
        self.parts = parts
        self.device = next(parts.policy.parameters()).device
        self._cache: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        seed = self.config.seed
        self._prior_rng = torch.Generator(device=self.device)
        self._action_rng = torch.Generator(device=self.device)
        if seed is not None:
            self._prior_rng.manual_seed(int(seed))
            self._action_rng.manual_seed(int(seed) + 1)
        else:
            self._prior_rng.seed()
            self._action_rng.seed()
        self._goal: _Goal | None = None
        self._state: Any = None
        self.steps = 0
        self.timings: dict[str, dict[str, Any]] = {"embed": {}, "step": {}}

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, path_or_dict: str | Path | Mapping[str, Any] | AgentConfig) -> ZhSteveAgent:
        """Build from a YAML/JSON file, a dict or an :class:`AgentConfig` (unknown keys → ConfigError)."""
        if isinstance(path_or_dict, AgentConfig):
            config = path_or_dict
        else:
            config = from_dict(AgentConfig, load_config(path_or_dict), "agent config")
        parts = build_tiny_parts(config) if config.tiny is not None else build_parts(config)
        return cls(parts, config)

    # -- instructions ------------------------------------------------------------------------------------------
    def reset(self, instruction: str, lang: Lang = "auto") -> None:
        """Start an episode: embed ``instruction`` once, draw one prior sample for it, clear the memory."""
        self._goal = self._make_goal(instruction, lang)
        self._state = self.parts.policy.initial_state(2 if self.config.cond_scale is not None else 1)
        self.steps = 0

    def set_instruction(self, instruction: str, lang: Lang = "auto") -> None:
        """Switch the goal mid-episode without clearing the memory (STEVE-1's interactive mode)."""
        if self._state is None:
            self.reset(instruction, lang)
            return
        self._goal = self._make_goal(instruction, lang)

    def clear_instruction_cache(self) -> None:
        """Forget cached instruction embeddings (benchmarks call this so every embed is timed cold)."""
        self._cache.clear()

    @property
    def instruction(self) -> str | None:
        return self._goal.instruction if self._goal else None

    @property
    def goal_embedding(self) -> torch.Tensor | None:
        """The [1, 512] goal the policy is conditioned on (a copy)."""
        return None if self._goal is None else self._goal.goal.detach().clone()

    def embed_instruction(self, instruction: str, lang: Lang = "auto") -> tuple[torch.Tensor, dict[str, Any]]:
        """instruction → MineCLIP-space vector [1, 512] (before the prior), with per-stage timings in ms."""
        t0 = time.perf_counter()
        if lang not in ("auto", "zh", "en"):
            raise InvalidInstructionError(f"lang must be 'auto', 'zh' or 'en', got {lang!r}")
        text = normalize_instruction(instruction)
        info: dict[str, Any] = {}
        if lang == "auto":
            r = route_instruction(text)
            path, encoder_text = ("en" if r.language == "en" else "zh"), r.text_for_encoder
            info["language"], info["traditional"] = r.language, r.traditional
        elif lang == "en":
            path, encoder_text = "en", text.lower()
            info["language"] = detect_language(text)
        else:
            r = route_instruction(text)
            path, encoder_text = "zh", r.text_for_encoder if r.language != "en" else text
            info["language"], info["traditional"] = r.language, r.traditional
        info["route"] = path
        info["text_for_encoder"] = encoder_text
        info["normalize_ms"] = _ms(t0)

        key = (path, encoder_text)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            info["cache_hit"] = True
            return cached.clone(), info
        info["cache_hit"] = False
        with torch.inference_mode():
            if path == "zh":
                with self._timer(info, "chinese_clip_ms"):
                    zh = self.parts.chinese_encoder.encode([encoder_text])
                with self._timer(info, "alignment_ms"):
                    align = self.parts.alignment
                    p = next(align.parameters(), None)
                    ref = p if p is not None else next(align.buffers())
                    vec = align(zh.to(device=ref.device, dtype=ref.dtype)).float().cpu()
                vec, info["goal"] = apply_goal_mode(vec, self.config.goal_mode, self.config.alignment,
                                                    self.config.goal_prompts, self.parts.mineclip_encoder)
            else:
                with self._timer(info, "mineclip_text_ms"):
                    vec = self.parts.mineclip_encoder.encode([encoder_text]).float().cpu()
        _check_goal(vec, "MineCLIP-space text embedding")
        if self.config.instruction_cache_size > 0:
            self._cache[key] = vec.clone()
            while len(self._cache) > self.config.instruction_cache_size:
                self._cache.popitem(last=False)
        return vec, info

    def _make_goal(self, instruction: str, lang: Lang) -> _Goal:
        t0 = time.perf_counter()
        vec, info = self.embed_instruction(instruction, lang)
        prior = self.parts.prior
        pdtype = next(prior.parameters()).dtype
        with torch.inference_mode(), self._timer(info, "prior_ms"):
            goal = prior.sample(
                vec.to(self.device, pdtype),
                generator=self._prior_rng,
                deterministic=self.config.prior_sampling == "deterministic",
            ).float()
        _check_goal(goal, "prior goal embedding")
        info["total_ms"] = _ms(t0)
        self.timings["embed"] = info
        return _Goal(instruction=instruction, route=info["route"], text_embed=vec, goal=goal)

    # -- acting ------------------------------------------------------------------------------------------------
    def act(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """One step: a MineRL-style obs (``pov`` H×W×3 uint8 RGB, any size) → a MineRL 1.0 action dict."""
        if self._goal is None:
            raise InvalidInstructionError("call reset(instruction) before act(obs)")
        t0 = time.perf_counter()
        timing: dict[str, Any] = {}
        with self._timer(timing, "preprocess_ms"):
            frame = preprocess_obs(obs)  # validates; uint8 [128, 128, 3]
            img = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device).unsqueeze(0)  # [1, 128, 128, 3]
        policy = self.parts.policy
        goal = self._goal.goal.to(dtype=next(policy.parameters()).dtype)
        with torch.inference_mode():
            with self._timer(timing, "policy_ms"):
                out, self._state = policy.act(img, goal, self._state, cond_scale=self.config.cond_scale)
            with self._timer(timing, "sample_ms"):
                buttons, camera = sample_action(
                    out.buttons_logp, out.camera_logp, generator=self._action_rng,
                    deterministic=self.config.action_sampling == "argmax",
                )
        with self._timer(timing, "to_env_ms"):
            action = to_minerl_action(buttons, camera)
        timing["total_ms"] = _ms(t0)
        self.timings["step"] = timing
        self.steps += 1
        return action

    # -- introspection ----------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Config dump: settings, where each weight came from, and whether the weights are random."""
        n_params = {
            name: int(sum(p.numel() for p in getattr(self.parts, name).parameters()))
            for name in ("alignment", "prior", "policy")
        }
        return {
            "config": asdict(self.config),
            "device": str(self.device),
            "random_weights": self.parts.random_weights,
            "sources": self.parts.sources,
            "n_parameters": n_params,
        }

    @contextmanager
    def _timer(self, into: dict[str, Any], key: str) -> Iterator[None]:
        sync = self.device.type == "cuda"
        if sync:
            torch.cuda.synchronize(self.device)
        t0 = time.perf_counter()
        yield
        if sync:
            torch.cuda.synchronize(self.device)
        into[key] = _ms(t0)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 4)


def _check_goal(vec: torch.Tensor, what: str) -> None:
    if vec.ndim != 2 or vec.shape[0] != 1:
        raise InvalidGoalError(f"{what} must have shape [1, D], got {list(vec.shape)}")
    if not torch.isfinite(vec).all():
        raise InvalidGoalError(f"{what} contains NaN or inf; the checkpoints or the alignment layer are broken")


# --------------------------------------------------------------------------------------------------------------
# building the parts
# --------------------------------------------------------------------------------------------------------------

def _warn_on_encoder_mismatch(alignment: Any, source: str, target: str) -> None:
    """The alignment layer only means something for the encoders it was trained on: say so when they differ."""
    from .errors import ConfigError

    try:
        alignment.check_encoders(source=source, target=target)
    except ConfigError as e:
        warnings.warn(str(e), stacklevel=3)


def _freeze(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    return module.to(device=device, dtype=dtype).requires_grad_(False).eval()


def build_tiny_parts(config: AgentConfig) -> AgentParts:
    """Tiny random models of the real architectures with the real tokenizers (offline)."""
    from .alignment_layer import AlignmentConfig, AlignmentLayer
    from .policy import PolicyConfig, Steve1Policy
    from .prior import PriorConfig, Steve1Prior
    from .text.tiny import tiny_chinese_clip_encoder, tiny_mineclip_text_encoder

    tiny = config.tiny
    assert tiny is not None
    device, dtype = resolve_device(config.device), _DTYPES[config.dtype]
    policy_kwargs, _ = PolicyConfig.full_size().to_kwargs()
    policy_kwargs.update(
        hidsize=tiny.hidsize, attention_heads=tiny.attention_heads, n_recurrence_layers=tiny.n_recurrence_layers,
        impala_width=tiny.impala_width, attention_memory_size=tiny.attention_memory_size, timesteps=tiny.timesteps,
    )
    temperature = 2.0 if config.temperature is None else float(config.temperature)
    zh = tiny_chinese_clip_encoder(seed=tiny.seed, cache_dir=tiny.cache_dir)
    en = tiny_mineclip_text_encoder(seed=tiny.seed)
    # each random module from its own seed, without touching the caller's global RNG state
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tiny.seed)
        policy = Steve1Policy(PolicyConfig.from_kwargs(policy_kwargs, {"temperature": temperature}))
        torch.manual_seed(tiny.seed + 1)
        prior = Steve1Prior(PriorConfig(input_dim=512, hidden_dim=tiny.prior_hidden_dim,
                                        latent_dim=tiny.prior_latent_dim))
        torch.manual_seed(tiny.seed + 2)
        if config.alignment is not None:  # e.g. the layer `configs/alignment_tiny.yaml` trained on these encoders
            alignment = AlignmentLayer.from_pretrained(config.alignment)
            _warn_on_encoder_mismatch(alignment, zh.identity, en.identity)
        else:  # random residual MLP of the real shape
            alignment = AlignmentLayer(AlignmentConfig(kind="mlp", in_dim=zh.dim, out_dim=en.dim,
                                                       source_encoder=zh.identity, target_encoder=en.identity))
    return AgentParts(
        chinese_encoder=zh,
        alignment=_freeze(alignment, device, dtype),
        mineclip_encoder=en,
        prior=_freeze(prior, device, dtype),
        policy=_freeze(policy, device, dtype),
        random_weights=True,
        sources={"all": f"tiny random weights (seed {tiny.seed}) — not a trained agent",
                 "alignment": str(config.alignment) if config.alignment else "random",
                 "temperature": temperature, "temperature_source": "default-official-2.0"
                 if config.temperature is None else "config"},
    )


def build_parts(config: AgentConfig) -> AgentParts:
    """The real models: STEVE-1 policy + prior + MineCLIP text tower from ``config.weights`` (official files or
    the MineStudio hub file, resolved by :mod:`zh_steve.weights`), Chinese-CLIP from the hub or a local dir, and the
    alignment layer trained by ``python -m alignment.train``."""
    from .alignment_layer import AlignmentLayer
    from .policy import Steve1Policy, load_policy_weights
    from .prior import Steve1Prior
    from .text.chinese_clip import ChineseClipTextEncoder
    from .text.mineclip_text import MineClipTextEncoder
    from .weights import WeightsSpec, local_snapshot, resolve_weights

    device, dtype = resolve_device(config.device), _DTYPES[config.dtype]
    if config.alignment is None or not Path(config.alignment).is_dir():
        from .errors import WeightsNotFoundError

        raise WeightsNotFoundError(
            f"alignment layer not found at {config.alignment!r}: train it with `python -m alignment.train "
            f"--out {config.alignment or 'runs/alignment'}` (or set `alignment:` in the agent config)"
        )
    resolved = resolve_weights(WeightsSpec(weights_dir=config.weights, temperature=config.temperature,
                                           allow_download=config.allow_download))
    settings = resolved.policy_kwargs()  # kwargs from 2x.model / hub config.json; temperature and its source
    policy = Steve1Policy(settings.policy_config())
    load_policy_weights(policy, resolved.policy_state_dict())
    prior = Steve1Prior.from_state_dict(resolved.prior_state_dict())
    en = MineClipTextEncoder.from_state_dict(resolved.mineclip_text_state_dict(), device=device, dtype=dtype)
    zh = ChineseClipTextEncoder.from_pretrained(local_snapshot(config.chinese_clip), device=device, dtype=dtype)
    alignment = AlignmentLayer.from_pretrained(config.alignment)
    _warn_on_encoder_mismatch(alignment, zh.identity, en.identity)
    return AgentParts(
        chinese_encoder=zh,
        alignment=_freeze(alignment, device, torch.float32),
        mineclip_encoder=en,
        prior=_freeze(prior, device, dtype),
        policy=_freeze(policy, device, dtype),
        random_weights=False,
        sources={**resolved.describe(), "chinese_clip": config.chinese_clip, "alignment": str(config.alignment),
                 "temperature": settings.temperature, "temperature_source": settings.temperature_source},
    )
