"""Environment adapters: the fake test double's behaviour, MineRL/MineDojo conversions, missing backends."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from eval.baselines import noop_action
from eval.envs import EnvCrashedError, FakeMinecraftEnv, make_env
from eval.envs.minedojo_env import (
    action_nvec,
    camera_bins,
    check_cam_interval,
    minedojo_obs_to_minerl,
    minerl_to_minedojo,
)
from eval.envs.minerl_env import split_done
from eval.metrics import StepView
from zh_steve.errors import EnvironmentUnavailableError

H, W = 72, 128


def act(**kw):
    a = noop_action()
    for k, v in kw.items():
        a[k] = np.asarray(v, np.float32) if k == "camera" else v
    return a


def face(env: FakeMinecraftEnv, pos) -> dict:
    bearing = math.degrees(math.atan2(-(pos[0] - env.x), pos[1] - env.z))
    return act(camera=[-env.pitch, (bearing - env.yaw + 180) % 360 - 180])


@pytest.fixture
def env():
    e = FakeMinecraftEnv(height=H, width=W)
    e.reset(seed=7)
    return e


def test_fake_is_deterministic_per_seed():
    rng = np.random.default_rng(0)
    actions = [act(forward=int(rng.random() < 0.5), attack=int(rng.random() < 0.5), camera=rng.normal(0, 5, 2))
               for _ in range(40)]
    runs = []
    for seed in (3, 3, 4):
        e = FakeMinecraftEnv(height=H, width=W)
        frames = [e.reset(seed=seed)[0]["pov"]] + [e.step(a)[0]["pov"] for a in actions]
        runs.append(np.stack(frames))
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_observation_has_the_minerl_keys_metrics_need(env):
    obs, info = env.reset(seed=1)
    assert obs["pov"].shape == (H, W, 3) and obs["pov"].dtype == np.uint8
    v = StepView.from_obs(obs, info)
    assert v.pos is not None and v.pitch == 0.0 and v.gui_open is False and v.air == 300 and v.water_cm == 0
    assert obs["test_double"] is True


def test_forward_moves_and_camera_turns_and_changes_the_frame(env):
    x0, z0 = env.x, env.z
    for _ in range(10):
        env.step(act(forward=1))
    assert math.hypot(env.x - x0, env.z - z0) == pytest.approx(2.0, abs=0.21)
    before = env.render()
    obs, *_ = env.step(act(camera=[-30.0, 45.0]))
    assert obs["location_stats"]["pitch"] == -30.0
    assert (obs["location_stats"]["yaw"] - env.yaw0) % 360 == pytest.approx(45.0)
    assert not np.array_equal(before, obs["pov"])
    sky = np.array([120, 167, 255])
    assert (obs["pov"] == sky).all(-1).mean() > (before == sky).all(-1).mean()  # looking up shows more sky


def test_attacking_the_tree_yields_logs_then_leaves(env):
    env.step(face(env, env.tree))
    assert env.target() == "oak_log"
    for _ in range(12):
        obs, *_ = env.step(act(attack=1))
    assert obs["inventory"].get("oak_log") == 1 and obs["mine_block"]["oak_log"] == 1
    env.step(act(camera=[-40.0, 0.0]))
    assert env.target() == "oak_leaves"
    for _ in range(3):
        obs, *_ = env.step(act(attack=1))
    assert obs["mine_block"]["oak_leaves"] == 1


def test_digging_down_gives_dirt_and_lowers_you(env):
    env.x, env.z = 30.0, -30.0  # open ground away from the tree, lake and gravel
    env.y = env.ground(env.x, env.z)
    y0 = env.y
    env.step(act(camera=[90.0, 0.0]))
    for _ in range(18):
        obs, *_ = env.step(act(attack=1))
    assert obs["inventory"]["dirt"] == 3
    assert obs["location_stats"]["ypos"] == y0 - 3


def test_inventory_key_toggles_gui_and_blocks_movement(env):
    obs, _, _, _, info = env.step(act(inventory=1))
    assert obs["isGuiOpen"] and info["isGuiOpen"]
    assert (obs["pov"][H // 2 - 5, W // 2 - 20] == [198, 198, 198]).all()
    x0 = env.x
    obs, *_ = env.step(act(inventory=1, forward=1))  # key held: no second toggle
    assert obs["isGuiOpen"] and env.x == x0
    obs, *_ = env.step(act(ESC=1))
    assert not obs["isGuiOpen"]


def test_water_sinking_uses_breath_and_counts_swimming(env):
    env.x, env.z = env.lake_c
    for _ in range(20):
        obs, *_ = env.step(act(forward=1))
        env.x, env.z = env.lake_c  # stay in the lake
    assert obs["custom"]["walk_on_water_one_cm"] + obs["custom"]["walk_under_water_one_cm"] > 0
    assert obs["life_stats"]["air"] < 300
    for _ in range(20):
        obs, *_ = env.step(act(jump=1))
    assert obs["life_stats"]["air"] == 300


@pytest.mark.parametrize("mode,exc", [("exception", RuntimeError), ("dead", EnvCrashedError)])
def test_crash_injection(mode, exc):
    e = FakeMinecraftEnv(height=H, width=W, crash_at_step=3, crash_mode=mode)
    e.reset(seed=0)
    e.step(act())
    e.step(act())
    with pytest.raises(exc):
        e.step(act())
    if mode == "dead":
        for call in (lambda: e.step(act()), lambda: e.reset(seed=1), e.close):
            with pytest.raises(EnvCrashedError):
                call()
    else:
        e.step(act())  # an exception does not kill the process


# ---------------------------------------------------------------- MineRL adapter
def test_minerl_old_gym_tuple_is_split():
    obs = {"pov": 0}
    assert split_done((obs, 1, True, {"TimeLimit.truncated": True}))[2:4] == (False, True)
    assert split_done((obs, 1, True, {}))[2:4] == (True, False)
    assert split_done((obs, 1, False, {}))[2:4] == (False, False)
    assert split_done((obs, 1, False, True, {}))[2:4] == (False, True)


@pytest.mark.parametrize("kind,words", [("minerl", ["JDK 8", "minerl@v1.0", "xvfb-run", "--env-python"]),
                                        ("minedojo", ["JDK 8", "constraints/minedojo-backend.txt", "xvfb-run"])])
def test_missing_backend_gives_install_steps(kind, words):
    if importlib.util.find_spec(kind) is not None:
        pytest.skip(f"{kind} is installed")
    with pytest.raises(EnvironmentUnavailableError) as e:
        make_env(kind)
    for w in words:
        assert w in str(e.value)


def test_backend_constraint_files_pin_the_old_stack(repo_root):
    """The separate backend environments (resolved in CI by .ci/check-constraints) pin what the help says."""
    pins = {f: (repo_root / "constraints" / f).read_text().split() for f in ("minerl-backend.txt", "minedojo-backend.txt")}
    assert {"numpy==1.23.5", "gym==0.23.1"} <= set(pins["minerl-backend.txt"])
    assert {"numpy==1.23.5", "gym==0.21.0", "minedojo==0.1"} <= set(pins["minedojo-backend.txt"])


# ---------------------------------------------------------------- MineDojo conversion
def test_minedojo_layout_matches_its_action_space():
    assert action_nvec(15) == [3, 3, 4, 25, 25, 8, 244, 36]  # MineDojo's default
    assert camera_bins(0.1) == 3601
    if importlib.util.find_spec("minedojo") is not None:  # the real definition, when installed
        from minedojo.sim.mc_meta import mc

        assert len(mc.ALL_CRAFT_SMELT_ITEMS) == 244 and mc.N_INV_SLOTS == 36


@pytest.mark.parametrize("c", [15, 1, 0.5, 0.1])
def test_noop_converts_to_the_noop_vector(c):
    vec, dropped = minerl_to_minedojo(noop_action(), c)
    centre = (camera_bins(c) - 1) // 2
    assert vec.tolist() == [0, 0, 0, centre, centre, 0, 0, 0] and dropped == []
    assert centre * c - 180 == pytest.approx(0.0)  # MineDojo decodes bin·c − 180


def test_cam_interval_must_divide_180():
    assert check_cam_interval(0.1) == 0.1
    for bad in (7, 0, -1, 0.7):
        with pytest.raises(ValueError):
            check_cam_interval(bad)


def test_movement_keys():
    conv = lambda **kw: minerl_to_minedojo(act(**kw))  # noqa: E731
    assert conv(forward=1)[0][0] == 1 and conv(back=1)[0][0] == 2 and conv(forward=1, back=1)[0][0] == 0
    assert conv(left=1)[0][1] == 1 and conv(right=1)[0][1] == 2 and conv(left=1, right=1)[0][1] == 0
    assert conv(jump=1)[0][2] == 1 and conv(sneak=1)[0][2] == 2 and conv(sprint=1)[0][2] == 3
    vec, dropped = conv(jump=1, sprint=1)
    assert vec[2] == 1 and dropped == ["sprint"]
    assert conv(sneak=1, sprint=1)[0][2] == 0


def test_vpt_camera_bins_survive_within_half_a_bin():
    c = 0.1
    centre = (camera_bins(c) - 1) // 2
    for deg in (-10, -5.809, -3.215, -1.609, -0.615, 0.0, 0.615, 1.609, 3.215, 5.809, 10):
        vec, _ = minerl_to_minedojo(act(camera=[deg, -deg]), c)
        assert vec[3] * c - 180 == pytest.approx(deg, abs=c / 2 + 1e-9)  # pitch
        assert vec[4] * c - 180 == pytest.approx(-deg, abs=c / 2 + 1e-9)  # yaw
        assert vec[3] - centre == -(vec[4] - centre)
    assert minerl_to_minedojo(act(camera=[400.0, 0.0]), c)[0][3] == camera_bins(c) - 1  # clipped


def test_functional_actions_and_what_is_dropped():
    conv = lambda names=None, **kw: minerl_to_minedojo(act(**kw), 0.1, names)  # noqa: E731
    vec, dropped = conv(attack=1, use=1)
    assert vec[5] == 3 and dropped == ["use"]
    assert conv(use=1)[0][5] == 1 and conv(drop=1)[0][5] == 2
    names = ["air", "air", "oak_log"] + ["air"] * 33
    vec, dropped = conv(names, **{"hotbar.3": 1})
    assert (vec[5], vec[7]) == (5, 2) and dropped == []
    vec, dropped = conv(names, **{"hotbar.1": 1})
    assert vec[5] == 0 and dropped == ["hotbar.1"]
    vec, dropped = conv(names, attack=1, **{"hotbar.3": 1})
    assert vec[5] == 3 and dropped == ["hotbar.3"]
    vec, dropped = conv(inventory=1, ESC=1, pickItem=1, swapHands=1)
    assert vec.tolist()[:3] == [0, 0, 0] and vec[5] == 0
    assert dropped == ["inventory", "ESC", "pickItem", "swapHands"]


def test_minedojo_observation_is_mapped_to_minerl_keys():
    rgb = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    names = np.array(["log", "wheat seeds", "air", "log", "red flower"] + ["air"] * 31)
    raw = {
        "rgb": rgb,
        "inventory": {"name": names, "quantity": np.array([2, 3, 0, 1, 1] + [0] * 31, np.float32),
                      "variant": np.array([2, 0, 0, 2, 4] + [0] * 31)},
        "location_stats": {"pos": np.array([1.0, 70.0, -3.0]), "pitch": np.array([-20.0]), "yaw": np.array([45.0])},
        "life_stats": {"life": np.array([20.0]), "oxygen": np.array([250.0]), "food": np.array([20.0])},
    }
    o = minedojo_obs_to_minerl(raw)
    assert o["pov"].shape == (4, 5, 3) and np.array_equal(o["pov"][..., 1], rgb[1])
    assert o["inventory"] == {"birch_log": 3.0, "wheat_seeds": 3.0, "red_tulip": 1.0}
    assert o["location_stats"] == {"xpos": 1.0, "ypos": 70.0, "zpos": -3.0, "pitch": -20.0, "yaw": 45.0}
    assert o["life_stats"]["air"] == 250.0


class _OldGymMineRL:
    """Stand-in with MineRL 1.0's old-gym API: reset → obs; step → 4-tuple; a lost socket → random obs + error."""

    def __init__(self, fail_at: int | None = None):
        self.fail_at, self.t, self.sent = fail_at, 0, []

    def seed(self, seed):
        assert isinstance(seed, int)  # MineRL asserts an int seed

    def reset(self):
        self.t = 0
        return {"pov": np.zeros((4, 4, 3), np.uint8), "inventory": {"dirt": np.array(0)}}

    def step(self, action):
        self.t += 1
        self.sent.append(action)
        if self.t == self.fail_at:  # what _MultiAgentEnv.step returns when the socket times out
            return ({"pov": np.zeros((4, 4, 3), np.uint8), "inventory": {"dirt": np.array(37)}}, 0, True,
                    {"error": "Connection timed out!"})
        return {"pov": np.zeros((4, 4, 3), np.uint8), "inventory": {"dirt": np.array(0)}}, 0.0, False, {"isGuiOpen": 0}

    def close(self):
        pass


