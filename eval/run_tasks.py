"""``python -m eval.run_tasks``: evaluate Chinese instructions on STEVE-1's tasks (and more).

Example (offline, test double, tiny random agent):
    python -m eval.run_tasks --lang zh --env fake --agent-config configs/agent_tiny.yaml --episodes 2 --out runs/eval
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path
from typing import Any

from zh_steve.config_utils import load_config
from zh_steve.errors import ZhSteveError

from .envs import ENV_KINDS, TEST_DOUBLE_LABEL, make_env
from .methods import ALL_METHODS, METHODS_FOR_LANG, make_methods
from .report import write_reports
from .runner import RunSettings, read_results, run_evaluation
from .tasks import DEFAULT_TASKS_PATH, load_tasks
from .translate import REAL_MARIAN, load_translator

FAKE_DEFAULT_MAX_STEPS = 100
log = logging.getLogger("eval")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m eval.run_tasks",
        description=(
            "Run the zh-steve agent on the task suite and compare how the instruction reaches it: "
            "align (Chinese → alignment layer), translate (MarianMT zh→en → MineCLIP English) or direct-en "
            "(STEVE-1's English prompt). Methods share env seeds (paired design). Writes results.jsonl, "
            "summary.json, summary.md, success.png, latency.png (and videos with --video) to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--lang", choices=sorted(METHODS_FOR_LANG), default="zh",
                   help="zh runs align + translate; en runs direct-en")
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
    return p


def load_agent(spec: str, device: str | None) -> Any:
    if spec == "random":
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
    return ZhSteveAgent.from_config(cfg)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    first_env: list = []
    try:
        tasks = load_tasks(args.tasks_file, only=args.tasks)
        first_env.append(make_env(args.env))  # fail fast (e.g. backend not installed) before loading models
        method_names = list(args.methods or METHODS_FOR_LANG[args.lang])
        agent = load_agent(args.agent_config, args.device)
        agent_info = agent.describe()
        random_weights = bool(agent_info.get("random_weights", False))
        translator = None
        if "translate" in method_names:
            spec = args.marian
            if spec == "auto":
                spec = "tiny" if random_weights else REAL_MARIAN
            texts = [p.text for t in tasks for p in t.zh] + [t.prompt_en for t in tasks]
            translator = load_translator(spec, args.cache_dir, texts, num_beams=args.num_beams,
                                         device=args.device or "cpu")
        methods = make_methods(method_names, translator)
        max_steps = args.max_steps or (FAKE_DEFAULT_MAX_STEPS if args.env == "fake" else None)
        test_double = args.env == "fake"
        def env_factory():
            return first_env.pop() if first_env else make_env(args.env)

        meta = {
            "label": TEST_DOUBLE_LABEL if test_double else None,
            "test_double": test_double,
            "env": args.env,
            "agent": agent_info,
            "agent_config": args.agent_config,
            "random_weights": random_weights,
            "translator": translator.describe()["model"] if translator else None,
            "translator_settings": translator.describe() if translator else None,
            "methods": method_names,
            "tasks": [t.name for t in tasks],
            "episodes": args.episodes,
            "base_seed": args.seed,
            "max_steps_override": max_steps,
            "tasks_file_sha256": hashlib.sha256(Path(args.tasks_file).read_bytes()).hexdigest(),
        }
        settings = RunSettings(out_dir=out, episodes=args.episodes, base_seed=args.seed,
                               max_steps_override=max_steps, max_retries=args.max_retries, resume=args.resume,
                               overwrite=args.overwrite, video=args.video, progress=not args.no_progress)
        if test_double:
            log.warning("%s: --env fake is a scripted test double; its numbers check the harness only",
                        TEST_DOUBLE_LABEL)
        try:
            rows = run_evaluation(tasks, methods, agent, env_factory, settings, meta)
        except KeyboardInterrupt:
            rows = read_results(out / "results.jsonl")
            summary = write_reports(rows, meta, out)
            print(f"\ninterrupted: wrote the summary of {summary['episodes_recorded']} finished episodes to "
                  f"{out}; continue with --resume", file=sys.stderr)
            return 130
        summary = write_reports(rows, meta, out)
    except ZhSteveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        for env in first_env:  # built to fail fast but never used (an error came first)
            env.close()
    n_err = len(summary["errors"])
    print(f"wrote {out}/summary.md, summary.json, results.jsonl ({summary['episodes_recorded']} episodes, "
          f"{n_err} errors)" + (f" — {TEST_DOUBLE_LABEL}" if test_double else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
