"""Step 4 of the resolution: what is still missing is fetched from the hub, if allowed.

Refused (one error naming each missing file and where it is published) when ``HF_HUB_OFFLINE=1``, or when
``allow_download=False`` / ``ZS_NO_DOWNLOAD=1``. Needing only the MineCLIP text tower fetches just its byte range
of the MineStudio file; anything else downloads ``model.safetensors`` + ``config.json`` (size announced first).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from .. import hub
from ..errors import WeightsNotFoundError
from ..published import (COMPONENT_FILE, HUB_APPROX_SIZE, HUB_CONFIG_FILE, HUB_REPO_ID, HUB_URL, HUB_WEIGHTS_FILE,
                         OFFICIAL_FILES)
from .expected import Expectations, payload_bytes
from .layout import LAYOUT_HUB, LAYOUT_TEXT_BLOCK, ComponentSource
from .ranged import TEXT_BLOCK_RELPATH, fetch_tensor_block, hub_source
from .spec import WeightsSpec


def missing_message(missing: list[str], why: str) -> str:
    lines = [f"STEVE-1 weights missing: {', '.join(missing)}. {why}", "Get them from either source:"]
    for c in missing:
        f = OFFICIAL_FILES[COMPONENT_FILE[c]]
        lines.append(f"  - {c}: official {f.name} ({f.approx_size}) from {f.published_at} "
                     f"-> <weights dir>/{f.relpath}")
    lines.append(f"  - or all of them in one file: {HUB_WEIGHTS_FILE} + {HUB_CONFIG_FILE} ({HUB_APPROX_SIZE}) "
                 f"from {HUB_URL}")
    text_mib = payload_bytes(Expectations().hub_text_shapes()) / 2**20
    lines.append(f"Run `python -m zh_steve.download_weights` (or `--only text` for the {text_mib:.0f} MiB text "
                 "tower), or pass --weights-dir / explicit paths; `python -m zh_steve.check_weights DIR` checks a "
                 "directory.")
    return "\n".join(lines)


def fetch_missing(missing: list[str], spec: WeightsSpec, cache: Path, expected: Expectations,
                  notify: Callable[[str], None]) -> dict[str, ComponentSource]:
    """Download ``missing`` components into ``cache`` (or refuse, naming what is missing and where to get it)."""
    if hub.is_offline():
        raise WeightsNotFoundError(missing_message(missing, "HF_HUB_OFFLINE is set, so zh-steve did not "
                                                             "try to download them."))
    allowed = spec.allow_download if spec.allow_download is not None else not hub.downloads_refused()
    if not allowed:
        raise WeightsNotFoundError(missing_message(missing, "Downloads are switched off (allow_download=False "
                                                             "or ZS_NO_DOWNLOAD=1)."))
    if missing == ["mineclip_text"]:
        mib = payload_bytes(expected.hub_text_shapes()) / 2**20
        notify(f"zh-steve: fetching only the MineCLIP text tower (≈{mib:.0f} MiB in fp32) by byte range from "
               f"{HUB_URL} into {cache / TEXT_BLOCK_RELPATH}")
        commit, files = hub.repo_files(spec.repo_id, spec.revision)  # pin the commit the bytes come from
        if HUB_WEIGHTS_FILE not in files:
            raise WeightsNotFoundError(f"{spec.repo_id}@{commit[:10]} has no {HUB_WEIGHTS_FILE}")
        with hub.network_errors(f"the MineCLIP text tower of {spec.repo_id}"):  # ranged reads over HTTP
            got = fetch_tensor_block(hub_source(spec.repo_id, HUB_WEIGHTS_FILE, commit),
                                     cache / TEXT_BLOCK_RELPATH, expected=expected.hub_text_shapes(),
                                     progress=True)
        return {"mineclip_text": ComponentSource(got.path, LAYOUT_TEXT_BLOCK, "download")}
    path = download_hub_layout(cache / "minestudio", spec.repo_id, spec.revision, notify)
    return {c: ComponentSource(path, LAYOUT_HUB, "download") for c in missing}



def download_hub_layout(dest: Path, repo_id: str = HUB_REPO_ID, revision: str | None = None,
                        notify: Callable[[str], None] | None = None) -> Path:
    """Download ``model.safetensors`` + ``config.json`` into ``dest`` (announcing the size first, on stderr)."""
    notify = notify or (lambda msg: print(msg, file=sys.stderr, flush=True))
    commit, files = hub.repo_files(repo_id, revision)
    info = files.get(HUB_WEIGHTS_FILE)
    if info is None:
        raise WeightsNotFoundError(f"{repo_id}@{commit[:10]} has no {HUB_WEIGHTS_FILE}")
    size = f"{info.size / 1e9:.2f} GB" if info.size else "size unknown"
    notify(f"zh-steve: downloading {repo_id}/{HUB_WEIGHTS_FILE} ({size}) and {HUB_CONFIG_FILE} into {dest} "
           f"(set ZS_NO_DOWNLOAD=1 to refuse, or pass official files with --weights-dir)")
    hub.download_file(repo_id, HUB_CONFIG_FILE, dest, commit)
    return hub.download_file(repo_id, HUB_WEIGHTS_FILE, dest, commit)
