"""The task suite YAML: the shipped suite is valid and complete; mistakes give errors naming task and field."""

from __future__ import annotations

import copy

import pytest
import yaml

from eval.tasks import DEFAULT_TASKS_PATH, load_tasks, parse_tasks
from zh_steve.errors import ConfigError

PAPER_PROMPTS = {  # STEVE-1 steve1/run_agent/paper_prompts.py, verbatim
    "dig": "dig as far as possible",
    "dirt": "get dirt, dig hole, dig dirt, gather a ton of dirt, collect dirt",
    "sky": "look at the sky",
    "leaves": "break leaves",
    "wood": "chop down the tree, gather wood, pick up wood, chop it down, break tree",
    "seeds": "break tall grass, break grass, collect seeds, punch the ground, run around in circles getting seeds from bushes",
    "flower": "break a flower",
    "explore": "go explore",
    "swim": "go swimming",
    "underwater": "go underwater",
    "inventory": "open inventory",
}


def suite() -> dict:
    return yaml.safe_load(DEFAULT_TASKS_PATH.read_text(encoding="utf-8"))


def test_shipped_suite_has_the_paper_tasks_verbatim_and_extras():
    tasks = {t.name: t for t in load_tasks()}
    for name, prompt in PAPER_PROMPTS.items():
        assert tasks[name].prompt_en == prompt and tasks[name].source == "steve1_paper"
    extras = [t for t in tasks.values() if t.source == "extra"]
    assert len(extras) >= 4
    for t in tasks.values():
        assert {p.script for p in t.zh} == {"simplified", "traditional"}
        assert {p.style for p in t.zh} == {"plain", "colloquial"}
        assert len({p.text for p in t.zh}) == len(t.zh), f"{t.name}: duplicate phrasings"


def test_phrasing_rotates_per_episode():
    t = load_tasks(only=["wood"])[0]
    assert [t.zh_for_episode(i).text for i in range(len(t.zh) + 1)] == [p.text for p in t.zh] + [t.zh[0].text]


def _broken(edit) -> str:
    data = copy.deepcopy(suite())
    edit(data)
    with pytest.raises(ConfigError) as e:
        parse_tasks(data)
    return str(e.value)


def _task(data, name):
    return next(t for t in data["tasks"] if t["name"] == name)


def test_unknown_task_key():
    msg = _broken(lambda d: _task(d, "wood").update(promt_en="x"))
    assert "task 'wood'" in msg and "promt_en" in msg


def test_unknown_metric():
    msg = _broken(lambda d: _task(d, "sky").update(metric={"name": "look_up", "threshold": 1}))
    assert "task 'sky'.metric.name" in msg and "look_up" in msg and "pitch_up" in msg


def test_unknown_metric_param():
    msg = _broken(lambda d: _task(d, "dirt")["metric"].update(item=["dirt"]))
    assert "task 'dirt'.metric" in msg and "item" in msg


def test_missing_required_metric_param():
    msg = _broken(lambda d: _task(d, "dirt")["metric"].pop("items"))
    assert "task 'dirt'.metric.items" in msg


@pytest.mark.parametrize("bad", [0, -1, "5", float("nan"), True])
def test_bad_threshold(bad):
    msg = _broken(lambda d: _task(d, "dig")["metric"].update(threshold=bad))
    assert "task 'dig'.metric.threshold" in msg


def test_missing_threshold():
    msg = _broken(lambda d: _task(d, "dig")["metric"].pop("threshold"))
    assert "task 'dig'.metric.threshold" in msg and "missing" in msg


def test_missing_prompts():
    assert "task 'swim'.prompt_en" in _broken(lambda d: _task(d, "swim").pop("prompt_en"))
    assert "task 'swim'.zh" in _broken(lambda d: _task(d, "swim").pop("zh"))
    assert "task 'swim'.zh[0].text" in _broken(lambda d: _task(d, "swim")["zh"][0].update(text="  "))


def test_phrasings_need_both_scripts_and_known_labels():
    msg = _broken(lambda d: _task(d, "flower").update(zh=[p for p in _task(d, "flower")["zh"] if p["script"] == "simplified"]))
    assert "task 'flower'.zh" in msg and "traditional" in msg
    msg = _broken(lambda d: _task(d, "flower")["zh"][1].update(script="cantonese"))
    assert "task 'flower'.zh[1].script" in msg


def test_bad_max_steps_and_duplicates_and_top_level():
    assert "task 'dig'.max_steps" in _broken(lambda d: _task(d, "dig").update(max_steps=0))
    assert "duplicate" in _broken(lambda d: d["tasks"].append(copy.deepcopy(_task(d, "dig"))))
    assert "top level" in _broken(lambda d: d.update(task=[]))


def test_unknown_task_subset():
    with pytest.raises(ConfigError, match="unknown task"):
        load_tasks(only=["wood", "fly"])
