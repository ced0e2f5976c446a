"""The full-size policy (built on the meta device: shapes only) against the official key/shape manifests."""

from __future__ import annotations

import pytest
import torch

from zh_steve.checkpoint import compare_keys, load_manifest, manifest_shapes
from zh_steve.policy import PolicyConfig, Steve1Policy
from zh_steve.policy.loading import GOAL_KEYS


@pytest.fixture(scope="module")
def full_policy() -> Steve1Policy:
    with torch.device("meta"):
        return Steve1Policy(PolicyConfig.full_size())


def _shapes(policy: Steve1Policy) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in policy.state_dict().items()}


def test_full_size_config_is_the_2x_model():
    kwargs = load_manifest("vpt_2x_model_kwargs")["policy_kwargs"]
    policy_kwargs, head = PolicyConfig.full_size().to_kwargs()
    assert {k: policy_kwargs[k] for k in kwargs} == kwargs
    assert policy_kwargs["mineclip_embed_dim"] == 512
    assert head == {"temperature": 2.0}


def test_steve1_keys_and_shapes(full_policy):
    expected = manifest_shapes("steve1_policy")
    got = _shapes(full_policy)
    report = compare_keys(expected, got)
    assert report.ok, report.describe()
    assert len(got) == load_manifest("steve1_policy")["meta"]["n_keys"]
    assert list(got) == list(expected), "state-dict key order differs from the official order"


def test_vpt_keys_are_steve1_less_goal_layer(full_policy):
    expected = manifest_shapes("vpt_2x_policy")
    got = {k: v for k, v in _shapes(full_policy).items() if k not in GOAL_KEYS}
    report = compare_keys(expected, got)
    assert report.ok, report.describe()
    assert len(got) == load_manifest("vpt_2x_policy")["meta"]["n_keys"]


def test_parameter_count(full_policy):
    meta = load_manifest("steve1_policy")["meta"]
    assert full_policy.num_parameters() == meta["n_parameters"] == 249_545_918
    trainable = sum(p.numel() for p in full_policy.parameters() if p.requires_grad)
    assert trainable == meta["n_trainable_parameters"]
    vpt = full_policy.num_parameters() - sum(full_policy.state_dict()[k].numel() for k in GOAL_KEYS)
    assert vpt == load_manifest("vpt_2x_policy")["meta"]["n_parameters"]


def test_full_size_derived_sizes():
    c = PolicyConfig.full_size()
    assert c.channels == (128, 256, 256)
    assert c.maxlen == c.attention_memory_size - c.timesteps
    assert c.cnn_flat_dim == 256 * 16 * 16
    assert c.head_dim * c.attention_heads == c.hidsize
