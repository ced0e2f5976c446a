"""PolicyConfig validation and reading the official kwargs (2x.model pickle, YAML, JSON)."""

from __future__ import annotations

import json
import pickle

import pytest
import yaml

from zh_steve.checkpoint import load_manifest
from zh_steve.errors import CheckpointError, ConfigError, UnsafeCheckpointError
from zh_steve.policy import PolicyConfig
from zh_steve.published import OFFICIAL_TEMPERATURE
from zh_steve.weights.official import read_policy_kwargs
from payloads import RunsCode


def _official_kwargs() -> dict:
    return dict(load_manifest("vpt_2x_model_kwargs")["policy_kwargs"])


def test_official_kwargs_accepted_including_unused_keys():
    kwargs = _official_kwargs()
    assert "diff_mlp_embedding" in kwargs and "only_img_input" in kwargs
    config = PolicyConfig.from_kwargs(kwargs, {"temperature": 2})
    assert config.temperature == 2.0 and isinstance(config.temperature, float)
    assert config.mineclip_embed_dim == 512
    back, head = config.to_kwargs()
    assert PolicyConfig.from_kwargs(back, head) == config


def test_unknown_key_is_named():
    kwargs = _official_kwargs() | {"hidden_size": 3}
    with pytest.raises(ConfigError, match="hidden_size"):
        PolicyConfig.from_kwargs(kwargs)
    with pytest.raises(ConfigError, match="top_p"):
        PolicyConfig.from_kwargs(_official_kwargs(), {"temperature": 1.0, "top_p": 0.9})


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"recurrence_type": "lstm"}, "recurrence_type"),
        ({"attention_mask_style": "none"}, "attention_mask_style"),
        ({"init_norm_kwargs": {"batch_norm": True, "group_norm_groups": 1}}, "batch_norm"),
        ({"diff_mlp_embedding": True}, "diff_mlp_embedding"),
        ({"use_pre_lstm_ln": True}, "use_pre_lstm_ln"),
        ({"attention_memory_size": 128}, "attention_memory_size"),
        ({"hidsize": 2047}, "divisible"),
        ({"impala_kwargs": {"post_pool_groups": 1, "foo": 2}}, "foo"),
        ({"img_statistics": "stats.npz"}, "img_statistics"),
        ({"impala_chans": ["a", 2, 3]}, "malformed"),
        ({"img_shape": [128, 128, 4]}, "img_shape"),
    ],
)
def test_unsupported_values_raise(change, fragment):
    with pytest.raises(ConfigError, match=fragment):
        PolicyConfig.from_kwargs(_official_kwargs() | change)


def test_bad_temperature():
    with pytest.raises(ConfigError, match="temperature"):
        PolicyConfig.from_kwargs(_official_kwargs(), {"temperature": 0})
    with pytest.raises(ConfigError, match="temperature"):
        PolicyConfig.from_kwargs(_official_kwargs(), {"temperature": "hot"})


def _model_pickle(policy_kwargs: dict, temperature) -> dict:
    return {"model": {"args": {"net": {"args": policy_kwargs}, "pi_head_opts": {"temperature": temperature},
                               "action_space": None}}, "extra": [1, 2]}


def test_2x_model_pickle_read(tmp_path):
    path = tmp_path / "2x.model"
    path.write_bytes(pickle.dumps(_model_pickle(_official_kwargs(), 2)))
    got = read_policy_kwargs(path)
    assert got.policy_kwargs == _official_kwargs()
    assert got.temperature == 2.0 and isinstance(got.temperature, float)
    assert PolicyConfig.from_kwargs(got.policy_kwargs, {"temperature": got.temperature}) == PolicyConfig.full_size()


def test_2x_model_without_pi_head_opts_leaves_the_temperature_open(tmp_path):
    """The one reader: no pi_head_opts → temperature None (the resolver then uses the official default)."""
    path = tmp_path / "2x.model"
    path.write_bytes(pickle.dumps({"model": {"args": {"net": {"args": _official_kwargs()}}}}))
    assert read_policy_kwargs(path).temperature is None


def test_2x_model_wrong_layout(tmp_path):
    path = tmp_path / "2x.model"
    path.write_bytes(pickle.dumps({"model": {"args": {}}}))
    with pytest.raises(CheckpointError, match="net"):
        read_policy_kwargs(path)


def test_malicious_2x_model_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "2x.model"
    path.write_bytes(pickle.dumps(_model_pickle(_official_kwargs() | {"x": RunsCode(via="open", marker=marker)}, 2.0)))
    with pytest.raises(UnsafeCheckpointError):
        read_policy_kwargs(path)
    assert not marker.exists()


def test_yaml_and_json_forms(tmp_path):
    wrapped = {"policy_kwargs": _official_kwargs(), "pi_head_kwargs": {"temperature": 1}}
    (tmp_path / "k.yaml").write_text(yaml.safe_dump(wrapped))
    (tmp_path / "k.json").write_text(json.dumps(_official_kwargs()))
    got = read_policy_kwargs(tmp_path / "k.yaml")
    assert got.policy_kwargs == _official_kwargs() and got.temperature == 1.0
    got = read_policy_kwargs(tmp_path / "k.json")
    assert got.policy_kwargs == _official_kwargs() and got.temperature is None
    assert PolicyConfig.from_kwargs(got.policy_kwargs).temperature == OFFICIAL_TEMPERATURE == 2.0
    (tmp_path / "bad.json").write_text(json.dumps(wrapped | {"pi_head": {}}))
    with pytest.raises(ConfigError, match="pi_head"):
        read_policy_kwargs(tmp_path / "bad.json")
    (tmp_path / "bad_head.yaml").write_text(yaml.safe_dump({"policy_kwargs": _official_kwargs(),
                                                             "pi_head_kwargs": {"temp": 1}}))
    with pytest.raises(ConfigError, match="temp"):
        read_policy_kwargs(tmp_path / "bad_head.yaml")
