"""The README's agent example runs (on the tiny agent and the test double, with a shorter loop)."""

from __future__ import annotations

import re


def test_readme_agent_example_runs(repo_root, tmp_path, monkeypatch):
    text = (repo_root / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Use the agent"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'ZhSteveAgent.from_config("configs/agent.yaml")' in code and 'make_env("minerl")' in code
    code = (code.replace('"configs/agent.yaml"', '"configs/agent_tiny.yaml"')
                .replace('make_env("minerl")', 'make_env("fake")')
                .replace("range(1000)", "range(12)").replace("t == 500", "t == 6"))
    monkeypatch.chdir(repo_root)
    monkeypatch.setenv("ZS_TINY_CACHE", str(tmp_path))
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - our own documentation
    agent = scope["agent"]
    assert agent.steps == 12 and agent.instruction == "去游泳"
