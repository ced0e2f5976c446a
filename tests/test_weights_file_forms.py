"""Every documented form of a MineCLIP text-tower file is accepted by every entry point that takes a path.

Fast tests: tiny shapes, checked against tiny expectations. Slow tests: full-size shapes checked against the real
manifest (stored in fp16 to halve the bytes written), through the trainer's encoder builder and its CLI.
"""

from __future__ import annotations

import pytest
import torch
import yaml
from safetensors.torch import save_file

from zh_steve.checkpoint import manifest_shapes
from zh_steve.published import ATTN_TEXT_PREFIX, HUB_TEXT_PREFIX
from tiny_weights import TINY_FILE_TEXT
from zh_steve.text.mineclip_text import MineClipTextConfig, MineClipTextModel
from zh_steve.weights import Expectations, WeightsSpec, resolve_weights
from zh_steve.weights.resolve import LAYOUT_OFFICIAL, LAYOUT_TEXT_BLOCK

FORMS = ["attn-keys.safetensors", "hub-keys.safetensors", "bare-keys.safetensors", "attn-full.safetensors",
         "attn.pth"]


def _random(shapes: dict) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randn(s, generator=g) * 0.02).half() for k, s in shapes.items()}


@pytest.fixture(scope="module")
def text_sd() -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        model = MineClipTextModel(MineClipTextConfig(**TINY_FILE_TEXT))
    return _random({k: v.shape for k, v in model.state_dict().items()})


@pytest.fixture(scope="module")
def expected(text_sd) -> Expectations:
    return Expectations(mineclip_text={k: tuple(v.shape) for k, v in text_sd.items()},
                        hub={HUB_TEXT_PREFIX + k: tuple(v.shape) for k, v in text_sd.items()})


@pytest.fixture(scope="module")
def full_sd() -> dict[str, torch.Tensor]:
    shapes = manifest_shapes("mineclip", ATTN_TEXT_PREFIX)
    return _random({k[len(ATTN_TEXT_PREFIX):]: s for k, s in shapes.items()})


def _write_forms(root, text_sd) -> dict[str, object]:
    attn = {ATTN_TEXT_PREFIX + k: v for k, v in text_sd.items()}
    other = {"model.clip_model.vision_model.pos_embed": torch.zeros(5, 16).half(),
             "model.reward_head.clip_model.text_model.ln_final.weight": torch.zeros(512).half()}
    save_file(attn, str(root / "attn-keys.safetensors"))                      # text tower only, attn.pth key form
    save_file({HUB_TEXT_PREFIX + k: v for k, v in text_sd.items()}, str(root / "hub-keys.safetensors"))
    save_file(dict(text_sd), str(root / "bare-keys.safetensors"))              # keys relative to the text model
    save_file({**attn, **other}, str(root / "attn-full.safetensors"))          # all of attn.pth, as safetensors
    torch.save({"state_dict": {**attn, **other}, "epoch": 3}, root / "attn.pth")
    return {name: root / name for name in FORMS}


@pytest.fixture(scope="module")
def files(tmp_path_factory, text_sd) -> dict[str, object]:
    return _write_forms(tmp_path_factory.mktemp("forms"), text_sd)


@pytest.fixture(scope="module")
def full_files(tmp_path_factory, full_sd) -> dict[str, object]:
    return _write_forms(tmp_path_factory.mktemp("full_forms"), full_sd)


@pytest.mark.parametrize("form", FORMS)
def test_resolver_reads_every_text_tower_form(files, text_sd, expected, form):
    resolved = resolve_weights(WeightsSpec(mineclip=files[form], need=("mineclip_text",), allow_download=False,
                                           expected=expected))
    want = LAYOUT_TEXT_BLOCK if form.startswith("hub-keys") else LAYOUT_OFFICIAL
    assert resolved.sources["mineclip_text"].layout == want
    got = resolved.mineclip_text_state_dict()
    assert set(got) == set(text_sd) and all(v.dtype == torch.float32 for v in got.values())
    assert all(torch.equal(got[k], v.float()) for k, v in text_sd.items())


@pytest.mark.slow
def test_trainer_target_encoder_takes_a_text_tower_safetensors_in_attn_key_form(full_files, full_sd):
    """What ``python -m alignment.train --mineclip text_tower.safetensors`` builds (it used to refuse this file as
    "not the MineStudio STEVE-1 file (490 tensors expected, 149 found)")."""
    from alignment.encoders import TargetEncoderConfig, build_target_encoder

    enc = build_target_encoder(TargetEncoderConfig(path=str(full_files["attn-keys.safetensors"]), weights_dir=None,
                                                   allow_download=False))
    assert torch.equal(enc.model.state_dict()["projection"], full_sd["projection"].float())
    assert enc.encode(["chop a tree"]).shape == (1, 512)


def test_a_wrong_tower_is_refused_with_the_keys_named(tmp_path, text_sd, expected):
    from zh_steve.errors import CheckpointError

    bad = dict(text_sd)
    del bad["ln_final.bias"]
    save_file({ATTN_TEXT_PREFIX + k: v for k, v in bad.items()}, str(tmp_path / "t.safetensors"))
    resolved = resolve_weights(WeightsSpec(mineclip=tmp_path / "t.safetensors", need=("mineclip_text",),
                                           allow_download=False, expected=expected))
    with pytest.raises(CheckpointError, match="ln_final.bias"):
        resolved.mineclip_text_state_dict()


@pytest.mark.slow
@pytest.mark.parametrize("form", ["attn-keys.safetensors", "hub-keys.safetensors", "bare-keys.safetensors"])
def test_alignment_train_cli_with_mineclip_text_tower_file(full_files, tmp_path, repo_root, form):
    """``python -m alignment.train --mineclip FILE`` end to end (tiny Chinese tower, full-size MineCLIP file)."""
    from alignment.train import main

    cfg = yaml.safe_load((repo_root / "configs" / "alignment_tiny.yaml").read_text())
    cfg["target_encoder"] = {"kind": "mineclip", "weights_dir": None, "allow_download": False}
    cfg["mlp"]["epochs"] = 1
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    rc = main(["--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "o"), "--cache-dir",
               str(tmp_path / "cache"), "--mineclip", str(full_files[form])])
    assert rc == 0 and (tmp_path / "o" / "config.json").is_file()
