"""Loading policy weights: file key forms (zh_steve.weights), strict key checks, VPT-only files, unsafe pickles."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import golden_path
from safetensors.torch import save_file

from zh_steve.errors import CheckpointError, UnsafeCheckpointError
from zh_steve.policy import PolicyConfig, Steve1Policy, load_policy_weights
from zh_steve.policy.loading import GOAL_KEYS
from zh_steve.weights.official import read_state_dict
from payloads import RunsCode


def load_policy_state_dict(path):
    return read_state_dict(path, "policy")

SETS = sorted(p.name[: -len(".config.json")] for p in golden_path().glob("vpt_policy_small*.config.json"))


@pytest.fixture(scope="module", params=SETS)
def small(request, golden_dir):
    cfg = json.loads((golden_dir / f"{request.param}.config.json").read_text())
    config = PolicyConfig.from_kwargs(cfg["policy_kwargs"], cfg["pi_head_kwargs"])
    weights = load_policy_state_dict(golden_dir / f"{request.param}.weights.safetensors")  # the users' reader
    return cfg, config, weights


def _same(policy: Steve1Policy, weights: dict) -> bool:
    sd = policy.state_dict()
    return all(torch.equal(sd[k], v) for k, v in weights.items())


@pytest.mark.parametrize("prefix", ["", "module.policy.", "policy.", "module."])
def test_prefixes_stripped(tmp_path, small, prefix):
    _, config, weights = small
    path = tmp_path / "steve1.weights"
    torch.save({prefix + k: v for k, v in weights.items()}, path)
    sd = load_policy_state_dict(path)
    assert set(sd) == set(weights)
    policy = Steve1Policy(config)
    report = load_policy_weights(policy, sd)
    assert report.ok and _same(policy, weights)


def test_safetensors_file(tmp_path, small):
    _, config, weights = small
    path = tmp_path / "p.safetensors"
    save_file({"module.policy." + k: v.contiguous() for k, v in weights.items()}, str(path))
    assert set(load_policy_state_dict(path)) == set(weights)


def test_mismatch_names_every_key(small):
    _, config, weights = small
    sd = dict(weights)
    del sd["net.final_ln.bias"]
    sd["net.extra.weight"] = torch.zeros(3)
    sd["net.lastlayer.layer.weight"] = torch.zeros(5, 5)
    with pytest.raises(CheckpointError) as info:
        load_policy_weights(Steve1Policy(config), sd)
    msg = str(info.value)
    assert "net.final_ln.bias" in msg and "net.extra.weight" in msg and "net.lastlayer.layer.weight" in msg
    assert "missing" in msg and "unexpected" in msg and "mis-shaped" in msg


def test_vpt_only_file(small):
    _, config, weights = small
    sd = {k: v for k, v in weights.items() if k not in GOAL_KEYS}
    with pytest.raises(CheckpointError) as info:
        load_policy_weights(Steve1Policy(config), sd)
    msg = str(info.value)
    assert "VPT-only" in msg and "steve1.weights" in msg and "net.mineclip_embed_linear.weight" in msg
    policy = Steve1Policy(config)
    report = load_policy_weights(policy, sd, allow_missing_goal=True)
    assert sorted(report.missing) == sorted(GOAL_KEYS) and _same(policy, sd)


def test_malicious_weights_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "steve1.weights"
    torch.save({"net.final_ln.weight": torch.zeros(2), "payload": RunsCode(via="open", marker=marker)}, path)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError):
        load_policy_state_dict(path)
    assert not marker.exists()


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "steve1.weights"
    torch.save({"state_dict": {"a": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="flat state dict"):
        load_policy_state_dict(path)


def test_policy_in_a_multi_part_file(tmp_path, small):
    """Only the policy keys of a file that also holds other parts (MineStudio-style names) are taken."""
    _, config, weights = small
    other = {"prior.decoder.0.weight": torch.zeros(2, 2), "mineclip.clip_model.logit_scale": torch.zeros(())}
    save_file({**{k: v.contiguous() for k, v in weights.items()}, **other}, str(tmp_path / "model.safetensors"))
    policy = Steve1Policy(config)
    load_policy_weights(policy, load_policy_state_dict(tmp_path / "model.safetensors"))
    assert _same(policy, weights)
