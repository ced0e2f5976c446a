"""``python -m zh_steve.check_weights DIR``: is this weights directory usable, and if not, what is missing?

Understands the official STEVE-1 layout (``vpt/2x.model``, ``mineclip/attn.pth``, ``steve1/steve1.weights``,
``steve1/steve1_prior.pt``, or the same files directly in DIR), the MineStudio single file
(``model.safetensors`` + ``config.json``, in DIR or DIR/minestudio) and a text-tower block written by
``download_weights --only text``. Every file is opened the safe way (weights-only torch reads, plain-container
pickle, safetensors), its keys and shapes are compared with the manifests, ``attn.pth``'s md5 is checked.
Exit code 0 only when every needed component is usable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint import compare_keys, file_md5, select_prefix
from .errors import ZhSteveError
from .published import (ATTN_TEXT_PREFIX, COMPONENT_FILE, HUB_CONFIG_FILE, HUB_URL, HUB_WEIGHTS_FILE, OFFICIAL_FILES,
                        OFFICIAL_TEMPERATURE)
from .weights.expected import COMPONENTS, Expectations, payload_bytes
from .weights.minestudio import HubCheckpoint, check_hub_config, find_hub_file, read_hub_config
from .weights.official import find_official_file, read_2x_model, read_attn_state_dict, read_state_dict
from .weights.ranged import TEXT_BLOCK_RELPATH, verify_block_file

NEEDS = {"agent": COMPONENTS, "text": ("mineclip_text",)}


@dataclass
class FileCheck:
    """The verdict on one file."""

    name: str
    provides: list[str]
    published_at: str
    path: str | None = None
    status: str = "missing"          # ok | missing | bad
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class WeightsReport:
    weights_dir: str
    need: list[str]
    files: list[FileCheck]
    components: dict[str, str | None]   # component -> name of the file that provides it (None: nothing does)

    @property
    def usable(self) -> bool:
        return all(self.components.get(c) for c in self.need)

    def to_dict(self) -> dict[str, Any]:
        return {"weights_dir": self.weights_dir, "usable": self.usable, "need": self.need,
                "components": self.components, "files": [asdict(f) for f in self.files]}

    def render(self) -> str:
        lines = [f"Weights directory: {self.weights_dir}", ""]
        for f in self.files:
            where = f" ({f.path})" if f.path else ""
            covered = f.status == "missing" and all(self.components.get(c) for c in f.provides)
            label = "absent" if covered else f.status
            lines.append(f"[{label.upper():7}] {f.name}{where} — provides {', '.join(f.provides)}")
            lines += [f"            ! {p}" for p in f.problems]
            lines += [f"            · {n}" for n in f.notes]
            if f.status != "ok" and not covered:
                lines.append(f"            published at {f.published_at}")
        lines.append("")
        for c in self.need:
            src = self.components.get(c)
            lines.append(f"  {c:14} {'OK from ' + src if src else 'NOT AVAILABLE'}")
        lines.append("")
        if self.usable:
            lines.append("RESULT: usable.")
        else:
            lines.append("RESULT: NOT usable. Put the missing files in place (see 'published at' above), or run "
                         "`python -m zh_steve.download_weights --dest DIR`.")
        return "\n".join(lines)


def _size_note(check: FileCheck, path: Path, payload: int) -> None:
    size = path.stat().st_size
    check.notes.append(f"{size:,} bytes on disk; fp32 tensor payload of the expected keys is {payload:,} bytes")
    if size < payload // 4:
        check.problems.append("file is far smaller than its tensors could be: truncated download?")


def _check_state_dict(check: FileCheck, sd: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    report = compare_keys(expected, sd)
    if not report.ok:
        check.problems.append(report.describe(limit=20))
    else:
        check.notes.append(f"all {len(expected)} keys and shapes match the manifest")


def _official(root: Path, name: str, expected: Expectations, verify_md5: bool,
              expected_behaviour: Mapping[str, Any] | None) -> FileCheck:
    info = OFFICIAL_FILES[name]
    provides = [info.component] + (["temperature"] if info.component == "policy_kwargs" else [])
    check = FileCheck(name=name, provides=provides, published_at=f"{info.published_at} -> DIR/{info.relpath}")
    path = find_official_file(root, name)
    if path is None:
        return check
    check.path = str(path)
    try:
        if info.component == "policy_kwargs":
            two_x = read_2x_model(path)
            check_hub_config({"policy_kwargs": two_x.policy_kwargs}, expected_behaviour, str(path))
            t = two_x.temperature
            check.notes.append(f"pi-head temperature {t}" if t is not None
                               else f"no pi_head_opts.temperature: the official {OFFICIAL_TEMPERATURE} will be used")
        elif info.component in ("policy", "prior"):
            want = expected.component(info.component)
            _size_note(check, path, payload_bytes(want))
            _check_state_dict(check, read_state_dict(path, info.component), want)
        else:  # attn.pth
            if verify_md5 and expected.attn_md5:
                got = file_md5(path)
                if got != expected.attn_md5:
                    check.problems.append(f"md5 {got} differs from the published {expected.attn_md5}: corrupt "
                                          f"download or a different MineCLIP variant")
                else:
                    check.notes.append("md5 matches the published value")
            full = read_attn_state_dict(path)
            text = select_prefix(full, ATTN_TEXT_PREFIX)
            _check_state_dict(check, text, expected.mineclip_text)
            check.notes.append(f"{len(full)} model.* tensors in total; only the text tower is used")
    except ZhSteveError as e:
        check.problems.append(str(e))
    check.status = "bad" if check.problems else "ok"
    return check


def _hub(root: Path, expected: Expectations,
         expected_behaviour: Mapping[str, Any] | None) -> tuple[FileCheck, FileCheck]:
    weights = FileCheck(name=f"{HUB_WEIGHTS_FILE} (MineStudio)", provides=list(COMPONENTS),
                        published_at=f"{HUB_URL} -> DIR/{HUB_WEIGHTS_FILE}")
    config = FileCheck(name=f"{HUB_CONFIG_FILE} (MineStudio)", provides=["policy_kwargs"],
                       published_at=f"{HUB_URL} -> DIR/{HUB_CONFIG_FILE}")
    path = find_hub_file(root)
    if path is None:
        return weights, config
    weights.path = str(path)
    try:
        hc = HubCheckpoint(path, expected)
        weights.notes.append(f"all {len(expected.hub)} tensors present with the manifest's shapes; dtypes "
                             f"{sorted(set(hc.dtypes.values()))}")
    except ZhSteveError as e:
        weights.problems.append(str(e))
    weights.status = "bad" if weights.problems else "ok"
    cpath = path.parent / HUB_CONFIG_FILE
    if cpath.is_file():
        config.path = str(cpath)
        try:
            check_hub_config(read_hub_config(cpath), expected_behaviour, str(cpath))
            config.notes.append("behaviour-only policy settings match STEVE-1; the pi-head temperature is not "
                                f"recorded there: {OFFICIAL_TEMPERATURE} (official) unless 2x.model or a setting "
                                "says otherwise")
        except ZhSteveError as e:
            config.problems.append(str(e))
        config.status = "bad" if config.problems else "ok"
    return weights, config


def _text_block(root: Path, expected: Expectations) -> FileCheck | None:
    path = root / TEXT_BLOCK_RELPATH
    if not path.is_file():
        return None
    check = FileCheck(name="MineCLIP text-tower block", provides=["mineclip_text"],
                      published_at="python -m zh_steve.download_weights --only text", path=str(path))
    try:
        sha = verify_block_file(path, expected.hub_text_shapes())
        check.notes.append(f"keys/shapes match; sha256 {sha}")
    except ZhSteveError as e:
        check.problems.append(str(e))
    check.status = "bad" if check.problems else "ok"
    return check


def check_weights_dir(
    weights_dir: str | Path,
    need: str = "agent",
    *,
    expected: Expectations | None = None,
    expected_behaviour: Mapping[str, Any] | None = None,
    verify_md5: bool = True,
) -> WeightsReport:
    """Check every known weights file under ``weights_dir``; see the module docstring."""
    if need not in NEEDS:
        raise ValueError(f"need must be one of {sorted(NEEDS)}, got {need!r}")
    root = Path(weights_dir)
    expected = expected or Expectations()
    official = {n: _official(root, n, expected, verify_md5, expected_behaviour) for n in OFFICIAL_FILES}
    hub_weights, hub_config = _hub(root, expected, expected_behaviour)
    block = _text_block(root, expected)

    components: dict[str, str | None] = {}
    for c in COMPONENTS:
        name = COMPONENT_FILE[c]
        if official[name].status == "ok":
            components[c] = name
        elif hub_weights.status == "ok" and (c != "policy" or hub_config.status == "ok"):
            components[c] = hub_weights.name
        elif c == "mineclip_text" and block is not None and block.status == "ok":
            components[c] = block.name
        else:
            components[c] = None
    if components.get("policy"):
        two_x = COMPONENT_FILE["policy_kwargs"]
        bad_kwargs = official[two_x].status == "bad"
        components["policy_kwargs"] = (None if bad_kwargs else two_x if official[two_x].status == "ok"
                                       else hub_config.name if hub_config.status == "ok"
                                       else "built-in official 2x kwargs")
    files = list(official.values()) + [hub_weights, hub_config] + ([block] if block else [])
    need_list = list(NEEDS[need]) + (["policy_kwargs"] if "policy" in NEEDS[need] else [])
    return WeightsReport(str(root), need_list, files, components)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zh_steve.check_weights", description=__doc__.split("\n")[0])
    parser.add_argument("weights_dir", help="directory holding the official files and/or the MineStudio file")
    parser.add_argument("--for", dest="need", choices=sorted(NEEDS), default="agent",
                        help="agent: policy + prior + MineCLIP text (default); text: MineCLIP text tower only")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-md5", action="store_true", help="skip hashing attn.pth")
    args = parser.parse_args(argv)
    if not Path(args.weights_dir).is_dir():
        print(f"not a directory: {args.weights_dir}", file=sys.stderr)
        return 2
    report = check_weights_dir(args.weights_dir, args.need, verify_md5=not args.no_md5)
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if args.json else report.render())
    return 0 if report.usable else 1


if __name__ == "__main__":
    sys.exit(main())
