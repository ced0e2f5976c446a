"""Inference fast paths give the same values: weight-major linears, length-sorted text batches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zh_steve.linear import HAS_ONEDNN, Linear, few_row_path, linear, use_weight_major
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
