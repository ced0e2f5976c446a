"""The environment protocol every backend adapter implements, and the errors around it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from zh_steve.errors import EnvironmentUnavailableError, ZhSteveError

Obs = dict[str, Any]
Info = dict[str, Any]

INSTALL_HELP = """\
No Minecraft environment backend is installed. Install one of them (both need JDK 8 and internet access
for their first build), or run the harness on the test double with --env fake (not Minecraft results).
Their pins (numpy<1.24, an old gym) conflict with the agent's numpy 2, so give the backend a virtualenv of
its own and point --env-python at it: the env then runs in that interpreter, the agent in this one.

  MineRL 1.0 (what VPT and STEVE-1 use; Minecraft 1.16.5):
    sudo apt-get install openjdk-8-jdk xvfb        # JDK 8 exactly; set JAVA_HOME to it
    python3 -m venv ~/venvs/minerl
    ~/venvs/minerl/bin/pip install -r constraints/minerl-backend.txt
    ~/venvs/minerl/bin/pip install -c constraints/minerl-backend.txt git+https://github.com/minerllabs/minerl@v1.0.1
    xvfb-run -a python -m eval.run_tasks --env minerl --env-python ~/venvs/minerl/bin/python ...
  (or the Dockerfile in the repository root, which does all of this)

  MineDojo 0.1 (Minecraft 1.11.2; approximate action mapping, see eval/envs/minedojo_env.py):
    sudo apt-get install openjdk-8-jdk xvfb
    python3 -m venv ~/venvs/minedojo
    ~/venvs/minedojo/bin/pip install "pip<24.1" "setuptools==65.5.0" "wheel==0.38.4"
    ~/venvs/minedojo/bin/pip install --no-build-isolation -r constraints/minedojo-backend.txt
    xvfb-run -a python -m eval.run_tasks --env minedojo --env-python ~/venvs/minedojo/bin/python ...
    # the first reset builds the Malmo mod
"""

TEST_DOUBLE_LABEL = "TEST DOUBLE — not Minecraft results"


class EnvCrashedError(ZhSteveError, RuntimeError):
    """The environment process died or stopped answering; the harness restarts it."""


@runtime_checkable
class MinecraftEnv(Protocol):
    """A Minecraft-like environment with the gymnasium-style 5-tuple API and MineRL 1.0 obs/actions.

    ``obs`` is a dict with at least ``pov`` (H×W×3 uint8 RGB); MineRL-style extras (``inventory``,
    ``location_stats``, ``life_stats``, ``isGuiOpen``, ``mine_block``, …) feed the task metrics.
    """

    name: str
    is_test_double: bool

    def reset(self, seed: int | None = None) -> tuple[Obs, Info]: ...

    def step(self, action: Mapping[str, Any]) -> tuple[Obs, float, bool, bool, Info]: ...

    def close(self) -> None: ...


def unavailable(backend: str, cause: BaseException | None = None) -> EnvironmentUnavailableError:
    why = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
    return EnvironmentUnavailableError(f"environment backend {backend!r} is not available{why}.\n\n{INSTALL_HELP}")
