"""Hang-proof environments: the env lives in a child process; every call has a deadline.

MineRL/MineDojo users report resets that never return (a JDK from conda), socket timeouts and slow memory
leaks. A Python timeout cannot interrupt a call blocked inside the env's own process, so
:class:`SubprocessEnv` runs the backend in a child process (``python -m eval.envs.host``) in its own
process group and waits for each answer with a deadline. A call that misses it is a hang: the whole group
(the Minecraft JVM the backend started included) is SIGKILLed and :class:`EnvHangError` raised, which the
harness treats like any env crash (fresh env, retry the episode, recorded in the row).

- ``reset_timeout`` covers building the env and each reset (MineRL's first reset launches Minecraft: minutes);
  ``step_timeout`` covers each step.
- ``python`` runs the child under another interpreter, e.g. a MineRL virtualenv pinned to numpy < 1.24,
  while the agent keeps numpy 2 (see ``constraints/``). Only numpy and this repository's ``eval``/``zh_steve``
  sources are needed there (they are put on ``PYTHONPATH``).
- The child is an ordinary (non-daemonic) process started with ``subprocess``, so backends that start their
  own processes work inside Ray actors too (minerl #113/#378: "daemonic processes are not allowed to have
  children").
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zh_steve.errors import EnvironmentUnavailableError

from .base import INSTALL_HELP, EnvCrashedError, Info, Obs
from .host import _LEN, decode, send

REPO_ROOT = Path(__file__).resolve().parents[2]


class EnvHangError(EnvCrashedError):
    """An env call did not answer within its deadline; the env process group was killed."""


class SubprocessEnv:
    """A :class:`~eval.envs.base.MinecraftEnv` whose backend runs in a watched child process."""

    def __init__(
        self,
        kind: str,
        kwargs: Mapping[str, Any] | None = None,
        step_timeout: float | None = 60.0,
        reset_timeout: float | None = 600.0,
        python: str | None = None,
    ) -> None:
        self.kind = kind
        self.step_timeout, self.reset_timeout = step_timeout, reset_timeout
        self.name = kind
        self.is_test_double = kind == "fake"
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        try:
            self.proc = subprocess.Popen(
                [python or sys.executable, "-m", "eval.envs.host", str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w), start_new_session=True, env=env, cwd=str(REPO_ROOT),
            )
        except OSError as e:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            raise EnvironmentUnavailableError(f"cannot start the env process with {python or sys.executable!r}: "
                                              f"{e}") from e
        os.close(to_child_r)
        os.close(from_child_w)
        self._w, self._r = to_child_w, from_child_r
        self._dead = False
        info = self._call(("make", kind, dict(kwargs or {})), reset_timeout, "building the env")
        self.name, self.is_test_double = info["name"], info["is_test_double"]

    # ------------------------------------------------------------------------------------------ protocol
    def reset(self, seed: int | None = None) -> tuple[Obs, Info]:
        obs, info = self._call(("reset", seed), self.reset_timeout, "reset")
        return obs, info

    def step(self, action: Mapping[str, Any]) -> tuple[Obs, float, bool, bool, Info]:
        obs, reward, terminated, truncated, info = self._call(("step", dict(action)), self.step_timeout, "step")
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        if not self._dead:
            try:
                self._call(("close",), 30.0, "close")
                self.proc.wait(timeout=10)
            except (EnvCrashedError, subprocess.TimeoutExpired):
                pass
        self.kill()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL the env's process group (the backend's JVM too, even after the child exited) and reap."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._w = self._r = -1
        self._dead = True

    def __del__(self) -> None:
        if getattr(self, "_dead", True) is False:
            self.kill()

    # ------------------------------------------------------------------------------------------ transport
    def _call(self, msg: tuple, timeout: float | None, what: str) -> Any:
        if self._dead:
            raise EnvCrashedError(f"the {self.kind} env process is gone")
        try:
            send(self._w, msg)
            reply = self._recv(timeout)
        except EnvHangError as e:
            self.kill()
            raise EnvHangError(f"{self.kind} env {what} did not answer within {timeout:g} s: {e}; killed its "
                               "process group (treated as an env crash)") from None
        except (EOFError, OSError) as e:
            code = self.proc.poll()
            self.kill()
            raise EnvCrashedError(f"the {self.kind} env process died during {what} (exit code {code}): {e}") from e
        if reply[0] == "ok":
            return reply[1]
        _, etype, message, unavailable = reply
        if unavailable:
            self.kill()
            raise EnvironmentUnavailableError(message if INSTALL_HELP[:40] in message else f"{message}\n\n{INSTALL_HELP}")
        raise EnvCrashedError(f"{etype}: {message}")

    def _recv(self, timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        header = self._read(_LEN.size, deadline)
        (n,) = _LEN.unpack(header)
        return decode(pickle.loads(self._read(n, deadline)))

    def _read(self, n: int, deadline: float | None) -> bytes:
        chunks, got = [], 0
        while got < n:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise EnvHangError("deadline passed")
            ready, _, _ = select.select([self._r], [], [], left)
            if not ready:
                raise EnvHangError("no answer")
            b = os.read(self._r, min(n - got, 1 << 20))
            if not b:
                raise EOFError("the env process closed its pipe")
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)


__all__ = ["EnvHangError", "SubprocessEnv"]
