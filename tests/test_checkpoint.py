"""The shared checkpoint helpers: safe loading, restricted unpickling, strict key reports."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from zh_steve.checkpoint import (
    compare_keys,
    load_state_dict_strict,
    restricted_pickle_load,
    safe_torch_load,
    strip_prefixes,
)
from zh_steve.errors import CheckpointError, UnsafeCheckpointError, WeightsNotFoundError
from payloads import RunsCode


def test_junk_and_truncated_files_are_checkpoint_errors(tmp_path):
    junk = tmp_path / "junk.weights"
    junk.write_bytes(b"junk\n" * 10)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        safe_torch_load(junk)
    good = tmp_path / "good.pt"
    torch.save({"w": torch.randn(64, 64)}, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        safe_torch_load(cut)
    assert torch.equal(safe_torch_load(good)["w"], torch.load(good, weights_only=True)["w"])


def test_missing_file_names_the_hint(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="published at X"):
        safe_torch_load(tmp_path / "nope.pt", hint="published at X")


def test_code_running_pickles_are_refused_by_both_loaders(tmp_path):
    marker = tmp_path / "PWNED"
    evil_pt = tmp_path / "evil.pt"
    torch.save({"w": RunsCode(marker)}, evil_pt)
    with pytest.raises(UnsafeCheckpointError):
        safe_torch_load(evil_pt)
    evil_pkl = tmp_path / "evil.model"
    evil_pkl.write_bytes(pickle.dumps({"model": RunsCode(marker)}))
    with pytest.raises(UnsafeCheckpointError, match="os|posix|system"):
        restricted_pickle_load(evil_pkl)
    assert not marker.exists()
    plain = tmp_path / "plain.model"
    plain.write_bytes(pickle.dumps({"model": {"args": {"net": {"args": {"hidsize": 2048, "img_shape": (128, 128, 3)}}}}}))
    assert restricted_pickle_load(plain)["model"]["args"]["net"]["args"]["hidsize"] == 2048


def test_strict_load_names_every_kind_of_mismatch():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd.pop("1.bias")
    sd["0.weight"] = torch.zeros(4, 5)
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as e:
        load_state_dict_strict(model, sd, what="test file")
    msg = str(e.value)
    assert "missing 1 key(s): 1.bias" in msg and "unexpected 1 key(s): extra.weight" in msg
    assert "0.weight (expected [4, 3], got [4, 5])" in msg


def test_allowed_missing_keys_keep_their_values_and_are_reported():
    model = nn.Linear(3, 2)
    before = model.bias.detach().clone()
    report = load_state_dict_strict(model, {"weight": torch.ones(2, 3)}, what="t", allowed_missing=["bias"])
    assert report.missing == ["bias"] and torch.equal(model.bias, before) and torch.all(model.weight == 1)


def test_strip_prefixes_and_compare_keys():
    sd = {"module.policy.net.a": 1, "policy.net.b": 2, "module.net.c": 3, "net.d": 4}
    assert strip_prefixes(sd, ["module.policy.", "policy.", "module."]) == {"net.a": 1, "net.b": 2, "net.c": 3, "net.d": 4}
    rep = compare_keys({"a": (2,), "b": (3,)}, {"a": torch.zeros(2), "c": torch.zeros(1)})
    assert rep.missing == ["b"] and rep.unexpected == ["c"] and not rep.ok
