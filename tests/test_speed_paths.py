"""Inference fast paths give the same values: weight-major linears, length-sorted text batches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zh_steve.linear import Linear, linear, use_weight_major
from zh_steve.text.batching import length_sorted_batches


@pytest.mark.parametrize("rows", [1, 2, 3, 8, 64, 65, 200])
@pytest.mark.parametrize("bias", [True, False])
def test_weight_major_linear_equals_f_linear(rows, bias):
    gen = torch.Generator().manual_seed(rows)
    w = torch.randn(96, 80, generator=gen)
    b = torch.randn(96, generator=gen) if bias else None
    x = torch.randn(rows, 80, generator=gen)
    out = linear(x, w, b)
    assert out.shape == (rows, 96) and out.is_contiguous()
    torch.testing.assert_close(out, F.linear(x, w, b), atol=1e-5, rtol=1e-5)
    x3 = x.reshape(1, rows, 80)
    torch.testing.assert_close(linear(x3, w, b), F.linear(x3, w, b), atol=1e-5, rtol=1e-5)


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
