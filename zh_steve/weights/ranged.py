"""Fetch only the MineCLIP text tower out of the 1.6 GB MineStudio file, by byte range.

A safetensors file is ``<u64 little-endian header length><JSON header><data>``; the header gives each tensor's
``data_offsets`` inside the data section. The text tower (``mineclip.clip_model.text_model.*``, 149 tensors,
≈242 MiB in fp32) is one contiguous run of that section, so alignment training and the translation baseline
can read just that range. The same code reads ``hf://`` paths (``huggingface_hub.HfFileSystem``, HTTP range
requests) and local files (``fsspec``'s local file system), so the local tests exercise the real path.

The block is written as its own small safetensors file (hub key names kept), with the sha256 of the block
in its metadata; a later call reuses the file when it still verifies, and a ``.part`` file from an interrupted
fetch is continued instead of restarted.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import hub
from ..checkpoint import DTYPE_BYTES, FLOAT_DTYPES, Shape, compare_keys, read_safetensors_header
from ..errors import CheckpointError, WeightsNotFoundError
from ..published import HUB_TEXT_PREFIX
from .expected import Expectations

TEXT_BLOCK_RELPATH = "mineclip_text/mineclip_text_tower.safetensors"
META_SHA = "zh_steve_block_sha256"


@dataclass
class TensorBlock:
    """A contiguous run of tensors in a safetensors file (offsets relative to the data section)."""

    prefix: str
    header_len: int
    start: int
    end: int
    entries: dict[str, dict[str, Any]]

    @property
    def n_bytes(self) -> int:
        return self.end - self.start

    @property
    def file_range(self) -> tuple[int, int]:
        """``[first, last)`` byte of the block in the whole file."""
        base = 8 + self.header_len
        return base + self.start, base + self.end


@dataclass
class BlockFile:
    """Result of :func:`fetch_tensor_block`."""

    path: Path
    sha256: str
    n_bytes: int
    source: str
    reused: bool


def locate_block(header: Mapping[str, Any], header_len: int, prefix: str = HUB_TEXT_PREFIX) -> TensorBlock:
    """The byte range of all tensors whose name starts with ``prefix``; they must be contiguous."""
    entries = {k: v for k, v in header.items() if k != "__metadata__" and k.startswith(prefix)}
    if not entries:
        raise CheckpointError(f"no tensors named {prefix}* in this safetensors file")
    ordered = sorted(entries.items(), key=lambda kv: kv[1]["data_offsets"][0])
    for key, info in ordered:
        s, e = info["data_offsets"]
        n = 1
        for d in info["shape"]:
            n *= int(d)
        if info["dtype"] not in DTYPE_BYTES or e - s != n * DTYPE_BYTES[info["dtype"]]:
            raise CheckpointError(f"{key}: {e - s} bytes do not fit dtype {info['dtype']} and shape {info['shape']}")
    for (k0, i0), (k1, i1) in zip(ordered, ordered[1:]):
        if i0["data_offsets"][1] != i1["data_offsets"][0]:
            raise CheckpointError(f"the {prefix}* tensors are not contiguous in the file (gap between {k0} "
                                  f"and {k1}); a ranged fetch cannot take them in one piece")
    start, end = ordered[0][1]["data_offsets"][0], ordered[-1][1]["data_offsets"][1]
    return TensorBlock(prefix, header_len, start, end, dict(ordered))


def check_block_entries(entries: Mapping[str, Mapping[str, Any]], expected: Mapping[str, Shape], where: str) -> None:
    """Keys and shapes against ``expected`` (hub key space); every dtype must be a float type."""
    report = compare_keys(expected, {k: tuple(v["shape"]) for k, v in entries.items()})
    if not report.ok:
        raise CheckpointError(f"{where}: the text-tower tensors do not match the manifest: {report.describe()}")
    bad = [f"{k} ({v['dtype']})" for k, v in entries.items() if v["dtype"] not in FLOAT_DTYPES]
    if bad:
        raise CheckpointError(f"{where}: non-float text-tower tensors: {', '.join(bad[:10])}")


def open_source(source: str, fs: Any = None) -> tuple[Any, str]:
    """``(fsspec file system, path)`` for ``hf://<repo>/<file>`` or a local path (or a given ``fs``)."""
    if fs is not None:
        return fs, source
    if source.startswith("hf://"):
        hub.require_online(f"the MineCLIP text tower ({source})")
        return hub.hf_filesystem(), source[len("hf://"):]
    import fsspec

    return fsspec.filesystem("file"), str(Path(source).resolve())


def hub_source(repo_id: str, filename: str = "model.safetensors", revision: str | None = None) -> str:
    """The ``hf://`` path of a hub file (``@revision`` pins a commit/branch)."""
    at = f"@{revision}" if revision else ""
    return f"hf://{repo_id}{at}/{filename}"


# ----------------------------------------------------------------------------------------------------------
# the cached block file
# ----------------------------------------------------------------------------------------------------------

def _sha256_of_file_range(path: Path, start: int, chunk: int = 1 << 24) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        f.seek(start)
        while block := f.read(chunk):
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


