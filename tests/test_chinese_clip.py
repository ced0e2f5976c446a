"""Chinese-CLIP text encoder: tiny checkpoint through the real from_pretrained path, loud refusal of bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from zh_steve.errors import CheckpointError, WeightsNotFoundError
from zh_steve.text.base import TextEncoder
from zh_steve.text.chinese_clip import CONTEXT_LENGTH, ChineseClipTextEncoder
from zh_steve.testing.tiny_text import tiny_chinese_clip_dir, tiny_chinese_clip_encoder
from payloads import RunsCode


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return tiny_chinese_clip_dir(tmp_path_factory.mktemp("cnclip") / "tiny", seed=0)


@pytest.fixture(scope="module")
def enc(tiny_dir) -> ChineseClipTextEncoder:
    return ChineseClipTextEncoder.from_pretrained(tiny_dir, local_files_only=True)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_contract_and_shapes(enc):
    assert isinstance(enc, TextEncoder) and enc.dim == 512
    texts = ["砍树", "挖钻石", "去挖 dirt", "砍树"]
    x = enc.encode(texts)
    assert x.shape == (4, 512) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert torch.isfinite(x).all() and torch.equal(x[0], x[3])
    assert torch.nn.functional.cosine_similarity(x[0], x[1], dim=0) < 0.99
    torch.testing.assert_close(enc.encode(texts, batch_size=1), x, atol=1e-5, rtol=0)  # padding-invariant
    assert enc.encode([]).shape == (0, 512)


def test_weights_really_loaded_and_vision_dropped(enc, tiny_dir):
    saved = load_file(str(tiny_dir / "model.safetensors"))
    tower = enc.tower.state_dict()
    assert not any(k.startswith("vision") for k in tower)
    pad = enc.tokenizer.pad_token_id
    for key, value in tower.items():
        if key == "text_model.embeddings.word_embeddings.weight":
            # transformers 5 re-zeroes the [PAD] row after loading; it only feeds masked positions
            keep = torch.arange(value.shape[0]) != pad
            assert torch.equal(value[keep], saved[key][keep])
        elif key in saved:
            assert torch.equal(value, saved[key]), key
    assert torch.equal(tower["text_projection.weight"], saved["text_projection.weight"])


def test_feature_is_projected_cls(enc):
    batch = enc.tokenize(["砍树"])
    hidden = enc.tower.text_model(**batch).last_hidden_state
    want = hidden[:, 0] @ enc.tower.text_projection.weight.T
    torch.testing.assert_close(enc.encode(["砍树"]), want, atol=1e-5, rtol=0)


def test_tokenizer_context(enc):
    batch = enc.tokenize(["砍" * 200, "树"])
    assert batch["input_ids"].shape == (2, CONTEXT_LENGTH)
    assert batch["input_ids"][0, 0].item() == enc.tokenizer.cls_token_id
    assert batch["attention_mask"][1].sum().item() == 3  # [CLS] 树 [SEP]


def test_checkpoint_without_text_weights_is_refused(tmp_path, tiny_dir):
    bad = _copy(tiny_dir, tmp_path / "no_text")
    sd = load_file(str(bad / "model.safetensors"))
    kept = {k: v for k, v in sd.items() if not k.startswith(("text_model.encoder.layer.1.", "text_projection"))}
    save_file(kept, str(bad / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as info:
        ChineseClipTextEncoder.from_pretrained(bad, local_files_only=True)
    assert "text_projection.weight" in str(info.value)
    assert "text_model.encoder.layer.1.attention.self.query.weight" in str(info.value)


def test_misshaped_text_weight_is_refused(tmp_path, tiny_dir):
    bad = _copy(tiny_dir, tmp_path / "misshaped")
    sd = load_file(str(bad / "model.safetensors"))
    sd["text_projection.weight"] = torch.zeros(256, 64)
    save_file(sd, str(bad / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="text_projection"):
        ChineseClipTextEncoder.from_pretrained(bad, local_files_only=True)


def test_missing_model_gives_download_hint(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="download"):
        ChineseClipTextEncoder.from_pretrained(tmp_path / "not_there", local_files_only=True)
    with pytest.raises(WeightsNotFoundError, match="OFA-Sys/chinese-clip-vit-base-patch16"):
        ChineseClipTextEncoder.from_pretrained("OFA-Sys/no-such-model-zh-steve", local_files_only=True)


def test_identity_tracks_weights(tmp_path, enc):
    other = tiny_chinese_clip_encoder(seed=1, cache_dir=tmp_path)
    assert other.identity != enc.identity
    assert not torch.allclose(other.encode(["砍树"]), enc.encode(["砍树"]))


def test_tiny_dir_is_reused(tiny_dir):
    stamp = (tiny_dir / "model.safetensors").stat().st_mtime_ns
    assert tiny_chinese_clip_dir(tiny_dir, seed=0) == tiny_dir
    assert (tiny_dir / "model.safetensors").stat().st_mtime_ns == stamp


def test_tiny_dir_rebuilt_for_other_seed(tmp_path):
    path = tiny_chinese_clip_dir(tmp_path / "t", seed=0)
    first = load_file(str(path / "model.safetensors"))["text_projection.weight"]
    tiny_chinese_clip_dir(path, seed=2)
    assert not torch.equal(load_file(str(path / "model.safetensors"))["text_projection.weight"], first)


@pytest.mark.slow
def test_bench_text_runs(tmp_path):
    """The full-size random-weight latency benchmark runs end to end and writes its JSON."""
    from eval.benchmarks.bench_text import main

    result = main(["--out", str(tmp_path / "text.json"), "--repeats", "1", "--threads", "1"])
    assert (tmp_path / "text.json").is_file()
    params = {r["tower"]: r["params"] for r in result["results"]}
    assert params["mineclip_text"] == 63_428_096
    assert 100e6 < params["chinese_clip_text"] < 104e6  # RoBERTa-wwm-ext base text tower + projection (102M)
    assert all(r["median_ms_per_instruction"] > 0 for r in result["results"])


def test_malicious_pytorch_bin_is_refused_and_never_runs(tmp_path):
    """A Chinese-CLIP dir whose weights are a pickle that would run code: refused as UnsafeCheckpointError."""
    from zh_steve.errors import UnsafeCheckpointError
    from zh_steve.text.chinese_clip import ChineseClipTextEncoder
    from zh_steve.testing.tiny_text import tiny_chinese_clip_dir

    d = tiny_chinese_clip_dir(tmp_path / "evil", seed=0)
    (d / "model.safetensors").unlink()
    marker = tmp_path / "PWNED"
    torch.save({"text_model.embeddings.word_embeddings.weight": RunsCode(marker)}, d / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match="weights-only"):
        ChineseClipTextEncoder.from_pretrained(str(d))
    assert not marker.exists()


def test_identity_is_the_weights_not_the_path(tmp_path, enc):
    """A copy of the same model in another directory has the same identity (caches and alignment stay valid)."""
    src = Path(enc.source.split("@")[0])
    copy = tmp_path / "copy"
    shutil.copytree(src, copy)
    other = ChineseClipTextEncoder.from_pretrained(str(copy))
    assert other.identity == enc.identity and other.source != enc.source


def test_cls_only_last_layer_matches_the_full_layer(enc):
    """The last layer computes [CLS] alone; the feature equals the full HF layer's, with and without padding."""
    import copy

    full = copy.deepcopy(enc.tower)
    last = full.text_model.encoder.layer[-1]
    last.__class__ = type(last).__mro__[1]           # back to transformers' ChineseCLIPTextLayer
    assert not getattr(last, "_cls_only", False) and enc.tower.text_model.encoder.layer[-1]._cls_only
    assert list(full.state_dict()) == list(enc.tower.state_dict())
    batch = enc.tokenizer(["砍树", "去挖一些泥土吧", "chop a tree"], padding=True, return_tensors="pt")
    with torch.no_grad():
        for mask in (batch["attention_mask"], torch.ones_like(batch["input_ids"])):
            got = enc.tower(batch["input_ids"], attention_mask=mask, token_type_ids=batch["token_type_ids"])
            want = full(batch["input_ids"], attention_mask=mask, token_type_ids=batch["token_type_ids"])
            torch.testing.assert_close(got, want, atol=2e-6, rtol=0)
        out = enc.tower.text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    assert out.last_hidden_state.shape[1] == 1      # only [CLS] leaves the last layer
