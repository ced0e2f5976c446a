"""Peak RSS of a full-size float32 agent with all models loaded (policy, prior, both text towers, alignment).

    python -m eval.benchmarks.bench_memory [--out runs/bench/memory.json]

Run in its own process (``python -m eval.benchmarks`` does) so the peak belongs to the agent alone. RANDOM
weights built in place (no checkpoint file is read, so no load-time copies are counted); then one Chinese and one
English reset (which loads the MineCLIP text tower) with 3 guided steps each; the peak is reported after the
Chinese phase (MineCLIP text not loaded) and at the end (all models).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def _status() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out["rss_mib" if line.startswith("VmRSS") else "peak_rss_mib"] = round(int(line.split()[1]) / 1024, 1)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench/memory.json"))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from zh_steve.agent import AgentConfig, ZhSteveAgent

    from .parts import full_size_random_parts

    before = _status()
    parts = full_size_random_parts()
    built = _status()
    agent = ZhSteveAgent(parts, AgentConfig(seed=0))
    rng = np.random.default_rng(0)
    phases = {}
    for text, phase in (("砍树", "chinese_only"), ("chop a tree", "all_models")):
        agent.reset(text)  # the English reset loads the MineCLIP text tower
        for _ in range(3):
            agent.act({"pov": rng.integers(0, 256, size=(360, 640, 3), dtype=np.uint8)})
        phases[phase] = _status()
    end = _status()
    mib = {name: round(sum(t.numel() * t.element_size() for t in m.state_dict().values()) / 2**20, 1)
           for name, m in (("policy", parts.policy), ("prior", parts.prior), ("alignment", parts.alignment),
                           ("chinese_clip_text", parts.chinese_encoder.tower),
                           ("mineclip_text", parts.mineclip_encoder.model))}
    result = {"label": "full-size float32 agent, all models loaded, RANDOM weights", "interpreter_mib": before,
              "after_build": built,
              "peak_rss_mib_chinese_only": phases["chinese_only"]["peak_rss_mib"], "after_steps": end, "weights_mib": mib,
              "weights_total_mib": round(sum(mib.values()), 1), "peak_rss_mib": end["peak_rss_mib"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
