"""Every metric of the evaluation suite on scripted MineRL-style observation sequences."""

from __future__ import annotations

import numpy as np
import pytest

from eval.metrics import METRICS, StepView
from eval.tasks import load_tasks

POV = np.zeros((4, 4, 3), np.uint8)


def obs(x=0.0, y=64.0, z=0.0, pitch=0.0, inv=None, air=300, gui=False, mine=None, kills=None, water_cm=None):
    o = {
        "pov": POV,
        "inventory": {k: np.array(v) for k, v in (inv or {}).items()},
        "location_stats": {"xpos": np.array(x), "ypos": np.array(y), "zpos": np.array(z), "pitch": np.array(pitch), "yaw": 0.0},
        "life_stats": {"air": np.array(air), "life": 20.0},
        "mine_block": mine or {},
        "kill_entity": kills or {},
        "isGuiOpen": gui,
    }
    if water_cm is not None:
        o["full_stats"] = {"custom": {"minecraft:walk_on_water_one_cm": water_cm}}
    return o


def seq(*observations):
    return [(o, {}) for o in observations]


def acted(*pairs):
    """(obs, action) pairs → (obs, info, action) steps; the first is the reset (no action)."""
    return [(o, {}, a) for o, a in pairs]


INV_KEY, NOOP, USE = {"inventory": 1}, {"inventory": 0}, {"inventory": 0, "use": 1}


# task → (episode that should succeed, episode that should fail)
SCRIPTS = {
    "dig": (seq(obs(y=64), obs(y=63), obs(y=59)), seq(obs(y=64), obs(y=62), obs(y=70))),
    "dirt": (seq(obs(), obs(inv={"dirt": 0}), obs(inv={"dirt": 2})),
             seq(obs(inv={"dirt": 5}), obs(inv={"dirt": 5}), obs(inv={"grass_block": 3, "dirt": 5}))),
    "sky": (seq(obs(pitch=0), *[obs(pitch=-75)] * 10), seq(obs(pitch=0), *[obs(pitch=-50)] * 12, obs(pitch=-85))),
    "leaves": (seq(obs(), obs(mine={"oak_leaves": 1})),
               seq(obs(), obs(mine={"oak_log": 1}, inv={"oak_leaves": 3}))),
    "wood": (seq(obs(), obs(inv={"birch_log": 1})), seq(obs(), obs(inv={"oak_planks": 4}))),
    "seeds": (seq(obs(), obs(inv={"wheat_seeds": 1})), seq(obs(), obs(inv={"wheat": 2}))),
    "flower": (seq(obs(), obs(inv={"red_tulip": 1})), seq(obs(), obs(inv={"oak_sapling": 1}))),
    "explore": (seq(obs(), obs(x=20), obs(x=30, z=25), obs(x=0)), seq(obs(), obs(x=10, z=10), obs(x=0, z=0))),
    "swim": (seq(*[obs(water_cm=100.0 * i) for i in range(25)]), seq(*[obs(water_cm=100.0) for _ in range(25)])),
    "underwater": (seq(obs(air=300), obs(air=270), obs(air=290)), seq(obs(air=300), obs(air=290), obs(air=300))),
    "inventory": (acted((obs(gui=False), None), (obs(gui=True), INV_KEY)),
                  acted((obs(gui=False), None), (obs(gui=True), USE), (obs(gui=True), NOOP))),
    "sand": (seq(obs(), obs(inv={"sand": 1})), seq(obs(), obs(inv={"sandstone": 3}))),
    "gravel": (seq(obs(), obs(inv={"flint": 1})), seq(obs(), obs(inv={"dirt": 1}))),
    "sapling": (seq(obs(), obs(inv={"oak_sapling": 1})), seq(obs(), obs(inv={"oak_leaves": 1}))),
    "hunt": (seq(obs(), obs(kills={"cow": 1})), seq(obs(), obs(kills={"zombie": 1}))),
    "climb": (seq(obs(y=64), obs(y=67), obs(y=70), obs(y=60)), seq(obs(y=64), obs(y=66))),
}


def test_every_suite_task_has_a_scripted_case():
    assert {t.name for t in load_tasks()} == set(SCRIPTS)


@pytest.mark.parametrize("task", load_tasks(), ids=lambda t: t.name)
def test_suite_metric_on_scripted_episodes(task):
    good, bad = SCRIPTS[task.name]
    score, ok = task.metric.evaluate(good)
    assert ok is True, (task.name, score)
    score, ok = task.metric.evaluate(bad)
    assert ok is False, (task.name, score)


def test_scores_are_the_documented_quantities():
    tasks = {t.name: t for t in load_tasks()}
    assert tasks["dig"].metric.evaluate(SCRIPTS["dig"][0])[0] == 5.0
    assert tasks["explore"].metric.evaluate(SCRIPTS["explore"][0])[0] == pytest.approx(np.hypot(30, 25))
    assert tasks["sky"].metric.evaluate(SCRIPTS["sky"][0])[0] == 75.0  # held for the 10-step window
    assert tasks["underwater"].metric.evaluate(SCRIPTS["underwater"][0])[0] == 30.0
    assert tasks["swim"].metric.evaluate(SCRIPTS["swim"][0])[0] == 24.0  # every step after the first moved in water
    assert tasks["dirt"].metric.evaluate(SCRIPTS["dirt"][1])[0] == 0.0  # dirt held at reset is not a gain


