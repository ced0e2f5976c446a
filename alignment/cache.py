"""On-disk embedding cache: each (encoder identity, text) is encoded once, ever.

Layout under ``cache_dir`` (default ``~/.cache/zh-steve/embeddings``)::

    <sha256(identity)[:16]>/identity.txt             the encoder identity, for humans and for checking
    <sha256(identity)[:16]>/shard-<sha256(keys)[:20]>.safetensors  tensor "embeddings" [n, dim] float32,
                                                     metadata "keys" = JSON list of sha256(identity \\0 text)

New texts go into a new shard, written atomically (temp file + rename), so concurrent readers never see a
half-written file. A shard is named by its keys, so two runs adding different texts at the same time never
overwrite each other's shard (a numbered name could be picked by both); identical content gets the same name.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from zh_steve.errors import CheckpointError, ZhSteveError
from zh_steve.text.base import TextEncoder

DEFAULT_CACHE_DIR = Path("~/.cache/zh-steve/embeddings")


def text_key(identity: str, text: str) -> str:
    """The cache key of ``text`` under an encoder ``identity``."""
    return hashlib.sha256(f"{identity}\0{text}".encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Embeddings of one encoder, loaded from and appended to its cache folder."""

    def __init__(self, cache_dir: str | Path | None, identity: str, dim: int) -> None:
        self.identity, self.dim = identity, int(dim)
        root = Path(cache_dir).expanduser() if cache_dir is not None else DEFAULT_CACHE_DIR.expanduser()
        self.dir = root / hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
        self._rows: dict[str, torch.Tensor] = {}
        self._load()

    def _load(self) -> None:
        if not self.dir.is_dir():
            return
        stored = (self.dir / "identity.txt").read_text(encoding="utf-8") if (self.dir / "identity.txt").is_file() else None
        if stored is not None and stored != self.identity:
            raise CheckpointError(f"embedding cache {self.dir} belongs to encoder {stored!r}, not {self.identity!r}")
        for shard in sorted(self.dir.glob("shard-*.safetensors")):
            try:
                with safe_open(str(shard), framework="pt") as f:
                    keys = json.loads((f.metadata() or {})["keys"])
                    emb = f.get_tensor("embeddings")
            except Exception as e:
                raise CheckpointError(f"embedding cache shard {shard} is unreadable ({e}); delete it to rebuild") from e
            if emb.shape != (len(keys), self.dim):
                raise CheckpointError(f"embedding cache shard {shard} has shape {list(emb.shape)}, "
                                      f"expected [{len(keys)}, {self.dim}]; delete it to rebuild")
            self._rows.update(zip(keys, emb))

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, text: str) -> bool:
        return text_key(self.identity, text) in self._rows

    def get(self, texts: Sequence[str]) -> torch.Tensor:
        """Stacked embeddings ``[N, dim]`` of texts that are all cached."""
        if not texts:
            return torch.zeros(0, self.dim)
        return torch.stack([self._rows[text_key(self.identity, t)] for t in texts])

    def add(self, texts: Sequence[str], embeddings: torch.Tensor) -> None:
        """Store new embeddings (one new shard)."""
        if len(texts) == 0:
            return
        embeddings = embeddings.detach().to("cpu", torch.float32).contiguous()
        if embeddings.shape != (len(texts), self.dim):
            raise ZhSteveError(f"encoder {self.identity!r} returned shape {list(embeddings.shape)} "
                               f"for {len(texts)} texts, expected [{len(texts)}, {self.dim}]")
        keys = [text_key(self.identity, t) for t in texts]
        self.dir.mkdir(parents=True, exist_ok=True)
        ident = self.dir / "identity.txt"
        if not ident.is_file():  # atomically: a concurrent reader must never see it empty (it would refuse)
            tmp_ident = ident.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
            tmp_ident.write_text(self.identity, encoding="utf-8")
            os.replace(tmp_ident, ident)
        digest = hashlib.sha256("\n".join(keys).encode("ascii")).hexdigest()[:20]
        final = self.dir / f"shard-{digest}.safetensors"
        tmp = final.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
        save_file({"embeddings": embeddings}, str(tmp), metadata={"keys": json.dumps(keys), "identity": self.identity})
        os.replace(tmp, final)
        self._rows.update(zip(keys, embeddings))


def encode_cached(
    encoder: TextEncoder,
    texts: Sequence[str],
    cache_dir: str | Path | None = None,
    *,
    batch_size: int = 64,
    progress: bool = False,
    shard_size: int = 4096,
    workers: int = 1,
) -> tuple[torch.Tensor, int]:
    """Embeddings ``[len(texts), dim]`` of ``texts``; only texts missing from the cache are encoded.

    Missing texts are encoded and saved about ``shard_size`` at a time, so an interrupted run keeps its progress;
    ``workers`` > 1 encodes them in forked single-threaded CPU workers (:func:`alignment.encode_pool.encode_pieces`).
    Returns the embeddings and the number of texts actually encoded.
    """
    from .encode_pool import encode_pieces

    cache = EmbeddingCache(cache_dir, encoder.identity, encoder.dim)
    missing = list(dict.fromkeys(t for t in texts if t not in cache))
    done: list[str] = []
    embs: list[torch.Tensor] = []
    for chunk, emb in encode_pieces(encoder, missing, batch_size=batch_size, progress=progress, workers=workers,
                                    piece=shard_size):
        done += chunk
        embs.append(torch.as_tensor(emb))
        if len(done) >= shard_size:
            cache.add(done, torch.cat(embs))
            done, embs = [], []
    if done:
        cache.add(done, torch.cat(embs))
    return cache.get(list(texts)), len(missing)
