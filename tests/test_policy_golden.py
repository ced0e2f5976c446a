"""The policy against the official outputs (golden ``vpt_policy_small*`` fixture sets).

Sizes, CFG scale, temperature and tolerances come from each set's ``config.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import golden_path

from zh_steve.checkpoint import read_safetensors
from zh_steve.errors import InvalidGoalError, InvalidObservationError
from zh_steve.policy import PolicyConfig, PolicyStateError, Steve1Policy, load_policy_weights

SETS = sorted(p.name[: -len(".config.json")] for p in golden_path().glob("vpt_policy_small*.config.json"))


def test_fixture_sets_exist():
    assert SETS, f"no vpt_policy_small*.config.json in {golden_path()}"


class Golden:
    """One fixture set: config, weights, inputs, outputs, and the cfg/nocfg runs of our policy."""

    def __init__(self, root: Path, name: str):
        self.cfg = json.loads((root / f"{name}.config.json").read_text())
        self.tol = self.cfg["tolerances"]
        self.scale = float(self.cfg["cond_scale"])
        self.weights = read_safetensors(root / f"{name}.weights.safetensors")
        self.inputs = read_safetensors(root / f"{name}.inputs.safetensors")
        self.out = read_safetensors(root / f"{name}.outputs.safetensors")
        self.config = PolicyConfig.from_kwargs(self.cfg["policy_kwargs"], self.cfg["pi_head_kwargs"])
        self.frames = self.inputs["frames"]
        self.goal = self.inputs["goal_embed"]

    def policy(self, dtype: torch.dtype = torch.float32) -> Steve1Policy:
        policy = Steve1Policy(self.config)
        load_policy_weights(policy, self.weights)
        return policy.to(dtype)

    def run(self, policy: Steve1Policy, cond_scale: float | None, dtype=torch.float32):
        state = policy.initial_state(1 if cond_scale is None else 2)
        steps = []
        device = next(policy.parameters()).device   # inputs follow the policy (tests/test_cuda.py runs it on a GPU)
        for t in range(self.frames.shape[0]):
            img = self.frames[t][None].to(device)
            if dtype != torch.float32:
                img = img.to(dtype)
            step, state = policy.act(img, self.goal.to(device=device, dtype=dtype), state, cond_scale=cond_scale)
            steps.append(step)
        return steps, state


@pytest.fixture(scope="module", params=SETS)
def golden(request, golden_dir) -> Golden:
    g = Golden(golden_dir, request.param)
    policy = g.policy()
    g.cfg_steps, g.cfg_state = g.run(policy, g.scale)
    g.nocfg_steps, _ = g.run(policy, None)
    return g


def _close(got: torch.Tensor, want: torch.Tensor, atol: float, what: str) -> None:
    got = got.detach().to(want.dtype)
    assert got.shape == want.shape, f"{what}: shape {list(got.shape)} != {list(want.shape)}"
    diff = (got - want).abs().max().item()
    assert diff <= atol, f"{what}: max abs diff {diff:.3g} > {atol:.3g}"


def _streams(steps, field: str) -> torch.Tensor:
    """[T, S, ...] from the per-step stream outputs ([S, 1, ...])."""
    return torch.stack([getattr(s.streams, field)[:, 0] for s in steps])


def test_cfg_run_guided(golden):
    o, tol = golden.out, golden.tol
    guided_b = torch.cat([s.buttons_logp for s in golden.cfg_steps])
    guided_c = torch.cat([s.camera_logp for s in golden.cfg_steps])
    _close(guided_b, o["cfg.buttons_guided"], tol["guided"], "guided buttons")
    _close(guided_c, o["cfg.camera_guided"], tol["guided"], "guided camera")
    assert torch.equal(guided_b.argmax(-1), o["cfg.argmax_buttons"])
    assert torch.equal(guided_c.argmax(-1), o["cfg.argmax_camera"])
    log_prob = guided_b.max(-1).values + guided_c.max(-1).values
    _close(log_prob, o["cfg.log_prob"], 2 * tol["guided"], "log_prob at argmax")


def test_cfg_run_streams(golden):
    o, tol, steps = golden.out, golden.tol, golden.cfg_steps
    _close(_streams(steps, "img_feat"), o["cfg.img_feat"], tol["img_feat"], "img_feat")
    _close(_streams(steps, "latent"), o["cfg.latent"], tol["latent"], "latent")
    _close(_streams(steps, "camera_logits"), o["cfg.camera_raw"], tol["raw_logits"], "camera raw")
    _close(_streams(steps, "buttons_logp"), o["cfg.buttons_logp"], tol["logp"], "buttons logp")
    _close(_streams(steps, "camera_logp"), o["cfg.camera_logp"], tol["logp"], "camera logp")
    _close(_streams(steps, "vpred_raw"), o["cfg.vpred_raw"], tol["vpred"], "vpred raw")
    _close(_streams(steps, "vpred"), o["cfg.vpred"], tol["vpred"], "vpred")
    _close(torch.cat([s.vpred for s in steps]), o["cfg.vpred"][:, 0], tol["vpred"], "step vpred (cond)")


def test_cfg_final_state(golden):
    keys = [k for k in golden.out if k.startswith("cfg.final_state.")]
    if not keys:
        pytest.skip("this fixture set stores no final state")
    for i, memory in enumerate(golden.cfg_state.layers):
        _close(memory.k, golden.out[f"cfg.final_state.{i}.K"], golden.tol["latent"], f"layer {i} K")
        _close(memory.v, golden.out[f"cfg.final_state.{i}.V"], golden.tol["latent"], f"layer {i} V")
        assert torch.equal(memory.mask.to(torch.uint8), golden.out[f"cfg.final_state.{i}.mask"])


def test_nocfg_run(golden):
    o, tol, steps = golden.out, golden.tol, golden.nocfg_steps
    buttons = torch.cat([s.buttons_logp for s in steps])
    camera = torch.cat([s.camera_logp for s in steps])
    _close(buttons, o["nocfg.buttons_logp"], tol["logp"], "buttons logp")
    _close(camera, o["nocfg.camera_logp"], tol["logp"], "camera logp")
    assert torch.equal(buttons.argmax(-1), o["nocfg.argmax_buttons"])
    assert torch.equal(camera.argmax(-1), o["nocfg.argmax_camera"])
    _close(_streams(steps, "latent")[:, 0], o["nocfg.latent"], tol["latent"], "latent")
    _close(_streams(steps, "camera_logits")[:, 0], o["nocfg.camera_raw"], tol["raw_logits"], "camera raw")
    _close(torch.cat([s.vpred for s in steps]), o["nocfg.vpred"], tol["vpred"], "vpred")


def test_seq_run(golden):
    """One training-style call over the whole clip (T > memory) equals the stored sequence outputs."""
    policy = golden.policy()
    t = golden.frames.shape[0]
    img = golden.frames[None].expand(2, -1, -1, -1, -1)
    goal = torch.stack([golden.goal.expand(t, -1), torch.zeros(t, golden.goal.shape[1])])
    first = torch.zeros(2, t, dtype=torch.bool)
    first[:, 0] = True
    with torch.no_grad():
        out, state = policy(img, goal, first, policy.initial_state(2))
    _close(out.buttons_logp, golden.out["seq.buttons_logp"], golden.tol["logp"], "seq buttons")
    _close(out.camera_logp, golden.out["seq.camera_logp"], golden.tol["logp"], "seq camera")
    _close(out.vpred, golden.out["seq.vpred"], golden.tol["vpred"], "seq vpred")
    assert state.batch_size == 2


def test_fp64_run(golden):
    """In float64 the whole network reproduces the official float64 run to round-off."""
    atol = float(golden.tol.get("fp64", 1e-9))  # golden README §1: float64 re-implementations agree to ~1e-9
    policy = golden.policy(torch.float64)
    steps, _ = golden.run(policy, golden.scale, dtype=torch.float64)
    o = golden.out
    for field, key in [("img_feat", "img_feat"), ("latent", "latent"), ("buttons_logits", "buttons_raw"),
                       ("camera_logits", "camera_raw"), ("vpred_raw", "vpred_raw"), ("vpred", "vpred")]:
        got = _streams(steps, field)
        assert got.dtype == torch.float64
        _close(got, o[f"fp64.cfg.{key}"], atol, f"fp64 {field}")
    # guided argmax from float64 references equals the stored fp32 argmax
    temp = golden.config.temperature
    lp = torch.log_softmax(o["fp64.cfg.buttons_raw"] / temp, -1)
    guided = (1 + golden.scale) * lp[:, 0] - golden.scale * lp[:, 1]
    _close(torch.cat([s.buttons_logp for s in steps]), guided, atol * 100, "fp64 guided buttons")


def test_value_denormalisation(golden):
    w = golden.weights
    debias = w["value_head.normalizer.debiasing_term"].clamp(min=1e-5)
    mean = w["value_head.normalizer.running_mean"] / debias
    var = w["value_head.normalizer.running_mean_sq"] / debias - mean**2
    raw = golden.out["cfg.vpred_raw"]
    _close(raw * var.sqrt() + mean, golden.out["cfg.vpred"], golden.tol["vpred"], "fixture formula")
    policy = golden.policy()
    _close(policy.value_head.normalizer.denormalize(raw), golden.out["cfg.vpred"], golden.tol["vpred"],
           "denormalize")


def test_shared_cnn_matches_naive_batch2(golden):
    """act() computes the CNN once; a naive batch-2 forward (CNN on both rows) gives the same numbers."""
    policy = golden.policy()
    shared = golden.cfg_steps
    state = policy.initial_state(2)
    zeros = torch.zeros_like(golden.goal)
    for t, step in enumerate(shared):
        img = golden.frames[t][None, None].expand(2, -1, -1, -1, -1).contiguous()
        goal = torch.cat([golden.goal, zeros])[:, None]
        with torch.no_grad():
            naive, state = policy(img, goal, torch.zeros(2, 1, dtype=torch.bool), state)
        _close(step.streams.latent, naive.latent, golden.tol["latent"], f"step {t} latent")
        guided = (1 + golden.scale) * naive.buttons_logp[0:1, 0] - golden.scale * naive.buttons_logp[1:2, 0]
        _close(step.buttons_logp, guided, golden.tol["guided"], f"step {t} guided buttons")
        assert torch.equal(step.buttons_logp.argmax(-1), guided.argmax(-1))


def test_first_resets_memory(golden):
    """``first[:, 0] = True`` hides the carried memory: same output as a fresh state."""
    policy = golden.policy()
    t = min(3, golden.frames.shape[0] // 2)
    img = golden.frames[None]
    goal = golden.goal[:, None].expand(1, golden.frames.shape[0], -1)
    no_first = torch.zeros(1, t, dtype=torch.bool)
    with torch.no_grad():
        _, used = policy(img[:, :t], goal[:, :t], no_first, policy.initial_state(1))
        fresh, _ = policy(img[:, t:2 * t], goal[:, t:2 * t], no_first, policy.initial_state(1))
        reset, _ = policy(img[:, t:2 * t], goal[:, t:2 * t], torch.ones(1, t, dtype=torch.bool), used)
        carried, _ = policy(img[:, t:2 * t], goal[:, t:2 * t], no_first, used)
    assert torch.allclose(reset.latent, fresh.latent, atol=1e-6)
    assert not torch.allclose(carried.latent, fresh.latent, atol=1e-3)


def test_bad_inputs_are_refused(golden):
    policy = golden.policy()
    img, goal = golden.frames[0][None], golden.goal
    with pytest.raises(PolicyStateError):
        policy.act(img, goal, policy.initial_state(1), cond_scale=golden.scale)
    with pytest.raises(PolicyStateError):
        policy.act(img, goal, policy.initial_state(2), cond_scale=None)
    with pytest.raises(InvalidObservationError):
        policy.act(img[:, :64], goal, policy.initial_state(1))
    with pytest.raises(InvalidObservationError):
        policy.act(img.to(torch.int32), goal, policy.initial_state(1))
    with pytest.raises(InvalidGoalError):
        policy.act(img, goal[:, :10], policy.initial_state(1))
    with pytest.raises(InvalidGoalError):
        policy.act(img, torch.full_like(goal, float("nan")), policy.initial_state(1))
