"""``python -m zh_steve.check_weights``: complete tiny dirs pass, broken ones are reported by name."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from zh_steve import check_weights
from zh_steve.check_weights import check_weights_dir
from zh_steve.checkpoint import file_md5
from tiny_weights import tiny_weights, write_hub_dir, write_official_dir
from payloads import RunsCode


@pytest.fixture(scope="module")
def tw():
    return tiny_weights(seed=7)


def run(tw, d, **kw):
    return check_weights_dir(d, expected=tw.expectations(), expected_behaviour=tw.behaviour, **kw)


def test_complete_official_dir_is_usable(tw, tmp_path):
    write_official_dir(tmp_path, tw)
    r = run(tw, tmp_path)
    assert r.usable, r.render()
    assert r.components == {"policy": "steve1.weights", "prior": "steve1_prior.pt", "mineclip_text": "attn.pth",
                            "policy_kwargs": "2x.model"}
    assert "RESULT: usable" in r.render()


def test_complete_hub_dir_is_usable_and_official_files_not_needed(tw, tmp_path):
    write_hub_dir(tmp_path, tw)
    r = run(tw, tmp_path)
    assert r.usable and r.components["policy_kwargs"] == "config.json (MineStudio)"
    assert "[ABSENT ] steve1.weights" in r.render()


def test_missing_file_reported_with_where_published(tw, tmp_path):
    write_official_dir(tmp_path, tw)
    (tmp_path / "steve1" / "steve1_prior.pt").unlink()
    r = run(tw, tmp_path)
    assert not r.usable and r.components["prior"] is None
    text = r.render()
    assert "[MISSING] steve1_prior.pt" in text and "1OdX5wiybK8jALVfP5_dEo0CWm9BQbDES" in text


def test_misshaped_and_unexpected_keys_named(tw, tmp_path):
    paths = write_official_dir(tmp_path, tw)
    sd = dict(tw.policy)
    sd["net.lastlayer.layer.weight"] = torch.zeros(3, 3)
    sd["net.extra.bias"] = torch.zeros(2)
    del sd["value_head.normalizer.debiasing_term"]
    torch.save(sd, paths["steve1.weights"])
    r = run(tw, tmp_path)
    f = next(f for f in r.files if f.name == "steve1.weights")
    assert f.status == "bad" and not r.usable
    msg = " ".join(f.problems)
    assert "net.lastlayer.layer.weight" in msg and "net.extra.bias" in msg and "debiasing_term" in msg


def test_malicious_2x_model_refused_without_running(tw, tmp_path):
    write_official_dir(tmp_path, tw)
    marker = tmp_path / "pwned"
    (tmp_path / "vpt" / "2x.model").write_bytes(pickle.dumps(RunsCode(marker)))
    r = run(tw, tmp_path)
    assert not marker.exists()
    f = next(f for f in r.files if f.name == "2x.model")
    assert f.status == "bad" and "refused" in " ".join(f.problems)
    assert not r.usable and r.components["policy_kwargs"] is None


@pytest.mark.parametrize("name", ["steve1.weights", "attn.pth"])
def test_malicious_torch_file_refused_without_running(tw, tmp_path, name):
    paths = write_official_dir(tmp_path, tw)
    marker = tmp_path / "pwned"
    payload = {"state_dict": {"model.x": RunsCode(marker)}} if name == "attn.pth" else {"net.x": RunsCode(marker)}
    torch.save(payload, paths[name])
    r = run(tw, tmp_path)
    assert not marker.exists()
    f = next(f for f in r.files if f.name == name)
    assert f.status == "bad" and "refused" in " ".join(f.problems).lower()


def test_attn_md5_mismatch_reported(tw, tmp_path):
    paths = write_official_dir(tmp_path, tw)
    exp = tw.expectations()
    exp.attn_md5 = "0" * 32
    r = check_weights_dir(tmp_path, expected=exp, expected_behaviour=tw.behaviour)
    f = next(f for f in r.files if f.name == "attn.pth")
    assert f.status == "bad" and any("md5" in p and file_md5(paths["attn.pth"]) in p for p in f.problems)
    exp.attn_md5 = file_md5(paths["attn.pth"])
    assert check_weights_dir(tmp_path, expected=exp, expected_behaviour=tw.behaviour).usable


def test_attn_with_lightning_style_metadata_still_loads(tw, tmp_path):
    paths = write_official_dir(tmp_path, tw)

    class HParams(dict):
        pass

    HParams.__module__ = "pytorch_lightning.utilities.parsing"
    HParams.__qualname__ = HParams.__name__ = "AttributeDict"
    import sys
    import types

    names = ["pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing"]
    for n in names:  # a stand-in module only while saving; loading must not need it
        sys.modules[n] = types.ModuleType(n)
    sys.modules[names[-1]].AttributeDict = HParams
    try:
        torch.save({"state_dict": tw.attn_state_dict(), "hyper_parameters": HParams(lr=1e-4)}, paths["attn.pth"])
    finally:
        for n in names:
            del sys.modules[n]
    r = run(tw, tmp_path)
    assert next(f for f in r.files if f.name == "attn.pth").status == "ok", r.render()


def test_hub_dir_with_bad_config_cannot_provide_policy(tw, tmp_path):
    write_hub_dir(tmp_path, tw)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["policy_kwargs"]["attention_mask_style"] = "none"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    r = run(tw, tmp_path)
    assert r.components["policy"] is None and r.components["prior"] and not r.usable
    assert r.usable is False and "attention_mask_style" in r.render()
    assert check_weights_dir(tmp_path, "text", expected=tw.expectations(), expected_behaviour=tw.behaviour).usable


def test_cli_exit_codes_and_json(tmp_path, capsys):
    assert check_weights.main([str(tmp_path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["usable"] is False and {f["name"] for f in data["files"]} >= {"2x.model", "attn.pth"}
    assert check_weights.main([str(tmp_path / "nope")]) == 2
