"""MineCLIP text tower: golden outputs (.pth and .safetensors, read by zh_steve.weights), official key manifest,
the key forms of text-tower files, encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from zh_steve.checkpoint import compare_keys, file_md5, load_manifest, manifest_shapes
from zh_steve.errors import CheckpointError, UnsafeCheckpointError, WeightsNotFoundError
from zh_steve.published import ATTN_MD5, ATTN_TEXT_PREFIX as ATTN_PTH_PREFIX, HUB_TEXT_PREFIX as HUB_PREFIX
from zh_steve.testing.tiny_text import tiny_mineclip_text_config, tiny_mineclip_text_encoder
from zh_steve.text.base import TextEncoder
from zh_steve.text.mineclip_text import (
    MineClipTextConfig,
    MineClipTextEncoder,
    MineClipTextModel,
    TokenShapeError,
    config_from_state_dict,
)
from zh_steve.weights.official import read_state_dict
from payloads import RunsCode


def load_mineclip_text_state_dict(path):
    return read_state_dict(path, "mineclip_text")

TOL = 1e-5  # golden/README.md §5 (fp32 vs fp64 was 1.1e-6)


@pytest.fixture(scope="module")
def golden(golden_dir: Path) -> dict:
    meta = json.loads((golden_dir / "mineclip_text_small.json").read_text())
    io = load_file(str(golden_dir / "mineclip_text_small.io.safetensors"))
    return {"meta": meta, "io": io, "dir": golden_dir}


def _golden_config(meta: dict) -> MineClipTextConfig:
    c = meta["text_config"]
    return MineClipTextConfig(embed_dim=c["embed_dim (projection out)"], width=c["width"], layers=c["layers"],
                              heads=c["heads"], context_length=c["context_length"], vocab_size=c["vocab_size"])


@pytest.mark.parametrize("filename", ["mineclip_text_small.pth", "mineclip_text_small.safetensors"])
def test_golden_outputs(golden, filename):
    meta, io = golden["meta"], golden["io"]
    config = _golden_config(meta)
    sd = load_mineclip_text_state_dict(golden["dir"] / filename)
    assert set(sd) == {k[len(ATTN_PTH_PREFIX):] for k in meta["keys"]}
    assert config_from_state_dict(sd, heads=config.heads) == config
    model = MineClipTextModel.from_state_dict(sd, config)
    with torch.no_grad():
        out = model.run(io["tokens"])
    torch.testing.assert_close(out.text_embed, io["text_embed"], atol=TOL, rtol=0)
    torch.testing.assert_close(out.final_hidden, io["hidden_after_ln_final"], atol=TOL, rtol=0)
    assert len(out.block_hidden) == config.layers
    for i, h in enumerate(out.block_hidden):
        torch.testing.assert_close(h, io[f"hidden_after_block{i}"], atol=TOL, rtol=0)


def test_golden_needs_right_heads(golden):
    """Heads cannot be read from shapes; a wrong count must change the output (the test can fail)."""
    config = _golden_config(golden["meta"])
    sd = load_mineclip_text_state_dict(golden["dir"] / "mineclip_text_small.safetensors")
    wrong = MineClipTextModel.from_state_dict(sd, config_from_state_dict(sd, heads=max(1, config.heads // 2)))
    with torch.no_grad():
        diff = (wrong(golden["io"]["tokens"]) - golden["io"]["text_embed"]).abs().max()
    assert diff > 1e-3


def test_golden_token_layout(golden):
    """The stored token rows follow [BOS] + ids[:75] + [EOS] + 0-pad with the fixture's special ids."""
    meta, tokens = golden["meta"], golden["io"]["tokens"]
    bos, eos = meta["special_ids"]["BOS"], meta["special_ids"]["EOS"]
    for row, ids in zip(tokens.tolist(), meta["token_id_lists"]):
        body = ids[:75]
        assert row[: len(body) + 2] == [bos, *body, eos] and set(row[len(body) + 2:]) <= {0}


def test_full_size_matches_manifest():
    expected = {k[len(ATTN_PTH_PREFIX):]: v for k, v in manifest_shapes("mineclip", ATTN_PTH_PREFIX).items()}
    assert len(expected) == 149
    with torch.device("meta"):
        model = MineClipTextModel(MineClipTextConfig())
    report = compare_keys(expected, model.state_dict())
    assert report.ok, report.describe()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == sum(torch.Size(s).numel() for s in expected.values()) == 63_428_096
    assert config_from_state_dict(model.state_dict()) == MineClipTextConfig()


