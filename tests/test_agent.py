"""ZhSteveAgent end to end on a tiny random agent of the real architectures (offline)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zh_steve import ZhSteveAgent
from zh_steve.actions import MINERL_ACTION_KEYS
from zh_steve.errors import ConfigError, InvalidGoalError, InvalidInstructionError, InvalidObservationError, ZhSteveError

TINY = "configs/agent_tiny.yaml"


@pytest.fixture(scope="module")
def agent(repo_root, tmp_path_factory) -> ZhSteveAgent:
    from zh_steve.config_utils import load_config

    cfg = load_config(repo_root / TINY)
    cfg["tiny"]["cache_dir"] = str(tmp_path_factory.mktemp("tiny_models"))
    return ZhSteveAgent.from_config(cfg)


def _frames(n: int, h: int = 360, w: int = 640, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"pov": rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)}


def _assert_minerl_action(a: dict) -> None:
    assert set(a) == set(MINERL_ACTION_KEYS) and len(a) == 24
    for k, v in a.items():
        if k == "camera":
            cam = np.asarray(v)
            assert cam.shape == (2,) and np.all(np.isfinite(cam)) and np.all(np.abs(cam) <= 10.0)
        else:
            assert int(v) in (0, 1), (k, v)
    assert int(a["ESC"]) == 0 and int(a["pickItem"]) == 0 and int(a["swapHands"]) == 0


def test_200_steps_with_midepisode_switch(agent):
    agent.reset("砍树")
    first_goal = agent.goal_embedding
    assert agent.instruction_info.route == "zh"
    for t, obs in enumerate(_frames(200)):
        if t == 100:
            agent.set_instruction("go swimming")
            assert agent.instruction_info.route == "en"
            assert not torch.equal(agent.goal_embedding, first_goal)
        a = agent.act(obs)
        _assert_minerl_action(a)
    assert agent.steps == 200  # set_instruction kept the episode (and memory) going
    step = agent.timings["step"]
    for key in ("preprocess_ms", "policy_ms", "sample_ms", "total_ms"):
        assert step[key] >= 0.0


def test_mineclip_tower_is_loaded_only_for_english(repo_root, tmp_path):
    from zh_steve.config_utils import load_config

    cfg = load_config(repo_root / TINY)
    cfg["tiny"]["cache_dir"] = str(tmp_path)
    ag = ZhSteveAgent.from_config(cfg)
    ag.reset("砍树")
    ag.reset("去游泳", lang="zh")
    assert not ag.parts.mineclip_loaded and ag.describe()["mineclip_text_loaded"] is False
    ag.reset("chop a tree")
    assert ag.parts.mineclip_loaded and ag.instruction_info.route == "en"


def test_timings_hold_numbers_and_info_holds_facts(agent):
    agent.clear_instruction_cache()
    agent.reset("砍樹")
    assert all(isinstance(v, float) for v in agent.timings["embed"].values())
    assert {"normalize_ms", "chinese_clip_ms", "alignment_ms", "prior_ms", "total_ms"} <= set(agent.timings["embed"])
    info = agent.instruction_info
    assert (info.instruction, info.route, info.language, info.traditional, info.cache_hit) == \
        ("砍樹", "zh", "zh", True, False)


def test_agents_satisfy_the_protocol_eval_uses(agent):
    from eval.baselines import RandomAgent
    from eval.methods import GoalAgent

    assert isinstance(agent, GoalAgent) and isinstance(RandomAgent(), GoalAgent)
    assert not isinstance(object(), GoalAgent)


def test_set_instruction_keeps_memory_reset_clears_it(agent):
    agent.reset("挖泥土")
    for obs in _frames(3, 64, 64, seed=1):
        agent.act(obs)
    state_before = agent._state
    agent.set_instruction("去游泳")
    assert agent._state is state_before and agent.steps == 3
    agent.reset("去游泳")
    assert agent.steps == 0 and agent._state is not state_before


def test_seeded_agents_act_identically(repo_root, tmp_path):
    from zh_steve.config_utils import load_config

    cfg = load_config(repo_root / TINY)
    cfg["tiny"]["cache_dir"] = str(tmp_path)
    runs = []
    for _ in range(2):
        ag = ZhSteveAgent.from_config(cfg)
        ag.reset("砍樹")  # Traditional Chinese
        runs.append([ag.act(o) for o in _frames(5, 90, 160, seed=3)])
    for a, b in zip(*runs):
        assert {k: np.asarray(v).tolist() for k, v in a.items()} == {k: np.asarray(v).tolist() for k, v in b.items()}


def test_routing_and_cache(agent):
    agent.reset("砍樹")
    assert agent.instruction_info.traditional is True
    assert agent.instruction_info.text_for_encoder == "砍树"
    agent.reset("砍树")  # same text after conversion → cache hit, fresh prior sample
    assert agent.instruction_info.cache_hit is True
    assert "chinese_clip_ms" not in agent.timings["embed"]
    agent.reset("Chop A Tree", lang="auto")
    assert agent.instruction_info.route == "en"
    assert agent.instruction_info.text_for_encoder == "chop a tree"
    agent.reset("chop a tree", lang="zh")  # forced route
    assert agent.instruction_info.route == "zh"


def test_clear_instruction_cache_forces_a_cold_embed(agent):
    agent.reset("挖沙子")
    agent.reset("挖沙子")
    assert agent.instruction_info.cache_hit is True
    agent.clear_instruction_cache()
    agent.reset("挖沙子")
    assert agent.instruction_info.cache_hit is False and agent.timings["embed"]["chinese_clip_ms"] > 0


def test_prior_sample_is_fresh_per_reset_but_text_vector_is_cached(agent):
    agent.reset("挖泥土")
    g1 = agent.goal_embedding
    agent.reset("挖泥土")
    g2 = agent.goal_embedding
    assert not torch.equal(g1, g2)  # one stochastic prior sample per instruction/episode, as STEVE-1


@pytest.mark.parametrize("bad", ["", "   ", "\n\t", "！！！", "砍" * 500, None, 42])
def test_bad_instructions_raise_package_errors(agent, bad):
    with pytest.raises(InvalidInstructionError):
        agent.reset(bad)


def test_bad_instruction_does_not_lose_the_current_goal(agent):
    agent.reset("去游泳")
    goal = agent.goal_embedding
    with pytest.raises(InvalidInstructionError):
        agent.set_instruction("   ")
    assert torch.equal(agent.goal_embedding, goal)
    agent.act({"pov": np.zeros((360, 640, 3), np.uint8)})


@pytest.mark.parametrize(
    "obs",
    [
        {"pov": np.zeros((360, 640, 3), np.float32)},
        {"pov": np.zeros((3, 360, 640), np.uint8)},
        {"pov": np.zeros((360, 640), np.uint8)},
        {"pov": np.zeros((360, 640, 4), np.uint8)},
        {"rgb": np.zeros((360, 640, 3), np.uint8)},
        {"pov": [[0, 0, 0]]},
        "not a dict",
    ],
)
def test_bad_observations_raise_package_errors(agent, obs):
    agent.reset("挖泥土")
    with pytest.raises(ZhSteveError):
        agent.act(obs)
    if isinstance(obs, dict) and "pov" in obs and not isinstance(obs["pov"], list):
        with pytest.raises(InvalidObservationError):
            agent.act(obs)


def test_act_before_reset_is_a_clear_error(repo_root, tmp_path):
    from zh_steve.config_utils import load_config

    cfg = load_config(repo_root / TINY)
    cfg["tiny"]["cache_dir"] = str(tmp_path)
    with pytest.raises(InvalidInstructionError, match="reset"):
        ZhSteveAgent.from_config(cfg).act({"pov": np.zeros((8, 8, 3), np.uint8)})


def test_nan_goal_is_refused(agent):
    align = agent.parts.alignment
    with torch.no_grad():
        saved = {k: v.clone() for k, v in align.state_dict().items()}
        for p in align.parameters():
            p.fill_(float("nan"))
    try:
        with pytest.raises(InvalidGoalError):
            agent.reset("一个从未见过的指令")
    finally:
        align.load_state_dict(saved)


def test_unknown_config_key_is_rejected():
    with pytest.raises(ConfigError, match="unknown key"):
        ZhSteveAgent.from_config({"tiny": {"seed": 0}, "cond_scael": 6.0})
    with pytest.raises(ConfigError):
        ZhSteveAgent.from_config({"tiny": {"seed": 0}, "action_sampling": "greedy"})


def test_describe_labels_random_weights(agent):
    d = agent.describe()
    assert d["random_weights"] is True
    assert d["sources"]["temperature"] == 2.0
    assert d["n_parameters"]["policy"] > 0


def test_argmax_mode_is_deterministic_without_seed(repo_root, tmp_path):
    from zh_steve.config_utils import load_config

    cfg = load_config(repo_root / TINY)
    cfg.update(seed=None, action_sampling="argmax", prior_sampling="deterministic")
    cfg["tiny"]["cache_dir"] = str(tmp_path)
    outs = []
    for _ in range(2):
        ag = ZhSteveAgent.from_config(cfg)
        ag.reset("挖泥土")
        outs.append([np.asarray(ag.act(o)["camera"]).tolist() for o in _frames(4, 64, 64, seed=5)])
    assert outs[0] == outs[1]


def test_bfloat16_agent_acts(repo_root, tmp_path):
    """dtype: bfloat16 runs the text towers, prior and policy in bf16 and still returns valid MineRL actions."""
    from zh_steve.config_utils import load_config

    cfg = load_config(repo_root / TINY)
    cfg["dtype"] = "bfloat16"
    cfg["tiny"]["cache_dir"] = str(tmp_path)
    ag = ZhSteveAgent.from_config(cfg)
    assert next(ag.parts.policy.parameters()).dtype == torch.bfloat16
    assert next(ag.parts.alignment.parameters()).dtype == torch.float32  # as in the real build
    ag.reset("挖泥土")
    for obs in _frames(3, 72, 128, seed=7):
        _assert_minerl_action(ag.act(obs))
