"""All benchmarks in one run: policy, text towers, instruction → goal, batched throughput, precision, memory, the
full-size alignment run.

    python -m eval.benchmarks [--out runs/bench] [--threads 2] [--only policy text pipeline batched precision memory train]

Full-size architectures with RANDOM weights (architecture cost only; never Minecraft results). Each part also
has its own module (``python -m eval.benchmarks.bench_policy`` …). Writes ``<out>/<part>.json`` per part, then
``<out>/summary.json`` and ``<out>/summary.md`` (one table; parts not run this time keep their last JSON). The side-by-side comparison with the official code is
``../shared/bench/official_vs_project.py`` (see DEVELOPERS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

PARTS = ("policy", "text", "pipeline", "batched", "precision", "memory", "train")
LABEL = "full-size architectures, RANDOM weights (architecture cost only)"


def _rows(results: dict) -> list[tuple[str, str, str]]:
    """(section, metric, value) rows for the Markdown table."""
    rows = []
    if "policy" in results:
        for mode, r in results["policy"]["modes"].items():
            rows.append(("policy step", mode, f"{r['p50_ms']:.1f} ms (p50)"))
    if "text" in results:
        for r in results["text"]["results"]:
            rows.append(("text tower", f"{r['tower']}, {r['threads']} thread(s)",
                         f"{r['median_ms_per_instruction']:.1f} ms"))
    if "pipeline" in results:
        for k, v in results["pipeline"]["instruction_to_goal_p50_ms"].items():
            rows.append(("instruction → goal", k, f"{v:.1f} ms"))
        for k, v in results["pipeline"]["speedup_vs_translate"].items():
            rows.append(("instruction → goal", f"{k} / align", f"{v:.2f}×"))
    if "batched" in results:
        for n, r in results["batched"]["n_envs"].items():
            rows.append(("batched agent (CFG 6)", f"N = {n}",
                         f"{r['env_steps_per_s']:.2f} env-steps/s ({r['step_p50_ms']:.0f} ms/step)"))
    if "precision" in results:
        pr = results["precision"]
        for where in ("policy_golden", "policy_full_size"):
            for s in ("bfloat16", "autocast", "int8-dynamic"):
                r = pr[where][s]
                rows.append(("per-step KL vs float32", f"{where}, {s}",
                             f"buttons {r['kl_buttons_mean']:.4f} (max {r['kl_buttons_max']:.4f}), camera "
                             f"{r['kl_camera_mean']:.4f} (max {r['kl_camera_max']:.4f}); step "
                             f"{r['guided_step_p50_ms']:.0f} ms vs float32 {pr[where]['float32']['guided_step_p50_ms']:.0f} ms"))
        for tower in ("chinese_clip_text", "mineclip_text"):
            for s in ("bfloat16", "int8-dynamic"):
                r = pr["text_towers"][tower][s]
                rows.append(("text cosine vs float32", f"{tower}, {s}",
                             f"min {r['cos_min']:.5f}, mean {r['cos_mean']:.5f}"))
    if "memory" in results:
        m = results["memory"]
        rows.append(("memory", "peak RSS, fp32 agent, Chinese instructions (MineCLIP text not loaded)",
                     f"{m['peak_rss_mib_chinese_only']:.0f} MiB"))
        rows.append(("memory", "peak RSS, fp32 agent, all models", f"{m['peak_rss_mib']:.0f} MiB"))
        rows.append(("memory", "weights (policy / zh tower / MineCLIP text)",
                     f"{m['weights_mib']['policy']:.0f} / {m['weights_mib']['chinese_clip_text']:.0f} / "
                     f"{m['weights_mib']['mineclip_text']:.0f} MiB"))
    if "train" in results:
        r = results["train"]
        rows.append(("alignment run (python -m alignment.train, cold cache)", f"{r['pairs']} pairs + {r['anchors']} "
                     f"anchors, embedding pass {r['encode_dtype']}",
                     f"{r['wall_s']:.0f} s end to end, peak RSS {r['peak_rss_mib']:.0f} MiB; phases ended at "
                     + ", ".join(f"{k} {v:.0f} s" for k, v in r["phase_end_s"].items())))
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m eval.benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/bench"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    t = str(args.threads)
    out = args.out
    results: dict = {}
    t0 = time.perf_counter()
    for part in args.only:
        path = out / f"{part}.json"
        print(f"== {part} ==", flush=True)
        if part == "policy":
            from .bench_policy import main as run
            results[part] = run(["--out", str(path), "--threads", t])
        elif part == "text":
            from .bench_text import main as run
            results[part] = run(["--out", str(path), "--threads", t])
        elif part == "pipeline":
            from .bench_pipeline import main as run
            run(["--out", str(path), "--threads", t, "--beams", "1"])
            results[part] = json.loads(path.read_text())
        elif part == "batched":
            from .bench_batched import main as run
            results[part] = run(["--out", str(path), "--threads", t])
        elif part == "precision":
            from .bench_precision import main as run
            results[part] = run(["--out", str(path), "--threads", t])
        elif part == "memory":  # its own process: the peak must be the agent's alone
            subprocess.run([sys.executable, "-m", "eval.benchmarks.bench_memory", "--out", str(path),
                            "--threads", t], check=True)
            results[part] = json.loads(path.read_text())
        elif part == "train":  # a child process running python -m alignment.train, as a user's first run
            from .bench_train import main as run
            results[part] = run(["--out", str(path)])
    for part in PARTS:  # parts not run this time: keep their last results in the table
        if part not in results and (out / f"{part}.json").is_file():
            results[part] = json.loads((out / f"{part}.json").read_text())
    summary = {"label": LABEL, "parts_run_now": list(args.only), "threads": args.threads, "torch": torch.__version__,
               "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
               "load_average_1m_after": round(os.getloadavg()[0], 2), "wall_s": round(time.perf_counter() - t0, 1),
               "results": results}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [f"# zh-steve benchmarks — {LABEL}", "",
             f"CPU, {args.threads} thread(s), torch {torch.__version__}, 1-min load average after: "
             f"{summary['load_average_1m_after']} on {os.cpu_count()} CPUs.", "",
             "| section | what | value |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in _rows(results)]
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {out / 'summary.json'} and {out / 'summary.md'}")
    return summary


if __name__ == "__main__":
    main()
