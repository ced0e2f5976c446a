"""MineStudio single-file layout: prefix mapping, strict checks, dtype casting, config.json behaviour checks."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from zh_steve.errors import CheckpointError
from zh_steve.weights.expected import Expectations
from zh_steve.weights.minestudio import OFFICIAL_BEHAVIOUR, HubCheckpoint, check_hub_config
from publish import official_hub_config
from tiny_weights import tiny_weights, write_hub_dir


@pytest.fixture(scope="module")
def tw():
    return tiny_weights(seed=3)


@pytest.fixture(scope="module")
def hub_dir(tw, tmp_path_factory):
    d = tmp_path_factory.mktemp("hub")
    write_hub_dir(d, tw)
    return d


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_prefix_mapping_gives_official_key_spaces(tw, hub_dir):
    hc = HubCheckpoint(hub_dir / "model.safetensors", tw.expectations())
    assert _equal(hc.state_dict("policy"), tw.policy)
    assert _equal(hc.state_dict("prior"), tw.prior)
    assert _equal(hc.state_dict("mineclip_text"), tw.mineclip_text)
    assert any(k.startswith("mineclip.clip_model.vision_model.") for k in hc.shapes)  # present, yet ignored


def _save(tmp_path, sd):
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


def test_strict_check_names_missing_extra_and_misshaped(tw, tmp_path):
    sd = tw.hub_state_dict()
    sd.pop("prior.decoder.6.bias")
    sd["net.surprise.weight"] = torch.zeros(3)
    sd["pi_head.camera.linear_layer.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointError) as e:
        HubCheckpoint(_save(tmp_path, sd), tw.expectations())
    msg = str(e.value)
    assert "prior.decoder.6.bias" in msg and "net.surprise.weight" in msg
    assert "pi_head.camera.linear_layer.bias" in msg and "[7]" in msg


def test_default_expectations_are_the_490_key_manifest(tw, hub_dir):
    with pytest.raises(CheckpointError, match="490 tensors expected"):
        HubCheckpoint(hub_dir / "model.safetensors")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_any_float_dtype_is_cast_to_fp32(tw, tmp_path, dtype):
    sd = {k: v.to(dtype) for k, v in tw.hub_state_dict().items()}
    hc = HubCheckpoint(_save(tmp_path, sd), tw.expectations())
    got = hc.state_dict("prior")
    assert all(v.dtype == torch.float32 for v in got.values())
    assert torch.equal(got["decoder.0.weight"], tw.prior["decoder.0.weight"].to(dtype).float())


def test_integer_tensor_refused(tw, tmp_path):
    sd = tw.hub_state_dict()
    sd["prior.decoder.0.bias"] = torch.zeros(sd["prior.decoder.0.bias"].shape, dtype=torch.int32)
    with pytest.raises(CheckpointError, match="non-float"):
        HubCheckpoint(_save(tmp_path, sd), tw.expectations())


def test_official_config_passes_and_returns_policy_kwargs():
    cfg = official_hub_config()
    assert check_hub_config(cfg)["hidsize"] == cfg["policy_kwargs"]["hidsize"]


@pytest.mark.parametrize("key,value", [
    ("attention_mask_style", "causal"), ("timesteps", 64), ("attention_memory_size", 128),
    ("recurrence_is_residual", False), ("pointwise_use_activation", True),
    ("init_norm_kwargs.group_norm_groups", 2), ("impala_kwargs.post_pool_groups", 2),
])
def test_behaviour_only_setting_difference_fails_loudly(key, value):
    cfg = official_hub_config()
    target = cfg["policy_kwargs"]
    *path, last = key.split(".")
    for p in path:
        target = target[p]
    target[last] = value
    with pytest.raises(CheckpointError) as e:
        check_hub_config(cfg)
    assert key in str(e.value) and repr(OFFICIAL_BEHAVIOUR[key]) in str(e.value)


def test_config_bool_is_not_accepted_for_int_and_missing_keys_named():
    cfg = official_hub_config()
    cfg["policy_kwargs"]["init_norm_kwargs"]["group_norm_groups"] = True
    del cfg["policy_kwargs"]["timesteps"]
    with pytest.raises(CheckpointError) as e:
        check_hub_config(cfg)
    assert "group_norm_groups" in str(e.value) and "timesteps is missing" in str(e.value)
    with pytest.raises(CheckpointError, match="policy_kwargs"):
        check_hub_config({"prior_kwargs": {}})


def test_config_json_written_like_minestudio(hub_dir, tw):
    cfg = json.loads((hub_dir / "config.json").read_text())
    assert set(cfg) == {"action_space", "freeze_mineclip", "mineclip_kwargs", "policy_kwargs", "prior_kwargs"}
    check_hub_config(cfg, tw.behaviour)
    with pytest.raises(CheckpointError, match="timesteps"):
        check_hub_config(cfg)  # tiny timesteps differ from the official 128


def test_expectations_from_hub_shapes_splits_components(tw):
    exp = tw.expectations()
    assert exp.policy == {k: tuple(v.shape) for k, v in tw.policy.items()}
    assert exp.prior == {k: tuple(v.shape) for k, v in tw.prior.items()}
    assert isinstance(Expectations().attn_md5, str)


def test_only_requested_tensors_are_read(tw, hub_dir, monkeypatch):
    import safetensors

    real = safetensors.safe_open
    read = []

    class Recording:
        def __init__(self, *a, **k):
            self.inner = real(*a, **k)

        def __enter__(self):
            self.inner.__enter__()
            return self

        def __exit__(self, *a):
            return self.inner.__exit__(*a)

        def get_tensor(self, key):
            read.append(key)
            return self.inner.get_tensor(key)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(safetensors, "safe_open", Recording)
    hc = HubCheckpoint(hub_dir / "model.safetensors", tw.expectations())
    assert read == []  # the strict check reads the header only
    hc.state_dict("prior")
    assert read and all(k.startswith("prior.") for k in read) and len(read) == len(tw.prior)
