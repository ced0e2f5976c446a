"""The child side of :class:`eval.envs.watchdog.SubprocessEnv`: one environment served over two pipes.

    python -m eval.envs.host READ_FD WRITE_FD

Messages are length-prefixed pickles of plain Python values only: numpy arrays travel as
``{"__ndarray__": [dtype, shape, bytes]}``, so the parent and the child may run *different* numpy versions
(the agent's numpy 2 beside a MineRL/MineDojo interpreter pinned to numpy < 1.24; see
``--env-python`` in ``python -m eval.run_tasks --help``). This module imports only the standard library,
numpy and ``eval.envs`` (not torch).

Requests: ``("make", kind, kwargs)``, ``("reset", seed)``, ``("step", action)``, ``("close",)``.
Replies: ``("ok", value)`` or ``("error", exception type name, message, unavailable: bool)``.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import traceback
from typing import Any

import numpy as np

_LEN = struct.Struct("<Q")
ND = "__ndarray__"


def encode(x: Any) -> Any:
    """numpy-free copy of ``x`` (arrays → tagged dicts, numpy scalars → Python numbers)."""
    if isinstance(x, np.ndarray):
        a = np.ascontiguousarray(x)
        return {ND: [a.dtype.str, list(a.shape), a.tobytes()]}
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {k: encode(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(encode(v) for v in x)
    return x


def decode(x: Any) -> Any:
    if isinstance(x, dict):
        if ND in x and len(x) == 1:
            dtype, shape, buf = x[ND]
            return np.frombuffer(buf, dtype=np.dtype(dtype)).reshape(shape).copy()
        return {k: decode(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(decode(v) for v in x)
    return x


def send(fd: int, msg: Any) -> None:
    data = pickle.dumps(encode(msg), protocol=4)
    view = memoryview(_LEN.pack(len(data)) + data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_exact(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, min(n - got, 1 << 20))
        if not b:
            raise EOFError("the other side closed the pipe")
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def recv(fd: int) -> Any:
    (n,) = _LEN.unpack(read_exact(fd, _LEN.size))
    return decode(pickle.loads(read_exact(fd, n)))


def serve(read_fd: int, write_fd: int) -> None:
    from zh_steve.errors import EnvironmentUnavailableError

    from . import make_env

    env = None
    while True:
        try:
            msg = recv(read_fd)
        except EOFError:
            break
        cmd = msg[0]
        try:
            if cmd == "make":
                env = make_env(msg[1], **msg[2])
                value: Any = {"name": env.name, "is_test_double": bool(env.is_test_double)}
            elif cmd == "reset":
                value = env.reset(seed=msg[1])
            elif cmd == "step":
                value = env.step(msg[1])
            elif cmd == "close":
                if env is not None:
                    env.close()
                send(write_fd, ("ok", None))
                break
            else:
                raise ValueError(f"unknown request {cmd!r}")
            send(write_fd, ("ok", value))
        except Exception as e:  # reported to the parent, which decides (restart, retry, give up)
            traceback.print_exc(file=sys.stderr)
            send(write_fd, ("error", type(e).__name__, str(e), isinstance(e, EnvironmentUnavailableError)))


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
