"""``python -m zh_steve.play``: drive the agent live and change its instruction while it plays.

    python -m zh_steve.play --env minerl --agent-config configs/agent.yaml --instruction 砍树
    python -m zh_steve.play --env fake --headless --script cmds.txt --record out.mp4   # what CI runs

- A window shows the agent's view (OpenCV; needs an OpenCV with GUI support, e.g. ``pip install
  opencv-python``, since the default dependency is the headless build) with the current instruction and the
  step latency overlaid (Chinese via a CJK font). ``--headless`` writes the frames to ``--frames-dir`` instead.
- Type a Chinese or English instruction in the terminal at any time: the agent switches to it with
  ``set_instruction`` (its memory is kept, as in STEVE-1's interactive mode). ``:reset`` resets the env and
  the agent, ``:quit`` (or ``q`` in the window, or Ctrl-C) stops.
- ``--script FILE`` replaces the terminal: one ``STEP: COMMAND`` per line (``0: 砍树``, ``200: look at the sky``,
  ``400: :reset``; ``#`` starts a comment); a command runs before the step with that number.
- ``--record out.mp4`` writes the overlaid video (H.264 with PyAV, else mp4v) and ``out.json`` with the
  instruction, step and latencies of every frame.
On ``--env fake`` (the scripted test double) every frame says so: it is not Minecraft.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, ZhSteveError

QUIT, RESET = ":quit", ":reset"


@dataclass(frozen=True)
class Command:
    step: int
    text: str  # an instruction, ":reset" or ":quit"


def parse_script(path: str | Path) -> list[Command]:
    """``STEP: COMMAND`` lines → commands sorted by step (stable); bad lines raise ConfigError."""
    out = []
    for i, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith(("#",)) else ""
        if not line:
            continue
        step, sep, text = line.partition(":")
        if not sep or not step.strip().isdigit() or not text.strip():
            raise ConfigError(f"{path}:{i}: expected 'STEP: instruction' (e.g. '0: 砍树' or '40: :reset'), "
                              f"got {raw!r}")
        out.append(Command(int(step), text.strip()))
    return sorted(out, key=lambda c: c.step)


class StdinCommands:
    """Reads terminal lines on a daemon thread; ``poll`` returns what was typed since the last call.

    End of input (or no readable terminal) stops the reading, not the play: the agent goes on with its
    instruction until ``--max-steps``; with no instruction yet there is nothing to do, so ``poll`` says quit.
    """

    def __init__(self, stream: Any = None) -> None:
        self.q: queue.Queue[str] = queue.Queue()
        self.stream = stream or sys.stdin
        self.closed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.stream:
                if line.strip():
                    self.q.put(line.strip())
        except (OSError, ValueError) as e:  # no terminal to read (closed or captured stdin)
            print(f"cannot read instructions from the terminal ({e})", file=sys.stderr)
        self.closed.set()

    def poll(self, block: bool = False) -> list[str]:
        out = []
        while block and self.q.empty():
            if self.closed.is_set() and self.q.empty():
                return [QUIT]
            try:
                out.append(self.q.get(timeout=0.2))
                break
            except queue.Empty:
                continue
        try:
            while True:
                out.append(self.q.get_nowait())
        except queue.Empty:
            pass
        return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m zh_steve.play", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--env", choices=("minerl", "minedojo", "fake"), default="minerl",
                   help="fake = the scripted test double (not Minecraft)")
    p.add_argument("--agent-config", default="configs/agent.yaml", help="ZhSteveAgent config, or 'random'")
    p.add_argument("--device", default=None, help="torch device for the agent")
    p.add_argument("--instruction", default=None, help="first instruction (otherwise type one)")
    p.add_argument("--script", default=None, help="file of 'STEP: COMMAND' lines instead of the terminal")
    p.add_argument("--headless", action="store_true", help="no window: write frames to --frames-dir")
    p.add_argument("--frames-dir", default="runs/play/frames", help="where --headless writes PNG frames")
    p.add_argument("--frame-every", type=int, default=1, help="with --headless, keep every k-th frame")
    p.add_argument("--record", default=None, metavar="OUT.mp4", help="save the video and OUT.json (instructions)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (default: unlimited, "
                   "or the last script step + 100)")
    p.add_argument("--seed", type=int, default=0, help="env seed (and agent seed) of the first reset")
    p.add_argument("--fps", type=int, default=20, help="frame rate of --record (MineRL runs at 20 fps)")
    p.add_argument("--env-option", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for the env constructor (YAML value), repeatable")
    p.add_argument("--env-python", default=None,
                   help="run the env in this interpreter (a MineRL/MineDojo virtualenv with numpy<1.24, see "
                        "constraints/); the agent stays in this one")
    return p


class Window:
    def __init__(self, title: str) -> None:
        import cv2

        self.cv2, self.title = cv2, title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise ZhSteveError("this OpenCV has no GUI support (opencv-python-headless): use --headless, or "
                               "pip install opencv-python for a window") from e

    def show(self, frame_rgb: Any) -> bool:
        """Show a frame; False when the user pressed q or closed the window."""
        cv2 = self.cv2
        cv2.imshow(self.title, cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        try:
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            visible = False
        return key != ord("q") and visible

    def close(self) -> None:
        self.cv2.destroyWindow(self.title)


def run(args: argparse.Namespace, stdin: Any = None) -> dict[str, Any]:
    """The play loop; returns a small report (steps, frames, instructions used)."""
    import cv2

    from eval.envs import TEST_DOUBLE_LABEL, make_env
    from eval.run_tasks import parse_env_options
    from eval.video import TextOverlay, VideoWriter
    from eval.worker import load_agent

    script = parse_script(args.script) if args.script else None
    max_steps = args.max_steps
    if max_steps is None and script is not None:
        max_steps = (script[-1].step if script else 0) + 100
    if args.env_python:
        from eval.envs.watchdog import SubprocessEnv

        env = SubprocessEnv(args.env, parse_env_options(args.env_option), step_timeout=None, reset_timeout=None,
                            python=args.env_python)
    else:
        env = make_env(args.env, **parse_env_options(args.env_option))
    agent = load_agent(args.agent_config, args.device)
    test_double = bool(getattr(env, "is_test_double", False))
    terminal = None if script is not None else StdinCommands(stdin)
    pending = list(script or [])
    if args.instruction:
        pending.insert(0, Command(0, args.instruction))
    frames_dir = Path(args.frames_dir) if args.headless else None
    if frames_dir is not None:
        frames_dir.mkdir(parents=True, exist_ok=True)
    window = None if args.headless else Window("zh-steve")
    writer = VideoWriter(args.record, fps=args.fps) if args.record else None
    overlay = TextOverlay()
    log: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    instruction: str | None = None
    agent_ms = env_ms = 0.0
    step = frame_no = episode = 0
    seed = args.seed

    def reset_env() -> Any:
        nonlocal episode
        obs, _ = env.reset(seed=seed + episode)
        episode += 1
        return obs

    def emit(obs: Any) -> bool:
        nonlocal frame_no
        lines = ([TEST_DOUBLE_LABEL] if test_double else []) + [
            f"指令 instruction: {instruction or '(type one in the terminal)'}",
            f"step {step}  agent {agent_ms:.1f} ms  env {env_ms:.1f} ms",
        ]
        frame = overlay.apply(obs["pov"], lines)
        log.append({"frame": frame_no, "step": step, "episode": episode - 1, "instruction": instruction,
                    "agent_ms": round(agent_ms, 3), "env_ms": round(env_ms, 3)})
        if writer is not None:
            writer.write(frame)
        if frames_dir is not None and frame_no % max(1, args.frame_every) == 0:
            cv2.imwrite(str(frames_dir / f"frame_{frame_no:06d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        frame_no += 1
        return window.show(frame) if window is not None else True

    try:
        agent.reseed(seed)
        obs = reset_env()
        running = emit(obs)
        while running and (max_steps is None or step < max_steps):
            if script is not None:
                commands = [c.text for c in pending if c.step <= step]
                pending = [c for c in pending if c.step > step]
            else:
                commands = [c.text for c in pending] + terminal.poll(block=instruction is None and not pending)
                pending = []
            for text in commands:
                events.append({"step": step, "command": text})
                if text == QUIT:
                    running = False
                    break
                elif text == RESET:
                    obs = reset_env()
                    if instruction is not None:
                        agent.reset(instruction)
                    running = emit(obs)
                else:
                    if instruction is None:
                        agent.reset(text)
                    else:
                        agent.set_instruction(text)
                    instruction = text
                    print(f"[step {step}] instruction → {text}", file=sys.stderr)
            if not running or instruction is None:
                if instruction is None and script is not None and not pending:
                    break  # a script that never gives an instruction
                continue
            t0 = time.perf_counter()
            action = agent.act(obs)
            t1 = time.perf_counter()
            obs, _r, terminated, truncated, _info = env.step(action)
            agent_ms, env_ms = (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3
            step += 1
            running = emit(obs)
            if terminated or truncated:
                events.append({"step": step, "command": "(env ended the episode: reset)"})
                obs = reset_env()
                agent.reset(instruction)
                running = running and emit(obs)
    except KeyboardInterrupt:
        events.append({"step": step, "command": "(Ctrl-C)"})
    finally:
        if writer is not None:
            writer.close()
        if window is not None:
            window.close()
        env.close()
    report = {"steps": step, "frames": frame_no, "label": TEST_DOUBLE_LABEL if test_double else None,
              "instructions": list(dict.fromkeys(f["instruction"] for f in log if f["instruction"])),
              "video": args.record, "video_codec": writer.codec if writer else None}
    if args.record:
        Path(args.record).with_suffix(".json").write_text(json.dumps(
            {**report, "fps": args.fps, "events": events, "frames": log}, ensure_ascii=False, indent=1),
            encoding="utf-8")
    return report


def main(argv: list[str] | None = None, stdin: Any = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = run(args, stdin)
    except ZhSteveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"played {report['steps']} steps, {report['frames']} frames"
          + (f" → {args.record}" if args.record else "") + (f" — {report['label']}" if report["label"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
