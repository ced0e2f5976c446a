"""Official-file readers: layout lookup, prefix stripping, 2x.model parsing, safe loading of metadata objects."""

from __future__ import annotations

import pickle
import sys
import types

import pytest
import torch

from zh_steve.errors import CheckpointError, UnsafeCheckpointError
from zh_steve.published import ATTN_MD5
from zh_steve.weights.official import OFFICIAL_FILES, find_official_file, load_torch_file, read_2x_model, read_state_dict


def test_table_covers_the_four_files():
    assert set(OFFICIAL_FILES) == {"2x.model", "attn.pth", "steve1.weights", "steve1_prior.pt"}
    assert OFFICIAL_FILES["attn.pth"].md5 == ATTN_MD5 == "b5ece9198337cfd117a3bfbd921e56da"
    assert all(f.published_at.startswith("https://") for f in OFFICIAL_FILES.values())


def test_layout_then_flat(tmp_path):
    assert find_official_file(tmp_path, "steve1.weights") is None
    (tmp_path / "steve1.weights").write_bytes(b"x")
    assert find_official_file(tmp_path, "steve1.weights") == tmp_path / "steve1.weights"
    (tmp_path / "steve1").mkdir()
    (tmp_path / "steve1" / "steve1.weights").write_bytes(b"x")
    assert find_official_file(tmp_path, "steve1.weights") == tmp_path / "steve1" / "steve1.weights"


def test_policy_file_must_be_a_tensor_dict(tmp_path):
    torch.save({"net.a": 3}, tmp_path / "w")
    with pytest.raises(CheckpointError, match="non-tensor"):
        read_state_dict(tmp_path / "w", "policy")
    torch.save([torch.ones(1)], tmp_path / "w")
    with pytest.raises(CheckpointError, match="mapping"):
        read_state_dict(tmp_path / "w", "policy")


def test_attn_text_keys_relative_to_text_model(tmp_path):
    sd = {"model.clip_model.text_model.ln_final.weight": torch.ones(3), "model.clip_model.logit_scale": torch.ones(()),
          "other.x": torch.ones(1)}
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "attn.pth")
    assert set(read_state_dict(tmp_path / "attn.pth", "mineclip_text")) == {"ln_final.weight"}


def test_2x_model_parsing(tmp_path):
    p = tmp_path / "2x.model"
    p.write_bytes(pickle.dumps({"model": {"args": {"net": {"args": {"hidsize": 8}},
                                                   "pi_head_opts": {"temperature": 2}}}}))
    got = read_2x_model(p)
    assert got.policy_kwargs == {"hidsize": 8} and got.temperature == 2.0 and isinstance(got.temperature, float)
    p.write_bytes(pickle.dumps({"model": {"args": {"net": {"args": {}}}}}))
    assert read_2x_model(p).temperature is None
    p.write_bytes(pickle.dumps({"model": {"args": {"net": {"args": {}}, "pi_head_opts": {"temperature": -1}}}}))
    with pytest.raises(CheckpointError, match="> 0"):
        read_2x_model(p)
    p.write_bytes(pickle.dumps({"weights": 1}))
    with pytest.raises(CheckpointError, match="not a VPT .model"):
        read_2x_model(p)


def _save_with_fake_module(obj_factory, path, modname):
    sys.modules[modname] = mod = types.ModuleType(modname)
    try:
        cls = obj_factory(modname)
        mod.Meta = cls
        torch.save({"state_dict": {"model.a": torch.ones(2)}, "meta": cls()}, path)
    finally:
        del sys.modules[modname]


def test_metadata_object_gets_inert_placeholder_only_when_allowed(tmp_path):
    def factory(modname):
        class Meta:
            def __init__(self):
                self.lr = 0.1
        Meta.__module__ = modname
        Meta.__qualname__ = "Meta"
        return Meta

    _save_with_fake_module(factory, tmp_path / "a.pth", "trainer_meta")
    with pytest.raises(UnsafeCheckpointError):
        load_torch_file(tmp_path / "a.pth")
    out = load_torch_file(tmp_path / "a.pth", allow_placeholders=True)
    assert torch.equal(out["state_dict"]["model.a"], torch.ones(2))
    assert type(out["meta"]).__module__ == "zh_steve.weights.official"  # a stand-in, not the original class


def test_code_running_globals_refused_even_with_placeholders(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("never",))

    torch.save({"state_dict": {}, "x": Evil()}, tmp_path / "e.pth")
    with pytest.raises(UnsafeCheckpointError, match="builtins.print"):
        load_torch_file(tmp_path / "e.pth", allow_placeholders=True)
