"""Embedding cache: every (encoder, text) is encoded once; later runs reuse the disk copy."""

from __future__ import annotations

import hashlib

import pytest
import torch

from alignment.cache import EmbeddingCache, encode_cached
from zh_steve.errors import CheckpointError, ZhSteveError
from zh_steve.text.base import TextEncoder


class CountingEncoder:
    """Deterministic fake encoder: a text's vector comes from its sha256; counts what it was asked to encode."""

    def __init__(self, identity: str = "fake:v1", dim: int = 8) -> None:
        self.identity, self.dim = identity, dim
        self.seen: list[str] = []

    def encode(self, texts, batch_size=64, progress=False):
        self.seen.extend(texts)
        rows = []
        for t in texts:
            seed = int(hashlib.sha256(f"{self.identity}|{t}".encode()).hexdigest()[:8], 16)
            rows.append(torch.randn(self.dim, generator=torch.Generator().manual_seed(seed)))
        return torch.stack(rows)


def test_fake_is_a_text_encoder():
    assert isinstance(CountingEncoder(), TextEncoder)


def test_second_run_encodes_nothing(tmp_path):
    texts = ["砍树", "挖泥土", "砍树", "go explore"]
    enc = CountingEncoder()
    first, n1 = encode_cached(enc, texts, tmp_path)
    assert n1 == 3 and sorted(enc.seen) == sorted({"砍树", "挖泥土", "go explore"})
    assert torch.equal(first, enc.encode(texts))

    enc2 = CountingEncoder()                         # a new process would start like this
    again, n2 = encode_cached(enc2, texts, tmp_path)
    assert n2 == 0 and enc2.seen == []
    assert torch.equal(again, first)


def test_only_new_texts_are_encoded_and_shards_accumulate(tmp_path):
    enc = CountingEncoder()
    encode_cached(enc, ["a", "b"], tmp_path)
    enc.seen.clear()
    out, n = encode_cached(enc, ["b", "c", "a"], tmp_path)
    assert n == 1 and enc.seen == ["c"]
    assert torch.equal(out, CountingEncoder().encode(["b", "c", "a"]))
    cache = EmbeddingCache(tmp_path, enc.identity, enc.dim)
    assert len(cache) == 3 and "c" in cache
    assert len(list(cache.dir.glob("shard-*.safetensors"))) == 2


def test_shard_size_splits_the_work(tmp_path):
    enc = CountingEncoder()
    encode_cached(enc, [f"t{i}" for i in range(10)], tmp_path, shard_size=4)
    assert len(list(EmbeddingCache(tmp_path, enc.identity, enc.dim).dir.glob("shard-*"))) == 3


def test_identities_do_not_share_entries(tmp_path):
    a, b = CountingEncoder("fake:a"), CountingEncoder("fake:b")
    ea, _ = encode_cached(a, ["x"], tmp_path)
    eb, nb = encode_cached(b, ["x"], tmp_path)
    assert nb == 1 and not torch.equal(ea, eb)


def test_bad_encoder_output_and_corrupt_shard(tmp_path):
    class Wrong(CountingEncoder):
        def encode(self, texts, batch_size=64, progress=False):
            return torch.zeros(len(texts), self.dim + 1)

    with pytest.raises(ZhSteveError, match="shape"):
        encode_cached(Wrong(), ["x"], tmp_path)
    enc = CountingEncoder()
    encode_cached(enc, ["x"], tmp_path)
    shard = next(EmbeddingCache(tmp_path, enc.identity, enc.dim).dir.glob("shard-*.safetensors"))
    shard.write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="delete it"):
        EmbeddingCache(tmp_path, enc.identity, enc.dim)


def test_concurrent_writers_do_not_overwrite_each_other(tmp_path, monkeypatch):
    # two runs that both opened the cache before either wrote: with numbered shards both picked shard-00000 and
    # the later rename silently replaced the other run's embeddings
    import alignment.cache as cache_mod

    enc = CountingEncoder()
    a = EmbeddingCache(tmp_path, enc.identity, enc.dim)
    b = EmbeddingCache(tmp_path, enc.identity, enc.dim)
    real_save = cache_mod.save_file
    calls = []

    def interleaved(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 1:          # a is about to write: b writes its shard first
            b.add(["b1", "b2"], enc.encode(["b1", "b2"]))
        real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(cache_mod, "save_file", interleaved)
    a.add(["a1"], enc.encode(["a1"]))
    fresh = EmbeddingCache(tmp_path, enc.identity, enc.dim)
    assert len(fresh) == 3 and all(t in fresh for t in ("a1", "b1", "b2"))
    assert torch.equal(fresh.get(["b2", "a1"]), enc.encode(["b2", "a1"]))
