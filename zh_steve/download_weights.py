"""``python -m zh_steve.download_weights``: fetch the pretrained weights zh-steve uses, through huggingface_hub.

What ``--only`` fetches (into ``--dest``, default ``$ZS_WEIGHTS_CACHE`` or ``~/.cache/zh-steve/weights``,
which is where the agent looks by itself):

  text   MineCLIP text tower only (≈242 MiB byte range of the MineStudio file) + Chinese-CLIP ViT-B/16
  agent  the MineStudio STEVE-1 file (policy + prior + MineCLIP, ≈1.64 GB) + config.json + Chinese-CLIP
  all    both of the above (default)
  --with-marian adds Helsinki-NLP/opus-mt-zh-en (translation baseline).

Interrupted downloads resume; sizes and hashes are checked against what the Hub reports; a manifest
``zh_steve_weights.json`` in ``--dest`` records what is where.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CheckpointError, ZhSteveError
from . import hub
from .hub import default_cache_dir
from .published import CHINESE_CLIP_HUB_ID, HUB_CONFIG_FILE, HUB_REPO_ID, HUB_WEIGHTS_FILE
from .weights.ranged import TEXT_BLOCK_RELPATH, fetch_tensor_block, hub_source

MANIFEST_NAME = "zh_steve_weights.json"
MARIAN_REPO = "Helsinki-NLP/opus-mt-zh-en"

# small files a transformers model directory needs (whichever of them the repo has)
_SIDE_FILES = ("config.json", "preprocessor_config.json", "generation_config.json", "tokenizer_config.json",
               "special_tokens_map.json", "tokenizer.json", "vocab.txt", "vocab.json", "merges.txt",
               "source.spm", "target.spm", "README.md")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")   # first one present wins

LICENCES = {  # as far as we could verify offline; check each model card before redistributing
    HUB_REPO_ID: "not verified: the hub repo states no licence we could see (MineStudio's code is MIT); the tensors "
                 "are the STEVE-1 / VPT / MineCLIP releases re-packed, released 'for further research'",
    CHINESE_CLIP_HUB_ID: "not verified: see the model card (sibling OFA-Sys/chinese-clip-rn50 is Apache-2.0)",
    MARIAN_REPO: "CC-BY-4.0 (model card)",
}


@dataclass
class Item:
    key: str
    repo_id: str
    kind: str          # hub-layout | text-block | snapshot
    subdir: str


def plan(only: str, with_marian: bool) -> list[Item]:
    items: list[Item] = []
    if only in ("agent", "all"):
        items.append(Item("minestudio", HUB_REPO_ID, "hub-layout", "minestudio"))
    if only in ("text", "all"):
        items.append(Item("mineclip_text", HUB_REPO_ID, "text-block", str(Path(TEXT_BLOCK_RELPATH).parent)))
    items.append(Item("chinese_clip", CHINESE_CLIP_HUB_ID, "snapshot", CHINESE_CLIP_HUB_ID.split("/")[1]))
    if with_marian:
        items.append(Item("marian", MARIAN_REPO, "snapshot", MARIAN_REPO.split("/")[1]))
    return items


def select_files(listing: dict[str, hub.RemoteFile]) -> list[str]:
    """Config/tokenizer files present in a repo, plus one weights file (safetensors preferred)."""
    chosen = [n for n in _SIDE_FILES if n in listing]
    weights = next((n for n in _WEIGHT_FILES if n in listing), None)
    if weights is None:
        raise CheckpointError(f"no {' or '.join(_WEIGHT_FILES)} in this repo (files: {sorted(listing)[:20]})")
    return chosen + [weights]


def _hash(path: Path, algo: str, prefix: bytes = b"") -> str:
    h = hashlib.new(algo)
    h.update(prefix)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: Path, remote: hub.RemoteFile) -> dict[str, Any]:
    """Compare a downloaded file with the Hub's size and sha256 (LFS) or git blob id (small files)."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        raise CheckpointError(f"{path}: {size:,} bytes, the Hub reports {remote.size:,}; delete it and retry")
    entry: dict[str, Any] = {"size": size}
    if remote.sha256:
        got = _hash(path, "sha256")
        if got != remote.sha256:
            raise CheckpointError(f"{path}: sha256 {got} differs from the Hub's {remote.sha256}; delete it and retry")
        entry["sha256"] = got
    elif remote.blob_id:
        got = _hash(path, "sha1", f"blob {size}\0".encode())
        if got != remote.blob_id:
            raise CheckpointError(f"{path}: git blob id {got} differs from the Hub's {remote.blob_id}")
        entry["git_blob_id"] = got
    entry["verified"] = bool(remote.size is not None or remote.sha256 or remote.blob_id)
    return entry


