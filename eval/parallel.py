"""``--workers N``: N env+agent workers as Ray actors; the driver alone writes ``results.jsonl``.

- Each actor builds its own env factory, agent, translator and methods from a :class:`WorkerRecipe` and runs
  :class:`eval.runner.EpisodeWorker` (env restarts, watchdog, recycling: the same code as ``--workers 1``).
- Paired design: the unit of work is (task, episode). All methods of a unit are sent to the same actor, in
  order, on the same env seed.
- The driver writes each row as it arrives (flushed, fsynced), so ``--resume`` works as in a serial run.
- An actor that dies (OOM killer, segfault, SIGKILL) is replaced by a fresh one in the same slot; the episode
  it was running and the unit's methods not yet finished are sent to the new actor. A finished row is never
  lost (it is on disk) and never repeated (it is not resent). After ``max_retries`` deaths on the same
  episode, that episode is recorded as an error (``error_kind: "worker"``) and the run goes on.
- Rows depend only on (task, method, episode, seed): the agent is reseeded per episode (see runner.py).

``pip install "zh-steve[ray]"`` provides Ray. ``ray_address`` joins a running cluster (``ray start --head``
on the head node); without it a local Ray starts with enough CPU slots for the requested workers.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from zh_steve.errors import ConfigError, ZhSteveError

from .runner import RESULTS, EpisodeSpec, EpisodeWorker, ResultsWriter, RunSettings, base_row, read_results
from .worker import WorkerRecipe, mark_worker_process

log = logging.getLogger("eval")
GIB = 1 << 30
RAY_HELP = ('--workers > 1 runs the workers on Ray, which is not installed. Install the extra: '
            'pip install "zh-steve[ray]"   (or: pip install ray)')


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ConfigError(f"{RAY_HELP} ({e})") from e
    return ray


@dataclass
class ParallelSettings:
    workers: int
    ray_address: str | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0  # fractions share a GPU (e.g. 0.25 = four workers per GPU)
    memory_per_worker_gib: float = 0.0  # agent + env process, excluding the JVM
    jvm_memory_gib: float = 0.0  # reserved for each worker's Minecraft JVM (MineRL/MineDojo)

    def actor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"num_cpus": self.cpus_per_worker, "num_gpus": self.gpus_per_worker,
                                "max_restarts": 0, "max_concurrency": 1}
        mem = self.memory_per_worker_gib + self.jvm_memory_gib
        if mem > 0:
            opts["memory"] = int(mem * GIB)
        return opts


class _Actor:
    """The body of a Ray actor: one EpisodeWorker in its own process."""

    def __init__(self, recipe: WorkerRecipe, settings: RunSettings, label: str | None, worker_id: str) -> None:
        mark_worker_process()
        logging.basicConfig(level=logging.WARNING)
        self.init_error: Exception | None = None
        self.worker: EpisodeWorker | None = None
        try:
            tasks, methods, agent, translator = recipe.build()
        except Exception as e:  # reported by the first call (a clean error in the driver, not a dead actor)
            self.init_error = e
            return
        self.agent_info = agent.describe()
        self.translator_info = translator.describe() if translator is not None else None
        self.worker = EpisodeWorker(tasks, methods, agent, recipe.env_factory(), settings, label, worker_id)

    def _ready(self) -> EpisodeWorker:
        if self.init_error is not None:
            raise self.init_error
        assert self.worker is not None
        return self.worker

    def describe(self) -> dict[str, Any]:
        self._ready()
        return {"agent": self.agent_info, "translator": self.translator_info, "pid": os.getpid()}

    def run(self, spec: EpisodeSpec, base: dict[str, Any]) -> dict[str, Any]:
        return self._ready().run(spec, base)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


def _unwrap(ray: Any, e: Exception) -> None:
    """Re-raise a user-facing error (e.g. backend not installed) that happened inside an actor."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, ZhSteveError):
        raise cause
    if isinstance(e, ray.exceptions.RayTaskError):
        raise ZhSteveError(f"an evaluation worker failed: {e}") from e


