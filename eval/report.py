"""Summaries of result rows: summary.json, summary.md and PNG plots (matplotlib, Agg).

Beside success rates (thresholds are this project's construct) the summary reports the count-based scores
(mean with a Student-t interval), paired differences of both against ``translate`` and against the
``control`` method (another task's instruction on the same seeds: the base rate), and data checks: an
observation field that never changed in any episode of the run (MineRL fills fields Minecraft does not
report with zeros, so such a field may be missing, not zero) and episodes that start at exactly (0, 0, 0).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .envs.base import TEST_DOUBLE_LABEL
from .runner import _jsonable, latest_rows
from .metrics import metric_fields
from .stats import mean_interval, paired_difference, paired_mean_difference, percentiles, wilson_interval

PAIR = ("align", "translate")
CONTROLS = ("control", "control-en")


def comparisons(methods: list[str]) -> list[tuple[str, str]]:
    """Method pairs compared on shared seeds: align − translate, and every method − its control."""
    out = [PAIR] if all(m in methods for m in PAIR) else []
    for c in CONTROLS:
        if c in methods:
            out += [(m, c) for m in methods if m not in CONTROLS]
    return out


def _pairs(latest: dict, task: str, a: str, b: str, field: str) -> tuple[list, list]:
    eps = sorted({k[2] for k in latest if k[0] == task})
    xa, xb = [], []
    for ep in eps:
        ra, rb = latest.get((task, a, ep)), latest.get((task, b, ep))
        if ra and rb and ra.get(field) is not None and rb.get(field) is not None \
                and ra.get("status") == rb.get("status") == "ok":
            xa.append(ra[field])
            xb.append(rb[field])
    return xa, xb


def data_checks(rows: list[dict[str, Any]], task_fields: dict[str, list[str]]) -> dict[str, Any]:
    """Fields that never changed in any ok episode, tasks whose metric reads them, starts at the origin."""
    ok = [r for r in rows if r.get("status") == "ok" and isinstance(r.get("observed"), dict)]
    seen: dict[str, bool] = {}
    for r in ok:
        for f, state in (r["observed"].get("fields") or {}).items():
            seen[f] = seen.get(f, False) or state == "changed"
    constant = sorted(f for f, changed in seen.items() if not changed)
    origin = [r for r in ok if r["observed"].get("start_pos") is not None
              and all(float(v) == 0.0 for v in r["observed"]["start_pos"])]
    affected = {t: [f for f in fs if f in constant or f not in seen] for t, fs in task_fields.items()}
    return {
        "episodes_checked": len(ok),
        "constant_fields": constant,
        "tasks_reading_constant_or_missing_fields": {t: fs for t, fs in affected.items() if fs and ok},
        "origin_starts": len(origin),
        "origin_start_episodes": [[r["task"], r["method"], r["episode"]] for r in origin[:20]],
    }


def _rate_block(rows: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [r for r in rows if r.get("status") == "ok" and r.get("success") is not None]
    k = sum(1 for r in measured if r["success"])
    n = len(measured)
    lo, hi = wilson_interval(k, n)
    scores = [r["score"] for r in measured]
    mi = mean_interval(scores)
    return {
        "n": n, "successes": k, "rate": k / n if n else None, "ci95": [lo, hi],
        "mean_score": float(np.mean(scores)) if scores else None,
        "score_ci95": [mi.low, mi.high],
        "unit": measured[0].get("unit") if measured else None,
        "errors": sum(1 for r in rows if r.get("status") == "error"),
        "unmeasured": sum(1 for r in rows if r.get("status") == "ok" and r.get("success") is None),
    }


def _latency_block(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if r.get("status") == "ok"]
    # the agent caches instruction embeddings: goal latency counts only resets that really embedded
    misses = [r for r in ok if not (r.get("embed_info") or {}).get("cache_hit")]
    stages: dict[str, list[float]] = {}
    for r in ok:
        for k, v in (r.get("goal_ms") or {}).items():
            # translation runs on every reset; embedding stages and the total only on cache misses
            if v is not None and (k.startswith("translate.") or r in misses):
                stages.setdefault(k, []).append(float(v))
    policy = [v for r in ok for v in (r.get("step_times_ms") or {}).get("policy", [])]
    env = [v for r in ok for v in (r.get("step_times_ms") or {}).get("env", [])]
    agent_stages: dict[str, list[float]] = {}
    for r in ok:
        for k, v in (r.get("agent_step_stages_ms") or {}).items():
            agent_stages.setdefault(k, []).append(float(v))
    return {
        "goal_ms": {k: percentiles(v) for k, v in sorted(stages.items())},
        "goal_ms_counts": {"resets": len(ok), "embedding_cache_hits_excluded": len(ok) - len(misses)},
        "policy_step_ms": percentiles(policy),
        "env_step_ms": percentiles(env),
        "agent_step_stages_ms_mean": {k: float(np.mean(v)) for k, v in sorted(agent_stages.items())},
    }


def summarize(rows: Iterable[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """Success (Wilson 95 %), paired align − translate differences (Newcombe) and latency, from result rows."""
    latest = latest_rows(rows)
    rows = list(latest.values())
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    per_task: dict[str, Any] = {}
    paired: dict[str, Any] = {}
    pooled_a: list[bool] = []
    pooled_b: list[bool] = []
    for t in tasks:
        per_task[t] = {m: _rate_block([r for r in rows if r["task"] == t and r["method"] == m]) for m in methods}
        if all(m in methods for m in PAIR):
            a, b = [], []
            eps = sorted({r["episode"] for r in rows if r["task"] == t})
            for ep in eps:
                ra, rb = latest.get((t, PAIR[0], ep)), latest.get((t, PAIR[1], ep))
                if ra and rb and ra.get("success") is not None and rb.get("success") is not None:
                    a.append(bool(ra["success"]))
                    b.append(bool(rb["success"]))
            paired[t] = _jsonable(paired_difference(a, b).__dict__)
            pooled_a += a
            pooled_b += b
    comps = comparisons(methods)
    compared: dict[str, Any] = {}
    for a, b in comps:
        per_t: dict[str, Any] = {}
        pa: list[bool] = []
        pb: list[bool] = []
        for t in tasks:
            sa, sb = _pairs(latest, t, a, b, "success")
            xa, xb = _pairs(latest, t, a, b, "score")
            per_t[t] = {"success": paired_difference([bool(x) for x in sa], [bool(x) for x in sb]).__dict__,
                        "score": paired_mean_difference(xa, xb).__dict__}
            pa += [bool(x) for x in sa]
            pb += [bool(x) for x in sb]
        compared[f"{a} − {b}"] = {"per_task": per_t, "success_all_tasks_pooled": paired_difference(pa, pb).__dict__}
    task_specs = {r["task"]: r for r in rows if r.get("metric")}
    task_fields = {t: metric_fields(r["metric"], {"stat": _stat_of(r)}) for t, r in task_specs.items()}
    methods_block = {
        m: {"success": _rate_block([r for r in rows if r["method"] == m]),
            "latency": _latency_block([r for r in rows if r["method"] == m])}
        for m in methods
    }
    out = {
        "label": TEST_DOUBLE_LABEL if meta.get("test_double") else None,
        "meta": meta,
        "tasks": per_task,
        "methods": methods_block,
        "paired_difference": {
            "definition": f"success rate {PAIR[0]} − {PAIR[1]} over episodes that share an env seed",
            "interval": "Newcombe (1998) paired hybrid score interval (Wilson marginals, continuity-adjusted phi), 95%",
            "per_task": paired,
            "all_tasks_pooled": _jsonable(paired_difference(pooled_a, pooled_b).__dict__) if paired else None,
        },
        "comparisons": compared,
        "data_checks": data_checks(rows, task_fields),
        "errors": [
            {k: r.get(k) for k in ("task", "method", "episode", "seed", "error_kind", "error", "attempts")}
            for r in rows if r.get("status") == "error"
        ],
        "episodes_recorded": len(rows),
    }
    return _jsonable(out)


def _stat_of(row: dict[str, Any]) -> str | None:
    """The statistic a stat_gain task reads (recorded in the row's metric_params when present)."""
    return (row.get("metric_params") or {}).get("stat")


def _fmt_rate(b: dict[str, Any]) -> str:
    if not b["n"]:
        return "—" + (f" ({b['errors']} err)" if b["errors"] else "")
    lo, hi = b["ci95"]
    s = f"{b['rate']:.0%} [{lo:.0%}, {hi:.0%}] ({b['successes']}/{b['n']})"
    return s + (f", {b['errors']} err" if b["errors"] else "")


def _fmt_diff(d: dict[str, Any] | None, fmt: str) -> str:
    n = (d or {}).get("n_pairs", (d or {}).get("n", 0))
    if not d or not n or d.get("mean") is None:
        return "—"
    lo, hi = d.get("low"), d.get("high")
    ci = "" if lo is None or hi is None else f" [{fmt.format(lo)}, {fmt.format(hi)}]"
    return f"{fmt.format(d['mean'])}{ci} (n={n})"


def _fmt_mean(b: dict[str, Any]) -> str:
    if not b["n"] or b.get("mean_score") is None:
        return "—"
    lo, hi = b.get("score_ci95") or (None, None)
    ci = "" if lo is None or hi is None else f" [{lo:.1f}, {hi:.1f}]"
    return f"{b['mean_score']:.1f}{ci}"


def _fmt_ms(x: Any) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def write_markdown(summary: dict[str, Any], path: Path) -> None:
    meta = summary["meta"]
    methods = list(summary["methods"])
    lines = []
    if summary["label"]:
        lines += [f"# {summary['label']}", "", f"**{summary['label']}**: these numbers come from the scripted "
                  "fake environment (eval/envs/fake.py); they check the harness, not the agent.", ""]
    lines += ["# zh-steve evaluation", "",
              f"- env: `{meta.get('env')}`  - agent: `{meta.get('agent_config')}` "
              f"(random weights: {meta.get('random_weights')})",
              f"- translator: {meta.get('translator')}  - episodes per task: {meta.get('episodes')}  "
              f"- base seed: {meta.get('base_seed')}", ""]
    pair = summary["paired_difference"]["per_task"]
    head = ["task", *methods] + (["align − translate [95% CI]"] if pair else [])
    lines += ["## Success rate (Wilson 95% interval)", "", "| " + " | ".join(head) + " |",
              "|" + "---|" * len(head)]
    for t, by_m in summary["tasks"].items():
        cells = [t] + [_fmt_rate(by_m[m]) for m in methods]
        if pair:
            d = pair.get(t)
            cells.append("—" if not d or d["n_pairs"] == 0 else f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] (n={d['n_pairs']})")
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**all**"] + [_fmt_rate(summary["methods"][m]["success"]) for m in methods]
    if pair:
        d = summary["paired_difference"]["all_tasks_pooled"]
        cells.append("—" if not d or d["n_pairs"] == 0 else f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] (n={d['n_pairs']})")
    lines += ["| " + " | ".join(cells) + " |", ""]
    if pair:
        lines += [f"Paired difference: {summary['paired_difference']['interval']}.", ""]
    comps = summary.get("comparisons") or {}
    vs_control = [name for name in comps if name.split(" − ")[1] in CONTROLS]
    if vs_control:
        lines += ["### Against the control (another task's instruction, same seeds)", "",
                  "The control row is the base rate an unrelated prompt reaches; a method helps only where it "
                  "beats it.", "", "| task | " + " | ".join(vs_control) + " |", "|---|" + "---|" * len(vs_control)]
        for t in summary["tasks"]:
            cells = [t] + [_fmt_diff(comps[c]["per_task"][t]["success"], "{:+.2f}") for c in vs_control]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["| **all** | " + " | ".join(_fmt_diff(comps[c]["success_all_tasks_pooled"], "{:+.2f}")
                                              for c in vs_control) + " |", ""]
    lines += ["## Scores (count-based, mean [95% t-interval])", "",
              "The metric each task counts (items gained, blocks, degrees held, steps), independent of the success "
              "threshold; differences are paired by seed.", "",
              "| task | unit | " + " | ".join(methods) + (" | " if comps else "") + " | ".join(comps) + " |",
              "|---|---|" + "---|" * (len(methods) + len(comps))]
    for t, by_m in summary["tasks"].items():
        unit = next((b.get("unit") for b in by_m.values() if b.get("unit")), "")
        cells = [t, unit or ""] + [_fmt_mean(by_m[m]) for m in methods]
        cells += [_fmt_diff(comps[c]["per_task"][t]["score"], "{:+.2f}") for c in comps]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    checks = summary.get("data_checks") or {}
    if checks.get("episodes_checked"):
        lines += ["## Data checks", ""]
        if checks["constant_fields"]:
            lines.append(f"- **Never changed in any of {checks['episodes_checked']} episodes:** "
                         f"{', '.join(checks['constant_fields'])}. MineRL fills fields Minecraft does not report "
                         "with zeros, so a score built on them may read as a real 0 (or a real distance) while it "
                         "is not measured. Check one observation of the backend.")
        for t, fs in checks["tasks_reading_constant_or_missing_fields"].items():
            lines.append(f"- task **{t}** reads {', '.join(fs)}: treat its scores as suspect.")
        if checks["origin_starts"]:
            lines.append(f"- **{checks['origin_starts']} episodes start at exactly (0, 0, 0)**: the position is "
                         "probably not reported (zero fill); travel/depth/height scores are then meaningless.")
        if not (checks["constant_fields"] or checks["origin_starts"]):
            lines.append("- every observed field changed in some episode; no start at the origin.")
        lines.append("")
    lines += ["## Latency (ms)", "",
              "Instruction → goal is timed cold for every method (the harness clears the agent's instruction cache "
              "before each reset); resets that still hit a cache (an agent without `clear_instruction_cache`) are "
              "left out of the `embed.*` stages and `total_ms`.", "",
              "| method | stage | p50 | p95 | mean |", "|---|---|---|---|---|"]
    for m in methods:
        lat = summary["methods"][m]["latency"]
        for stage, p in lat["goal_ms"].items():
            lines.append(f"| {m} | instruction→goal: {stage} | {_fmt_ms(p['p50'])} | {_fmt_ms(p['p95'])} | {_fmt_ms(p['mean'])} |")
        for name in ("policy_step_ms", "env_step_ms"):
            p = lat[name]
            lines.append(f"| {m} | {name.replace('_ms', '').replace('_', ' ')} | {_fmt_ms(p['p50'])} | {_fmt_ms(p['p95'])} | {_fmt_ms(p['mean'])} |")
    if summary["errors"]:
        lines += ["", f"## Errors ({len(summary['errors'])})", ""]
        lines += [f"- {e['task']}/{e['method']}/ep{e['episode']} ({e['error_kind']}, {e['attempts']} attempts): {e['error']}"
                  for e in summary["errors"]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot_success(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(summary["tasks"])
    methods = list(summary["methods"])
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(tasks) + 2), 4.2))
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(tasks))
    for i, m in enumerate(methods):
        rates, lo, hi = [], [], []
        for t in tasks:
            b = summary["tasks"][t][m]
            r = b["rate"] if b["rate"] is not None else np.nan
            rates.append(r)
            # max(0, …): at 0 % / 100 % the Wilson bound equals the rate up to rounding
            lo.append(max(0.0, r - b["ci95"][0]) if b["ci95"][0] is not None else 0)
            hi.append(max(0.0, b["ci95"][1] - r) if b["ci95"][1] is not None else 0)
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, rates, width, yerr=[lo, hi], capsize=3, label=m)
    ax.set_xticks(x, tasks, rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (Wilson 95% CI)")
    title = "Success by task and method"
    if summary["label"]:
        title = f"{summary['label']}\n{title}"
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_stages(names: set[str]) -> list[str]:
    """Stages to stack: every ``group.stage``; ``group.total_ms`` only when the group has no finer stages."""
    names = {n for n in names if n != "total_ms"}
    groups_with_parts = {n.split(".")[0] for n in names if not n.endswith(".total_ms")}
    return sorted(n for n in names if not (n.endswith(".total_ms") and n.split(".")[0] in groups_with_parts))


def plot_latency(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(summary["methods"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    stages = _plot_stages({s for m in methods for s in summary["methods"][m]["latency"]["goal_ms"]})
    y = np.arange(len(methods))
    left = np.zeros(len(methods))
    for s in stages:
        vals = np.array([(summary["methods"][m]["latency"]["goal_ms"].get(s) or {}).get("p50") or 0.0 for m in methods])
        ax1.barh(y, vals, left=left, label=s)
        left += vals
    ax1.set_yticks(y, methods)
    ax1.set_xlabel("ms (median per stage, stacked)")
    ax1.set_title("instruction → goal")
    if stages:
        ax1.legend(fontsize=7, loc="lower right")
    labels = ["policy step", "env step"]
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(labels))
    for i, m in enumerate(methods):
        lat = summary["methods"][m]["latency"]
        p50 = [lat["policy_step_ms"]["p50"], lat["env_step_ms"]["p50"]]
        p95 = [lat["policy_step_ms"]["p95"], lat["env_step_ms"]["p95"]]
        pos = x + (i - (len(methods) - 1) / 2) * width
        ax2.bar(pos, p50, width, label=f"{m} p50")
        ax2.scatter(pos, p95, marker="_", s=200, color="black", zorder=3, label="p95" if i == 0 else None)
    ax2.set_xticks(x, labels)
    ax2.set_ylabel("ms per step")
    ax2.set_title("per-step latency (bar p50, tick p95)")
    ax2.legend(fontsize=7)
    title = "Latency by stage"
    if summary["label"]:
        title = f"{summary['label']} — {title}"
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(rows: Iterable[dict[str, Any]], meta: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """summary.json, summary.md, success.png and latency.png in ``out_dir``; returns the summary."""
    summary = summarize(rows, meta)
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    write_markdown(summary, out_dir / "summary.md")
    if summary["tasks"]:
        plot_success(summary, out_dir / "success.png")
        plot_latency(summary, out_dir / "latency.png")
    return summary
