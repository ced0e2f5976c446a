"""BatchedZhSteveAgent: N envs in one forward act exactly like N single agents with the same seeds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from zh_steve import ZhSteveAgent
from zh_steve.assembly import AgentConfig, build_tiny_parts
from zh_steve.batched_agent import BatchedZhSteveAgent
from zh_steve.config_utils import from_dict, load_config
from zh_steve.errors import InvalidInstructionError, InvalidObservationError

TINY = "configs/agent_tiny.yaml"
INSTRUCTIONS = ["砍树", "挖泥土", "chop a tree", "去游泳"]


def tiny_config_and_parts(repo_root, cache_dir, device: str = "cpu"):
    """The tiny agent config (configs/agent_tiny.yaml on ``device``) and its parts (tests/test_cuda.py too)."""
    cfg = load_config(repo_root / TINY)
    cfg["tiny"]["cache_dir"] = str(cache_dir)
    cfg["device"] = device
    config = from_dict(AgentConfig, cfg, "agent config")
    return config, build_tiny_parts(config)


@pytest.fixture(scope="module")
def tiny(repo_root, tmp_path_factory):
    return tiny_config_and_parts(repo_root, tmp_path_factory.mktemp("tiny_models"))


def _obs(rng, h=72, w=128):
    return {"pov": rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)}


def _plain(a: dict) -> dict:
    return {k: np.asarray(v).tolist() for k, v in a.items()}


@pytest.mark.parametrize("cond_scale", [6.0, None])
def test_batched_equals_single_agents(tiny, cond_scale):
    config, parts = tiny
    config = dataclasses.replace(config, cond_scale=cond_scale)
    seeds = [11, 23, 5, 42]
    singles = [ZhSteveAgent(parts, dataclasses.replace(config, seed=s)) for s in seeds]
    batched = BatchedZhSteveAgent(parts, config)
    for i, (agent, text) in enumerate(zip(singles, INSTRUCTIONS)):
        agent.reset(text)
        batched.reset(i, text, seed=seeds[i])
        assert torch.equal(batched.goal_embedding(i), agent.goal_embedding)
    rng = np.random.default_rng(0)
    schedule = [[0, 1, 2, 3]] * 4 + [[2, 0]] + [[0, 1, 2, 3]] * 2 + [[3]] + [[1, 3, 0, 2]] * 2
    for step, ids in enumerate(schedule):
        if step == 3:  # mid-episode switch keeps env 1's memory; env 2 starts a new episode
            singles[1].set_instruction("去游泳")
            batched.set_instruction(1, "去游泳")
            singles[2].reset("挖泥土")
            batched.reset(2, "挖泥土")
        obs = [_obs(rng) for _ in ids]
        got = batched.act_batch(obs, ids)
        want = [singles[i].act(o) for i, o in zip(ids, obs)]
        assert [_plain(a) for a in got] == [_plain(a) for a in want], f"step {step}, envs {ids}"


def test_batched_log_probs_match_single_policy_steps(tiny):
    """The batched forward gives each env the guided log-probs its own single step gives (float tolerance)."""
    config, parts = tiny
    policy = parts.policy
    n = 3
    gen = torch.Generator().manual_seed(0)
    goals = torch.randn(n, 512, generator=gen)
    frames = torch.randint(0, 256, (5, n, 128, 128, 3), generator=gen, dtype=torch.uint8)
    singles = [policy.initial_state(2) for _ in range(n)]
    from zh_steve.policy import PolicyState

    batched = PolicyState.cat([s.select([0]) for s in singles] + [s.select([1]) for s in singles])
    with torch.inference_mode():
        for t in range(frames.shape[0]):
            out_b, batched = policy.act_batch(frames[t], goals, batched, cond_scale=6.0)
            for i in range(n):
                out_i, singles[i] = policy.act(frames[t, i][None], goals[i][None], singles[i], cond_scale=6.0)
                torch.testing.assert_close(out_b.buttons_logp[i], out_i.buttons_logp[0], atol=1e-4, rtol=1e-4)
                torch.testing.assert_close(out_b.camera_logp[i], out_i.camera_logp[0], atol=1e-4, rtol=1e-4)


def test_batched_agent_errors(tiny):
    config, parts = tiny
    agent = BatchedZhSteveAgent(parts, config)
    rng = np.random.default_rng(1)
    with pytest.raises(InvalidInstructionError, match="reset"):
        agent.act_batch([_obs(rng)], ["a"])
    agent.reset("a", "砍树")
    with pytest.raises(InvalidObservationError, match="twice"):
        agent.act_batch([_obs(rng), _obs(rng)], ["a", "a"])
    with pytest.raises(InvalidObservationError, match="same length"):
        agent.act_batch([_obs(rng)], ["a", "b"])
    with pytest.raises(InvalidInstructionError):
        agent.reset("b", "   ")
    assert agent.env_ids == ["a"]  # the failed reset added nothing
    assert len(agent.act_batch([_obs(rng)], ["a"])) == 1


def test_batched_agent_reports_like_a_single_agent(tiny):
    """eval drives env slots through these members: embed timings, instruction info, cache, describe."""
    config, parts = tiny
    single, batched = ZhSteveAgent(parts, config), BatchedZhSteveAgent(parts, config)
    assert batched.describe() == single.describe()
    single.reset("砍树")
    batched.reset(0, "砍树", seed=1)
    assert batched.instruction_info.route == single.instruction_info.route
    assert set(batched.timings["embed"]) == set(single.timings["embed"]) and batched.timings["embed"]
    batched.reset(1, "砍树", seed=2)
    assert batched.instruction_info.cache_hit
    batched.clear_instruction_cache()
    batched.set_instruction(1, "砍树")
    assert not batched.instruction_info.cache_hit
