"""Agents that need no weights: a random-action baseline with the ZhSteveAgent interface.

``--agent-config random`` uses it to check the harness on a real Minecraft install before weights are in
place (and the tests use it as a stand-in agent). It ignores the instruction.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np

from zh_steve.actions import noop_action

class RandomAgent:
    """Presses movement/attack keys at random and turns the camera by small random amounts."""

    def __init__(self, seed: int = 0, press_prob: float = 0.2, camera_deg: float = 5.0) -> None:
        self.seed, self.press_prob, self.camera_deg = seed, press_prob, camera_deg
        self.rng = np.random.default_rng(seed)
        self.timings: dict[str, dict[str, float]] = {"embed": {}, "step": {}}
        self.instruction: str | None = None
        self.episode_seed: int | None = None
        self.instruction_info = None  # no text tower: nothing to report

    def reseed(self, seed: int) -> None:
        """Episode seed: actions depend on (seed, episode seed, instruction), not on earlier episodes."""
        self.episode_seed = int(seed)

    def clear_instruction_cache(self) -> None:
        """Nothing is cached (the instruction only seeds the RNG)."""

    def reset(self, instruction: str, lang: str = "auto") -> None:
        t0 = time.perf_counter()
        self.instruction = instruction
        key = f"{self.seed}:{instruction}" if self.episode_seed is None else f"{self.seed}:{self.episode_seed}:{instruction}"
        h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
        self.rng = np.random.default_rng(h)
        self.timings["embed"] = {"total_ms": (time.perf_counter() - t0) * 1e3}

    def act(self, obs: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        action = noop_action()
        for k in ("attack", "forward", "back", "left", "right", "jump", "sprint", "inventory"):
            p = self.press_prob * (0.1 if k == "inventory" else 1.0)
            action[k] = int(self.rng.random() < p)
        action["camera"] = self.rng.normal(0.0, self.camera_deg, size=2).astype(np.float32)
        self.timings["step"] = {"total_ms": (time.perf_counter() - t0) * 1e3}
        return action

    def describe(self) -> dict[str, Any]:
        return {"name": "random-action baseline (ignores the instruction)", "random_weights": True, "seed": self.seed}
