"""How each evaluated method turns a task's instruction into the agent's goal.

- ``align``: the Chinese phrasing goes straight in: ``agent.reset(zh, lang="zh")`` (Chinese-CLIP →
  alignment layer → MineCLIP space).
- ``translate``: MarianMT translates the Chinese phrasing to English (timed here), then
  ``agent.reset(en, lang="en")`` uses MineCLIP's own English text tower.
- ``direct-en``: STEVE-1's English prompt, ``agent.reset(prompt_en, lang="en")`` (the English reference).
- ``control``: the agent gets *another* task's instruction (a fixed derangement of the suite, same env seeds),
  so every table shows the base rate an unrelated prompt reaches (VPT's habits alone clear low thresholds).
  With ``--lang zh`` it is that task's Chinese phrasing (align route); with ``--lang en`` its English prompt.
``--lang zh`` runs align, translate and control on identical env seeds; ``--lang en`` runs direct-en and control.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from zh_steve.errors import InvalidInstructionError

from .tasks import Task

if TYPE_CHECKING:
    from zh_steve.agent import InstructionInfo

METHODS_FOR_LANG = {"zh": ("align", "translate", "control"), "en": ("direct-en", "control-en")}
ALL_METHODS = ("align", "translate", "direct-en", "control", "control-en")


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

    def reseed(self, seed: int) -> None: ...  # the runner reseeds per episode (rows independent of run order)


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


def control_pairs(suite: list[Task]) -> dict[str, str]:
    """The fixed derangement: task i of the suite gets the instruction of task (i + n // 2) mod n.

    A half-way shift (not i + 1) keeps neighbours in the YAML, which are often related (dig/dirt, leaves/wood),
    apart; for n >= 2 no task maps to itself.
    """
    n = len(suite)
    if n < 2:
        raise ValueError("the control method needs a suite of at least 2 tasks")
    return {t.name: suite[(i + n // 2) % n].name for i, t in enumerate(suite)}


class ControlMethod:
    """Another task's instruction on this task's seeds (see the module docstring)."""

    def __init__(self, suite: list[Task], lang: str = "zh") -> None:
        self.by_name = {t.name: t for t in suite}
        self.pairs = control_pairs(suite)
        self.lang = lang
        self.name = "control" if lang == "zh" else "control-en"

    def setup(self, agent: GoalAgent, task: Task, episode: int) -> GoalSetup:
        other = self.by_name[self.pairs[task.name]]
        if self.lang == "zh":
            p = other.zh_for_episode(episode)
            g = GoalSetup(p.text, "zh", p.text, p.script, p.style)
        else:
            g = GoalSetup(other.prompt_en, "en", other.prompt_en, None, None)
        _reset(agent, g.instruction, g.lang, g)
        g.timings_ms["total_ms"] = g.timings_ms["embed.total_ms"]
        return g


def make_methods(names: list[str], translator: Any | None = None, suite: list[Task] | None = None) -> list[Method]:
    """``suite``: the whole task suite (the control methods draw other tasks' instructions from it)."""
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
        elif n in ("control", "control-en"):
            if suite is None:
                raise ValueError("the control methods need the task suite")
            out.append(ControlMethod(suite, "zh" if n == "control" else "en"))
        else:
            raise ValueError(f"unknown method {n!r}; choose from {list(ALL_METHODS)}")
    return out
