"""`BatchedZhSteveAgent`: one STEVE-1 forward serves N environments.

Each environment keeps its own instruction, goal (one prior sample), action RNG and recurrent memory; a step
runs the CNN once per frame (N images) and the transformer and heads once on batch 2N (with CFG: the N
conditional rows, then the N unconditional ones). With the same seeds, env ``i`` acts exactly like a
:class:`~zh_steve.agent.ZhSteveAgent` built with ``seed = seeds[i]`` (tested).

    agent = BatchedZhSteveAgent.from_config("configs/agent.yaml")
    for i, env in enumerate(envs):
        agent.reset(i, "砍树", seed=100 + i)
    actions = agent.act_batch([obs_0, obs_1, ...], env_ids=[0, 1, ...])
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .actions import to_minerl_action
from .agent import AgentConfig, AgentParts, Lang, ZhSteveAgent, _Goal, seed_generators
from .errors import InvalidInstructionError, InvalidObservationError
from .policy import PolicyState, sample_action
from .precision import compute_context
from .preprocess import preprocess_obs


@dataclass
class _Env:
    slot: int  # row of this env in the batched state (and slot + n_slots for its unconditional row)
    goal: _Goal
    action_rng: torch.Generator
    prior_rng: torch.Generator
    steps: int = 0


class BatchedZhSteveAgent:
    """N environments, one policy forward per step. ``reset(env_id, instruction)``, ``act_batch(obs, env_ids)``."""

    def __init__(self, parts: AgentParts, config: AgentConfig | None = None) -> None:
        # the single agent embeds instructions (routing, LRU cache, timings) and prepares the parts for the dtype
        self._embedder = ZhSteveAgent(parts, config)
        self.config, self.parts, self.device = self._embedder.config, self._embedder.parts, self._embedder.device
        self._envs: dict[Hashable, _Env] = {}
        self._state: PolicyState | None = None  # batch n_slots (no CFG) or 2·n_slots
        self.timings: dict[str, Any] = {"embed": {}, "step": {}}  # "embed": the last reset/set_instruction

    # -- what the single agent offers, for callers that drive env slots (eval) ---------------------------------
    @property
    def instruction_info(self) -> Any:
        """:class:`~zh_steve.agent.InstructionInfo` of the last instruction embedded (any env)."""
        return self._embedder.instruction_info

    def clear_instruction_cache(self) -> None:
        self._embedder.clear_instruction_cache()

    def describe(self) -> dict[str, Any]:
        return self._embedder.describe()

    @classmethod
    def from_config(cls, path_or_dict: str | Path | Mapping[str, Any] | AgentConfig) -> BatchedZhSteveAgent:
        single = ZhSteveAgent.from_config(path_or_dict)
        return cls(single.parts, single.config)

    # -- environments -----------------------------------------------------------------------------------------
    @property
    def env_ids(self) -> list[Hashable]:
        return list(self._envs)

    @property
    def _streams(self) -> int:
        return 1 if self.config.cond_scale is None else 2

    def _seed(self, seed: int | None) -> int | None:
        if seed is not None:
            return int(seed)
        if self.config.seed is None:
            return None
        return int(self.config.seed) + 2 * len(self._envs)  # distinct per env, reproducible in reset order

    def reset(self, env_id: Hashable, instruction: str, lang: Lang = "auto", seed: int | None = None) -> None:
        """Start an episode in ``env_id``: new goal (embed + one prior sample), fresh memory.

        ``seed`` seeds this env's prior and action RNGs exactly as ``AgentConfig.seed`` seeds a single agent;
        a new env without one gets ``config.seed + 2·k`` (k = envs before it), or random seeds."""
        env = self._envs.get(env_id)
        if env is None or seed is not None:
            s = self._seed(seed)
            prior_rng, action_rng = torch.Generator(device=self.device), torch.Generator(device=self.device)
            seed_generators(prior_rng, action_rng, s)
        else:
            prior_rng, action_rng = env.prior_rng, env.action_rng
        goal = self._embedder._make_goal(instruction, lang, generator=prior_rng)  # raises before any change
        self.timings["embed"] = self._embedder.timings["embed"]
        fresh = self.parts.policy.initial_state(self._streams)
        if env is None:
            slot = len(self._envs)
            self._grow(fresh)
        else:
            slot = env.slot
            self._state = self._state.put(self._rows([slot]), fresh)
        self._envs[env_id] = _Env(slot=slot, goal=goal, action_rng=action_rng, prior_rng=prior_rng)

    def set_instruction(self, env_id: Hashable, instruction: str, lang: Lang = "auto") -> None:
        """Switch ``env_id``'s goal mid-episode, keeping its memory (a new env is reset instead)."""
        env = self._envs.get(env_id)
        if env is None:
            self.reset(env_id, instruction, lang)
            return
        env.goal = self._embedder._make_goal(instruction, lang, generator=env.prior_rng)
        self.timings["embed"] = self._embedder.timings["embed"]

    def goal_embedding(self, env_id: Hashable) -> torch.Tensor:
        return self._env(env_id).goal.goal.detach().clone()

    def _env(self, env_id: Hashable) -> _Env:
        if env_id not in self._envs:
            raise InvalidInstructionError(f"env {env_id!r} has no instruction: call reset({env_id!r}, instruction)")
        return self._envs[env_id]

    def _rows(self, slots: Sequence[int]) -> list[int]:
        """State rows of these env slots: conditional rows, then (with CFG) the unconditional ones."""
        n = len(self._envs)
        return list(slots) + ([n + s for s in slots] if self._streams == 2 else [])

    def _grow(self, fresh: PolicyState) -> None:
        """Append one slot: [cond 0..n-1, new cond, uncond 0..n-1, new uncond]."""
        if self._state is None:
            self._state = fresh
            return
        n = len(self._envs)
        if self._streams == 1:
            self._state = PolicyState.cat([self._state, fresh])
        else:
            self._state = PolicyState.cat([self._state.select(range(n)), fresh.select([0]),
                                           self._state.select(range(n, 2 * n)), fresh.select([1])])

    # -- acting -----------------------------------------------------------------------------------------------
    def act_batch(self, observations: Sequence[Mapping[str, Any]], env_ids: Sequence[Hashable]
                  ) -> list[dict[str, Any]]:
        """One step of the given envs (each at most once): MineRL obs dicts → MineRL 1.0 action dicts, in order."""
        if isinstance(observations, Mapping) or len(observations) != len(env_ids):
            raise InvalidObservationError("act_batch takes a list of observations and a list of env ids of the "
                                          "same length")
        if len(set(env_ids)) != len(env_ids):
            raise InvalidObservationError(f"act_batch: an env id appears twice in {list(env_ids)}")
        if not env_ids:
            return []
        envs = [self._env(e) for e in env_ids]
        t0 = time.perf_counter()
        frames = np.stack([preprocess_obs(o) for o in observations])            # [N, 128, 128, 3] uint8
        img = torch.from_numpy(frames).to(self.device)
        policy = self.parts.policy
        dtype = next(policy.parameters()).dtype
        goals = torch.cat([e.goal.goal for e in envs]).to(dtype=dtype)          # [N, 512]
        slots = [e.slot for e in envs]
        everyone = slots == list(range(len(self._envs)))
        rows = self._rows(slots)
        state = self._state if everyone else self._state.select(rows)
        with torch.inference_mode(), compute_context(self.config.dtype, self.device):
            out, state = policy.act_batch(img, goals, state, cond_scale=self.config.cond_scale)
            t1 = time.perf_counter()
            actions = []
            for i, env in enumerate(envs):
                buttons, camera = sample_action(
                    out.buttons_logp[i], out.camera_logp[i], generator=env.action_rng,
                    deterministic=self.config.action_sampling == "argmax")
                actions.append(to_minerl_action(buttons, camera))
                env.steps += 1
        self._state = state if everyone else self._state.put(rows, state)
        self.timings["step"] = {"n_envs": len(envs), "policy_ms": round((t1 - t0) * 1e3, 3),
                                "total_ms": round((time.perf_counter() - t0) * 1e3, 3)}
        return actions
