"""``--batch-envs N``: N envs stepped in lockstep by one :class:`~zh_steve.batched_agent.BatchedZhSteveAgent`
(one policy forward per step for all of them): the one-GPU setup, where N single agents would each hold a copy
of the weights and run batch-1 forwards.

Each env slot runs :class:`eval.runner.EpisodeRun` episodes one after another; a slot whose env fails is
restarted and its episode retried (``max_retries``) without stopping the others; every finished row is written
at once (``--resume`` works as in the serial loop). Each episode reseeds its slot with the episode seed, so the
rows are the same as with ``--workers 1`` (the batched agent equals N single agents with the same seeds).
With the watchdog on (``--env-timeout``, or MineRL/MineDojo by default) each env is its own process.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from zh_steve.errors import EnvironmentUnavailableError

from .envs.base import TEST_DOUBLE_LABEL, MinecraftEnv
from .methods import Method
from .runner import (RESULTS, EnvFailure, EpisodeRun, EpisodeSpec, RunSettings, _close_quietly, _env_call, base_row,
                     read_results, start_run)
from .tasks import Task

log = logging.getLogger("eval")


class SlotAgent:
    """One env slot of a batched agent, seen through the single-agent interface the methods use."""

    def __init__(self, batched: Any, slot: int) -> None:
        self.batched, self.slot = batched, slot
        self.seed: int | None = None

    @property
    def timings(self) -> dict[str, Any]:
        return self.batched.timings

    @property
    def instruction_info(self) -> Any:
        return self.batched.instruction_info

    def reseed(self, seed: int) -> None:
        self.seed = int(seed)

    def clear_instruction_cache(self) -> None:
        self.batched.clear_instruction_cache()

    def reset(self, instruction: str, lang: str = "auto") -> None:
        self.batched.reset(self.slot, instruction, lang=lang, seed=self.seed)

    def describe(self) -> dict[str, Any]:
        return self.batched.describe()


class _Slot:
    def __init__(self, i: int, agent: SlotAgent) -> None:
        self.i, self.agent = i, agent
        self.env: MinecraftEnv | None = None
        self.run: EpisodeRun | None = None
        self.spec: EpisodeSpec | None = None
        self.attempt = 0
        self.faults: list[str] = []


def run_batched(tasks: list[Task], methods: list[Method], batched: Any, env_factory: Callable[[], MinecraftEnv],
                settings: RunSettings, meta: dict[str, Any], n_envs: int) -> list[dict[str, Any]]:
    """Run every episode not done yet on ``n_envs`` env slots driven by one batched agent; returns all rows."""
    specs, todo, writer = start_run(tasks, [m.name for m in methods], settings, meta)
    task_by, method_by = {t.name: t for t in tasks}, {m.name: m for m in methods}
    label = TEST_DOUBLE_LABEL if meta.get("test_double") else None
    queue = deque(todo)
    slots = [_Slot(i, SlotAgent(batched, i)) for i in range(n_envs)]
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=f"episodes ({n_envs} envs, batched)",
               unit="ep", disable=not settings.progress, dynamic_ncols=True)

    def finish(slot: _Slot, row: dict[str, Any]) -> None:
        assert slot.spec is not None
        writer.append({**base_row(slot.spec, meta), "attempts": slot.attempt, "env_faults": slot.faults,
                       "env_recycled": False, "worker": f"batched-{slot.i}", **row})
        bar.update(1)
        if slot.run is not None:
            slot.run.close()
        slot.run, slot.spec = None, None

    def fail(slot: _Slot, e: Exception) -> bool:
        """An env fault: restart the slot's env; True = retry the episode, False = recorded as an error."""
        slot.faults.append(str(e))
        if slot.run is not None:
            slot.run.close()
            slot.run = None
        _close_quietly(slot.env)
        slot.env = None
        if slot.attempt <= settings.max_retries:
            log.warning("env failed on %s (attempt %d): %s; restarting the env and retrying", slot.spec.key,
                        slot.attempt, e)
            return True
        finish(slot, {"status": "error", "error_kind": "env", "error": str(e)})
        return False

    def begin(slot: _Slot) -> None:
        """Start the slot's current spec (or the next one) until one starts or the queue is empty."""
        while True:
            if slot.spec is None:
                if not queue:
                    return
                slot.spec, slot.attempt, slot.faults = queue.popleft(), 0, []
            slot.attempt += 1
            spec = slot.spec
            video = (settings.out_dir / "videos" / f"{spec.task}__{spec.method}__ep{spec.episode:03d}.mp4"
                     if settings.video else None)
            try:
                if slot.env is None:
                    slot.env = _env_call(env_factory)
                slot.run = EpisodeRun(slot.env, slot.agent, task_by[spec.task], method_by[spec.method], spec,
                                      video, label)
                slot.run.start()
                if slot.run.done:
                    finish(slot, slot.run.row())
                    continue
                return
            except EnvironmentUnavailableError:
                raise
            except EnvFailure as e:
                fail(slot, e)
            except Exception as e:  # the agent or the method: recorded at once
                finish(slot, {"status": "error", "error_kind": "agent", "error": f"{type(e).__name__}: {e}"})

    try:
        for slot in slots:
            begin(slot)
        while True:
            active = [s for s in slots if s.run is not None]
            if not active:
                break
            t0 = time.perf_counter()
            actions = batched.act_batch([s.run.obs for s in active], [s.i for s in active])
            policy_ms = (time.perf_counter() - t0) * 1e3 / len(active)  # this env's share of the forward
            stages = {k: v / len(active) for k, v in (batched.timings.get("step") or {}).items()
                      if k.endswith("_ms")}
            for slot, action in zip(active, actions):
                try:
                    slot.run.step(action, policy_ms, stages)
                    if slot.run.done:
                        finish(slot, slot.run.row())
                except EnvFailure as e:
                    fail(slot, e)
                if slot.run is None:
                    begin(slot)
    finally:
        bar.close()
        writer.close()
        for slot in slots:
            if slot.run is not None:
                slot.run.close()
            _close_quietly(slot.env)
    return read_results(settings.out_dir / RESULTS)