class RayPool:
    """Starts (and restarts) the actors; ``describe()`` reports what the workers built."""

    def __init__(self, recipe: WorkerRecipe, settings: RunSettings, par: ParallelSettings, label: str | None):
        self.ray = ray = import_ray()
        self.recipe, self.settings, self.par, self.label = recipe, settings, par, label
        self.started_ray = False
        if not ray.is_initialized():
            if par.ray_address:
                ray.init(address=par.ray_address, log_to_driver=True)
            else:
                cpus = max(os.cpu_count() or 1, int(par.workers * par.cpus_per_worker + 0.999))
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=True,
                         object_store_memory=256 * (1 << 20))
            self.started_ray = True
        self.cls = ray.remote(_Actor).options(**par.actor_options())
        self.generation = [0] * par.workers
        self.actors = [self._start(i) for i in range(par.workers)]

    def _start(self, slot: int) -> Any:
        wid = f"ray-{slot}" + (f".{self.generation[slot]}" if self.generation[slot] else "")
        return self.cls.remote(self.recipe, self.settings, self.label, wid)

    def restart(self, slot: int) -> Any:
        try:
            self.ray.kill(self.actors[slot], no_restart=True)
        except Exception:
            pass
        self.generation[slot] += 1
        self.actors[slot] = self._start(slot)
        return self.actors[slot]

    def describe(self) -> dict[str, Any]:
        """What worker 0 built (agent, translator); a worker that cannot start raises a ZhSteveError here."""
        try:
            return self.ray.get(self.actors[0].describe.remote())
        except Exception as e:
            _unwrap(self.ray, e)
            raise ZhSteveError(f"the evaluation workers could not start: {e}") from e

    def shutdown(self) -> None:
        for a in self.actors:
            try:
                self.ray.get(a.close.remote(), timeout=60)
            except Exception:
                pass
            try:
                self.ray.kill(a, no_restart=True)
            except Exception:
                pass
        if self.started_ray:
            self.ray.shutdown()


def run_parallel(pool: RayPool, specs: list[EpisodeSpec], todo: list[EpisodeSpec], writer: ResultsWriter,
                 meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Run ``todo`` on the pool's actors, writing every row as it arrives; returns all rows of the run."""
    ray, settings = pool.ray, pool.settings
    units: deque[list[EpisodeSpec]] = deque()
    for spec in todo:  # todo is ordered task, episode, method: consecutive specs of a unit stay together
        if units and units[-1][0].unit == spec.unit:
            units[-1].append(spec)
        else:
            units.append([spec])
    n = len(pool.actors)
    pending: list[deque[tuple[EpisodeSpec, Any]]] = [deque() for _ in range(n)]  # in submission order
    deaths: dict[tuple[str, str, int], int] = {}
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=f"episodes ({n} workers)", unit="ep",
               disable=not settings.progress, dynamic_ncols=True)

    def submit(slot: int, unit: list[EpisodeSpec]) -> None:
        actor = pool.actors[slot]
        for spec in unit:
            base = base_row(spec, meta)
            if deaths.get(spec.key):
                base["worker_deaths"] = deaths[spec.key]
            pending[slot].append((spec, actor.run.remote(spec, base)))

    def feed(slot: int) -> None:
        if not pending[slot] and units:
            submit(slot, units.popleft())

    def record(row: dict[str, Any]) -> None:
        writer.append(row)
        bar.update(1)

    try:
        for slot in range(n):
            feed(slot)
        while any(pending):
            heads = {p[0][1]: slot for slot, p in enumerate(pending) if p}
            ready, _ = ray.wait(list(heads), num_returns=1)
            slot = heads[ready[0]]
            spec, ref = pending[slot].popleft()
            try:
                record(ray.get(ref))
            except ray.exceptions.RayActorError as e:
                # the actor died while running `spec`; the specs queued behind it never started
                unfinished = [spec] + [s for s, _ in pending[slot]]
                pending[slot].clear()
                deaths[spec.key] = deaths.get(spec.key, 0) + 1
                log.warning("worker %d died during %s (%s); starting a new worker and retrying", slot, spec.key,
                            type(e).__name__)
                pool.restart(slot)
                if deaths[spec.key] > settings.max_retries:
                    record({**base_row(spec, meta), "attempts": deaths[spec.key], "status": "error",
                            "error_kind": "worker", "error": f"the worker died {deaths[spec.key]} times on this "
                            f"episode: {e}"})
                    unfinished = unfinished[1:]
                if unfinished:
                    submit(slot, unfinished)
            except ray.exceptions.RayTaskError as e:
                _unwrap(ray, e)
            feed(slot)
    finally:
        bar.close()
        writer.close()
    return read_results(settings.out_dir / RESULTS)
