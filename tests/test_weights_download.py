"""``python -m zh_steve.download_weights`` with the network layer replaced by a local fake hub."""

from __future__ import annotations

import hashlib
import json
import shutil

import fsspec
import pytest

from zh_steve import download_weights as dw
from zh_steve.errors import CheckpointError
from zh_steve import hub
from tiny_weights import tiny_weights, write_hub_dir


def _remote_file(path, lfs):
    data = path.read_bytes()
    if lfs:
        return hub.RemoteFile(path.name, len(data), hashlib.sha256(data).hexdigest(), None)
    blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
    return hub.RemoteFile(path.name, len(data), None, blob)


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("repos")
    steve = root / "steve"
    write_hub_dir(steve, tiny_weights(seed=2))
    # fake model repos with the files the selection logic must choose between
    cc = root / "cc"
    cc.mkdir()
    for name, body in {"config.json": b"{}", "vocab.txt": b"[PAD]\n", "pytorch_model.bin": b"W" * 100,
                       "clip_cn_vit-b-16.pt": b"X" * 300, "preprocessor_config.json": b"{}"}.items():
        (cc / name).write_bytes(body)
    mt = root / "mt"
    mt.mkdir()
    for name, body in {"config.json": b"{}", "source.spm": b"s", "target.spm": b"t", "vocab.json": b"{}",
                       "pytorch_model.bin": b"B" * 50, "model.safetensors": b"S" * 40, "tf_model.h5": b"H"}.items():
        (mt / name).write_bytes(body)
    return {dw.HUB_REPO_ID: steve, dw.CHINESE_CLIP_HUB_ID: cc, dw.MARIAN_REPO: mt}


@pytest.fixture
def fake(monkeypatch, repos):
    calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def repo_files(repo_id, revision=None):
        calls.append(("info", repo_id))
        files = {p.name: _remote_file(p, lfs=p.stat().st_size > 60) for p in repos[repo_id].iterdir()}
        return "abc123", files

    def download_file(repo_id, filename, local_dir, revision=None):
        calls.append(("download", repo_id, filename, revision))
        local_dir.mkdir(parents=True, exist_ok=True)
        return shutil.copy(repos[repo_id] / filename, local_dir / filename)

    mem = fsspec.filesystem("memory")
    mem.pipe(f"/{dw.HUB_REPO_ID}@abc123/model.safetensors", (repos[dw.HUB_REPO_ID] / "model.safetensors").read_bytes())
    monkeypatch.setattr(hub, "repo_files", repo_files)
    monkeypatch.setattr(hub, "download_file", download_file)
    monkeypatch.setattr(hub, "hf_filesystem", lambda: mem)
    monkeypatch.setattr("zh_steve.weights.ranged.Expectations",
                        lambda: tiny_weights(seed=2).expectations())  # tiny file, tiny expectations
    return calls


def test_plan():
    assert [i.key for i in dw.plan("text", False)] == ["mineclip_text", "chinese_clip"]
    assert [i.key for i in dw.plan("agent", True)] == ["minestudio", "chinese_clip", "marian"]
    assert [i.key for i in dw.plan("all", False)] == ["minestudio", "mineclip_text", "chinese_clip"]


def test_select_files_prefers_safetensors_and_skips_other_formats(repos):
    listing = {p.name: None for p in repos[dw.MARIAN_REPO].iterdir()}
    chosen = dw.select_files(listing)
    assert "model.safetensors" in chosen and "pytorch_model.bin" not in chosen and "tf_model.h5" not in chosen
    cc = dw.select_files({p.name: None for p in repos[dw.CHINESE_CLIP_HUB_ID].iterdir()})
    assert "pytorch_model.bin" in cc and "clip_cn_vit-b-16.pt" not in cc and "vocab.txt" in cc
    with pytest.raises(CheckpointError):
        dw.select_files({"README.md": None})


def test_verify_file_checks_size_sha256_and_blob_id(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"hello")
    assert dw.verify_file(p, _remote_file(p, lfs=True))["verified"]
    assert "git_blob_id" in dw.verify_file(p, _remote_file(p, lfs=False))
    with pytest.raises(CheckpointError, match="bytes"):
        dw.verify_file(p, hub.RemoteFile("f", 6, None, None))
    with pytest.raises(CheckpointError, match="sha256"):
        dw.verify_file(p, hub.RemoteFile("f", 5, "0" * 64, None))
    with pytest.raises(CheckpointError, match="blob"):
        dw.verify_file(p, hub.RemoteFile("f", 5, None, "0" * 40))


def test_main_all_with_marian_writes_manifest(fake, tmp_path):
    assert dw.main(["--dest", str(tmp_path), "--with-marian"]) == 0
    data = json.loads((tmp_path / dw.MANIFEST_NAME).read_text())
    items = {e["item"]: e for e in data["items"]}
    assert set(items) == {"minestudio", "mineclip_text", "chinese_clip", "marian"}
    assert all(e["revision"] == "abc123" for e in items.values())
    assert (tmp_path / "minestudio" / "model.safetensors").is_file()
    assert (tmp_path / "mineclip_text" / "mineclip_text_tower.safetensors").is_file()
    assert all(f["verified"] for e in items.values() for f in e["files"])
    assert items["marian"]["licence"].startswith("CC-BY-4.0")
    downloads = [c for c in fake if c[0] == "download"]
    assert all(c[3] == "abc123" for c in downloads)  # pinned to the commit the sizes/hashes came from
    assert not any(c[2] == "clip_cn_vit-b-16.pt" for c in downloads)
    # the agent's resolver finds the result without network
    from zh_steve.check_weights import check_weights_dir
    tw = tiny_weights(seed=2)
    assert check_weights_dir(tmp_path, expected=tw.expectations(), expected_behaviour=tw.behaviour).usable


def test_text_only_merges_into_existing_manifest(fake, tmp_path):
    (tmp_path / dw.MANIFEST_NAME).write_text(json.dumps({"items": [{"item": "marian", "files": []}]}))
    assert dw.main(["--dest", str(tmp_path), "--only", "text"]) == 0
    items = {e["item"] for e in json.loads((tmp_path / dw.MANIFEST_NAME).read_text())["items"]}
    assert items == {"marian", "mineclip_text", "chinese_clip"}
    assert not (tmp_path / "minestudio").exists()


def test_corrupt_download_fails(fake, tmp_path, monkeypatch, repos):
    def bad_download(repo_id, filename, local_dir, revision=None):
        local_dir.mkdir(parents=True, exist_ok=True)
        (local_dir / filename).write_bytes(b"truncated")
        return local_dir / filename

    monkeypatch.setattr(hub, "download_file", bad_download)
    assert dw.main(["--dest", str(tmp_path), "--only", "agent"]) == 1


def test_offline_refuses(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "repo_files", lambda *a, **k: pytest.fail("network used"))
    assert dw.main(["--dest", str(tmp_path)]) == 2