def verify_block_file(path: str | Path, expected: Mapping[str, Shape] | None = None) -> str:
    """Check a cached block file (keys, shapes, sha256 recorded at fetch time); return its sha256."""
    path = Path(path)
    expected = Expectations().hub_text_shapes() if expected is None else expected
    with open(path, "rb") as f:
        n, header = read_safetensors_header(f)
    meta = header.get("__metadata__") or {}
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    check_block_entries(entries, expected, str(path))
    want = meta.get(META_SHA)
    if not want:
        raise CheckpointError(f"{path}: no {META_SHA} in its metadata; not written by zh-steve, refetch it")
    got, size = _sha256_of_file_range(path, 8 + n)
    total = max(v["data_offsets"][1] for v in entries.values())
    if size != total or got != want:
        raise CheckpointError(f"{path}: data is corrupt (sha256 {got[:12]}…, {size} bytes; recorded "
                              f"{want[:12]}…, {total} bytes)")
    return got


def _write_block_file(dest: Path, block: TensorBlock, part: Path, sha: str, source: str) -> None:
    header: dict[str, Any] = {
        k: {"dtype": v["dtype"], "shape": list(v["shape"]),
            "data_offsets": [v["data_offsets"][0] - block.start, v["data_offsets"][1] - block.start]}
        for k, v in block.entries.items()
    }
    header["__metadata__"] = {
        META_SHA: sha,
        "zh_steve_source": source,
        "zh_steve_source_byte_range": json.dumps(list(block.file_range)),
        "zh_steve_prefix": block.prefix,
    }
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = dest.with_name(dest.name + ".tmp")
    with open(tmp, "wb") as out, open(part, "rb") as src:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        while chunk := src.read(1 << 24):
            out.write(chunk)
    os.replace(tmp, dest)


def fetch_tensor_block(
    source: str,
    dest: str | Path,
    *,
    prefix: str = HUB_TEXT_PREFIX,
    expected: Mapping[str, Shape] | None = None,
    fs: Any = None,
    chunk_bytes: int = 16 << 20,
    progress: bool = False,
) -> BlockFile:
    """Read the ``prefix`` block of the safetensors file at ``source`` and store it as ``dest``.

    ``source``: ``hf://repo/file`` (HfFileSystem) or a local path (fsspec local file system); ``fs`` overrides
    the file system. ``expected``: hub key → shape map the block must match (default: the manifest).
    """
    dest = Path(dest)
    expected = Expectations().hub_text_shapes() if expected is None else expected
    if dest.is_file():
        try:
            sha = verify_block_file(dest, expected)
            return BlockFile(dest, sha, dest.stat().st_size, source, reused=True)
        except CheckpointError:
            dest.unlink()  # stale or corrupt: fetch again

    fsys, path = open_source(source, fs)
    try:
        f = fsys.open(path, "rb", block_size=chunk_bytes, cache_type="none")
    except FileNotFoundError as e:
        raise WeightsNotFoundError(f"{source} not found: {e}") from e
    with f:
        header_len, header = read_safetensors_header(f)
        block = locate_block(header, header_len, prefix)
        check_block_entries(block.entries, expected, source)
        first, last = block.file_range
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        state = dest.with_name(dest.name + ".part.json")
        header_sha = hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()
        this = {"source": source, "range": [first, last], "header_sha256": header_sha}
        if part.exists() and (not state.exists() or json.loads(state.read_text()) != this
                              or part.stat().st_size > block.n_bytes):
            part.unlink()
        state.write_text(json.dumps(this))

        h = hashlib.sha256()
        have = 0
        if part.exists():
            with open(part, "rb") as old:
                while chunk := old.read(1 << 24):
                    h.update(chunk)
                    have += len(chunk)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=block.n_bytes, initial=have, unit="B", unit_scale=True, desc="MineCLIP text tower")
        with open(part, "ab") as out:
            f.seek(first + have)
            while have < block.n_bytes:
                chunk = f.read(min(chunk_bytes, block.n_bytes - have))
                if not chunk:
                    raise CheckpointError(f"{source}: file ended after {first + have} bytes; expected the text "
                                          f"tower to end at byte {last}")
                out.write(chunk)
                h.update(chunk)
                have += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        if bar is not None:
            bar.close()

    sha = h.hexdigest()
    _write_block_file(dest, block, part, sha, source)
    part.unlink()
    state.unlink()
    verify_block_file(dest, expected)
    return BlockFile(dest, sha, dest.stat().st_size, source, reused=False)


def read_text_block_state_dict(path: str | Path, expected: Mapping[str, Shape] | None = None,
                               verify: bool = False) -> dict[str, torch.Tensor]:
    """The text tower from a block file, keys relative to the text model, fp32."""
    from safetensors import safe_open

    path = Path(path)
    if verify:
        verify_block_file(path, expected)
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        entries = {k: {"shape": f.get_slice(k).get_shape(), "dtype": f.get_slice(k).get_dtype()} for k in keys}
        check_block_entries(entries, Expectations().hub_text_shapes() if expected is None else expected, str(path))
        return {k[len(HUB_TEXT_PREFIX):]: f.get_tensor(k).to(torch.float32) for k in keys}