def fetch_item(item: Item, dest: Path, revision: str | None = None, verify: bool = True) -> dict[str, Any]:
    """Download one item; returns its manifest entry."""
    commit, listing = hub.repo_files(item.repo_id, revision if item.repo_id == HUB_REPO_ID else None)
    out_dir = dest / item.subdir
    files: list[dict[str, Any]] = []
    if item.kind == "text-block":
        if HUB_WEIGHTS_FILE not in listing:
            raise CheckpointError(f"{item.repo_id}@{commit[:10]} has no {HUB_WEIGHTS_FILE}")
        got = fetch_tensor_block(hub_source(item.repo_id, HUB_WEIGHTS_FILE, commit), dest / TEXT_BLOCK_RELPATH,
                                 progress=True)
        files.append({"name": Path(TEXT_BLOCK_RELPATH).name, "path": str(got.path.relative_to(dest)),
                      "size": got.n_bytes, "block_sha256": got.sha256, "verified": True,
                      "from": f"{item.repo_id}/{HUB_WEIGHTS_FILE} (byte range)", "reused": got.reused})
    else:
        names = [HUB_CONFIG_FILE, HUB_WEIGHTS_FILE] if item.kind == "hub-layout" else select_files(listing)
        for name in names:
            if name not in listing:
                raise CheckpointError(f"{item.repo_id}@{commit[:10]} has no {name}")
            path = hub.download_file(item.repo_id, name, out_dir, commit)
            entry = {"name": name, "path": str(Path(path).resolve().relative_to(dest.resolve()))}
            entry.update(verify_file(Path(path), listing[name]) if verify else {"size": Path(path).stat().st_size,
                                                                                "verified": False})
            files.append(entry)
    return {"item": item.key, "repo_id": item.repo_id, "revision": commit, "kind": item.kind,
            "licence": LICENCES.get(item.repo_id, "see the model card"), "files": files}


def write_manifest(dest: Path, entries: list[dict[str, Any]]) -> Path:
    """Merge ``entries`` into ``dest/zh_steve_weights.json`` (one entry per item)."""
    path = dest / MANIFEST_NAME
    old: dict[str, Any] = {}
    if path.is_file():
        try:
            old = {e["item"]: e for e in json.loads(path.read_text(encoding="utf-8")).get("items", [])}
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            old = {}
    for e in entries:
        old[e["item"]] = e
    data = {"written_by": "python -m zh_steve.download_weights", "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "items": list(old.values())}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zh_steve.download_weights",
                                     description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--dest", type=Path, default=None, help="target directory (default: the zh-steve cache)")
    parser.add_argument("--only", choices=("text", "agent", "all"), default="all")
    parser.add_argument("--with-marian", action="store_true", help=f"also fetch {MARIAN_REPO}")
    parser.add_argument("--revision", default=None, help=f"branch/tag/commit of {HUB_REPO_ID}")
    parser.add_argument("--no-verify", action="store_true", help="skip hashing the downloaded files")
    args = parser.parse_args(argv)

    dest = (args.dest or default_cache_dir()).expanduser()
    if hub.is_offline():
        print("HF_HUB_OFFLINE is set: nothing can be downloaded. Unset it, or copy the files in by hand "
              "(see `python -m zh_steve.check_weights`).", file=sys.stderr)
        return 2
    dest.mkdir(parents=True, exist_ok=True)
    entries = []
    try:
        for item in plan(args.only, args.with_marian):
            print(f"[{item.key}] {item.repo_id} -> {dest / item.subdir}", file=sys.stderr)
            entries.append(fetch_item(item, dest, args.revision, verify=not args.no_verify))
    except ZhSteveError as e:
        print(f"error: {e}", file=sys.stderr)
        if entries:
            write_manifest(dest, entries)
        return 1
    path = write_manifest(dest, entries)
    print(f"done; manifest: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