def _minerl_adapter(raw):
    from eval.envs.minerl_env import MineRLEnv

    env = MineRLEnv.__new__(MineRLEnv)
    env._env = raw
    return env


def test_minerl_lost_connection_is_a_crash_not_a_random_observation():
    env = _minerl_adapter(_OldGymMineRL(fail_at=2))
    env.reset(seed=5)
    obs, _, terminated, _, info = env.step(noop_action())
    assert obs["isGuiOpen"] == 0 and not terminated
    with pytest.raises(EnvCrashedError, match="random"):
        env.step(noop_action())


def test_minerl_actions_are_sent_as_ints_and_a_flat_camera():
    raw = _OldGymMineRL()
    env = _minerl_adapter(raw)
    env.reset(seed=1)
    a = noop_action()
    a.update(attack=np.array([True]), forward=True, jump=np.int64(1), camera=np.array([[1.5, -2.0]]))
    env.step(a)
    sent = raw.sent[-1]
    assert sent["attack"] == 1 and type(sent["attack"]) is int and type(sent["forward"]) is int
    assert sent["jump"] == 1 and sent["ESC"] == 0
    assert sent["camera"].shape == (2,) and sent["camera"].dtype == np.float32
    assert sent["camera"].tolist() == [1.5, -2.0]


def _fake_minedojo(monkeypatch):
    """A stand-in ``minedojo`` module whose ``make`` records its arguments."""
    import sys
    import types

    made = []

    class Sim:
        def __init__(self, kwargs):
            self.kwargs, self.closed, self.resets = kwargs, False, 0

        def seed(self, seed):  # MineDojoSim.seed: only re-seeds the generator used while building
            pass

        def reset(self):
            self.resets += 1
            return {"rgb": np.zeros((3, 4, 5), np.uint8)}

        def step(self, vec):
            return {"rgb": np.zeros((3, 4, 5), np.uint8)}, 0.0, False, {}

        def close(self):
            self.closed = True

    def make(task_id, **kwargs):
        made.append(Sim(kwargs))
        return made[-1]

    monkeypatch.setitem(sys.modules, "minedojo", types.SimpleNamespace(make=make))
    return made