# ---------------------------------------------------------------------------------------------- loaders

@pytest.fixture
def golden_sd(golden) -> dict[str, torch.Tensor]:
    return load_mineclip_text_state_dict(golden["dir"] / "mineclip_text_small.safetensors")


def test_safetensors_prefix_forms_agree(tmp_path, golden_sd):
    hub = {HUB_PREFIX + k: v for k, v in golden_sd.items()}
    hub["mineclip.clip_model.vision_model.proj"] = torch.zeros(3)     # other parts of a full file are ignored
    hub["net.something.weight"] = torch.zeros(2, 2)
    save_file(hub, str(tmp_path / "hub.safetensors"))
    save_file(dict(golden_sd), str(tmp_path / "bare.safetensors"))
    for name in ("hub.safetensors", "bare.safetensors"):
        got = load_mineclip_text_state_dict(tmp_path / name)
        assert set(got) == set(golden_sd)
        assert all(torch.equal(got[k], golden_sd[k]) for k in golden_sd)


def test_attn_pth_keeps_only_text_keys(tmp_path, golden_sd):
    full = {ATTN_PTH_PREFIX + k: v for k, v in golden_sd.items()}
    full["model.clip_model.vision_model.pos_embed"] = torch.zeros(4, 4)
    full["model.reward_head.clip_model.text_model.pos_embed"] = torch.zeros(4, 4)
    full["model.temporal_encoder.attn.model.norm.weight"] = torch.zeros(4)
    torch.save({"state_dict": full, "epoch": 3}, tmp_path / "attn.pth")
    got = load_mineclip_text_state_dict(tmp_path / "attn.pth")
    assert set(got) == set(golden_sd)


def test_missing_unexpected_misshaped_are_named(golden, golden_sd):
    config = _golden_config(golden["meta"])
    bad = dict(golden_sd)
    del bad["ln_final.bias"]
    bad["blocks.0.attn.extra"] = torch.zeros(1)
    bad["projection"] = golden_sd["projection"].T.contiguous()  # transposed [embed, width]
    with pytest.raises(CheckpointError) as info:
        MineClipTextModel.from_state_dict(bad, config)
    msg = str(info.value)
    assert "ln_final.bias" in msg and "blocks.0.attn.extra" in msg and "projection" in msg


def test_not_a_mineclip_file(tmp_path):
    torch.save({"state_dict": {"model.something_else.weight": torch.zeros(2)}}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="text_model"):
        load_mineclip_text_state_dict(tmp_path / "x.pth")
    with pytest.raises(WeightsNotFoundError):
        load_mineclip_text_state_dict(tmp_path / "absent.pth")


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "PWNED"
    torch.save({"state_dict": {}, "payload": RunsCode(marker)}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeCheckpointError, match="system"):
        load_mineclip_text_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()


def test_metadata_objects_get_inert_stand_ins(tmp_path, golden_sd):
    """attn.pth holds Lightning hyper-parameter objects: they are stood in for without running their code."""
    import argparse

    sd = {ATTN_PTH_PREFIX + k: v for k, v in golden_sd.items()}
    torch.save({"state_dict": sd, "hyper_parameters": argparse.Namespace(lr=1e-4)}, tmp_path / "attn.pth")
    got = load_mineclip_text_state_dict(tmp_path / "attn.pth")
    assert set(got) == set(golden_sd)


