"""python -m alignment.bench on a shrunk tiny config: one run per config, or one per seed with a spread table."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import yaml

from alignment.bench import main, spread

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("restore_threads")   # the CLI sets torch's thread count (conftest)


@pytest.fixture(scope="module")
def small_config(tmp_path_factory) -> Path:
    """The tiny config, shrunk to a few seconds a run (40 classes a split, 2 phrasings, 2 epochs)."""
    root = tmp_path_factory.mktemp("bench")
    cfg = yaml.safe_load((ROOT / "configs" / "alignment_tiny.yaml").read_text(encoding="utf-8"))
    cfg["cache_dir"] = str(root / "cache")
    cfg["pairs"].update(max_classes_per_split=40, phrasings_per_class=2, paper_phrasings_per_class=2,
                        action_phrasings_per_class=2)
    cfg["mlp"]["epochs"] = 2
    path = root / "tiny_small.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def test_seeds_run_each_split_and_summarise_them(small_config, tmp_path):
    out = tmp_path / "bench"
    assert main(["--configs", str(small_config), "--seeds", "0", "1", "--out", str(out)]) == 0
    result = json.loads((out / "alignment_proxy.json").read_text(encoding="utf-8"))
    assert "PROXY ENCODERS" in result["label"]
    runs = result["tiny_small"]["seeds"]
    assert set(runs) == {"0", "1"}
    metrics = {s: json.loads((out / "tiny_small" / f"seed{s}" / "metrics.json").read_text()) for s in ("0", "1")}
    # each seed is its own split: different held-out classes, so different test sets
    assert metrics["0"]["pairs"] != metrics["1"]["pairs"] or metrics["0"]["test"] != metrics["1"]["test"]
    summary = result["tiny_small"]["spread"]
    for s, m in metrics.items():
        chosen = m["chosen"]
        assert runs[s]["chosen"] == chosen
        assert summary["test top-5"]["by_seed"][s] == pytest.approx(m["test"][chosen]["top5"])
        assert summary["val top-1"]["by_seed"][s] == pytest.approx(m["val"][chosen]["top1"])
        assert summary["free-form unseen top-1"]["by_seed"][s] == pytest.approx(m["freeform"]["unseen"]["top1"])
    for row in summary.values():
        values = list(row["by_seed"].values())
        assert row["mean"] == pytest.approx(statistics.fmean(values))
        assert (row["min"], row["max"]) == (min(values), max(values))
    # the hub-ranked rows exist only where every split chose a hubness weight > 0 (and so has that ranking)
    assert ("hub-ranked test top-1" in summary) == all("hub" in m for m in metrics.values())
    md = (out / "alignment_proxy.md").read_text(encoding="utf-8")
    assert "Spread over 2 splits (seeds 0, 1)" in md and "### seed 0" in md and "### seed 1" in md


def test_without_seeds_one_run_in_the_old_layout(small_config, tmp_path):
    out = tmp_path / "bench"
    assert main(["--configs", str(small_config), "--out", str(out)]) == 0
    result = json.loads((out / "alignment_proxy.json").read_text(encoding="utf-8"))
    run = result["tiny_small"]
    assert "seeds" not in run and {"val", "test", "chosen", "freeform"} <= set(run)
    assert (out / "tiny_small" / "metrics.json").is_file()
    assert "Spread over" not in (out / "alignment_proxy.md").read_text(encoding="utf-8")


def test_repeated_seed_is_a_usage_error(small_config, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--configs", str(small_config), "--seeds", "0", "0", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "repeats a seed" in capsys.readouterr().err
    assert not (tmp_path / "alignment_proxy.json").exists()


def test_spread_leaves_out_rows_some_run_lacks():
    def report(top5: float, hub: bool) -> dict:
        r = {"chosen": "mlp", "val": {"mlp": {"top1": 0.1, "top5": 0.2}},
             "test": {"mlp": {"top1": 0.3, "top5": top5, "norm_ratio": 1.0}}}
        if hub:
            r["hub"] = {"test": {"top1": 0.5, "top5": 0.9}}
        return r

    out = spread({0: report(0.6, True), 3: report(0.8, False)})
    assert out["test top-5"] == {"mean": pytest.approx(0.7), "min": 0.6, "max": 0.8, "by_seed": {"0": 0.6, "3": 0.8}}
    assert "hub-ranked test top-5" not in out and "free-form top-1" not in out
