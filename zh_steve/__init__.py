"""zh-steve: command the STEVE-1 Minecraft agent in Chinese.

    from zh_steve import ZhSteveAgent
    agent = ZhSteveAgent.from_config("configs/agent.yaml")
    agent.reset("砍树")
    action = agent.act(obs)     # MineRL 1.0 action dict
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    CheckpointError,
    ConfigError,
    InvalidGoalError,
    InvalidInstructionError,
    InvalidObservationError,
    UnsafeCheckpointError,
    WeightsNotFoundError,
    ZhSteveError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .agent import ZhSteveAgent
    from .assembly import AgentConfig


def __getattr__(name: str) -> Any:
    # lazy, so `import zh_steve.errors` or the CLIs do not pay for torch model code they do not use
    if name == "ZhSteveAgent":
        from .agent import ZhSteveAgent

        return ZhSteveAgent
    if name == "AgentConfig":
        from .assembly import AgentConfig

        return AgentConfig
    raise AttributeError(f"module 'zh_steve' has no attribute {name!r}")


__all__ = [
    "AgentConfig", "CheckpointError", "ConfigError", "InvalidGoalError", "InvalidInstructionError",
    "InvalidObservationError", "UnsafeCheckpointError", "WeightsNotFoundError", "ZhSteveAgent", "ZhSteveError",
]
