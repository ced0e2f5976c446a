"""The training embedding pass in a faster dtype: dtype choice, bulk encoder copies, and what goes through them."""

from __future__ import annotations

import pytest
import torch

from alignment import encoders
from alignment.encoders import bulk_encoder, resolve_encode_dtype
from alignment.train import TrainConfig, embed
from zh_steve.errors import ConfigError

TEXTS = ["砍树", "去挖泥土吧", "请帮我找到一些钻石然后回家", "chop a tree 砍"]


def test_encode_dtype_choice(monkeypatch):
    assert resolve_encode_dtype("float32", "cpu") == torch.float32
    assert resolve_encode_dtype("bfloat16", "cpu") == torch.bfloat16
    monkeypatch.setattr(encoders, "native_bf16", lambda device: True)
    assert resolve_encode_dtype("auto", "cpu") == torch.bfloat16
    monkeypatch.setattr(encoders, "native_bf16", lambda device: False)
    assert resolve_encode_dtype("auto", "cpu") == torch.float32
    with pytest.raises(ConfigError, match="encode_dtype"):
        resolve_encode_dtype("fp8", "cpu")
    with pytest.raises(ConfigError, match="encode_dtype"):
        TrainConfig(encode_dtype="half")


@pytest.mark.parametrize("which", ["chinese_clip", "mineclip"])
def test_bulk_copy_is_bf16_keyed_apart_and_leaves_the_original(which, tmp_path):
    from zh_steve.testing.tiny_text import tiny_chinese_clip_encoder, tiny_mineclip_text_encoder

    enc = (tiny_chinese_clip_encoder(seed=0, cache_dir=tmp_path) if which == "chinese_clip"
           else tiny_mineclip_text_encoder(seed=0))
    before = enc.encode(TEXTS)
    fast = bulk_encoder(enc, torch.bfloat16)
    assert fast is not enc and fast.identity == enc.identity + "|compute=bfloat16"
    module = fast.tower if which == "chinese_clip" else fast.model
    original = enc.tower if which == "chinese_clip" else enc.model
    assert {p.dtype for p in module.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in original.parameters()} == {torch.float32}
    out = fast.encode(TEXTS)
    assert out.dtype == torch.float32 and out.shape == before.shape
    assert torch.nn.functional.cosine_similarity(out, before).min() > 0.99
    torch.testing.assert_close(enc.encode(TEXTS), before, atol=0, rtol=0)   # the float32 encoder is untouched
    assert bulk_encoder(enc, torch.float32) is enc
    from zh_steve.linear import PackedLinear, unpack_linears
    from zh_steve.precision import native_bf16

    if native_bf16("cpu"):  # the copy's linears are packed for oneDNN: the same rows as the plain bf16 copy
        assert any(isinstance(m, PackedLinear) for m in module.modules())
        unpack_linears(module)
        assert torch.equal(fast.encode(TEXTS), out)


class Recorder:
    """A stand-in encoder that records what it was asked to encode."""

    dim = 4

    def __init__(self, identity: str):
        self.identity, self.seen = identity, []

    def encode(self, texts, batch_size=64, progress=False):
        self.seen += texts
        return torch.randn(len(texts), self.dim)


def test_encoders_without_a_torch_tower_come_back_unchanged():
    rec = Recorder("proxy:x")
    assert bulk_encoder(rec, torch.bfloat16) is rec


def test_embed_sends_pairs_and_anchors_to_the_bulk_encoders_and_class_prompts_to_the_target(tmp_path):
    from alignment.anchors import Anchor
    from alignment.pairs import ClassInfo, Pair, PairSet

    cls = [ClassInfo("chop a tree", "train", "compose", verb="chop", object="tree")]
    pairs = [Pair(text="砍树", class_id="chop a tree", split="train", lang="zh-Hans", source="compose",
                  style="imperative")]
    src, tgt, bsrc, btgt = (Recorder(n) for n in ("src", "tgt", "src|compute=bfloat16", "tgt|compute=bfloat16"))
    anchors = [Anchor(zh="木头", en="wood", source="lexicon")]
    data = embed(PairSet(pairs, cls, held_out={}), anchors, src, tgt, TrainConfig(cache_dir=str(tmp_path)),
                 bulk=(bsrc, btgt))
    assert tgt.seen == ["chop a tree"] and src.seen == []          # the prompt bank: the float32 target tower
    assert bsrc.seen == ["砍树", "木头"] and btgt.seen == ["wood"]
    assert data.source_identity == "src" and data.target_identity == "tgt"   # the layer records the real encoders
