"""Alignment benchmark on PROXY ENCODERS (stand-ins for Chinese-CLIP/MineCLIP; see zh_steve.text.proxy).

    python -m alignment.bench [--configs configs/alignment_proxy.yaml configs/alignment_proxy_shared.yaml]
                              [--seeds 0 1 2 3 4] [--out runs/bench]

Trains each config (``python -m alignment.train`` code, output under ``<out>/<config name>/``) and writes one table
per config, every rung × val/test top-1, top-5 and norm ratio (plain centred cosine), the chosen rung ranked with
the prompt bank's hubness correction as its own row (snap/blend's ranking, when the run chose w > 0), plus the
free-form set (seen/unseen) and the goal modes, to ``<out>/alignment_proxy.json`` and ``alignment_proxy.md``. Every number is labelled "proxy encoders".
With several ``--seeds`` each config runs once per seed (a seed draws its own held-out verbs and objects, i.e. its own
split; runs under ``<out>/<config name>/seed<S>/``) and a spread table gives the mean, min and max over the splits.
A benchmark, not a test: it takes minutes (the first run also embeds the anchors; later runs use the cache).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from zh_steve.config_utils import from_dict, load_config
from zh_steve.errors import ZhSteveError

from .train import RUNGS, TrainConfig, run

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = [ROOT / "configs" / "alignment_proxy.yaml", ROOT / "configs" / "alignment_proxy_shared.yaml"]
LABEL = "PROXY ENCODERS (real pretrained text encoders from PyPI wheels standing in for Chinese-CLIP/MineCLIP)"


def table(report: dict) -> str:
    rows = ["| rung | val top-1 | val top-5 | test top-1 | test top-5 | test norm ratio |", "|---|---|---|---|---|---|"]
    for rung in RUNGS:
        if rung not in report["val"]:
            continue
        v, t = report["val"][rung], report["test"][rung]
        mark = " **(chosen)**" if rung == report["chosen"] else ""
        rows.append(f"| {rung}{mark} | {v['top1']:.3f} | {v['top5']:.3f} | {t['top1']:.3f} | {t['top5']:.3f} | "
                    f"{t['norm_ratio']:.3f} |")
    if "hub" in report:   # a different ranking (snap/blend's), so its own row, never mixed into the rungs'
        h = report["hub"]
        rows.append(f"| {report['chosen']} ranked with the hubness correction (snap/blend; w = {h['weight']:g}, "
                    f"k = {h['k']}) | {h['val']['top1']:.3f} | {h['val']['top5']:.3f} | {h['test']['top1']:.3f} | "
                    f"{h['test']['top5']:.3f} | (regress unchanged) |")
    return "\n".join(rows)


def freeform_table(report: dict) -> str:
    ff = report.get("freeform")
    if not ff:
        return "(no free-form set)"
    rows = ["| classes | n | top-1 | top-5 | MRR | hub-ranked top-1 / top-5 | goal cos regress | snap | blend |",
            "|---|---|---|---|---|---|---|---|---|"]
    for k in ("all", "seen", "unseen"):
        m = ff[k]
        if not m.get("n"):
            continue
        g = m["goal"]
        hub = f"{m['hub']['top1']:.3f} / {m['hub']['top5']:.3f}" if "hub" in m else "—"
        rows.append(f"| {k} | {m['n']} | {m['top1']:.3f} | {m['top5']:.3f} | {m['mrr']:.3f} | {hub} | "
                    f"{g['regress']['centred_cos']:.3f} | {g['snap']['centred_cos']:.3f} | "
                    f"{g['blend']['centred_cos']:.3f} |")
    return "\n".join(rows)


# (label, path into a run's report) of the numbers the spread table summarises over seeds
SPREAD = [
    ("val top-1", ("val", "{chosen}", "top1")), ("val top-5", ("val", "{chosen}", "top5")),
    ("test top-1", ("test", "{chosen}", "top1")), ("test top-5", ("test", "{chosen}", "top5")),
    ("test norm ratio", ("test", "{chosen}", "norm_ratio")),
    ("hub-ranked test top-1", ("hub", "test", "top1")), ("hub-ranked test top-5", ("hub", "test", "top5")),
    ("free-form top-1", ("freeform", "all", "top1")), ("free-form seen top-1", ("freeform", "seen", "top1")),
    ("free-form unseen top-1", ("freeform", "unseen", "top1")),
]


def _lookup(report: dict, path: tuple[str, ...]) -> float | None:
    node = report
    for key in path:
        node = node.get(key.format(chosen=report["chosen"])) if isinstance(node, dict) else None
        if node is None:
            return None
    return float(node)


def spread(reports: dict[int, dict]) -> dict[str, dict]:
    """Mean, min and max over seeds (splits) of the chosen rung's numbers; rows missing from any run are left out."""
    out = {}
    for label, path in SPREAD:
        values = [_lookup(r, path) for r in reports.values()]
        if any(v is None for v in values):
            continue
        out[label] = {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
                      "by_seed": {str(s): v for s, v in zip(reports, values)}}
    return out


