"""The evaluation task suite: loading and validating ``configs/eval_tasks.yaml``.

Each task has STEVE-1's English prompt, several Chinese phrasings (simplified and traditional, plain and
colloquial), an episode length and one programmatic metric with a success threshold. Any mistake in the
YAML raises :class:`zh_steve.errors.ConfigError` naming the task and the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zh_steve.config_utils import load_config
from zh_steve.errors import ConfigError

from .metrics import METRICS, Metric, StepView, make_metric

DEFAULT_TASKS_PATH = Path(__file__).resolve().parents[1] / "configs" / "eval_tasks.yaml"

SCRIPTS = ("simplified", "traditional")
STYLES = ("plain", "colloquial")
SOURCES = ("steve1_paper", "extra")
_TOP_KEYS = {"version", "defaults", "tasks"}
_DEFAULT_KEYS = {"max_steps"}
_TASK_KEYS = {"name", "source", "prompt_en", "zh", "max_steps", "metric", "notes", "allow_early_end"}
_PHRASING_KEYS = {"text", "script", "style"}


@dataclass(frozen=True)
class Phrasing:
    text: str
    script: str  # simplified | traditional
    style: str  # plain | colloquial


@dataclass(frozen=True)
class MetricSpec:
    name: str
    threshold: float
    params: dict[str, Any] = field(default_factory=dict)

    def make(self) -> Metric:
        return make_metric(self.name, self.params)

    def success(self, score: float | None) -> bool | None:
        """``score >= threshold``; None when the metric could not be measured."""
        return None if score is None else bool(score >= self.threshold)

    def evaluate(self, steps: Iterable[tuple[Any, ...]]) -> tuple[float | None, bool | None]:
        """Score and success of a whole episode given its ``(obs, info)`` or ``(obs, info, action)`` tuples
        (reset first; the action is the one that led to that observation)."""
        metric = self.make()
        for obs, info, *action in steps:
            metric.update(StepView.from_obs(obs, info, action[0] if action else None))
        score = metric.score()
        return score, self.success(score)


@dataclass(frozen=True)
class Task:
    name: str
    source: str
    prompt_en: str
    zh: tuple[Phrasing, ...]
    max_steps: int
    metric: MetricSpec
    notes: str = ""
    # STEVE-1 runs every episode for a fixed length; an env that ends one early is an env fault unless this is set
    allow_early_end: bool = False

    def zh_for_episode(self, episode: int) -> Phrasing:
        """The Chinese phrasing used for ``episode`` (rotates through the list; same for every method)."""
        return self.zh[episode % len(self.zh)]


def _fail(where: str, msg: str) -> ConfigError:
    return ConfigError(f"eval tasks: {where}: {msg}")


def _check_keys(d: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise _fail(where, f"unknown key(s) {unknown}; valid keys are {sorted(allowed)}")


def _positive_int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise _fail(where, f"must be a positive integer, got {v!r}")
    return v


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise _fail(where, f"must be true or false, got {v!r}")
    return v


def _text(v: Any, where: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise _fail(where, f"must be a non-empty string, got {v!r}")
    return v.strip()


def _parse_metric(d: Any, where: str) -> MetricSpec:
    if not isinstance(d, Mapping):
        raise _fail(where, f"must be a mapping with 'name' and 'threshold', got {type(d).__name__}")
    name = d.get("name")
    if name not in METRICS:
        raise _fail(f"{where}.name", f"unknown metric {name!r}; known metrics are {sorted(METRICS)}")
    cls = METRICS[name]
    _check_keys(d, {"name", "threshold", *cls.params}, where)
    if "threshold" not in d:
        raise _fail(f"{where}.threshold", "missing (success means score >= threshold)")
    thr = d["threshold"]
    if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not math.isfinite(thr) or thr <= 0:
        raise _fail(f"{where}.threshold", f"must be a finite number > 0, got {thr!r}")
    params: dict[str, Any] = {}
    for key, typ in cls.params.items():
        if key not in d:
            if cls.required.get(key):
                raise _fail(f"{where}.{key}", f"missing (required by metric {name!r})")
            continue
        val = d[key]
        if typ is list:
            if not isinstance(val, list) or not all(isinstance(s, str) and s for s in val):
                raise _fail(f"{where}.{key}", f"must be a list of non-empty strings, got {val!r}")
            if cls.required.get(key) and not val:
                raise _fail(f"{where}.{key}", "must not be empty")
        elif not isinstance(val, typ):
            raise _fail(f"{where}.{key}", f"must be {typ.__name__}, got {val!r}")
        params[key] = val
    return MetricSpec(name=name, threshold=float(thr), params=params)


def _parse_phrasings(v: Any, where: str) -> tuple[Phrasing, ...]:
    if not isinstance(v, list) or not v:
        raise _fail(where, "missing Chinese prompts: give a non-empty list of {text, script, style}")
    out = []
    for i, p in enumerate(v):
        w = f"{where}[{i}]"
        if not isinstance(p, Mapping):
            raise _fail(w, f"must be a mapping {{text, script, style}}, got {p!r}")
        _check_keys(p, _PHRASING_KEYS, w)
        text = _text(p.get("text"), f"{w}.text")
        script = p.get("script")
        if script not in SCRIPTS:
            raise _fail(f"{w}.script", f"must be one of {list(SCRIPTS)}, got {script!r}")
        style = p.get("style")
        if style not in STYLES:
            raise _fail(f"{w}.style", f"must be one of {list(STYLES)}, got {style!r}")
        out.append(Phrasing(text, script, style))
    scripts = {p.script for p in out}
    missing = [s for s in SCRIPTS if s not in scripts]
    if missing:
        raise _fail(where, f"needs at least one phrasing in each script; missing {missing}")
    return tuple(out)


def parse_tasks(data: Mapping[str, Any]) -> list[Task]:
    """Validate a task-suite mapping (the parsed YAML) into :class:`Task` objects."""
    _check_keys(data, _TOP_KEYS, "top level")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise _fail("defaults", "must be a mapping")
    _check_keys(defaults, _DEFAULT_KEYS, "defaults")
    raw = data.get("tasks")
    if not isinstance(raw, list) or not raw:
        raise _fail("tasks", "must be a non-empty list")
    tasks: list[Task] = []
    seen: set[str] = set()
    for i, t in enumerate(raw):
        if not isinstance(t, Mapping):
            raise _fail(f"tasks[{i}]", f"must be a mapping, got {t!r}")
        name = t.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _fail(f"tasks[{i}].name", f"must be a non-empty string, got {name!r}")
        where = f"task {name!r}"
        if name in seen:
            raise _fail(where, "duplicate task name")
        seen.add(name)
        _check_keys(t, _TASK_KEYS, where)
        source = t.get("source", "extra")
        if source not in SOURCES:
            raise _fail(f"{where}.source", f"must be one of {list(SOURCES)}, got {source!r}")
        if "prompt_en" not in t:
            raise _fail(f"{where}.prompt_en", "missing English prompt")
        max_steps = t.get("max_steps", defaults.get("max_steps"))
        if max_steps is None:
            raise _fail(f"{where}.max_steps", "missing (set it on the task or in defaults)")
        tasks.append(
            Task(
                name=name,
                source=source,
                prompt_en=_text(t["prompt_en"], f"{where}.prompt_en"),
                zh=_parse_phrasings(t.get("zh"), f"{where}.zh"),
                max_steps=_positive_int(max_steps, f"{where}.max_steps"),
                metric=_parse_metric(t.get("metric"), f"{where}.metric"),
                notes=str(t.get("notes", "")),
                allow_early_end=_bool(t.get("allow_early_end", False), f"{where}.allow_early_end"),
            )
        )
    return tasks


def load_tasks(path: str | Path | Mapping[str, Any] = DEFAULT_TASKS_PATH, only: Sequence[str] | None = None) -> list[Task]:
    """Load and validate the suite; ``only`` keeps the named tasks (unknown names raise ConfigError)."""
    tasks = parse_tasks(load_config(path))
    if only:
        by_name = {t.name: t for t in tasks}
        unknown = [n for n in only if n not in by_name]
        if unknown:
            raise ConfigError(f"unknown task(s) {unknown}; the suite has {sorted(by_name)}")
        tasks = [by_name[n] for n in only]
    return tasks
