"""What one evaluation worker needs, as plain values: :class:`WorkerRecipe` builds the env factory, the
agent, the translator and the methods in whichever process runs the episodes (the driver itself with
``--workers 1``, each Ray actor otherwise), so every worker is built the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zh_steve.config_utils import load_config
from zh_steve.errors import ZhSteveError

from .envs import MinecraftEnv, make_env
from .methods import Method, make_methods
from .tasks import Task, load_tasks

# how long a hung env call may take before the watchdog kills the env (seconds); None = no watchdog.
# MineRL's first reset launches Minecraft (minutes on a cold machine); steps answer in tens of ms.
DEFAULT_TIMEOUTS = {"minerl": (60.0, 900.0), "minedojo": (60.0, 900.0), "fake": (None, None)}


def load_agent(spec: str, device: str | None, batched: bool = False) -> Any:
    """``random`` → the random-action baseline; otherwise a ZhSteveAgent config file (``batched``: one
    BatchedZhSteveAgent for several envs)."""
    if spec == "random":
        if batched:
            raise ZhSteveError("--batch-envs needs a ZhSteveAgent config, not the random baseline")
        from .baselines import RandomAgent

        return RandomAgent()
    try:
        from zh_steve import ZhSteveAgent
    except ImportError as e:
        raise ZhSteveError(f"zh_steve.ZhSteveAgent is not available ({e}); use --agent-config random to test "
                           "the harness without the agent") from e
    cfg = load_config(spec)
    if device is not None:
        cfg["device"] = device
    if batched:
        from zh_steve.batched_agent import BatchedZhSteveAgent

        return BatchedZhSteveAgent.from_config(cfg)
    return ZhSteveAgent.from_config(cfg)


@dataclass
class WorkerRecipe:
    env_kind: str
    agent_config: str
    method_names: list[str]
    tasks_file: str
    task_names: list[str] | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    step_timeout: float | None = None  # watchdog deadlines; both None (and no env_python) = env in-process
    reset_timeout: float | None = None
    env_python: str | None = None  # run the env under this interpreter (a MineRL/MineDojo virtualenv)
    device: str | None = None
    marian: str | None = None  # resolved spec (hub id, dir or "tiny"); None when translate is not run
    num_beams: int = 1
    cache_dir: str = "runs/cache"
    torch_threads: int | None = None

    @property
    def watched(self) -> bool:
        return self.step_timeout is not None or self.reset_timeout is not None or self.env_python is not None

    def env_factory(self) -> Callable[[], MinecraftEnv]:
        kind, kwargs = self.env_kind, dict(self.env_kwargs)
        if not self.watched:
            return lambda: make_env(kind, **kwargs)
        from .envs.watchdog import SubprocessEnv

        step_t, reset_t, python = self.step_timeout, self.reset_timeout, self.env_python
        return lambda: SubprocessEnv(kind, kwargs, step_timeout=step_t, reset_timeout=reset_t, python=python)

    def translator_texts(self, tasks: list[Task]) -> list[str]:
        return [p.text for t in tasks for p in t.zh] + [t.prompt_en for t in tasks]

    def load_tasks(self) -> tuple[list[Task], list[Task]]:
        """(the tasks to run, the whole suite) — the control method draws its instructions from the suite."""
        return load_tasks(self.tasks_file, only=self.task_names), load_tasks(self.tasks_file)

    def build(self, batched: bool = False) -> tuple[list[Task], list[Method], Any, Any]:
        """(tasks, methods, agent, translator) built in this process (``batched``: a BatchedZhSteveAgent)."""
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)
        tasks, suite = self.load_tasks()
        agent = load_agent(self.agent_config, self.device, batched=batched)
        translator = None
        if "translate" in self.method_names:
            from .translate import load_translator

            translator = load_translator(self.marian or "tiny", self.cache_dir, self.translator_texts(suite),
                                         num_beams=self.num_beams, device=self.device or "cpu")
        return tasks, make_methods(self.method_names, translator, suite=suite), agent, translator


def mark_worker_process() -> None:
    """Let faults that kill 'the worker' (the fake env's ``kill_worker_at_step``) find this process."""
    os.environ["ZS_EVAL_WORKER_PID"] = str(os.getpid())