def spread_table(summary: dict[str, dict], seeds: list[int]) -> str:
    rows = ["| chosen rung | mean | min | max | " + " | ".join(f"seed {s}" for s in seeds) + " |",
            "|---|---|---|---|" + "---|" * len(seeds)]
    for label, m in summary.items():
        rows.append(f"| {label} | {m['mean']:.3f} | {m['min']:.3f} | {m['max']:.3f} | "
                    + " | ".join(f"{m['by_seed'][str(s)]:.3f}" for s in seeds) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m alignment.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=[str(c) for c in DEFAULT_CONFIGS])
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="run each config once per seed (each seed is its own held-out split) and add a spread table "
                        "(default: the config's own seed, one run)")
    p.add_argument("--out", default="runs/bench")
    args = p.parse_args(argv)
    per_seed = args.seeds is not None
    if per_seed and len(set(args.seeds)) != len(args.seeds):
        p.error(f"--seeds repeats a seed: {args.seeds}")
    out = Path(args.out)
    results, md = {"label": LABEL}, [f"# Alignment benchmark — {LABEL}", ""]
    keep = ("val", "test", "chosen", "hub", "freeform", "goal_modes", "anchors", "source_encoder", "target_encoder",
            "seconds")
    try:
        for path in args.configs:
            name = Path(path).stem
            base = load_config(path)
            seeds = args.seeds or [from_dict(TrainConfig, base, where=str(path)).seed]
            reports = {}
            for seed in seeds:
                cfg = from_dict(TrainConfig, {**base, "seed": seed}, where=str(path))
                cfg.out = str(out / name / f"seed{seed}") if per_seed else str(out / name)
                reports[seed] = run(cfg)
            first = reports[seeds[0]]
            md += [f"## {name}: {first['source_encoder'].split(':')[0]} → {first['target_encoder'].split(':')[0]}", ""]
            if not per_seed:
                results[name] = {k: first[k] for k in keep if k in first}
            else:
                results[name] = {"seeds": {str(s): {k: r[k] for k in keep if k in r} for s, r in reports.items()},
                                 "spread": spread(reports)}
                md += [f"Spread over {len(seeds)} splits (seeds {', '.join(map(str, seeds))}):", "",
                       spread_table(results[name]["spread"], seeds), ""]
            for seed, report in reports.items():
                if per_seed:
                    md += [f"### seed {seed}", ""]
                md += [table(report), "", "Free-form set (alignment/data/freeform_zh.tsv):", "",
                       freeform_table(report), ""]
    except ZhSteveError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    (out / "alignment_proxy.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n",
                                              encoding="utf-8")
    (out / "alignment_proxy.md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))
    print(f"wrote {out}/alignment_proxy.json and alignment_proxy.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
