"""Ranged fetch of the text-tower block through fsspec file systems (local and in-memory), verify, resume."""

from __future__ import annotations

import hashlib
import json
import struct

import fsspec
import pytest
import torch

from zh_steve.errors import CheckpointError, WeightsNotFoundError
from zh_steve import hub
from zh_steve.weights.expected import HUB_TEXT_PREFIX
from zh_steve.weights.minestudio import HubCheckpoint
from zh_steve.checkpoint import read_safetensors_header
from zh_steve.weights.ranged import fetch_tensor_block, locate_block, read_text_block_state_dict, verify_block_file
from tiny_weights import tiny_weights, write_hub_dir


@pytest.fixture(scope="module")
def tw():
    return tiny_weights(seed=5)


@pytest.fixture(scope="module")
def hub_file(tw, tmp_path_factory):
    return write_hub_dir(tmp_path_factory.mktemp("hub"), tw)


def _expected(tw):
    return tw.expectations().hub_text_shapes()


def test_block_bytes_equal_a_full_read(tw, hub_file, tmp_path):
    out = fetch_tensor_block(str(hub_file), tmp_path / "text.safetensors", expected=_expected(tw))
    assert not out.reused
    with open(hub_file, "rb") as f:
        n, header = read_safetensors_header(f)
        block = locate_block(header, n)
        raw = hub_file.read_bytes()[block.file_range[0]:block.file_range[1]]
    assert out.sha256 == hashlib.sha256(raw).hexdigest()
    got = read_text_block_state_dict(out.path, _expected(tw), verify=True)
    full = HubCheckpoint(hub_file, tw.expectations()).state_dict("mineclip_text")
    assert got.keys() == full.keys() == tw.mineclip_text.keys()
    assert all(torch.equal(got[k], full[k]) for k in got)
    # the block file holds only the text tower: far smaller than the whole file
    assert out.path.stat().st_size < hub_file.stat().st_size


def test_same_code_path_over_another_fsspec_filesystem(tw, hub_file, tmp_path):
    mem = fsspec.filesystem("memory")
    mem.pipe("/repo@abc/model.safetensors", hub_file.read_bytes())
    out = fetch_tensor_block("repo@abc/model.safetensors", tmp_path / "t.safetensors", expected=_expected(tw),
                             fs=mem, chunk_bytes=1000)
    local = fetch_tensor_block(str(hub_file), tmp_path / "u.safetensors", expected=_expected(tw))
    assert out.sha256 == local.sha256


class _FailingFS:
    """Wraps a file system; the opened file raises after ``limit`` bytes have been read in total."""

    def __init__(self, inner, limit):
        self.inner, self.limit, self.read_total, self.seeks = inner, limit, 0, []

    def open(self, path, mode="rb", **kw):
        f = self.inner.open(path, mode, **kw)
        outer = self

        class F:
            def __enter__(self):
                return self

            def __exit__(self, *a):
                f.close()

            def seek(self, pos, whence=0):
                outer.seeks.append(pos)
                return f.seek(pos, whence)

            def read(self, n=-1):
                data = f.read(n)
                outer.read_total += len(data)
                if outer.limit is not None and outer.read_total > outer.limit:
                    raise ConnectionError("simulated network drop")
                return data

        return F()


def test_resume_continues_a_partial_fetch(tw, hub_file, tmp_path):
    dest = tmp_path / "text.safetensors"
    local = fsspec.filesystem("file")
    broken = _FailingFS(local, limit=30_000)
    with pytest.raises(ConnectionError):
        fetch_tensor_block(str(hub_file), dest, expected=_expected(tw), fs=broken, chunk_bytes=4096)
    part = dest.with_name(dest.name + ".part")
    assert part.exists() and part.stat().st_size > 0 and not dest.exists()
    have = part.stat().st_size
    again = _FailingFS(local, limit=None)
    out = fetch_tensor_block(str(hub_file), dest, expected=_expected(tw), fs=again, chunk_bytes=4096)
    with open(hub_file, "rb") as f:
        n, header = read_safetensors_header(f)
    start = locate_block(header, n).file_range[0]
    assert start + have in again.seeks  # continued where the part file ended
    assert out.sha256 == fetch_tensor_block(str(hub_file), tmp_path / "fresh.safetensors",
                                            expected=_expected(tw)).sha256
    assert not part.exists()


def test_cached_file_is_reused_without_reading_the_source(tw, hub_file, tmp_path):
    dest = tmp_path / "text.safetensors"
    first = fetch_tensor_block(str(hub_file), dest, expected=_expected(tw))

    class NoFS:
        def open(self, *a, **k):
            raise AssertionError("source must not be read when the cache verifies")

    second = fetch_tensor_block("hf://never/used", dest, expected=_expected(tw), fs=NoFS())
    assert second.reused and second.sha256 == first.sha256


def test_corrupt_cache_is_detected_and_refetched(tw, hub_file, tmp_path):
    dest = tmp_path / "text.safetensors"
    fetch_tensor_block(str(hub_file), dest, expected=_expected(tw))
    data = bytearray(dest.read_bytes())
    data[-5] ^= 0xFF
    dest.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        verify_block_file(dest, _expected(tw))
    out = fetch_tensor_block(str(hub_file), dest, expected=_expected(tw))
    assert not out.reused
    verify_block_file(dest, _expected(tw))


def test_manifest_mismatch_refused_before_download(tw, hub_file, tmp_path):
    exp = dict(_expected(tw))
    exp[HUB_TEXT_PREFIX + "not_there"] = (3,)
    with pytest.raises(CheckpointError, match="not_there"):
        fetch_tensor_block(str(hub_file), tmp_path / "x.safetensors", expected=exp)
    assert not (tmp_path / "x.safetensors.part").exists()


def _header_file(path, header):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 64)
    return path


def test_non_contiguous_block_and_bad_headers(tmp_path):
    p = HUB_TEXT_PREFIX
    header = {p + "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "zzz": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
              p + "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}}
    with pytest.raises(CheckpointError, match="not contiguous"):
        locate_block(header, 10)
    header[p + "b"]["shape"] = [3]
    with pytest.raises(CheckpointError, match="do not fit"):
        locate_block(header, 10)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(CheckpointError, match="implausible"):
        fetch_tensor_block(str(bad), tmp_path / "o.safetensors", expected={})
    with pytest.raises(CheckpointError, match="no tensors"):
        fetch_tensor_block(str(_header_file(tmp_path / "e.safetensors", {"x": {"dtype": "F32", "shape": [1],
                           "data_offsets": [0, 4]}})), tmp_path / "o2.safetensors", expected={})


def test_hf_path_offline_never_touches_network(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "hf_filesystem", lambda: pytest.fail("network used while offline"))
    with pytest.raises(WeightsNotFoundError, match="HF_HUB_OFFLINE"):
        fetch_tensor_block("hf://org/repo/model.safetensors", tmp_path / "t.safetensors", expected={})


def test_missing_local_source(tmp_path):
    with pytest.raises(WeightsNotFoundError):
        fetch_tensor_block(str(tmp_path / "nope.safetensors"), tmp_path / "t.safetensors", expected={})
