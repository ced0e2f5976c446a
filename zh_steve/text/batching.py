"""Length-sorted batching for the text towers' ``encode``: batches of texts of one token length."""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def length_sorted_batches(lengths: Sequence[int], batch_size: int, progress: bool = False,
                          desc: str = "encode") -> Iterator[list[int]]:
    """Row indices grouped by token length (longest first), at most ``batch_size`` per batch.

    Every batch holds rows of a single length, so no position is padding and each text costs what it would
    alone; callers scatter the results back to the input order (the same rows as unsorted batches, since each
    row's feature does not depend on the other rows of its batch).
    """
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(int(n), []).append(i)
    batches = [rows[j : j + batch_size] for n in sorted(by_length, reverse=True)
               for rows in (by_length[n],) for j in range(0, len(rows), batch_size)]
    if progress:
        from tqdm.auto import tqdm

        return iter(tqdm(batches, desc=desc, unit="batch"))
    return iter(batches)
