"""`ZhSteveAgent`: a Chinese (or English) instruction in, MineRL 1.0 actions out. The runtime only: the models it
runs are built by :mod:`zh_steve.assembly` (``AgentConfig`` → ``AgentParts``).

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
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .actions import to_minerl_action
from .assembly import AgentConfig, AgentParts, build
from .errors import InvalidGoalError, InvalidInstructionError
from .policy import sample_action
from .precision import compute_context, prepare_parts
from .goal import apply_goal_mode
from .linear import count_parameters
from .preprocess import preprocess_obs
from .text.language import Lang, route

__all__ = ["AgentConfig", "AgentParts", "InstructionInfo", "ZhSteveAgent"]


@dataclass(frozen=True)
class InstructionInfo:
    """What happened to the last instruction (facts, not timings: those are in ``agent.timings["embed"]``)."""

    instruction: str
    route: str  # "zh" (Chinese-CLIP → alignment layer) | "en" (MineCLIP)
    language: str  # detected: zh | en | mixed
    traditional: bool  # converted from Traditional to Simplified
    text_for_encoder: str
    cache_hit: bool  # the MineCLIP-space vector came from the instruction cache
    goal: dict[str, Any] | None = None  # goal-mode decision (zh_steve.goal) when computed (not on cache hits)


@dataclass
class _Goal:
    info: InstructionInfo
    goal: torch.Tensor  # [1, 512] prior sample fed to the policy


class ZhSteveAgent:
    """STEVE-1 commanded in Chinese or English. See the module docstring for the data flow."""

    def __init__(self, parts: AgentParts, config: AgentConfig | None = None) -> None:
        self.config = config or AgentConfig()
        self.parts = prepare_parts(parts, self.config.dtype)  # int8-dynamic: quantises the linears once
        self.device = parts.device
        self._cache: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self._prior_rng = torch.Generator(device=self.device)
        self._action_rng = torch.Generator(device=self.device)
        seed_generators(self._prior_rng, self._action_rng, self.config.seed)
        self._goal: _Goal | None = None
        self._state: Any = None
        self.steps = 0
        self.timings: dict[str, dict[str, float]] = {"embed": {}, "step": {}}  # stage → ms, last reset / act
        self.instruction_info: InstructionInfo | None = None  # route and cache hit of the last instruction

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, path_or_dict: str | Path | Mapping[str, Any] | AgentConfig) -> ZhSteveAgent:
        """Build from a YAML/JSON file, a dict or an :class:`AgentConfig` (unknown keys → ConfigError)."""
        config = AgentConfig.load(path_or_dict)
        return cls(build(config), config)

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

    def reseed(self, seed: int) -> None:
        """Restart the prior-sample and action-sampling generators from ``seed`` (eval calls it per episode,
        so an episode's actions do not depend on which episodes ran before it in this process)."""
        seed_generators(self._prior_rng, self._action_rng, seed)

    def clear_instruction_cache(self) -> None:
        """Forget cached instruction embeddings (benchmarks call this so every embed is timed cold)."""
        self._cache.clear()

    @property
    def instruction(self) -> str | None:
        return self._goal.info.instruction if self._goal else None

    @property
    def goal_embedding(self) -> torch.Tensor | None:
        """The [1, 512] goal the policy is conditioned on (a copy)."""
        return None if self._goal is None else self._goal.goal.detach().clone()

    def embed_instruction(self, instruction: str, lang: Lang = "auto") -> tuple[torch.Tensor, InstructionInfo,
                                                                              dict[str, float]]:
        """instruction → MineCLIP-space vector [1, 512] (before the prior), what happened, per-stage ms."""
        t0 = time.perf_counter()
        r = route(instruction, lang)
        ms: dict[str, float] = {"normalize_ms": _ms(t0)}
        key = (r.tower, r.text_for_encoder)
        vec = self._cache.get(key)
        goal_decision = None
        info = InstructionInfo(instruction=instruction, route=r.tower, language=r.language,
                               traditional=r.traditional, text_for_encoder=r.text_for_encoder,
                               cache_hit=vec is not None)
        if vec is not None:
            self._cache.move_to_end(key)
            return vec.clone(), info, ms
        with torch.inference_mode(), compute_context(self.config.dtype, self.device):
            if r.uses_chinese_clip:
                with self._timer(ms, "chinese_clip_ms"):
                    zh = self.parts.chinese_encoder.encode([r.text_for_encoder])
                with self._timer(ms, "alignment_ms"):
                    vec = self.parts.alignment(zh).float().cpu()
                vec, goal_decision = apply_goal_mode(
                    vec, self.config.goal_mode, self.config.alignment, self.config.goal_prompts,
                    self.parts.mineclip_encoder if self.config.goal_prompts else None)
            else:
                with self._timer(ms, "mineclip_text_ms"):
                    vec = self.parts.mineclip_encoder.encode([r.text_for_encoder]).float().cpu()
        _check_goal(vec, "MineCLIP-space text embedding")
        if goal_decision is not None:
            info = replace(info, goal=goal_decision)
        if self.config.instruction_cache_size > 0:
            self._cache[key] = vec.clone()
            while len(self._cache) > self.config.instruction_cache_size:
                self._cache.popitem(last=False)
        return vec, info, ms

    def _make_goal(self, instruction: str, lang: Lang, generator: torch.Generator | None = None) -> _Goal:
        """Embed (cached) + one prior sample drawn from ``generator`` (default: this agent's prior RNG)."""
        t0 = time.perf_counter()
        vec, info, ms = self.embed_instruction(instruction, lang)
        with torch.inference_mode(), self._timer(ms, "prior_ms"):
            goal = self.parts.prior.sample(
                vec, generator=self._prior_rng if generator is None else generator,
                deterministic=self.config.prior_sampling == "deterministic",
            ).float()
        _check_goal(goal, "prior goal embedding")
        ms["total_ms"] = _ms(t0)
        self.timings["embed"], self.instruction_info = ms, info
        return _Goal(info=info, goal=goal)

    # -- acting ------------------------------------------------------------------------------------------------
    def act(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """One step: a MineRL-style obs (``pov`` H×W×3 uint8 RGB, any size) → a MineRL 1.0 action dict."""
        if self._goal is None:
            raise InvalidInstructionError("call reset(instruction) before act(obs)")
        t0 = time.perf_counter()
        timing: dict[str, float] = {}
        with self._timer(timing, "preprocess_ms"):
            frame = preprocess_obs(obs)  # validates; uint8 [128, 128, 3]
            img = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device).unsqueeze(0)  # [1, 128, 128, 3]
        with torch.inference_mode(), compute_context(self.config.dtype, self.device):
            with self._timer(timing, "policy_ms"):
                out, self._state = self.parts.policy.act(img, self._goal.goal, self._state,
                                                         cond_scale=self.config.cond_scale)
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
            name: count_parameters(getattr(self.parts, name))  # (packed bf16 weights included)
            for name in ("alignment", "prior", "policy")
        }
        return {
            "config": asdict(self.config),
            "device": str(self.device),
            "random_weights": self.parts.random_weights,
            "sources": self.parts.sources,
            "mineclip_text_loaded": self.parts.mineclip_loaded,
            "n_parameters": n_params,
        }

    @contextmanager
    def _timer(self, into: dict[str, float], key: str) -> Iterator[None]:
        sync = self.device.type == "cuda"
        if sync:
            torch.cuda.synchronize(self.device)
        t0 = time.perf_counter()
        yield
        if sync:
            torch.cuda.synchronize(self.device)
        into[key] = _ms(t0)


def seed_generators(prior_rng: torch.Generator, action_rng: torch.Generator, seed: int | None) -> None:
    """How a seed maps to an agent's two generators (prior sample: ``seed``, actions: ``seed + 1``; ``None``:
    fresh random seeds). Single and batched agents share it, so equal seeds give equal actions."""
    if seed is None:
        prior_rng.seed()
        action_rng.seed()
    else:
        prior_rng.manual_seed(int(seed))
        action_rng.manual_seed(int(seed) + 1)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 4)


def _check_goal(vec: torch.Tensor, what: str) -> None:
    if vec.ndim != 2 or vec.shape[0] != 1:
        raise InvalidGoalError(f"{what} must have shape [1, D], got {list(vec.shape)}")
    if not torch.isfinite(vec).all():
        raise InvalidGoalError(f"{what} contains NaN or inf; the checkpoints or the alignment layer are broken")


