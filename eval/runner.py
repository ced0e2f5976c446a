"""The episode loop: paired seeds, per-episode JSONL results, resume, env-crash retries, Ctrl-C.

Order: for each task, for each episode index, every method in turn on the *same* env seed
``episode_seed(base_seed, task, episode)``, so the methods form matched pairs. Each finished episode is
appended to ``results.jsonl`` and flushed at once. ``resume`` skips keys ``(task, method, episode)``
already recorded with status ``ok``; an episode interrupted mid-way has no row, so it is run again,
and errored episodes are retried (the summary keeps the last row per key).
An exception from the environment (or a dead environment process, or a call that missed the watchdog's
deadline, or an episode the env ended early on its own unless the task allows it) closes it, starts a fresh
one and retries the episode, up to ``max_retries`` times, then records an error row; every failed attempt
is listed in the row's ``env_faults``. An exception from the agent or the method is recorded as an error at
once (retrying would fail the same way).

Every episode reseeds the agent with its env seed (``agent.reseed(seed)``) before the method sets the
goal, so a row depends only on (task, method, episode, seed), never on which episodes ran before it in the
same process: the rows are the same whatever the number of workers (``eval/parallel.py``) or shards.
:class:`EpisodeWorker` is the unit both the serial loop and the Ray actors run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from zh_steve.errors import ConfigError, EnvironmentUnavailableError

from .envs.base import TEST_DOUBLE_LABEL, MinecraftEnv
from .methods import Method
from .metrics import FieldTracker, StepView
from .stats import percentiles
from .tasks import Task
from .video import EpisodeVideo

log = logging.getLogger("eval")
RESULTS = "results.jsonl"
RUN_META = "run_meta.json"
# run_meta fields that must match for --resume to continue a run
RESUME_KEYS = ("env", "base_seed", "max_steps_override", "agent", "translator", "tasks_file_sha256", "shard")


def episode_seed(base_seed: int, task: str, episode: int) -> int:
    """The env seed for (task, episode): the same for every method (paired design); 31-bit."""
    h = hashlib.sha256(f"{base_seed}:{task}:{episode}".encode()).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


class EnvFailure(Exception):
    """Wraps an exception raised by the environment (crash, dead process, protocol violation)."""


def _env_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (KeyboardInterrupt, EnvironmentUnavailableError):
        raise
    except Exception as e:
        raise EnvFailure(f"{type(e).__name__}: {e}") from e


def _close_quietly(env: MinecraftEnv | None) -> None:
    if env is None:
        return
    try:
        env.close()
    except Exception as e:  # a dead process may not close cleanly
        log.warning("ignoring error while closing a failed env: %s: %s", type(e).__name__, e)


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to run: plain values only, so it travels to Ray workers."""

    task: str
    method: str
    episode: int
    seed: int
    max_steps: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.task, self.method, self.episode)

    @property
    def unit(self) -> tuple[str, int]:
        """(task, episode): the paired unit whose methods all run in one worker on one seed."""
        return (self.task, self.episode)


def plan_specs(tasks: list[Task], method_names: list[str], episodes: int, base_seed: int,
               max_steps_override: int | None, shard: tuple[int, int] | None = None) -> list[EpisodeSpec]:
    """Every episode of the run in order: task, episode, then method; ``shard=(i, n)`` keeps units i, i+n, …"""
    specs = []
    for u, (t, ep) in enumerate((t, ep) for t in tasks for ep in range(episodes)):
        if shard is not None and u % shard[1] != shard[0]:
            continue
        for m in method_names:
            specs.append(EpisodeSpec(t.name, m, ep, episode_seed(base_seed, t.name, ep), max_steps_override or t.max_steps))
    return specs


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


