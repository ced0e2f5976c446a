"""The gymnasium wrapper: MineRL 1.0 spaces, gymnasium's env checker, and a vector env over the test double."""

from __future__ import annotations

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from eval.envs import FakeMinecraftEnv  # noqa: E402
from eval.envs.gym_wrapper import MinecraftGymEnv, make_gym_env, minerl_action_space  # noqa: E402
from zh_steve.actions.minerl import MINERL_ACTION_KEYS, validate_minerl_action  # noqa: E402


def test_spaces_are_minerl_1_0s():
    space = minerl_action_space()
    assert list(space.spaces) == list(MINERL_ACTION_KEYS) and len(space.spaces) == 24
    cam = space["camera"]
    assert cam.shape == (2,) and cam.dtype == np.float32 and cam.low[0] == -180 and cam.high[1] == 180
    assert all(space[k] == gymnasium.spaces.Discrete(2) for k in MINERL_ACTION_KEYS if k != "camera")
    env = MinecraftGymEnv(FakeMinecraftEnv(height=36, width=64), height=36, width=64)
    assert env.observation_space["pov"].shape == (36, 64, 3)
    validate_minerl_action({k: (np.asarray(v, np.float32) if k == "camera" else int(v))
                            for k, v in space.sample().items()})


def test_gymnasium_env_checker_and_vector_env_accept_it():
    from gymnasium.utils.env_checker import check_env

    env = MinecraftGymEnv(FakeMinecraftEnv(height=36, width=64), height=36, width=64)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert set(obs) == {"pov"} and "location_stats" in info["observation"] and info["test_double"]
    vec = gymnasium.vector.SyncVectorEnv([lambda: make_gym_env("fake", height=36, width=64)] * 2)
    obs, _ = vec.reset(seed=[1, 2])
    assert obs["pov"].shape == (2, 36, 64, 3) and not np.array_equal(obs["pov"][0], obs["pov"][1])
    obs, reward, term, trunc, _ = vec.step(vec.action_space.sample())
    assert obs["pov"].shape == (2, 36, 64, 3) and reward.shape == (2,)
    vec.close()
