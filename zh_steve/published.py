"""Facts about the published models, each defined once (from ``zh_steve/manifests/``), for every layer to import.

Bottom layer: imports nothing of zh-steve but :mod:`zh_steve.checkpoint`'s manifest reader.

    OFFICIAL_FILES           name → OfficialFile (component, place in a weights dir, URL, md5, size)
    COMPONENT_FILE           component → the official file that provides it
    HUB_REPO_ID, HUB_WEIGHTS_FILE, HUB_CONFIG_FILE, HUB_URL, HUB_APPROX_SIZE   the MineStudio single file
    POLICY_PREFIXES, PRIOR_PREFIX, HUB_TEXT_PREFIX, ATTN_TEXT_PREFIX           key prefixes of the published files
    ATTN_MD5                 md5 of MineCLIP's attn.pth
    CHINESE_CLIP_HUB_ID      the Chinese-CLIP checkpoint zh-steve uses
    OFFICIAL_TEMPERATURE     VPT's hard-coded pi-head temperature (used when no 2x.model says otherwise)
"""

from __future__ import annotations

from dataclasses import dataclass

from .checkpoint import load_manifest

_FILES = load_manifest("published_files")
_VPT = load_manifest("vpt_2x_model_kwargs")


@dataclass(frozen=True)
class OfficialFile:
    """One file of the official STEVE-1 release."""

    name: str
    component: str          # what it provides: policy_kwargs | mineclip_text | policy | prior
    relpath: str            # location inside a weights dir
    published_at: str       # URL
    fmt: str                # restricted-pickle | torch-weights-only
    manifest: str | None    # zh_steve/manifests/<manifest>.json describes its keys
    approx_size: str        # human-readable
    md5: str | None = None


def drive_url(file_id: str) -> str:
    return f"https://drive.google.com/uc?id={file_id}"


OFFICIAL_FILES: dict[str, OfficialFile] = {
    name: OfficialFile(name, f["component"], f["relpath"], f.get("url") or drive_url(f["google_drive_id"]),
                       f["format"], f["manifest"], f["approx_size"], f.get("md5"))
    for name, f in _FILES["official_files"].items()
}
COMPONENT_FILE: dict[str, str] = {f.component: f.name for f in OFFICIAL_FILES.values()}
ATTN_MD5: str = OFFICIAL_FILES["attn.pth"].md5  # type: ignore[assignment]

_HUB = _FILES["minestudio_hub"]
HUB_REPO_ID: str = _HUB["repo_id"]
HUB_WEIGHTS_FILE: str = _HUB["weights_file"]
HUB_CONFIG_FILE: str = _HUB["config_file"]
HUB_APPROX_SIZE: str = _HUB["approx_size"]
HUB_URL = f"https://huggingface.co/{HUB_REPO_ID}"
POLICY_PREFIXES: tuple[str, ...] = tuple(_HUB["key_prefixes"]["policy"])
PRIOR_PREFIX: str = _HUB["key_prefixes"]["prior"]
HUB_TEXT_PREFIX: str = _HUB["key_prefixes"]["mineclip_text"]
ATTN_TEXT_PREFIX: str = _FILES["attn_pth_text_prefix"]

CHINESE_CLIP_HUB_ID: str = _FILES["chinese_clip"]["repo_id"]
OFFICIAL_TEMPERATURE: float = float(_VPT["pi_head_kwargs_vpt_hardcoded_default"]["temperature"])
TEMPERATURE_DEFAULT_SOURCE = f"default-official-{OFFICIAL_TEMPERATURE}"  # label in describe() / PolicySettings


def where_published(name: str) -> str:
    """``URL (put it at <weights dir>/relpath)`` for an official file: the hint every error about it gives."""
    f = OFFICIAL_FILES[name]
    return f"{f.published_at} (put it at <weights dir>/{f.relpath})"
