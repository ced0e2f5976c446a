"""The bulk embedding pass on CPU in forked single-threaded workers.

A batched text tower on CPU multiplies at close to the machine's peak, but the rest of each batch (Python module
calls, attention kernels on a handful of tokens, layer norms, GELU) does not speed up with more intra-op threads.
On this project's 2-core machine two 1-thread processes encode about 1.25× as many Chinese-CLIP texts per second
as one 2-thread process (random full-size weights, bfloat16, 4-token dictionary words).

Workers are forked once per call, after the encoder is built, so they share its weights copy-on-write (no second
load); each runs ``torch.set_num_threads(1)``, as DataLoader workers do. The texts are sorted by length and cut
into pieces of a few batches; workers take the next piece as they finish one, so they stay busy to the end, and
each piece's texts have nearly one length, so the batches inside it are full. A row's feature does not depend on
the other rows of its batch, so the result is the in-process one, row for row.
Only the project's torch towers take part. The proxy encoders run numpy with their own threads and encode in
process, and so does everything when ``fork`` is unavailable or the tower sits on a GPU.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence

import torch

from zh_steve.text.base import TextEncoder

from .encoders import tower_attr

_ENCODER: TextEncoder | None = None    # the parent's encoder, inherited by the forked workers
_STOP = None                           # a multiprocessing Event, inherited too: set once a piece has failed
# fewer texts than this many batches per worker encode in process: forking a multi-GB trainer and starting the
# pool costs more than it saves on a few hundred texts (the 187-line free-form set: 2.4 s in process, 3.6 s forked)
MIN_BATCHES_PER_WORKER = 4


def can_fork(encoder: TextEncoder) -> bool:
    """Whether ``encoder`` may be split across forked CPU workers (a project torch tower on CPU, fork available)."""
    attr = tower_attr(encoder)
    if attr is None or "fork" not in multiprocessing.get_all_start_methods():
        return False
    return next(getattr(encoder, attr).parameters()).device.type == "cpu"


def default_workers() -> int:
    """One single-threaded worker per torch CPU thread (a tower on a GPU encodes in process anyway)."""
    return max(1, torch.get_num_threads())


def _init_worker() -> None:
    torch.set_num_threads(1)


def _encode(args: tuple[list[str], int]) -> torch.Tensor | None:
    texts, batch_size = args
    assert _ENCODER is not None and _STOP is not None
    if _STOP.is_set():                 # another piece failed: the call raises anyway, skip the work
        return None
    return _ENCODER.encode(texts, batch_size=batch_size)


def encode_pieces(encoder: TextEncoder, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False,
                  workers: int = 1, piece: int = 4096) -> Iterator[tuple[list[str], torch.Tensor]]:
    """Yield ``(texts, encoder.encode(texts))`` piece by piece until every text is encoded.

    In process (``workers`` ≤ 1, fewer than ``MIN_BATCHES_PER_WORKER`` batches per worker, or :func:`can_fork`
    says no): pieces of ``piece`` texts in the given order, each
    with the encoder's own progress bar. With workers: pieces of 4 batches in length order, encoded by ``workers``
    forked 1-thread processes, one progress bar over all texts."""
    global _ENCODER, _STOP
    texts = list(texts)
    workers = min(int(workers), len(texts) // (MIN_BATCHES_PER_WORKER * max(1, batch_size)))
    if workers <= 1 or not can_fork(encoder):
        for s in range(0, len(texts), piece):
            chunk = texts[s:s + piece]
            yield chunk, encoder.encode(chunk, batch_size=batch_size, progress=progress)
        return
    order = sorted(texts, key=len)
    step = 4 * batch_size
    chunks = [order[s:s + step] for s in range(0, len(order), step)]
    from tqdm.auto import tqdm

    ctx = multiprocessing.get_context("fork")
    _ENCODER, _STOP = encoder, ctx.Event()
    try:
        with ctx.Pool(workers, initializer=_init_worker) as pool, \
                tqdm(total=len(texts), desc=f"encode ({workers} workers)", unit="text", disable=not progress) as bar:
            results = pool.imap(_encode, [(c, batch_size) for c in chunks])
            try:
                for chunk, emb in zip(chunks, results):
                    bar.update(len(chunk))
                    yield chunk, emb
            except (Exception, GeneratorExit):
                # A piece failed, or the caller stopped early. Collect the rest before leaving the pool, with the
                # pieces not yet started skipped: a worker hands its tensor back as a file descriptor that only a
                # live worker can pass on, and Pool.terminate with results in flight lets the workers exit first
                # (the parent's result thread then dies and terminate fails with an AssertionError of its own).
                _STOP.set()
                _drain(results)
                raise
    finally:
        _ENCODER = _STOP = None


def _drain(results: Iterator) -> None:
    """Consume the rest of a pool's result iterator, dropping results and errors alike."""
    while True:
        try:
            next(results)
        except StopIteration:
            return
        except Exception:
            pass