def test_water_steps_also_count_breath_and_explicit_flags():
    m = METRICS["water_steps"]()
    for o in [obs(air=300), obs(air=299), obs(air=298)]:
        m.update(StepView.from_obs(o))
    assert m.score() == 2.0
    m = METRICS["water_steps"]()
    for flag in (0, 1, 1, 0):
        m.update(StepView.from_obs({"pov": POV, "in_water": flag}))
    assert m.score() == 2.0


def test_gui_flag_is_read_from_info_as_well():
    m = METRICS["gui_open_steps"]()
    m.update(StepView.from_obs({"pov": POV}, {"isGuiOpen": False}))
    m.update(StepView.from_obs({"pov": POV}, {"isGuiOpen": True}, INV_KEY))
    assert m.score() == 1.0


def test_inventory_counts_only_screens_the_agent_opened_with_its_key():
    spec = {t.name: t for t in load_tasks()}["inventory"].metric
    own = acted((obs(), None), (obs(gui=True), INV_KEY), (obs(gui=True), NOOP), (obs(gui=False), INV_KEY))
    assert spec.evaluate(own)[0] == 2.0
    # a crafting table / chest opened with `use`, a GUI open at reset, and the death screen do not count
    table = acted((obs(), None), (obs(gui=True), USE), (obs(gui=True), INV_KEY))
    at_reset = acted((obs(gui=True), None), (obs(gui=True), INV_KEY))
    death = [(o, {}, a) for o, a in [(obs(), None), (obs(gui=True), INV_KEY)]]
    death[1][0]["life_stats"]["life"] = 0.0
    assert [spec.evaluate(s)[0] for s in (table, at_reset, death)] == [0.0, 0.0, 0.0]
    # the screen may appear a tick or two after the key press (within 3 steps), not later
    late = acted((obs(), None), (obs(), INV_KEY), (obs(), NOOP), (obs(gui=True), NOOP), (obs(gui=True), NOOP))
    too_late = acted((obs(), None), (obs(), INV_KEY), *[(obs(), NOOP)] * 3, (obs(gui=True), NOOP))
    assert spec.evaluate(late)[0] == 2.0 and spec.evaluate(too_late)[0] == 0.0
    # without actions nothing can be attributed to the agent
    assert spec.evaluate(seq(obs(), obs(gui=True)))[0] == 0.0


def test_sky_needs_the_angle_held_not_swept_past():
    spec = {t.name: t for t in load_tasks()}["sky"].metric
    sweep = seq(obs(pitch=0), obs(pitch=-89), *[obs(pitch=-20)] * 20)
    assert spec.evaluate(sweep)[0] == 20.0
    held = seq(obs(pitch=0), *[obs(pitch=-70)] * 9, obs(pitch=-65), *[obs(pitch=0)] * 5)
    assert spec.evaluate(held)[0] == 65.0  # the lowest angle within the best 10-step run
    assert spec.evaluate(seq(obs(pitch=-80), obs(pitch=-70)))[0] == 70.0  # shorter than the window: all of it


def test_dig_counts_dug_blocks_not_falls_or_sinking():
    spec = {t.name: t for t in load_tasks()}["dig"].metric
    z = {"dirt": 0, "stone": 0}
    dug = seq(obs(y=64, mine=z), obs(y=63, mine={"dirt": 1, "stone": 0}), obs(y=59, mine={"dirt": 1, "stone": 4}))
    assert spec.evaluate(dug)[0] == 5.0
    fell = seq(obs(y=64, mine=z), obs(y=60, mine={"dirt": 1, "stone": 0}), obs(y=40, mine={"dirt": 1, "stone": 0}))
    assert spec.evaluate(fell)[0] == 1.0  # a ravine: 24 blocks down, 1 block broken
    sank = seq(obs(y=64, mine=z), obs(y=60, air=290, mine=z), obs(y=55, air=280, mine=z))
    assert spec.evaluate(sank)[0] == 0.0  # sinking in water is not digging


def test_swim_does_not_count_air_refilling_after_surfacing():
    m = METRICS["water_steps"]()
    for air in (300, 290, 280, 285, 290, 295, 300):  # two steps diving, then four refilling on land
        m.update(StepView.from_obs(obs(air=air)))
    assert m.score() == 2.0
    m = METRICS["water_steps"]()
    for air in (300, 10, 0, 0, 0):  # drowning: air stuck at 0 still counts
        m.update(StepView.from_obs(obs(air=air)))
    assert m.score() == 4.0


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_without_its_inputs_is_unmeasurable(name):
    params = {"items": ["x"], "stat": "mine_block"} if name in ("inventory_count", "stat_gain") else {}
    if name == "inventory_count":
        params.pop("stat")
    m = METRICS[name](**params)
    m.update(StepView.from_obs({"pov": POV}))
    assert m.score() is None


def test_a_statistic_that_never_has_keys_is_unmeasurable_not_zero():
    # a MineRL stat handler that matched no keys yields {} every step: that is "not provided", not 0 kills
    task = {t.name: t for t in load_tasks()}["leaves"]
    assert task.metric.evaluate(seq(obs(), obs(), obs())) == (None, None)
    assert task.metric.evaluate(seq(obs(mine={"oak_leaves": 0}), obs(mine={"oak_leaves": 0}))) == (0.0, False)


def test_fake_env_reports_its_statistics_from_reset_on():
    from eval.envs import FakeMinecraftEnv

    o, info = FakeMinecraftEnv(height=8, width=8).reset(seed=0)
    assert o["mine_block"]["oak_leaves"] == 0 and o["kill_entity"]["pig"] == 0
    tasks = {t.name: t for t in load_tasks()}
    assert tasks["leaves"].metric.evaluate([(o, info)]) == (0.0, False)