def test_minedojo_episode_seed_selects_a_fresh_copy_of_the_same_world(monkeypatch):
    from eval.envs.minedojo_env import MineDojoEnv

    made = _fake_minedojo(monkeypatch)
    env = MineDojoEnv()
    env.reset(seed=11)
    env.step(noop_action())
    env.reset(seed=11)  # the second method of the pair: same world, regenerated
    assert len(made) == 1 and made[0].resets == 2
    kw = made[0].kwargs
    assert kw["world_seed"] == 11 and kw["regenerate_world_after_reset"] is True and kw["cam_interval"] == 0.1
    env.reset(seed=12)  # next episode: another world
    assert len(made) == 2 and made[0].closed and made[1].kwargs["world_seed"] == 12
    env.close()
    assert made[1].closed


def test_minedojo_swimming_statistics_reach_the_swim_metric():
    from eval.tasks import load_tasks

    swim = {t.name: t for t in load_tasks()}["swim"].metric

    def raw(cm):  # swimming on the surface: breath stays full, only the 1.11 stat grows
        return {"rgb": np.zeros((3, 4, 5), np.uint8), "life_stats": {"oxygen": np.array([300.0])},
                "full_stats": {"swim_one_cm": np.array(cm), "dive_one_cm": np.array(0.0), "jump": np.array(3)}}

    steps = [(minedojo_obs_to_minerl(raw(100.0 * i)), {}) for i in range(25)]
    assert steps[1][0]["full_stats"] == {"swim_one_cm": 100.0, "dive_one_cm": 0.0}
    assert swim.evaluate(steps) == (24.0, True)


def test_minedojo_tall_flowers_count_for_the_flower_task():
    from eval.tasks import load_tasks

    flower = {t.name: t for t in load_tasks()}["flower"].metric
    names = np.array(["double plant", "double plant"] + ["air"] * 34)

    def raw(variants, qty):
        return {"rgb": np.zeros((3, 4, 5), np.uint8),
                "inventory": {"name": names, "quantity": np.array(qty + [0] * 34, np.float32),
                              "variant": np.array(variants + [0] * 34)}}

    got = minedojo_obs_to_minerl(raw([4, 2], [1, 2]))["inventory"]
    assert got == {"rose_bush": 1.0, "double_plant": 2.0}  # variant 2 is tall grass: not renamed
    start = (minedojo_obs_to_minerl(raw([0, 0], [0, 0])), {})
    assert flower.evaluate([start, (minedojo_obs_to_minerl(raw([0, 2], [1, 2])), {})]) == (1.0, True)