def test_md5_helper_and_published_md5(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert file_md5(path) == "900150983cd24fb0d6963f7d28e17f72"  # RFC 1321 test vector
    assert len(ATTN_MD5) == 32 and ATTN_MD5 in load_manifest("mineclip")["file"]


def test_bad_tokens_rejected(golden, golden_sd):
    config = _golden_config(golden["meta"])
    model = MineClipTextModel.from_state_dict(golden_sd, config)
    n = config.context_length
    with pytest.raises(TokenShapeError):
        model(torch.zeros(n, dtype=torch.long))                              # no batch dimension
    with pytest.raises(TokenShapeError):
        model(torch.full((1, n), config.vocab_size, dtype=torch.long))       # one past the vocabulary


# ---------------------------------------------------------------------------------------------- encoder

@pytest.fixture(scope="module")
def tiny() -> MineClipTextEncoder:
    return tiny_mineclip_text_encoder(seed=0)


def test_tiny_encoder_contract(tiny):
    assert isinstance(tiny, TextEncoder)
    assert tiny.dim == 512 and "tiny-random" in tiny.identity and "seed=0" in tiny.identity
    texts = ["chop a tree", "mine diamond ore", "go swimming", "chop a tree"]
    x = tiny.encode(texts)
    assert x.dtype == torch.float32 and x.device.type == "cpu" and x.shape == (4, 512)
    assert torch.isfinite(x).all()
    assert torch.equal(x[0], x[3])
    cos = torch.nn.functional.cosine_similarity(x[0], x[2], dim=0)
    assert cos < 0.99, "tiny embeddings must differ between texts"
    torch.testing.assert_close(tiny.encode(texts, batch_size=1), x, atol=1e-5, rtol=0)
    assert tiny.encode([]).shape == (0, 512)
    assert tiny.truncated(["tree " * 76, "tree"]) == [True, False]


def test_encoder_padding_cut_is_exact(tiny):
    """encode() drops the padding after the last EOS; the result equals the full 77-token forward."""
    texts = ["chop a tree", "tree " * 80, "dig"]
    with torch.no_grad():
        full = tiny.model(tiny.tokenizer(texts))
    torch.testing.assert_close(tiny.encode(texts), full, atol=1e-5, rtol=0)
    torch.testing.assert_close(tiny.encode(texts[::2]), full[::2], atol=1e-5, rtol=0)


def test_tiny_identity_depends_on_seed(tiny):
    other = tiny_mineclip_text_encoder(seed=1)
    assert other.identity != tiny.identity
    assert not torch.allclose(other.encode(["dig"]), tiny.encode(["dig"]))


def test_tiny_config():
    c = tiny_mineclip_text_config()
    assert (c.embed_dim, c.width, c.layers, c.heads, c.vocab_size, c.context_length) == (512, 64, 2, 4, 49408, 77)


def test_file_roundtrip_keeps_identity(tmp_path, tiny):
    sd = {ATTN_PTH_PREFIX + k: v for k, v in tiny.model.state_dict().items()}
    save_file(sd, str(tmp_path / "tiny.safetensors"))
    torch.save({"state_dict": sd}, tmp_path / "tiny.pth")

    def from_file(path):
        return MineClipTextEncoder.from_state_dict(load_mineclip_text_state_dict(path), heads=4)

    a = from_file(tmp_path / "tiny.safetensors")
    b = from_file(tmp_path / "tiny.pth")
    texts = ["chop a tree", "craft a wooden pickaxe"]
    torch.testing.assert_close(a.encode(texts), tiny.encode(texts), atol=1e-6, rtol=0)
    assert a.identity == b.identity  # same weights, different container → same identity
    changed = dict(sd)
    changed[ATTN_PTH_PREFIX + "ln_final.bias"] = sd[ATTN_PTH_PREFIX + "ln_final.bias"] + 1.0
    save_file(changed, str(tmp_path / "changed.safetensors"))
    assert from_file(tmp_path / "changed.safetensors").identity != a.identity


@pytest.mark.slow
def test_full_size_random_tower_encodes_paper_prompts(golden_dir):
    cases = json.loads((golden_dir / "clip_tokens.json").read_text(encoding="utf-8"))["cases"]
    prompts = [c["text"] for c in cases if c["category"].startswith("paper:")]
    torch.manual_seed(0)
    model = MineClipTextModel(MineClipTextConfig())
    enc = MineClipTextEncoder(model, tiny_mineclip_text_encoder().tokenizer, identity="mineclip-text:random-full")
    x = enc.encode(prompts, batch_size=4)
    assert x.shape == (len(prompts), 512) and torch.isfinite(x).all()
    assert torch.unique(x, dim=0).shape[0] == len(prompts)


def test_forward_computes_the_last_block_at_eos_only_and_matches_run(golden):
    """``forward`` runs the last block for the EOS row alone; it equals ``run``'s embedding on the golden tokens
    (padded after the EOS) and on the same texts cut at their EOS."""
    meta, io = golden["meta"], golden["io"]
    config = _golden_config(meta)
    model = MineClipTextModel.from_state_dict(
        load_mineclip_text_state_dict(golden["dir"] / "mineclip_text_small.safetensors"), config)
    tokens = io["tokens"]
    with torch.no_grad():
        full = model.run(tokens).text_embed
        fast = model(tokens)
        torch.testing.assert_close(fast, full, atol=2e-6, rtol=0)
        torch.testing.assert_close(fast, io["text_embed"], atol=TOL, rtol=0)
        cut = int(tokens.argmax(-1).max()) + 1
        torch.testing.assert_close(model(tokens[:, :cut]), full, atol=2e-6, rtol=0)
