"""How each evaluated method turns a task's instruction into the agent's goal.

- ``align``: the Chinese phrasing goes straight in: ``agent.reset(zh, lang="zh")`` (Chinese-CLIP →
  alignment layer → MineCLIP space).
- ``translate``: MarianMT translates the Chinese phrasing to English (timed here), then
  ``agent.reset(en, lang="en")`` uses MineCLIP's own English text tower.
- ``direct-en``: STEVE-1's English prompt, ``agent.reset(prompt_en, lang="en")`` (the English reference).
``--lang zh`` runs align and translate on identical phrasings and env seeds; ``--lang en`` runs direct-en.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from zh_steve.errors import InvalidInstructionError

from .tasks import Task

if TYPE_CHECKING:
    from zh_steve.agent import InstructionInfo

METHODS_FOR_LANG = {"zh": ("align", "translate"), "en": ("direct-en",)}
ALL_METHODS = ("align", "translate", "direct-en")


@dataclass
class GoalSetup:
    instruction: str  # the text the agent was reset with
    lang: str
    source_text: str  # the task's text before any translation
    script: str | None  # simplified | traditional | None for English
    style: str | None
    timings_ms: dict[str, float] = field(default_factory=dict)  # stage → ms; "total_ms" = instruction → goal
    translation: str | None = None
    embed_info: dict[str, Any] = field(default_factory=dict)  # non-timing facts from the agent (route, cache_hit)


@runtime_checkable
class GoalAgent(Protocol):
    """What the methods need of an agent (``ZhSteveAgent``, ``eval.baselines.RandomAgent``)."""

    timings: dict[str, dict[str, float]]  # "embed": stage → ms of the last reset
    instruction_info: InstructionInfo | None  # facts about the last instruction (route, cache_hit, …)

    def reset(self, instruction: str, lang: str = "auto") -> None: ...

    def clear_instruction_cache(self) -> None: ...


def _reset(agent: GoalAgent, text: str, lang: str, setup: "GoalSetup") -> None:
    """``agent.reset`` timed; ``agent.timings["embed"]`` become ``embed.<stage>`` timings, ``instruction_info``
    becomes ``embed_info``."""
    # the translation baseline is never cached, so neither is ours: every instruction → goal is timed cold
    agent.clear_instruction_cache()
    t0 = time.perf_counter()
    agent.reset(text, lang=lang)
    wall = (time.perf_counter() - t0) * 1e3
    setup.timings_ms.update({f"embed.{k}": float(v) for k, v in agent.timings.get("embed", {}).items()})
    setup.timings_ms.setdefault("embed.total_ms", wall)
    info = agent.instruction_info
    setup.embed_info = asdict(info) if info is not None else {}


class Method(Protocol):
    name: str

    def setup(self, agent: GoalAgent, task: Task, episode: int) -> GoalSetup: ...


class AlignMethod:
    name = "align"

    def setup(self, agent: GoalAgent, task: Task, episode: int) -> GoalSetup:
        p = task.zh_for_episode(episode)
        g = GoalSetup(p.text, "zh", p.text, p.script, p.style)
        _reset(agent, p.text, "zh", g)
        g.timings_ms["total_ms"] = g.timings_ms["embed.total_ms"]
        return g


class TranslateMethod:
    name = "translate"

    def __init__(self, translator: Any) -> None:
        self.translator = translator

    def setup(self, agent: GoalAgent, task: Task, episode: int) -> GoalSetup:
        p = task.zh_for_episode(episode)
        en, tr_ms = self.translator.translate_timed(p.text)
        if not en.strip():
            raise InvalidInstructionError(f"the translation of {p.text!r} is empty ({self.translator.describe()['model']})")
        g = GoalSetup(en, "en", p.text, p.script, p.style, {f"translate.{k}": v for k, v in tr_ms.items()}, en)
        _reset(agent, en, "en", g)
        g.timings_ms["total_ms"] = g.timings_ms["translate.total_ms"] + g.timings_ms["embed.total_ms"]
        return g


class DirectEnMethod:
    name = "direct-en"

    def setup(self, agent: GoalAgent, task: Task, episode: int) -> GoalSetup:
        g = GoalSetup(task.prompt_en, "en", task.prompt_en, None, None)
        _reset(agent, task.prompt_en, "en", g)
        g.timings_ms["total_ms"] = g.timings_ms["embed.total_ms"]
        return g


def make_methods(names: list[str], translator: Any | None = None) -> list[Method]:
    out: list[Method] = []
    for n in names:
        if n == "align":
            out.append(AlignMethod())
        elif n == "translate":
            if translator is None:
                raise ValueError("the translate method needs a translator")
            out.append(TranslateMethod(translator))
        elif n == "direct-en":
            out.append(DirectEnMethod())
        else:
            raise ValueError(f"unknown method {n!r}; choose from {list(ALL_METHODS)}")
    return out
