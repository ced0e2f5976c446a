"""Bottom layer: every network call of zh-steve, the offline switches and the weights cache path, in one place.

Text towers, :mod:`zh_steve.weights`, ``download_weights`` and eval's translator all use it; tests replace
``repo_files``, ``download_file``, ``cached_file`` and ``hf_filesystem``. Nothing here touches the network when
``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set: :func:`require_online` raises first, naming what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import WeightsNotFoundError, ZhSteveError

_TRUE = {"1", "ON", "YES", "TRUE"}


def default_cache_dir() -> Path:
    """``$ZS_WEIGHTS_CACHE`` or ``~/.cache/zh-steve/weights``."""
    env = os.environ.get("ZS_WEIGHTS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "zh-steve" / "weights"


def local_snapshot(name_or_path: str, cache_dir: str | Path | None = None) -> str:
    """A hub id → the snapshot ``python -m zh_steve.download_weights`` saved in the zh-steve cache, if there;
    anything else (a local dir, an id not downloaded) is returned unchanged for ``from_pretrained`` to resolve."""
    if "/" not in name_or_path or Path(name_or_path).expanduser().exists():
        return name_or_path
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    snapshot = root / name_or_path.split("/")[-1]
    return str(snapshot) if (snapshot / "config.json").is_file() else name_or_path


def is_offline() -> bool:
    """True when the Hugging Face offline switches are set (read at call time, not import time)."""
    return any(os.environ.get(v, "").upper() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def downloads_refused() -> bool:
    """True when ``ZS_NO_DOWNLOAD`` is set: zh-steve may use cached files but must not fetch new ones."""
    return os.environ.get("ZS_NO_DOWNLOAD", "").upper() in _TRUE


def require_online(what: str) -> None:
    if is_offline():
        raise WeightsNotFoundError(f"{what} is not available locally and HF_HUB_OFFLINE is set, so zh-steve "
                                   f"will not touch the network.")


@contextmanager
def network_errors(what: str) -> Iterator[None]:
    """Turn any failure of a hub request (no route, DNS, HTTP 4xx/5xx, a broken transfer) into one
    :class:`WeightsNotFoundError` that says what could not be fetched and what to do instead."""
    try:
        yield
    except ZhSteveError:
        raise
    except KeyboardInterrupt:
        raise
    except Exception as e:  # httpx / huggingface_hub / fsspec raise many unrelated types for network trouble
        reason = " ".join(str(e).split())[:300] or type(e).__name__
        raise WeightsNotFoundError(
            f"could not fetch {what} from the Hugging Face hub ({type(e).__name__}: {reason}). Run "
            "`python -m zh_steve.download_weights` on a machine with internet and copy ~/.cache/zh-steve/weights "
            "here, or point the config at local files; set HF_HUB_OFFLINE=1 to skip the network entirely."
        ) from e


@dataclass(frozen=True)
class RemoteFile:
    """What the Hub reports about one file of a repo at one commit."""

    filename: str
    size: int | None
    sha256: str | None      # LFS files: sha256 of the content
    blob_id: str | None     # git blob id (sha1 of "blob <size>\\0" + content)


def repo_files(repo_id: str, revision: str | None = None) -> tuple[str, dict[str, RemoteFile]]:
    """``(commit sha, {filename: RemoteFile})`` for a model repo (one API call)."""
    from huggingface_hub import HfApi

    require_online(f"the file list of {repo_id}")
    with network_errors(f"the file list of {repo_id}"):
        info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    files = {}
    for s in info.siblings or []:
        lfs = s.lfs
        files[s.rfilename] = RemoteFile(
            filename=s.rfilename, size=s.size, blob_id=s.blob_id,
            sha256=(lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)) if lfs else None,
        )
    return info.sha, files


def download_file(repo_id: str, filename: str, local_dir: str | Path, revision: str | None = None) -> Path:
    """``hf_hub_download`` into ``local_dir`` (resumes an interrupted download, shows tqdm progress)."""
    from huggingface_hub import hf_hub_download

    require_online(f"{repo_id}/{filename}")
    with network_errors(f"{repo_id}/{filename}"):
        return Path(hf_hub_download(repo_id, filename, revision=revision, local_dir=str(local_dir)))


def cached_file(repo_id: str, filename: str, revision: str | None = None) -> Path | None:
    """The file from the standard Hugging Face cache, if it is there. Never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo_id, filename, revision=revision)
    return Path(hit) if isinstance(hit, str) and Path(hit).is_file() else None


def hf_filesystem() -> Any:
    """An ``fsspec`` file system for ``hf://`` paths (range reads over HTTP)."""
    from huggingface_hub import HfFileSystem

    return HfFileSystem()
