"""The runtime and the trainer on a CUDA GPU: golden outputs, low-precision sampling, seeded agents, batched envs.

Skipped where no GPU is visible (CI has none); run them on a GPU machine with ``pytest -m cuda``. For a dry run of
this file's logic on the CPU, set ``ZS_TEST_CUDA_DEVICE=cpu`` (the checks stay the same, the device changes).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
import pytest
import torch
from test_batched_agent import _obs, _plain, tiny_config_and_parts
from test_mineclip_text import TOL as MINECLIP_TOL
from test_mineclip_text import _golden_config, load_mineclip_text_state_dict
from test_policy_golden import SETS, Golden
from test_precision import _chi_square_p, make_tiny_policy
from test_prior import load_prior

DEVICE = os.environ.get("ZS_TEST_CUDA_DEVICE", "cuda")

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

INSTRUCTIONS = ["砍树", "挖泥土", "chop a tree", "去游泳"]


@pytest.fixture(autouse=True)
def _exact_float32():
    """Golden tolerances are float32 ones: no TF32 in matmuls or convolutions while these tests run."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _max_diff(got: torch.Tensor, want: torch.Tensor) -> float:
    return (got.detach().float().cpu() - want.float()).abs().max().item()


# ------------------------------------------------------------------------------------------- golden, float32
@pytest.mark.parametrize("name", SETS)
def test_policy_golden_guided_and_unguided_on_device(golden_dir, name):
    g = Golden(golden_dir, name)
    policy = g.policy().to(DEVICE).eval()
    for scale, keys, tol in ((g.scale, ("cfg.buttons_guided", "cfg.camera_guided"), g.tol["guided"]),
                             (None, ("nocfg.buttons_logp", "nocfg.camera_logp"), g.tol["logp"])):
        with torch.inference_mode():
            steps, _ = g.run(policy, scale)
        b = torch.cat([s.buttons_logp for s in steps])
        c = torch.cat([s.camera_logp for s in steps])
        assert b.device.type == torch.device(DEVICE).type and b.dtype == torch.float32
        assert _max_diff(b, g.out[keys[0]]) <= tol, (name, keys[0])
        assert _max_diff(c, g.out[keys[1]]) <= tol, (name, keys[1])


def test_prior_and_mineclip_text_golden_on_device(golden_dir):
    from zh_steve.checkpoint import read_safetensors
    from zh_steve.text.mineclip_text import MineClipTextModel

    io = read_safetensors(golden_dir / "prior_small.io.safetensors")
    tol = float(json.loads((golden_dir / "prior_small.json").read_text()).get("tolerance", 1e-5))
    prior = load_prior(golden_dir / "prior_small.safetensors").to(DEVICE)
    with torch.no_grad():
        got = prior.decode(io["z"].to(DEVICE), io["text_embed"].to(DEVICE))
        det = prior.sample(io["text_embed"].to(DEVICE), deterministic=True)
        # a CUDA generator: the noise is drawn on the device, so the sample is reproducible per seed there
        s1 = prior.sample(io["text_embed"].to(DEVICE), generator=torch.Generator(DEVICE).manual_seed(5))
        s2 = prior.sample(io["text_embed"].to(DEVICE), generator=torch.Generator(DEVICE).manual_seed(5))
    assert _max_diff(got, io["decode_fixed_z"]) <= tol
    assert _max_diff(det, io["forward_deterministic"]) <= tol
    assert torch.equal(s1, s2) and (s1 - det).abs().max() > 1e-3

    meta = json.loads((golden_dir / "mineclip_text_small.json").read_text())
    io = read_safetensors(golden_dir / "mineclip_text_small.io.safetensors")
    sd = load_mineclip_text_state_dict(golden_dir / "mineclip_text_small.safetensors")
    model = MineClipTextModel.from_state_dict(sd, _golden_config(meta)).to(DEVICE)
    with torch.no_grad():
        out = model.run(io["tokens"].to(DEVICE))
    assert _max_diff(out.text_embed, io["text_embed"]) <= MINECLIP_TOL


# ------------------------------------------------------------------------------------ low precision, sampling
def _guided(policy, frames, goal, setting):
    from zh_steve.precision import compute_context

    state = policy.initial_state(2)
    out = []
    with torch.inference_mode(), compute_context(setting, torch.device(DEVICE)):
        for f in frames:
            step, state = policy.act(f[None], goal, state, cond_scale=6.0)
            out.append((step.buttons_logp[0], step.camera_logp[0]))
    return out


def _draws(logp: torch.Tensor, n: int, seed: int) -> np.ndarray:
    """Frequencies of n Gumbel-max draws from one row of log-scores, drawn on the device with a device generator."""
    from zh_steve.policy.guidance import gumbel_argmax

    gen = torch.Generator(logp.device).manual_seed(seed)
    idx = gumbel_argmax(logp.expand(n, -1), generator=gen)
    return np.bincount(idx.cpu().numpy(), minlength=logp.shape[-1]) / n


