"""One validation path for every config dataclass: unknown keys and wrong types are ConfigErrors with locations."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from zh_steve.config_utils import from_dict
from zh_steve.errors import ConfigError


@dataclass
class Inner:
    n: int = 1
    xs: list[float] = field(default_factory=lambda: [0.5])


@dataclass
class Outer:
    name: str = "a"
    flag: bool = False
    rate: float | None = None
    inner: Inner = field(default_factory=Inner)
    opt: Inner | None = None


def test_values_are_checked_and_normalised():
    cfg = from_dict(Outer, {"rate": "1e-3", "inner": {"n": 3, "xs": [1, "2e-1"]}, "opt": True})
    assert cfg.rate == 0.001 and cfg.inner.n == 3 and cfg.inner.xs == [1.0, 0.2] and cfg.opt == Inner()
    assert from_dict(Outer, None) == Outer()


@pytest.mark.parametrize("data,where", [
    ({"inner": {"n": "3"}}, "cfg.inner.n"),
    ({"inner": {"n": True}}, "cfg.inner.n"),
    ({"inner": {"xs": [1, "wide"]}}, "cfg.inner.xs[1]"),
    ({"inner": {"xs": 3}}, "cfg.inner.xs"),
    ({"flag": "yes"}, "cfg.flag"),
    ({"name": 7}, "cfg.name"),
    ({"inner": 5}, "cfg.inner"),
    ({"inner": {"m": 1}}, "cfg.inner: unknown key(s) ['m']"),
])
def test_errors_name_the_location(data, where):
    with pytest.raises(ConfigError) as e:
        from_dict(Outer, data, where="cfg")
    assert where in str(e.value)


def test_every_config_dataclass_gets_the_same_checks():
    from alignment.train import TrainConfig
    from zh_steve.agent import AgentConfig

    with pytest.raises(ConfigError, match=r"agent config\.cond_scale: must be a number"):
        from_dict(AgentConfig, {"cond_scale": "strong"}, "agent config")
    with pytest.raises(ConfigError, match=r"agent config\.tiny\.hidsize: must be an integer"):
        from_dict(AgentConfig, {"tiny": {"hidsize": 6.5}}, "agent config")
    with pytest.raises(ConfigError, match=r"t\.mlp\.architecture\.dropout: must be a number"):
        from_dict(TrainConfig, {"mlp": {"architecture": {"dropout": "lots"}}}, "t")
    with pytest.raises(ConfigError, match="goal_mode"):
        from_dict(AgentConfig, {"goal_mode": "nearest"}, "agent config")
