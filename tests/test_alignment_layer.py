"""AlignmentLayer: shapes, raw-scale output, strict HF-style save/load for every kind."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from zh_steve.alignment_layer import AlignmentConfig, AlignmentLayer, InvalidEmbeddingError, MLPArchitecture
from zh_steve.errors import CheckpointError, ConfigError, WeightsNotFoundError


def _random_layer(kind: str, d_in: int = 16, d_out: int = 12, seed: int = 0) -> AlignmentLayer:
    g = torch.Generator().manual_seed(seed)
    layer = AlignmentLayer(AlignmentConfig(kind=kind, in_dim=d_in, out_dim=d_out,
                                           mlp=MLPArchitecture(hidden_dims=[20, 24]), source_encoder="src:test", target_encoder="tgt:test"))
    with torch.no_grad():
        for p in (*layer.parameters(), *layer.buffers()):
            p.copy_(torch.randn(p.shape, generator=g))
        layer.x_std.abs_().add_(0.5)
        layer.y_std.abs_().add_(0.5)
        layer.y_mean.add_(20.0)  # MineCLIP-like offset
        layer.out_scale.fill_(1.5)
    return layer.eval()


@pytest.mark.parametrize("kind", ["mean", "ridge", "mlp"])
def test_save_load_round_trip(tmp_path, kind):
    layer = _random_layer(kind)
    x = torch.randn(5, 16)
    layer.save_pretrained(tmp_path)
    assert (tmp_path / "alignment.safetensors").is_file() and (tmp_path / "config.json").is_file()
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["kind"] == kind and cfg["source_encoder"] == "src:test" and cfg["target_encoder"] == "tgt:test"
    loaded = AlignmentLayer.from_pretrained(tmp_path)
    assert torch.equal(loaded(x), layer(x))
    assert loaded.config == layer.config


def test_default_shape_is_512_to_512():
    layer = AlignmentLayer(AlignmentConfig())
    assert layer(torch.randn(3, 512)).shape == (3, 512)
    assert layer(torch.randn(512)).shape == (512,)
    sizes = [(m.in_features, m.out_features) for m in layer.mlp.modules() if isinstance(m, torch.nn.Linear)]
    assert sizes == [(512, 512), (512, 512)]


def test_mlp_starts_equal_to_ridge_and_output_keeps_raw_scale():
    ridge = _random_layer("ridge")
    mlp = AlignmentLayer(AlignmentConfig(kind="mlp", in_dim=16, out_dim=12, mlp=MLPArchitecture(hidden_dims=[20, 24])))
    mlp.load_state_dict(ridge.state_dict(), strict=False)
    x = torch.randn(7, 16)
    assert torch.allclose(mlp(x), ridge(x))
    assert (ridge(x).norm(dim=-1) > 10).all()  # not L2-normalised


def test_mean_kind_outputs_the_mean():
    layer = _random_layer("mean")
    out = layer(torch.randn(4, 16))
    assert torch.equal(out, layer.y_mean.expand(4, -1))


def test_missing_files_and_keys(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="directory not found"):
        AlignmentLayer.from_pretrained(tmp_path / "nope")
    layer = _random_layer("mlp")
    layer.save_pretrained(tmp_path)
    (tmp_path / "alignment.safetensors").rename(tmp_path / "moved.safetensors")
    with pytest.raises(WeightsNotFoundError, match="alignment.safetensors"):
        AlignmentLayer.from_pretrained(tmp_path)
    state = load_file(str(tmp_path / "moved.safetensors"))
    del state["mlp.out.weight"]
    state["extra"] = torch.zeros(1)
    save_file(state, str(tmp_path / "alignment.safetensors"))
    with pytest.raises(CheckpointError, match="mlp.out.weight") as e:
        AlignmentLayer.from_pretrained(tmp_path)
    assert "extra" in str(e.value)


def test_kind_mismatch_between_config_and_weights(tmp_path):
    _random_layer("ridge").save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["kind"] = "mlp"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="missing"):
        AlignmentLayer.from_pretrained(tmp_path)


def test_config_errors(tmp_path):
    _random_layer("ridge").save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["surprise"] = 1
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="surprise"):
        AlignmentLayer.from_pretrained(tmp_path)
    with pytest.raises(ConfigError):
        AlignmentConfig(kind="cubic")


def test_bad_inputs():
    layer = _random_layer("ridge")
    with pytest.raises(InvalidEmbeddingError, match="shape"):
        layer(torch.randn(2, 15))
    with pytest.raises(InvalidEmbeddingError, match="NaN"):
        layer(torch.full((1, 16), float("nan")))
    with pytest.raises(InvalidEmbeddingError):
        layer(torch.zeros(2, 16, dtype=torch.long))


def test_check_encoders():
    layer = _random_layer("ridge")
    layer.check_encoders(source="src:test", target="tgt:test")
    with pytest.raises(ConfigError, match="retrain"):
        layer.check_encoders(source="chinese-clip:other")


def test_format_1_layers_still_load(tmp_path):
    """Layers saved before format 2 (flat MLP shape, no norm calibration) load unchanged."""
    from safetensors.torch import load_file, save_file

    layer = _random_layer("mlp")
    layer.out_scale.fill_(1.0)  # what a format-1 layer computed
    layer.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg.update(cfg.pop("mlp"), format_version=1)
    cfg.pop("prior")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    state = load_file(str(tmp_path / "alignment.safetensors"))
    state.pop("out_scale")
    save_file(state, str(tmp_path / "alignment.safetensors"))
    back = AlignmentLayer.from_pretrained(tmp_path)
    assert back.config.mlp.hidden_dims == [20, 24] and float(back.out_scale) == 1.0
    x = torch.randn(2, 16)
    assert torch.allclose(back(x), layer(x))


def test_out_scale_stretches_around_the_centre():
    layer = _random_layer("ridge")
    layer.out_scale.fill_(1.0)
    x = torch.randn(4, 16)
    y1 = layer(x)
    layer.out_scale.fill_(2.0)
    assert torch.allclose(layer(x) - layer.y_mean, 2 * (y1 - layer.y_mean), atol=1e-4)