class EpisodeRun:
    """One episode, step by step: ``start()`` (reseed, goal, env reset), ``step(action, policy_ms, stages)``
    until ``done``, then ``row()``; ``close()`` always. Env exceptions surface as :class:`EnvFailure`.

    :func:`run_episode` drives it with one agent; ``eval/batched.py`` drives many at once with one batched agent.
    """

    def __init__(self, env: MinecraftEnv, agent: Any, task: Task, method: Method, spec: EpisodeSpec,
                 video_path: Path | None = None, label: str | None = None) -> None:
        self.env, self.agent, self.task, self.method, self.spec = env, agent, task, method, spec
        self.video_path, self.label = video_path, label
        self.video: EpisodeVideo | None = None
        self.policy_ms: list[float] = []
        self.env_ms: list[float] = []
        self.stage_sums: dict[str, float] = {}
        self.steps, self.ended = 0, "max_steps"
        self.finished = False

    def start(self) -> Any:
        spec = self.spec
        self.agent.reseed(spec.seed)
        self.goal = goal = self.method.setup(self.agent, self.task, spec.episode)
        obs, info = _env_call(self.env.reset, seed=spec.seed)
        self.metric = self.task.metric.make()
        self.tracker = FieldTracker()
        self._observe(StepView.from_obs(obs, info), obs)
        if self.video_path is not None:
            lines = [f"{spec.task} | {spec.method} | ep {spec.episode} | seed {spec.seed}", goal.source_text]
            if goal.instruction != goal.source_text:
                lines.append(f"→ {goal.instruction}")
            if self.label:
                lines.insert(0, self.label)
            self.video = EpisodeVideo(self.video_path, lines)
            self.video.add(obs["pov"])
        self.finished = self.spec.max_steps <= 0
        return obs

    def _observe(self, view: StepView, obs: Any) -> None:
        self.obs = obs
        self.metric.update(view)
        self.tracker.update(view)

    @property
    def done(self) -> bool:
        return self.finished

    def step(self, action: Any, policy_ms: float, stages: dict[str, Any] | None = None) -> None:
        t1 = time.perf_counter()
        obs, _reward, terminated, truncated, info = _env_call(self.env.step, action)
        self.env_ms.append((time.perf_counter() - t1) * 1e3)
        self.policy_ms.append(policy_ms)
        for k, v in (stages or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.stage_sums[k] = self.stage_sums.get(k, 0.0) + float(v)
        self._observe(StepView.from_obs(obs, info, action), obs)
        if self.video is not None:
            self.video.add(obs["pov"])
        self.steps += 1
        if terminated or truncated:
            self.ended = "terminated" if terminated else "truncated"
            if not self.task.allow_early_end:
                # STEVE-1's loop runs a fixed length; a shorter episode would be scored on fewer steps
                raise EnvFailure(f"the env ended the episode early ({self.ended}) at step {self.steps} of "
                                 f"{self.spec.max_steps}; the task does not allow that (allow_early_end), so it "
                                 "counts as an env fault")
            self.finished = True
        if self.steps >= self.spec.max_steps:
            self.finished = True

    def close(self) -> None:
        if self.video is not None:
            self.video.close()
            self.video = None

    def row(self) -> dict[str, Any]:
        goal, task, score = self.goal, self.task, self.metric.score()
        return {
            "status": "ok",
            "instruction": goal.instruction,
            "lang": goal.lang,
            "source_text": goal.source_text,
            "script": goal.script,
            "style": goal.style,
            "metric": task.metric.name,
            "metric_params": dict(task.metric.params),
            "unit": self.metric.unit,
            "score": score,
            "threshold": task.metric.threshold,
            "success": task.metric.success(score),
            "observed": self.tracker.summary(),
            "steps": self.steps,
            "ended_by": self.ended,
            "translation": goal.translation,
            "embed_info": goal.embed_info,
            "goal_ms": goal.timings_ms,
            "policy_step_ms": percentiles(self.policy_ms),
            "env_step_ms": percentiles(self.env_ms),
            "agent_step_stages_ms": {k: v / max(1, self.steps) for k, v in self.stage_sums.items()},
            "step_times_ms": {"policy": [round(v, 3) for v in self.policy_ms],
                              "env": [round(v, 3) for v in self.env_ms]},
            "video": str(self.video_path) if self.video_path is not None else None,
        }


def run_episode(
    env: MinecraftEnv, agent: Any, task: Task, method: Method, spec: EpisodeSpec, video_path: Path | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Run one episode with one agent; env exceptions surface as :class:`EnvFailure`, anything else propagates."""
    run = EpisodeRun(env, agent, task, method, spec, video_path, label)
    try:
        obs = run.start()
        while not run.done:
            t0 = time.perf_counter()
            action = agent.act(obs)
            policy_ms = (time.perf_counter() - t0) * 1e3
            run.step(action, policy_ms, (getattr(agent, "timings", None) or {}).get("step"))
            obs = run.obs
    finally:
        run.close()
    return run.row()


def read_results(path: Path) -> list[dict[str, Any]]:
    """All rows of a results.jsonl; a torn last line (killed mid-write) is skipped with a warning."""
    rows = []
    if not path.is_file():
        return rows
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s:%d: skipping an unreadable (partly written) line", path, i + 1)
    return rows


def latest_rows(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The last row for each (task, method, episode)."""
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for r in rows:
        out[(r["task"], r["method"], int(r["episode"]))] = r
    return out


class ResultsWriter:
    """Appends one JSON line per episode, flushed and fsynced, so a kill loses at most the running episode."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with path.open("ab") as f:  # a torn last line: start ours on a fresh line
                f.write(b"\n")
        self.f = path.open("a", encoding="utf-8")

    def append(self, row: dict[str, Any]) -> None:
        self.f.write(json.dumps(_jsonable(row), ensure_ascii=False) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


@dataclass
class RunSettings:
    out_dir: Path
    episodes: int
    base_seed: int = 0
    max_steps_override: int | None = None
    max_retries: int = 2
    resume: bool = False
    overwrite: bool = False
    video: bool = False
    progress: bool = True
    recycle_every: int | None = None  # a fresh env every K episodes (per worker); None = only after crashes
    shard: tuple[int, int] | None = None  # (i, n): run units i, i+n, … of the plan (python -m eval.merge joins)


def check_resume(out_dir: Path, meta: dict[str, Any], resume: bool, overwrite: bool) -> None:
    """Refuse to mix runs: an existing results file needs --resume (same settings) or --overwrite."""
    results, meta_path = out_dir / RESULTS, out_dir / RUN_META
    if overwrite:
        for p in (results, meta_path):
            if p.exists():
                p.unlink()
    elif results.exists() and not resume:
        raise ConfigError(f"{results} already exists: pass --resume to continue that run or --overwrite to start over")
    elif resume and meta_path.is_file():
        old = json.loads(meta_path.read_text(encoding="utf-8"))
        diff = [k for k in RESUME_KEYS if old.get(k) != meta.get(k)]
        if diff:
            raise ConfigError(
                f"cannot --resume in {out_dir}: settings differ from the recorded run in {diff} "
                f"(recorded {[old.get(k) for k in diff]}, now {[meta.get(k) for k in diff]}); use another --out"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(_jsonable(meta), ensure_ascii=False, indent=2), encoding="utf-8")


class EpisodeWorker:
    """Runs episodes on its own env and agent: env restarts and retries, recycling, video paths, row fields."""

    def __init__(self, tasks: Iterable[Task], methods: Iterable[Method], agent: Any,
                 env_factory: Callable[[], MinecraftEnv], settings: RunSettings, label: str | None = None,
                 worker_id: str = "main") -> None:
        self.tasks = {t.name: t for t in tasks}
        self.methods = {m.name: m for m in methods}
        self.agent, self.env_factory, self.settings = agent, env_factory, settings
        self.label, self.worker_id = label, worker_id
        self.env: MinecraftEnv | None = None
        self.env_episodes = 0  # episodes run on the current env (for --recycle-every)
        self.envs_started = 0

    def _fresh_env(self) -> MinecraftEnv:
        self.close()
        self.env = _env_call(self.env_factory)
        self.envs_started += 1
        self.env_episodes = 0
        return self.env

    def run(self, spec: EpisodeSpec, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """The complete result row of ``spec`` (status ok or error); only KeyboardInterrupt and
        EnvironmentUnavailableError escape."""
        task, method = self.tasks[spec.task], self.methods[spec.method]
        video_path = (self.settings.out_dir / "videos" / f"{spec.task}__{spec.method}__ep{spec.episode:03d}.mp4"
                      if self.settings.video else None)
        recycled = False
        every = self.settings.recycle_every
        if self.env is not None and every and self.env_episodes >= every:
            self.close()
            recycled = True
        faults: list[str] = []
        attempt = 0
        while True:
            attempt += 1
            try:
                env = self.env if self.env is not None else self._fresh_env()
                self.env_episodes += 1
                row = run_episode(env, self.agent, task, method, spec, video_path, self.label)
            except EnvironmentUnavailableError:
                raise
            except EnvFailure as e:
                faults.append(str(e))
                self.close()
                if attempt <= self.settings.max_retries:
                    log.warning("env failed on %s (attempt %d): %s; restarting the env and retrying", spec.key,
                                attempt, e)
                    continue
                row = {"status": "error", "error_kind": "env", "error": str(e)}
            except KeyboardInterrupt:
                raise
            except Exception as e:
                log.warning("episode %s failed in the agent/method: %s: %s", spec.key, type(e).__name__, e)
                row = {"status": "error", "error_kind": "agent", "error": f"{type(e).__name__}: {e}",
                       "traceback": traceback.format_exc(limit=5)}
            break
        return {**(base or {}), "attempts": attempt, "env_faults": faults, "env_recycled": recycled,
                "worker": self.worker_id, **row}

    def close(self) -> None:
        _close_quietly(self.env)
        self.env = None


def base_row(spec: EpisodeSpec, meta: dict[str, Any]) -> dict[str, Any]:
    label = TEST_DOUBLE_LABEL if meta.get("test_double") else None
    return {"task": spec.task, "method": spec.method, "episode": spec.episode, "seed": spec.seed,
            "env": meta.get("env"), "test_double": bool(meta.get("test_double")), "label": label,
            "max_steps": spec.max_steps}


def start_run(tasks: list[Task], method_names: list[str], settings: RunSettings, meta: dict[str, Any]
              ) -> tuple[list[EpisodeSpec], list[EpisodeSpec], ResultsWriter]:
    """Check/record the run, plan it, and open the writer: returns (all specs, specs still to run, writer)."""
    out = settings.out_dir
    check_resume(out, meta, settings.resume, settings.overwrite)
    results_path = out / RESULTS
    done = {k for k, r in latest_rows(read_results(results_path)).items() if r.get("status") == "ok"}
    specs = plan_specs(tasks, method_names, settings.episodes, settings.base_seed, settings.max_steps_override,
                       settings.shard)
    return specs, [s for s in specs if s.key not in done], ResultsWriter(results_path)


def run_evaluation(
    tasks: list[Task],
    methods: list[Method],
    agent: Any,
    env_factory: Callable[[], MinecraftEnv],
    settings: RunSettings,
    meta: dict[str, Any],
) -> list[dict[str, Any]]:
    """Run every (task, episode, method) not done yet in this process; returns all result rows (old and new).

    KeyboardInterrupt propagates after the current env is closed; rows written so far are on disk.
    """
    specs, todo, writer = start_run(tasks, [m.name for m in methods], settings, meta)
    label = TEST_DOUBLE_LABEL if meta.get("test_double") else None
    worker = EpisodeWorker(tasks, methods, agent, env_factory, settings, label)
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="episodes", unit="ep",
               disable=not settings.progress, dynamic_ncols=True)
    try:
        for spec in todo:
            bar.set_postfix_str(f"{spec.task}/{spec.method}/{spec.episode}")
            writer.append(worker.run(spec, base_row(spec, meta)))
            bar.update(1)
    finally:
        bar.close()
        writer.close()
        worker.close()
    return read_results(settings.out_dir / RESULTS)