@pytest.mark.parametrize("setting", ["bfloat16", "float16", "autocast"])
def test_low_precision_policy_samples_like_float32(setting):
    """Half-precision weights or autocast on the device: log-probs come back float32, close to float32's, and
    sampling them draws the float32 distribution within statistical tolerance."""
    policy = make_tiny_policy().to(DEVICE)
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (4, 128, 128, 3), generator=gen, dtype=torch.uint8).to(DEVICE)
    goal = torch.randn(1, 512, generator=gen).to(DEVICE)
    ref = _guided(policy, frames, goal, "float32")
    if setting in ("bfloat16", "float16"):
        low = make_tiny_policy().to(device=DEVICE, dtype=getattr(torch, setting))
        got = _guided(low, frames, goal.to(getattr(torch, setting)), "float32")
    else:
        got = _guided(policy, frames, goal, "autocast")
    n = 100_000
    for (b32, c32), (bh, ch) in zip(ref, got):
        assert bh.dtype == torch.float32 and ch.dtype == torch.float32
        for r, h in ((b32, bh), (c32, ch)):
            p32 = torch.softmax(r.double(), -1).cpu().numpy()
            ph = torch.softmax(h.double(), -1).cpu().numpy()
            model_tv = 0.5 * np.abs(ph - p32).sum()
            assert model_tv < 0.05, (setting, model_tv)
            freq = _draws(h, n, seed=1)
            assert _chi_square_p(freq, ph, n) > 1e-4, setting   # draws follow the scores they were drawn from


def test_gumbel_draws_on_device_are_unbiased_for_two_actions_and_uniform():
    half = torch.log(torch.tensor([0.5, 0.5], device=DEVICE))
    n = 100_000
    assert abs(_draws(half, n, 0)[0] - 0.5) < 5 * math.sqrt(0.25 / n)
    uniform = torch.zeros(8641, device=DEVICE)
    first_tenth = _draws(uniform, n, 1)[:864].sum()
    assert abs(first_tenth - 864 / 8641) < 5 * math.sqrt(0.1 * 0.9 / n)


# ------------------------------------------------------------------------------------------ agents on the device
@pytest.fixture(scope="module")
def tiny(repo_root, tmp_path_factory):
    return tiny_config_and_parts(repo_root, tmp_path_factory.mktemp("tiny_models"), device=DEVICE)


def test_agent_on_device_is_seeded_and_switches_instructions(tiny):
    from zh_steve import ZhSteveAgent
    from zh_steve.actions import MINERL_ACTION_KEYS

    config, parts = tiny
    assert next(parts.policy.parameters()).device.type == torch.device(DEVICE).type
    runs = []
    for _ in range(2):
        agent = ZhSteveAgent(parts, dataclasses.replace(config, seed=7))
        rng = np.random.default_rng(0)
        actions = []
        for i, text in enumerate(INSTRUCTIONS):
            agent.reset(text) if i == 0 else agent.set_instruction(text)
            assert agent.goal_embedding.device.type == torch.device(DEVICE).type
            for _ in range(3):
                a = agent.act(_obs(rng))
                assert set(a) == set(MINERL_ACTION_KEYS)
                actions.append(_plain(a))
        runs.append(actions)
    assert runs[0] == runs[1]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "autocast"])
def test_agent_low_precision_on_device_acts(repo_root, tmp_path, dtype):
    from zh_steve import ZhSteveAgent
    from zh_steve.actions import MINERL_ACTION_KEYS
    from zh_steve.config_utils import load_config

    cfg = load_config(repo_root / "configs/agent_tiny.yaml")
    cfg.update(device=DEVICE, dtype=dtype)
    cfg["tiny"]["cache_dir"] = str(tmp_path)
    agent = ZhSteveAgent.from_config(cfg)
    rng = np.random.default_rng(0)
    for text in ("砍树", "chop a tree"):
        agent.reset(text)
        for _ in range(3):
            assert set(agent.act(_obs(rng))) == set(MINERL_ACTION_KEYS)


def test_batched_agent_on_device_equals_single_agents(tiny):
    from zh_steve import ZhSteveAgent
    from zh_steve.batched_agent import BatchedZhSteveAgent

    config, parts = tiny
    seeds = [11, 23, 5, 42]
    singles = [ZhSteveAgent(parts, dataclasses.replace(config, seed=s)) for s in seeds]
    batched = BatchedZhSteveAgent(parts, config)
    for i, (agent, text) in enumerate(zip(singles, INSTRUCTIONS)):
        agent.reset(text)
        batched.reset(i, text, seed=seeds[i])
    rng = np.random.default_rng(0)
    for ids in ([0, 1, 2, 3], [0, 1, 2, 3], [2, 0], [3, 1, 0, 2]):
        obs = [_obs(rng) for _ in ids]
        got = batched.act_batch(obs, ids)
        want = [singles[i].act(o) for i, o in zip(ids, obs)]
        assert [_plain(a) for a in got] == [_plain(a) for a in want], ids


# --------------------------------------------------------------------------------------------- the trainer
def test_alignment_train_tiny_on_device(repo_root, tmp_path):
    from alignment.train import main

    out = tmp_path / "o"
    rc = main(["--config", str(repo_root / "configs/alignment_tiny.yaml"), "--out", str(out),
               "--cache-dir", str(tmp_path / "cache"), "--device", "cuda" if DEVICE.startswith("cuda") else "cpu"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["chosen"] in metrics["val"]
    for split in ("train", "val", "test"):
        assert 0.0 <= metrics[split][metrics["chosen"]]["top1"] <= 1.0
    # the layer trained on the device loads on the CPU (the agent's default) and maps finitely
    from zh_steve.alignment_layer import AlignmentLayer

    layer = AlignmentLayer.from_pretrained(out)
    y = layer(torch.randn(3, 512))
    assert y.device.type == "cpu" and torch.isfinite(y).all()
