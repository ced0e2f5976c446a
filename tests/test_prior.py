"""STEVE-1 prior (TranslatorVAE): golden outputs of the official code, manifest shapes, loading and input checks."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from zh_steve.checkpoint import load_manifest, manifest_shapes, read_safetensors
from zh_steve.errors import CheckpointError, InvalidGoalError, UnsafeCheckpointError, WeightsNotFoundError
from zh_steve.prior import PriorConfig, Steve1Prior, config_from_state_dict
from zh_steve.weights import WeightsSpec, resolve_weights
from zh_steve.weights.official import read_state_dict
from payloads import RunsCode


def load_prior_state_dict(path):
    return read_state_dict(path, "prior")


def load_prior(path, dtype=torch.float32):
    return Steve1Prior.from_state_dict(load_prior_state_dict(path)).to(dtype)

PRIOR_FILES = ["prior_small.pt", "prior_small.safetensors"]
OUTPUTS = ["decode_fixed_z", "forward_deterministic", "forward_stochastic_seed2024", "encode_out"]


@pytest.fixture(scope="module")
def meta(golden_dir):
    return json.loads((golden_dir / "prior_small.json").read_text())


@pytest.fixture(scope="module")
def io(golden_dir):
    return read_safetensors(golden_dir / "prior_small.io.safetensors")


@pytest.fixture(scope="module")
def tol(meta):
    return float(meta.get("tolerance", 1e-5))  # golden README §4: 1e-5 (fp32 vs fp64 was 1.7e-7)


# ---------------------------------------------------------------------------------------------- golden
@pytest.mark.parametrize("fname", PRIOR_FILES)
def test_config_and_key_order_from_checkpoint(golden_dir, meta, fname):
    sd = load_prior_state_dict(golden_dir / fname)
    assert config_from_state_dict(sd) == PriorConfig(**meta["kwargs"])
    model = Steve1Prior(PriorConfig(**meta["kwargs"]))
    assert list(model.state_dict()) == list(meta["keys"])
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == meta["keys"]


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("fname", PRIOR_FILES)
def test_golden_outputs(golden_dir, io, tol, fname, output):
    model = load_prior(golden_dir / fname)
    text = io["text_embed"]
    with torch.no_grad():
        if output == "decode_fixed_z":
            got = model.decode(io["z"], text)
        elif output == "forward_deterministic":
            got = model(text, deterministic=True)
        elif output == "forward_stochastic_seed2024":
            torch.manual_seed(2024)
            got = model.sample(text)
        else:
            got = model.encode(io["visual_embed"], text)
    ref = io[output]
    assert got.shape == ref.shape and got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=0, atol=tol)


def test_sampling_draws_official_noise(golden_dir, io, tol):
    model = load_prior(golden_dir / "prior_small.safetensors")
    text = io["text_embed"]
    n, latent = io["z_sampled_seed2024"].shape
    torch.manual_seed(2024)
    torch.testing.assert_close(torch.randn(n, model.config.latent_dim), io["z_sampled_seed2024"], rtol=0, atol=0)
    assert (n, latent) == (text.shape[0], model.config.latent_dim)
    with torch.no_grad():
        torch.testing.assert_close(model.decode(io["z_sampled_seed2024"], text), io["forward_stochastic_seed2024"],
                                   rtol=0, atol=tol)
        torch.manual_seed(2024)
        via_forward = model(text)
        via_generator = model.sample(text, generator=torch.Generator().manual_seed(2024))
        other_seed = model.sample(text, generator=torch.Generator().manual_seed(7))
        deterministic = model.sample(text, deterministic=True)
    torch.testing.assert_close(via_forward, io["forward_stochastic_seed2024"], rtol=0, atol=tol)
    torch.testing.assert_close(via_generator, io["forward_stochastic_seed2024"], rtol=0, atol=tol)
    assert (other_seed - via_generator).abs().max() > 1e-3
    torch.testing.assert_close(deterministic, model.decode(torch.zeros(n, latent), text))


# ------------------------------------------------------------------------------------ full-size manifest
def test_full_size_matches_official_manifest():
    manifest = load_manifest("steve1_prior")
    with torch.device("meta"):
        model = Steve1Prior(PriorConfig())
    assert PriorConfig() == PriorConfig(512, 512, 512)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == manifest_shapes("steve1_prior")
    assert list(shapes) == list(manifest["keys"])
    assert len(shapes) == manifest["meta"]["n_keys"] == 20
    assert sum(p.numel() for p in model.parameters()) == manifest["meta"]["n_parameters"] == 2_366_976
    assert sum(p.numel() for p in model.decoder.parameters()) == manifest["meta"]["n_parameters_decoder_only"]


def _random_full_state_dict() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=g) * 0.05 for k, s in manifest_shapes("steve1_prior").items()}


def test_full_size_loads_from_official_and_hub_layouts(tmp_path):
    sd = _random_full_state_dict()
    torch.save(sd, tmp_path / "steve1_prior.pt")
    hub = {f"prior.{k}": v for k, v in sd.items()}
    hub["policy.net.mineclip_embed_linear.weight"] = torch.zeros(4, 4)  # other keys of the hub model file
    save_file(hub, str(tmp_path / "model.safetensors"))
    torch.save({f"_orig_mod.{k}": v for k, v in sd.items()}, tmp_path / "compiled.pt")

    text = torch.randn(3, 512, generator=torch.Generator().manual_seed(1))
    outs = []
    for name in ["steve1_prior.pt", "model.safetensors", "compiled.pt"]:  # checked against the manifest on the way
        resolved = resolve_weights(WeightsSpec(prior=tmp_path / name, need=("prior",), allow_download=False))
        model = Steve1Prior.from_state_dict(resolved.prior_state_dict())
        assert model.config == PriorConfig() and not model.training
        outs.append(model.sample(text, deterministic=True))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    torch.testing.assert_close(outs[0], outs[2], rtol=0, atol=0)
    model64 = load_prior(tmp_path / "steve1_prior.pt", dtype=torch.float64)
    out64 = model64.sample(text, deterministic=True)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), outs[0], rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda sd: sd.pop("decoder.4.bias"), "decoder.4.bias"),
        (lambda sd: sd.pop("encoder.3.weight"), "encoder.3.weight"),
        (lambda sd: sd.__setitem__("encoder.6.weight", torch.zeros(sd["encoder.6.weight"].shape[0] + 1,  # one row
                                                                   *sd["encoder.6.weight"].shape[1:])),  # too many
         "encoder.6.weight"),
        (lambda sd: sd.__setitem__("decoder.9.weight", torch.zeros(3)), "decoder.9.weight"),
    ],
    ids=["missing-decoder", "missing-encoder", "misshaped", "unexpected"],
)
def test_bad_state_dict_names_the_key(golden_dir, edit, needle):
    sd = load_prior_state_dict(golden_dir / "prior_small.safetensors")
    edit(sd)
    with pytest.raises(CheckpointError, match=needle.replace(".", r"\.")):
        Steve1Prior.from_state_dict(sd)


def test_not_a_prior(tmp_path):
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="decoder.0.weight"):
        load_prior(tmp_path / "other.pt")
    torch.save({"state_dict": {"a": torch.zeros(1)}, "epoch": 3}, tmp_path / "wrapped.pt")
    with pytest.raises(CheckpointError, match="flat state dict"):
        load_prior(tmp_path / "wrapped.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        load_prior(tmp_path / "junk.safetensors")
    with pytest.raises(WeightsNotFoundError, match="1OdX5wiybK8jALVfP5_dEo0CWm9BQbDES"):
        load_prior(tmp_path / "missing.pt")


def test_malicious_pickle_is_refused(tmp_path):
    control = tmp_path / "control_marker"
    pickle.loads(pickle.dumps(RunsCode(via="open", marker=control))).close()  # positive control: the payload really runs
    assert control.exists()

    marker = tmp_path / "marker"
    sd = {"encoder.0.weight": torch.zeros(2, 2), "payload": RunsCode(via="open", marker=marker)}
    torch.save(sd, tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError):
        load_prior(tmp_path / "evil.pt")
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------ inputs
@pytest.mark.parametrize(
    "make",
    [
        lambda d: torch.full((2, d), float("nan")),
        lambda d: torch.cat([torch.zeros(1, d), torch.full((1, d), float("inf"))]),
        lambda d: torch.zeros(2, d + 1),
        lambda d: torch.zeros(d),
        lambda d: torch.zeros(2, d, dtype=torch.long),
        lambda d: [[0.0] * d],
    ],
    ids=["nan", "inf", "wrong-dim", "1d", "int", "list"],
)
def test_bad_text_embedding(golden_dir, make):
    model = load_prior(golden_dir / "prior_small.pt")
    with pytest.raises(InvalidGoalError):
        model.sample(make(model.config.input_dim))


def test_bad_latent_and_batch_mismatch(golden_dir):
    model = load_prior(golden_dir / "prior_small.pt")
    d, latent = model.config.input_dim, model.config.latent_dim
    with pytest.raises(InvalidGoalError):
        model.decode(torch.zeros(2, latent + 1), torch.zeros(2, d))
    with pytest.raises(InvalidGoalError):
        model.decode(torch.zeros(3, latent), torch.zeros(2, d))
    with pytest.raises(InvalidGoalError):
        model.encode(torch.zeros(2, d), torch.zeros(2, d - 1))
