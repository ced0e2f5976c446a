"""The CPU embedding pass in forked single-threaded workers gives the in-process result, row for row."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest
import torch

from alignment.cache import EmbeddingCache, encode_cached
from alignment.encode_pool import MIN_BATCHES_PER_WORKER, can_fork, encode_pieces
from zh_steve.testing.tiny_text import tiny_chinese_clip_encoder, tiny_mineclip_text_encoder

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="forked workers need fork (Linux)")

# texts of many lengths (Chinese, Traditional, English, mixed), enough for several pieces per worker
TEXTS = [f"{w}{'木头' * (i % 5)}{i}" for i, w in enumerate(["砍树", "挖泥土", "去游泳", "go explore", "採集木頭"] * 40)]


@pytest.fixture(scope="module")
def cn_encoder():
    return tiny_chinese_clip_encoder()


@pytest.mark.parametrize("which", ["chinese_clip", "mineclip"])
def test_workers_reproduce_the_in_process_encode(which, cn_encoder):
    enc = cn_encoder if which == "chinese_clip" else tiny_mineclip_text_encoder()
    assert can_fork(enc)
    want = enc.encode(TEXTS, batch_size=8)
    got = {}
    pieces = list(encode_pieces(enc, TEXTS, batch_size=8, workers=2))
    assert len(pieces) > 2                                   # split into pieces of 4 batches
    for chunk, emb in pieces:
        assert emb.shape == (len(chunk), enc.dim)
        got.update(zip(chunk, emb))
    assert sorted(got) == sorted(TEXTS)
    torch.testing.assert_close(torch.stack([got[t] for t in TEXTS]), want, rtol=1e-5, atol=1e-6)


def test_encode_cached_with_workers_fills_the_cache_once(tmp_path, cn_encoder):
    enc = cn_encoder
    first, n = encode_cached(enc, TEXTS + TEXTS[:7], tmp_path, batch_size=8, workers=2, shard_size=64)
    assert n == len(TEXTS)
    torch.testing.assert_close(first, enc.encode(TEXTS + TEXTS[:7]), rtol=1e-5, atol=1e-6)
    cache = EmbeddingCache(tmp_path, enc.identity, enc.dim)
    assert len(cache) == len(TEXTS)
    assert len(list(cache.dir.glob("shard-*.safetensors"))) == -(-len(TEXTS) // 64)   # saved shard by shard
    again, n2 = encode_cached(enc, TEXTS, tmp_path, batch_size=8, workers=2)
    assert n2 == 0 and torch.equal(again, first[: len(TEXTS)])


def test_encoders_that_cannot_fork_encode_in_process():
    class Numpyish:                                  # e.g. a proxy encoder with its own numpy threads
        identity, dim = "fake:np", 4

        def __init__(self):
            self.calls = 0

        def encode(self, texts, batch_size=64, progress=False):
            self.calls += 1                          # counted here only if it runs in this process
            return torch.zeros(len(texts), 4)

    enc = Numpyish()
    assert not can_fork(enc)
    out = list(encode_pieces(enc, TEXTS, batch_size=8, workers=2, piece=50))
    assert enc.calls == len(out) == -(-len(TEXTS) // 50)


def test_a_worker_error_reaches_the_caller():
    enc = tiny_chinese_clip_encoder()                # its own: encode is patched below
    real = enc.encode

    def failing(texts, batch_size=64, progress=False):
        if any(t.startswith("去游泳") for t in texts):
            raise ValueError("tower failed on a batch")
        return real(texts, batch_size=batch_size, progress=progress)

    enc.encode = failing                             # inherited by the forked workers
    with pytest.raises(ValueError, match="tower failed"):
        list(encode_pieces(enc, TEXTS, batch_size=8, workers=2))


def test_a_failed_piece_skips_the_rest_and_waits_for_pieces_under_way():
    """A piece fails while the other worker is still encoding: the call raises the worker's error (not an error of
    the pool's shutdown), the pieces not yet started are skipped, and the next call works."""
    enc = tiny_chinese_clip_encoder()
    real = enc.encode
    shortest = min(TEXTS, key=len)                   # in the first piece (pieces go in length order)
    ran = multiprocessing.get_context("fork").Value("i", 0)   # inherited by the forked workers

    def slow_or_failing(texts, batch_size=64, progress=False):
        if shortest in texts:
            raise ValueError("tower failed on a batch")
        time.sleep(0.3)                              # still under way when the failure reaches the caller
        with ran.get_lock():
            ran.value += 1
        return real(texts, batch_size=batch_size, progress=progress)

    enc.encode = slow_or_failing
    for _ in range(3):
        ran.value = 0
        with pytest.raises(ValueError, match="tower failed"):
            list(encode_pieces(enc, TEXTS, batch_size=8, workers=2))
        pieces = -(-len(TEXTS) // 32)                # 4 batches of 8 a piece
        assert 1 <= ran.value < pieces - 1           # some pieces ran, the rest were skipped
    enc.encode = real
    out = list(encode_pieces(enc, TEXTS, batch_size=8, workers=2))
    assert sum(len(c) for c, _ in out) == len(TEXTS)


def test_a_few_texts_encode_in_process():
    enc = tiny_chinese_clip_encoder()
    calls = []
    real = enc.encode
    enc.encode = lambda texts, batch_size=64, progress=False: calls.append(len(texts)) or real(texts, batch_size)
    few = TEXTS[: 8 * MIN_BATCHES_PER_WORKER * 2 - 1]          # one text short of 2 workers' worth at batch 8
    out = list(encode_pieces(enc, few, batch_size=8, workers=2))
    assert calls == [len(few)] and len(out) == 1              # counted here: it ran in this process


def test_a_caller_that_stops_early_leaves_the_pool_cleanly(cn_encoder):
    pieces = encode_pieces(cn_encoder, TEXTS, batch_size=8, workers=2)
    first, emb = next(pieces)
    pieces.close()                                   # the caller stops after one piece, pieces still under way
    torch.testing.assert_close(emb, cn_encoder.encode(first, batch_size=8), atol=1e-6, rtol=0)
    out = list(encode_pieces(cn_encoder, TEXTS, batch_size=8, workers=2))   # and the next call works
    assert sorted(t for c, _ in out for t in c) == sorted(TEXTS)
