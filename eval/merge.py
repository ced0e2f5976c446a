"""``python -m eval.merge --out DIR SHARD_DIR ...``: combine the outputs of ``run_tasks --shard i/N`` runs.

For users who schedule jobs themselves (a SLURM array: ``--shard $SLURM_ARRAY_TASK_ID/N``, one ``--out`` per
shard). The shards must come from the same settings (env, seed, agent, translator, task file, step limit:
the keys ``--resume`` checks) and together form shards 0..N-1 of one plan. The merge keeps, per
(task, method, episode), the last ``ok`` row (else the last row), writes one ``results.jsonl`` and a fresh
``run_meta.json``, ``summary.*`` and plots, and lists missing shards or episodes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from zh_steve.errors import ConfigError, ZhSteveError

from .report import write_reports
from .runner import RESULTS, RESUME_KEYS, RUN_META, ResultsWriter, read_results


def merge_runs(shard_dirs: list[Path], out: Path, overwrite: bool = False) -> dict[str, Any]:
    metas = []
    for d in shard_dirs:
        mp = d / RUN_META
        if not mp.is_file():
            raise ConfigError(f"{d} has no {RUN_META}: is it an eval.run_tasks output directory?")
        metas.append(json.loads(mp.read_text(encoding="utf-8")))
    ref = metas[0]
    for d, m in zip(shard_dirs[1:], metas[1:]):
        diff = [k for k in RESUME_KEYS if k != "shard" and m.get(k) != ref.get(k)]
        if diff:
            raise ConfigError(f"{d} was run with different settings than {shard_dirs[0]} in {diff}; only shards of "
                              "one run can be merged")
    shards = [tuple(m["shard"]) if m.get("shard") else None for m in metas]
    warnings = []
    if all(s is not None for s in shards):
        n = {s[1] for s in shards}
        if len(n) != 1:
            raise ConfigError(f"the shards were split differently: {sorted(shards)}")
        missing = sorted(set(range(n.pop())) - {s[0] for s in shards})
        if missing:
            warnings.append(f"missing shards {missing}")
    if len(set(shards)) != len(shards):
        warnings.append("the same shard appears more than once (rows deduplicated)")
    best: dict[tuple[str, str, int], dict[str, Any]] = {}
    for d in shard_dirs:
        for r in read_results(d / RESULTS):
            k = (r["task"], r["method"], int(r["episode"]))
            if k not in best or r.get("status") == "ok" or best[k].get("status") != "ok":
                best[k] = r
    if (out / RESULTS).exists() and not overwrite:
        raise ConfigError(f"{out / RESULTS} exists; pass --overwrite or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    if (out / RESULTS).exists():
        (out / RESULTS).unlink()
    writer = ResultsWriter(out / RESULTS)
    for r in best.values():
        writer.append(r)
    writer.close()
    meta = {**ref, "shard": None, "merged_from": [str(d) for d in shard_dirs], "merge_warnings": warnings,
            "tasks": list(dict.fromkeys(t for m in metas for t in m.get("tasks", [])))}
    expected = len(meta["tasks"]) * len(ref.get("methods", [])) * int(ref.get("episodes", 0))
    if expected and len(best) < expected:
        warnings.append(f"{expected - len(best)} of {expected} episodes have no row")
    (out / RUN_META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    summary = write_reports(list(best.values()), meta, out)
    summary["merge_warnings"] = warnings
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.merge", description=__doc__.split("\n\n")[0])
    p.add_argument("shards", nargs="+", help="output directories of run_tasks --shard i/N")
    p.add_argument("--out", required=True, help="where to write the merged results and summary")
    p.add_argument("--overwrite", action="store_true", help="replace an existing merged results.jsonl")
    args = p.parse_args(argv)
    try:
        summary = merge_runs([Path(d) for d in args.shards], Path(args.out), args.overwrite)
    except ZhSteveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for w in summary["merge_warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    print(f"merged {len(args.shards)} shard(s): {summary['episodes_recorded']} episodes → {args.out}/summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
