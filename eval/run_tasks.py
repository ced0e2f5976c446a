"""``python -m eval.run_tasks``: evaluate Chinese instructions on STEVE-1's tasks (and more).

Example (offline, test double, tiny random agent):
    python -m eval.run_tasks --lang zh --env fake --agent-config configs/agent_tiny.yaml --episodes 2 --out runs/eval
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from zh_steve.config_utils import load_config
from zh_steve.errors import ConfigError, ZhSteveError

from .envs import ENV_KINDS, TEST_DOUBLE_LABEL
from .methods import ALL_METHODS, METHODS_FOR_LANG
from .report import write_reports
from .runner import RunSettings, read_results, run_evaluation, start_run
from .tasks import DEFAULT_TASKS_PATH
from .translate import REAL_MARIAN
from .worker import DEFAULT_TIMEOUTS, WorkerRecipe, load_agent  # noqa: F401  (load_agent: public name kept)

FAKE_DEFAULT_MAX_STEPS = 100
log = logging.getLogger("eval")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m eval.run_tasks",
        description=(
            "Run the zh-steve agent on the task suite and compare how the instruction reaches it: "
            "align (Chinese → alignment layer), translate (MarianMT zh→en → MineCLIP English), direct-en "
            "(STEVE-1's English prompt), control / control-en (another task's instruction: the base rate). Methods "
            "share env seeds (paired design). Writes results.jsonl, "
            "summary.json, summary.md, success.png, latency.png (and videos with --video) to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--lang", choices=sorted(METHODS_FOR_LANG), default="zh",
                   help="zh runs align + translate + control; en runs direct-en + control-en")
    p.add_argument("--methods", nargs="+", choices=ALL_METHODS, help="override the methods chosen by --lang")
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="subset of task names (default: the whole suite)")
    p.add_argument("--tasks-file", default=str(DEFAULT_TASKS_PATH), help="task suite YAML")
    p.add_argument("--env", choices=ENV_KINDS, default="minerl",
                   help="minerl (STEVE-1's setting), minedojo (approximate actions) or fake (test double, "
                        "not Minecraft)")
    p.add_argument("--agent-config", default="configs/agent.yaml",
                   help="ZhSteveAgent config (YAML); 'random' = random-action baseline (no weights)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per task and method")
    p.add_argument("--max-steps", type=int, default=None,
                   help=f"steps per episode for every task (default: each task's max_steps; "
                        f"{FAKE_DEFAULT_MAX_STEPS} on --env fake)")
    p.add_argument("--seed", type=int, default=0, help="base seed; env seed = f(base seed, task, episode)")
    p.add_argument("--marian", default="auto",
                   help=f"MarianMT zh→en for the translate method: hub id or local dir, or 'tiny' (offline "
                        f"stand-in, random weights). 'auto' = {REAL_MARIAN}, or 'tiny' when the agent has "
                        "random weights")
    p.add_argument("--num-beams", type=int, default=1, help="beam size for MarianMT (1 = greedy)")
    p.add_argument("--cache-dir", default="runs/cache", help="where the tiny Marian stand-in is built")
    p.add_argument("--device", default=None, help="torch device for the agent and MarianMT (e.g. cuda)")
    p.add_argument("--out", default="runs/eval", help="output directory")
    p.add_argument("--resume", action="store_true", help="continue a run in --out, skipping finished episodes")
    p.add_argument("--overwrite", action="store_true", help="delete results in --out and start over")
    p.add_argument("--max-retries", type=int, default=2, help="env restarts per episode after a crash")
    p.add_argument("--video", action="store_true", help="write an MP4 per episode with the instruction overlaid")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    g = p.add_argument_group("environment process (hang-proofing)")
    g.add_argument("--env-timeout", type=float, default=None,
                   help="seconds a step may take before the env counts as hung: its process group is killed, a "
                        "fresh env started and the episode retried. Default: 60 for minerl/minedojo, off for fake; "
                        "0 = off. Any watchdog setting runs the env in a child process")
    g.add_argument("--reset-timeout", type=float, default=None,
                   help="the same for building the env and each reset (default: 900 for minerl/minedojo)")
    g.add_argument("--env-python", default=None,
                   help="run the env in this Python interpreter (e.g. a MineRL virtualenv with numpy<1.24, see "
                        "constraints/); the agent stays in this one")
    g.add_argument("--env-option", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for the env constructor (value parsed as YAML), repeatable; e.g. "
                        "cam_interval=0.1 (minedojo), or the test double's fault modes: hang_at_step=3")
    g.add_argument("--recycle-every", type=int, default=None, metavar="K",
                   help="start a fresh env every K episodes per worker (long runs leak memory in MineRL)")
    g = p.add_argument_group("parallel workers (Ray) and shards")
    g.add_argument("--workers", type=int, default=1,
                   help="env+agent workers; > 1 runs them as Ray actors (pip install 'zh-steve[ray]')")
    g.add_argument("--batch-envs", type=int, default=1, metavar="N",
                   help="one process, N envs stepped together by one BatchedZhSteveAgent (one policy forward per "
                        "step for all of them: the one-GPU setup); not with --workers > 1")
    g.add_argument("--ray-address", default=None, help="join this Ray cluster (default: start a local Ray)")
    g.add_argument("--worker-cpus", type=float, default=1.0, help="CPUs reserved per worker")
    g.add_argument("--worker-gpus", type=float, default=0.0,
                   help="GPUs per worker; a fraction shares one GPU (0.25 = four workers per GPU)")
    g.add_argument("--worker-memory", type=float, default=0.0, help="GiB reserved per worker for agent + env "
                   "process (not counting the JVM)")
    g.add_argument("--jvm-memory", type=float, default=None,
                   help="GiB reserved per worker for the Minecraft JVM (default 4 for minerl/minedojo, 0 for fake)")
    g.add_argument("--shard", default=None, metavar="I/N",
                   help="run only units (task, episode) number I, I+N, … (0-based); combine the N output dirs "
                        "with python -m eval.merge. For schedulers without Ray (SLURM arrays)")
    return p


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"--shard {text}: need 0 <= I < N")
    return (i, n)


def parse_env_options(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--env-option must look like KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _timeout(value: float | None, default: float | None) -> float | None:
    if value is None:
        return default
    return None if value <= 0 else value


def _random_weights_config(agent_config: str) -> bool:
    if agent_config == "random":
        return True
    try:
        return load_config(agent_config).get("tiny") is not None
    except ZhSteveError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    first_env: list = []
    pool = None
    test_double = args.env == "fake"
    try:
        if args.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {args.workers}")
        if args.batch_envs < 1:
            raise ConfigError(f"--batch-envs must be >= 1, got {args.batch_envs}")
        if args.batch_envs > 1 and args.workers > 1:
            raise ConfigError("--batch-envs N runs one process with one batched agent; it does not combine with "
                              "--workers > 1 (use one or the other)")
        if args.recycle_every is not None and args.recycle_every < 1:
            raise ConfigError(f"--recycle-every must be >= 1, got {args.recycle_every}")
        shard = parse_shard(args.shard)
        step_default, reset_default = DEFAULT_TIMEOUTS.get(args.env, (None, None))
        method_names = list(args.methods or METHODS_FOR_LANG[args.lang])
        marian = None
        if "translate" in method_names:
            marian = args.marian
            if marian == "auto":
                marian = "tiny" if _random_weights_config(args.agent_config) else REAL_MARIAN
        recipe = WorkerRecipe(
            env_kind=args.env, agent_config=args.agent_config, method_names=method_names, tasks_file=args.tasks_file,
            task_names=args.tasks, env_kwargs=parse_env_options(args.env_option),
            step_timeout=_timeout(args.env_timeout, step_default),
            reset_timeout=_timeout(args.reset_timeout, reset_default), env_python=args.env_python,
            device=args.device, marian=marian, num_beams=args.num_beams, cache_dir=args.cache_dir,
            torch_threads=max(1, int(args.worker_cpus)) if args.workers > 1 else None,
        )
        tasks, suite = recipe.load_tasks()
        max_steps = args.max_steps or (FAKE_DEFAULT_MAX_STEPS if args.env == "fake" else None)
        settings = RunSettings(out_dir=out, episodes=args.episodes, base_seed=args.seed,
                               max_steps_override=max_steps, max_retries=args.max_retries, resume=args.resume,
                               overwrite=args.overwrite, video=args.video, progress=not args.no_progress,
                               recycle_every=args.recycle_every, shard=shard)
        label = TEST_DOUBLE_LABEL if test_double else None
        if args.workers == 1:
            env_factory = recipe.env_factory()
            first_env.append(env_factory())  # fail fast (e.g. backend not installed) before loading models
            tasks, methods, agent, translator = recipe.build(batched=args.batch_envs > 1)
            agent_info = agent.describe()
            translator_info = translator.describe() if translator else None
        else:
            from .parallel import ParallelSettings, RayPool

            jvm = args.jvm_memory if args.jvm_memory is not None else (0.0 if test_double else 4.0)
            par = ParallelSettings(workers=args.workers, ray_address=args.ray_address,
                                   cpus_per_worker=args.worker_cpus, gpus_per_worker=args.worker_gpus,
                                   memory_per_worker_gib=args.worker_memory, jvm_memory_gib=jvm)
            if marian == "tiny":  # build the offline stand-in once, not in N workers at the same time
                from .translate import build_tiny_marian

                build_tiny_marian(args.cache_dir, recipe.translator_texts(suite))
            pool = RayPool(recipe, settings, par, label)
            info = pool.describe()
            agent_info, translator_info = info["agent"], info["translator"]
        random_weights = bool(agent_info.get("random_weights", False))
        from .methods import control_pairs

        meta = {
            "label": label,
            "test_double": test_double,
            "env": args.env,
            "agent": agent_info,
            "agent_config": args.agent_config,
            "random_weights": random_weights,
            "translator": translator_info["model"] if translator_info else None,
            "translator_settings": translator_info,
            "methods": method_names,
            "control_pairs": control_pairs(suite) if any(m.startswith("control") for m in method_names) else None,
            "tasks": [t.name for t in tasks],
            "episodes": args.episodes,
            "base_seed": args.seed,
            "max_steps_override": max_steps,
            "tasks_file_sha256": hashlib.sha256(Path(args.tasks_file).read_bytes()).hexdigest(),
            "shard": list(shard) if shard else None,
            "workers": args.workers,
            "batch_envs": args.batch_envs,
            "env_options": recipe.env_kwargs,
            "env_timeouts_s": {"step": recipe.step_timeout, "reset": recipe.reset_timeout},
            "recycle_every": args.recycle_every,
        }
        if test_double:
            log.warning("%s: --env fake is a scripted test double; its numbers check the harness only",
                        TEST_DOUBLE_LABEL)
        t0 = time.perf_counter()
        try:
            if pool is None:
                def env_factory_first():
                    return first_env.pop() if first_env else env_factory()

                if args.batch_envs > 1:
                    from .batched import run_batched

                    rows = run_batched(tasks, methods, agent, env_factory_first, settings, meta, args.batch_envs)
                else:
                    rows = run_evaluation(tasks, methods, agent, env_factory_first, settings, meta)
            else:
                from .parallel import run_parallel

                specs, todo, writer = start_run(tasks, method_names, settings, meta)
                rows = run_parallel(pool, specs, todo, writer, meta)
        except KeyboardInterrupt:
            rows = read_results(out / "results.jsonl")
            summary = write_reports(rows, meta, out)
            print(f"\ninterrupted: wrote the summary of {summary['episodes_recorded']} finished episodes to "
                  f"{out}; continue with --resume", file=sys.stderr)
            return 130
        wall = time.perf_counter() - t0
        summary = write_reports(rows, meta, out)
    except ZhSteveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        for env in first_env:  # built to fail fast but never used (an error came first)
            env.close()
        if pool is not None:
            pool.shutdown()
    n_err = len(summary["errors"])
    print(f"wrote {out}/summary.md, summary.json, results.jsonl ({summary['episodes_recorded']} episodes, "
          f"{n_err} errors, {wall:.1f} s this session)" + (f" — {TEST_DOUBLE_LABEL}" if test_double else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
