"""Inference fast paths give the same values: weight-major linears, length-sorted text batches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zh_steve.linear import (HAS_ONEDNN, Linear, PackedLinear, count_parameters, few_row_path, linear, pack_linears,
                             unpack_linears, use_weight_major)
from zh_steve.precision import native_bf16
from zh_steve.text.batching import length_sorted_batches


@pytest.mark.parametrize("rows", [1, 2, 3, 8, 64, 65, 200])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(96, 80), (80, 96)])  # tall (out > in) and wide (in > out) weights
def test_few_row_linear_equals_f_linear(rows, bias, shape):
    gen = torch.Generator().manual_seed(rows)
    w = torch.randn(*shape, generator=gen)
    b = torch.randn(shape[0], generator=gen) if bias else None
    x = torch.randn(rows, shape[1], generator=gen)
    out = linear(x, w, b)
    assert out.shape == (rows, shape[0]) and out.is_contiguous()
    torch.testing.assert_close(out, F.linear(x, w, b), atol=1e-5, rtol=1e-5)
    x3 = x.reshape(1, rows, shape[1])
    torch.testing.assert_close(linear(x3, w, b), F.linear(x3, w, b), atol=1e-5, rtol=1e-5)
    # a non-contiguous input (a slice of a wider tensor) gives the same values
    xs = torch.cat([x, x], dim=1)[:, : shape[1]]
    torch.testing.assert_close(linear(xs, w, b), F.linear(x, w, b), atol=1e-5, rtol=1e-5)


def test_few_row_path_choice():
    onednn = "onednn" if HAS_ONEDNN else "mkl"
    assert few_row_path(1, 8192, 2048) == onednn                 # one row: a GEMV, oneDNN streams W on both threads
    assert few_row_path(2, 2048, 8192) == ("onednn" if HAS_ONEDNN else "weight_major")   # wide weight
    assert few_row_path(2, 8192, 2048) == "weight_major"        # tall weight, 2 CFG rows
    assert few_row_path(4, 3072, 768) == few_row_path(3, 768, 768) == "weight_major"   # a few tokens, small W
    assert few_row_path(4, 768, 3072) == (onednn if HAS_ONEDNN else "weight_major")     # ... but a wide one
    assert few_row_path(4, 8192, 2048) == (onednn if HAS_ONEDNN else "weight_major")   # batched envs, large W
    assert few_row_path(64, 768, 768) == (onednn if HAS_ONEDNN else "weight_major")
    assert few_row_path(65, 768, 768) == few_row_path(0, 768, 768) == "mkl"


@pytest.mark.skipif(not HAS_ONEDNN, reason="torch built without oneDNN")
def test_onednn_path_runs_and_matches(monkeypatch):
    calls = []
    real = torch.ops.mkldnn._linear_pointwise
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", lambda *a: calls.append(a[0].shape) or real(*a))
    w, x = torch.randn(64, 256), torch.randn(1, 1, 256)
    torch.testing.assert_close(linear(x, w, None), F.linear(x, w), atol=1e-5, rtol=1e-5)
    assert calls == [(1, 256)]


def test_weight_major_linear_keeps_autograd_and_dtype_rules():
    lin = Linear(8, 4)
    x = torch.randn(3, 8, requires_grad=True)
    lin(x).sum().backward()
    ref = x.grad.clone()
    x.grad = None
    F.linear(x, lin.weight, lin.bias).sum().backward()
    torch.testing.assert_close(x.grad, ref)
    with pytest.raises(RuntimeError):  # mismatched dtypes still fail as in nn.Linear
        lin(torch.randn(3, 8, dtype=torch.float64))


def test_use_weight_major_switches_only_plain_linears():
    class Custom(nn.Linear):
        pass

    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), Custom(4, 4))
    keys = list(model.state_dict())
    use_weight_major(model)
    assert type(model[0]) is Linear and type(model[2]) is Custom
    assert list(model.state_dict()) == keys


def test_length_sorted_batches_hold_one_length_and_cover_every_row():
    lengths = [5, 3, 5, 9, 3, 3, 5, 1]
    batches = list(length_sorted_batches(lengths, batch_size=2))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len({lengths[i] for i in b}) == 1 and len(b) <= 2 for b in batches)
    assert [lengths[b[0]] for b in batches] == sorted((lengths[b[0]] for b in batches), reverse=True)


TEXTS = ["砍树", "去挖泥土吧", "请帮我找到一些钻石然后回家", "游泳", "用木头做一把镐子", "砍树", "chop a tree 砍"]


def test_chinese_clip_sorted_batches_equal_one_by_one(tmp_path):
    from zh_steve.testing.tiny_text import tiny_chinese_clip_encoder

    enc = tiny_chinese_clip_encoder(seed=0, cache_dir=tmp_path)
    batched = enc.encode(TEXTS, batch_size=3)
    alone = torch.cat([enc.encode([t]) for t in TEXTS])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    # and equal to the padded, unsorted batch the tower computes with an attention mask
    with torch.inference_mode():
        padded = enc.tower(**enc.tokenize(TEXTS)).float()
    torch.testing.assert_close(batched, padded, atol=1e-5, rtol=1e-5)


def test_mineclip_sorted_batches_equal_one_by_one():
    from zh_steve.testing.tiny_text import tiny_mineclip_text_encoder

    enc = tiny_mineclip_text_encoder(seed=0)
    texts = ["chop a tree", "dig", "find some diamonds and then go home", "swim", "chop a tree", "craft a pickaxe"]
    batched = enc.encode(texts, batch_size=4)
    alone = torch.cat([enc.encode([t]) for t in texts])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    with torch.inference_mode():
        full = enc.model(enc.tokenizer(texts)).float()  # all 77 positions: same EOS features under the causal mask
    torch.testing.assert_close(batched, full, atol=1e-5, rtol=1e-5)


needs_packing = pytest.mark.skipif(not (HAS_ONEDNN and native_bf16("cpu")),
                                   reason="oneDNN bf16 packing needs a CPU with native bfloat16")


@needs_packing
@pytest.mark.parametrize("rows", [1, 2, 4, 7, 64, 130])
@pytest.mark.parametrize("bias", [True, False])
def test_packed_linear_equals_f_linear_bit_for_bit(rows, bias):
    gen = torch.Generator().manual_seed(rows)
    w = torch.randn(96, 80, generator=gen).bfloat16()
    b = torch.randn(96, generator=gen).bfloat16() if bias else None
    x = torch.randn(2, rows, 80, generator=gen).bfloat16()
    packed = PackedLinear(w, b)
    out = packed(x)
    assert out.shape == (2, rows, 96) and out.dtype == torch.bfloat16
    assert torch.equal(out, F.linear(x, w, b))
    xt = x.transpose(0, 1)  # a strided input: packed as given, F.linear on its contiguous copy
    assert torch.equal(packed(xt), F.linear(xt.contiguous(), w, b))
    assert torch.equal(packed.weight, w)  # the plain weight comes back exactly


@needs_packing
def test_pack_linears_keeps_keys_values_and_unpacks():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), Linear(32, 8, bias=False), nn.LayerNorm(8)).bfloat16()
    model.add_module("fp32_head", nn.Linear(8, 2))  # float32: left alone
    x = torch.randn(5, 16).bfloat16()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.inference_mode():
        want = model[:4](x)
    assert pack_linears(model) == 2
    assert isinstance(model[0], PackedLinear) and isinstance(model[2], PackedLinear)
    assert type(model.fp32_head) is nn.Linear
    after = model.state_dict()
    assert list(after) == list(before)  # nn.Linear's keys, in its order
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert "weight" not in dict(model[0].named_parameters())  # no second copy of the weight is kept
    assert count_parameters(model) == sum(v.numel() for v in before.values())  # packed weights counted
    with torch.inference_mode():
        assert torch.equal(model[:4](x), want)
    with pytest.raises(RuntimeError, match="unpack_linears"):
        model[0](x.float())
    assert unpack_linears(model) == 2
    assert type(model[0]) is Linear and model[0].weight.dtype == torch.bfloat16
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in before)
    model.float()  # plain modules cast again
    assert model[0](x.float()).dtype == torch.float32


@needs_packing
def test_packed_linear_copies_and_pickles():
    import copy
    import pickle

    model = nn.Sequential(nn.Linear(16, 8)).bfloat16()
    pack_linears(model)
    x = torch.randn(3, 16).bfloat16()
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert isinstance(twin[0], PackedLinear) and twin[0].packed is not model[0].packed
        assert torch.equal(twin(x), model(x))
    # load_state_dict re-packs the plain weight, and names a mis-shaped one
    other = nn.Sequential(nn.Linear(16, 8)).bfloat16()
    model.load_state_dict(other.state_dict())
    assert torch.equal(model(x), other(x)) and torch.equal(model[0].weight, other[0].weight)
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        model.load_state_dict(nn.Sequential(nn.Linear(16, 9)).bfloat16().state_dict())


def test_pack_linears_leaves_cpus_without_native_bf16_alone(monkeypatch):
    import zh_steve.linear as linear_mod

    monkeypatch.setattr(linear_mod, "cpu_native_bf16", lambda: False)  # oneDNN would emulate bf16 there
    model = nn.Sequential(nn.Linear(16, 8)).bfloat16()
    assert pack_linears(model) == 0 and type(model[0]) is nn.Linear


def test_packed_linear_refuses_what_it_cannot_pack():
    with pytest.raises(ValueError, match="bfloat16"):
        PackedLinear(torch.randn(4, 3), None)


@needs_packing
def test_chinese_clip_runtime_packing_gives_the_same_features(tmp_path):
    from zh_steve.testing.tiny_text import tiny_chinese_clip_encoder

    plain = tiny_chinese_clip_encoder(seed=0, cache_dir=tmp_path)
    plain.tower.to(torch.bfloat16)
    packed = tiny_chinese_clip_encoder(seed=0, cache_dir=tmp_path).to_runtime(torch.bfloat16)
    n_linear = sum(isinstance(m, nn.Linear) for m in plain.tower.modules())
    assert sum(isinstance(m, PackedLinear) for m in packed.tower.modules()) == n_linear > 0
    assert torch.equal(packed.encode(TEXTS, batch_size=3), plain.encode(TEXTS, batch_size=3))
    fp32 = tiny_chinese_clip_encoder(seed=0, cache_dir=tmp_path).to_runtime(torch.float32)
    assert not any(isinstance(m, PackedLinear) for m in fp32.tower.modules())  # float32 keeps the few-row paths
    packed.to_runtime(torch.float32)  # another dtype later: unpacked, then cast
    assert not any(isinstance(m, PackedLinear) for m in packed.tower.modules())
    plain.tower.to(torch.float32)  # the same bf16-rounded weights, never packed
    torch.testing.assert_close(packed.encode(TEXTS), plain.encode(TEXTS), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chinese_clip_unpadded_forward_equals_transformers(tmp_path, dtype, monkeypatch):
    """The written-out forward for one-length batches gives the transformers model's features bit for bit."""
    from zh_steve.text.chinese_clip import ChineseClipTextTower
    from zh_steve.testing.tiny_text import tiny_chinese_clip_encoder

    enc = tiny_chinese_clip_encoder(seed=0, cache_dir=tmp_path).to_runtime(dtype)
    tower = enc.tower
    ids = torch.tensor([enc.tokenizer(["请帮我找到一些钻石"])["input_ids"][0]] * 3)
    types = torch.zeros_like(ids)
    with torch.inference_mode():
        out = tower.text_model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=types)
        want = tower.text_projection(out.last_hidden_state[:, 0])
        assert torch.equal(tower(ids, attention_mask=torch.ones_like(ids), token_type_ids=types), want)
        assert torch.equal(tower(ids), want)
    # padded batches (a zero in the mask) and autograd take the transformers forward
    monkeypatch.setattr(ChineseClipTextTower, "_forward_unpadded", lambda *a: pytest.fail("unpadded path used"))
    mask = torch.ones_like(ids)
    mask[0, -1] = 0
    with torch.inference_mode():
        tower(ids, attention_mask=mask, token_type_ids=types)
    if dtype == torch.float32:
        with torch.enable_grad():
            tower(ids)
