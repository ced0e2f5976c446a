"""The training CLI end to end on the tiny encoders (offline), plus its config and missing-weights errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from alignment.train import R2_GATED, RUNG_KINDS, RUNGS, main
from zh_steve.alignment_layer import AlignmentLayer
from zh_steve.text.language import route

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "alignment_tiny.yaml"


pytestmark = pytest.mark.usefixtures("restore_threads")   # the CLI sets torch's thread count (conftest)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    cache = root / "cache"
    runs = []
    for name in ("a", "b"):  # the second run reuses the embedding cache and must reproduce the first
        import io
        from contextlib import redirect_stdout

        buf = io.StringIO()
        with redirect_stdout(buf):
            rc = main(["--config", str(TINY), "--out", str(root / name), "--cache-dir", str(cache), "--seed", "0"])
        assert rc == 0
        runs.append((root / name, buf.getvalue()))
    return runs


def test_tiny_run_writes_every_file(tiny_run):
    out, stdout = tiny_run[0]
    for name in ("alignment.safetensors", "config.json", "metrics.json", "train_log.jsonl", "pairs.jsonl",
                 "train_config.json", "anchors.jsonl", "prompt_bank.safetensors", "prompt_bank.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("train", "val", "test"):
        for rung in RUNGS:  # the tiny towers are both 512-d, so the identity rung exists too
            m = metrics[split][rung]
            assert {"top1", "top5", "mrr", "r2", "raw_cos", "centred_cos", "norm_ratio", "n"} <= set(m)
            assert m["n"] > 0
    for rung in RUNGS[1:]:  # norm calibration: predictions sit at the targets' norms on train
        assert metrics["train"][rung]["norm_ratio"] == pytest.approx(1.0, abs=0.01)
    assert metrics["chosen"] in RUNGS
    from alignment.train import choose_rung

    base = metrics["mlp_base"]
    assert metrics["chosen"] == choose_rung(metrics["val"], 0.1, base)  # max_r2_drop in alignment_tiny.yaml
    val = metrics["val"]
    eligible = [r for r in RUNGS if r not in R2_GATED or val[r]["r2"] >= val[base]["r2"] - 0.1]
    assert val[metrics["chosen"]]["top1"] == max(val[r]["top1"] for r in eligible)
    ff = metrics["freeform"]
    assert ff["all"]["n"] == ff["seen"]["n"] + ff["unseen"]["n"] > 100 and ff["unseen"]["n"] > 30
    assert set(ff["all"]["goal"]) == {"regress", "snap", "blend"}
    assert ff["all"]["goal"]["snap"]["snap_rate"] == 1.0 and ff["all"]["goal"]["regress"]["snap_rate"] == 0.0
    assert metrics["anchors"]["lexicon"] > 100
    assert metrics["encode_dtype"] in ("float32", "bfloat16")   # auto: bfloat16 where the CPU has it natively
    pairs = (out / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(pairs) == metrics["pairs"]["pairs"]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    folds = metrics["dev_folds"]
    assert len(folds) == 3 and {r["fold"] for r in log} == {0, 1, 2}       # one MLP per dev fold (dev.folds: 3)
    for k in range(3):
        epochs = [r["epoch"] for r in log if r["fold"] == k]
        assert epochs == list(range(len(epochs))) and len(epochs) >= 2
    alpha_rows = metrics["shrink"]["residual_alpha_dev"]                     # α chosen on the folds, not on val
    assert {r["fold"] for r in alpha_rows} == {0, 1, 2} and all(0 <= r["dev_top1"] <= 1 for r in alpha_rows)
    assert "top1" in stdout and "newly encoded" in stdout
    hub_rows = metrics["shrink"]["hub_weight_dev"]                           # hub weight chosen on the folds
    chosen = hub_rows[-1]
    assert chosen["chosen"] and chosen["hub_weight"] in (0.0, 0.5)           # hub.weights in alignment_tiny.yaml
    assert {r["fold"] for r in hub_rows[:-1]} == {0, 1, 2} and all(0 <= r["seen_top1"] <= 1 for r in hub_rows[:-1])
    from zh_steve.goal import PromptBank

    bank = PromptBank.load(out)
    assert bank.hub_weight == chosen["hub_weight"]
    if chosen["hub_weight"] > 0:   # its own rows beside the plain-cosine ones, scored with the bank's ranking
        assert bank.hub_ref is not None and {"val", "test"} <= set(metrics["hub"]) and "hub" in ff["all"]
    else:
        assert "hub" not in metrics and bank.penalty is None and "hub" not in ff["all"]


def test_tiny_run_layer_loads_and_matches_its_rung(tiny_run):
    out, _ = tiny_run[0]
    layer = AlignmentLayer.from_pretrained(out)
    cfg = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert cfg["kind"] == RUNG_KINDS.get(metrics["chosen"], metrics["chosen"])
    assert cfg["source_encoder"].startswith("chinese-clip-text:") and cfg["target_encoder"].startswith("mineclip-text:")
    x = torch.randn(3, 512)
    for rung in RUNGS:
        assert AlignmentLayer.from_pretrained(out / "rungs" / rung).config.kind == RUNG_KINDS.get(rung, rung)
    assert torch.equal(layer(x), AlignmentLayer.from_pretrained(out / "rungs" / metrics["chosen"])(x))


def test_second_run_uses_the_cache_and_reproduces(tiny_run):
    (a, _), (b, stdout_b) = tiny_run
    assert "(0 newly encoded)" in stdout_b and stdout_b.count("(0 newly encoded)") == 2
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    for split in ("train", "val", "test"):
        assert ma[split] == mb[split]
    assert (a / "pairs.jsonl").read_bytes() == (b / "pairs.jsonl").read_bytes()


def _write(tmp_path: Path, cfg: dict) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def test_unknown_config_key_is_a_clear_error(tmp_path, capsys):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["mlp"]["epochz"] = 3
    assert main(["--config", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown key" in err and "epochz" in err and len(err.splitlines()) == 1


def test_set_overrides_config_values_as_yaml(tmp_path, capsys):
    from alignment.train import load_train_config, parse_args

    cfg = load_train_config(parse_args(["--config", str(TINY), "--set", "pairs.phrasings_per_class=2",
                                        "--set", "hub.weights=[0, 0.5]", "--set", "mlp.mixup=0.2"]))
    assert cfg.pairs.phrasings_per_class == 2 and cfg.hub.weights == [0, 0.5] and cfg.mlp.mixup == 0.2
    assert main(["--config", str(TINY), "--out", str(tmp_path / "o"), "--set", "mlp.epochz=3"]) == 2
    assert "epochz" in capsys.readouterr().err
    assert main(["--config", str(TINY), "--out", str(tmp_path / "o"), "--set", "mlp.epochs"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_missing_mineclip_prints_one_line(tmp_path, capsys):
    cfg = {"target_encoder": {"kind": "mineclip", "path": str(tmp_path / "attn.pth")}}
    assert main(["--config", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("missing: MineCLIP") and "attn.pth" in err and "download_weights" in err
    assert not (tmp_path / "o").exists()


def test_missing_mineclip_offline_resolution_prints_one_line(tmp_path, capsys, monkeypatch):
    """No explicit path, nothing in weights/ or the caches, downloads refused: one line, nothing written."""
    monkeypatch.setenv("ZS_WEIGHTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("ZS_NO_DOWNLOAD", "1")
    cfg = {"target_encoder": {"kind": "mineclip", "weights_dir": str(tmp_path / "weights")}}
    assert main(["--config", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("missing: MineCLIP") and "download_weights" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_mineclip_resolved_from_weights_dir_in_official_layout(tmp_path):
    """A full-size weights/mineclip/attn.pth (official layout, checked against the real manifest) is found through
    zh_steve.weights.resolve_weights and loaded into the trainer's target encoder."""
    from alignment.encoders import TargetEncoderConfig, build_target_encoder
    from zh_steve.text.mineclip_text import MineClipTextConfig, MineClipTextModel

    torch.manual_seed(0)
    model = MineClipTextModel(MineClipTextConfig())
    (tmp_path / "weights" / "mineclip").mkdir(parents=True)
    sd = {f"model.clip_model.text_model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": sd}, tmp_path / "weights" / "mineclip" / "attn.pth")
    enc = build_target_encoder(TargetEncoderConfig(weights_dir=str(tmp_path / "weights"), allow_download=False))
    ref = enc.model.state_dict()
    assert all(torch.equal(ref[k], v) for k, v in model.state_dict().items())
    assert enc.encode(["chop a tree"]).shape == (1, 512)


def test_help_and_bad_device(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "alignment.safetensors" in capsys.readouterr().out
    if not torch.cuda.is_available():
        assert main(["--config", str(TINY), "--out", str(tmp_path / "o"), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


def test_choose_rung_refuses_a_retrieval_win_that_wrecks_the_raw_geometry():
    from alignment.train import choose_rung

    val = {"mean": {"top1": 0.0, "r2": 0.0}, "ridge": {"top1": 0.40, "r2": 0.50}, "mlp": {"top1": 0.55, "r2": 0.45}}
    assert choose_rung(val, max_r2_drop=0.1) == "mlp"
    val["mlp"]["r2"] = 0.20  # better retrieval, but far from MineCLIP's raw vectors: the prior would get garbage
    assert choose_rung(val, max_r2_drop=0.1) == "ridge"
    val["ridge"]["top1"] = 0.0
    val["mean"]["top1"] = 0.0
    assert choose_rung(val, max_r2_drop=0.1) == "ridge"  # tie on top-1 → higher R²
    # an isometry (Procrustes) keeps full-length deviations: lower R² than a shrunken ridge, still eligible
    val = {"ridge": {"top1": 0.15, "r2": 0.0}, "procrustes": {"top1": 0.25, "r2": -0.35},
           "mlp": {"top1": 0.30, "r2": -0.40}}
    assert choose_rung(val, 0.1, mlp_base="procrustes") == "mlp"       # the MLP is judged against its own base
    val["mlp"]["r2"] = -0.6
    assert choose_rung(val, 0.1, mlp_base="procrustes") == "procrustes"


@pytest.mark.parametrize("section,key,value,word", [
    ("ridge", "lambdas", "abc", "lambdas"),
    (None, "max_r2_drop", "abc", "max_r2_drop"),
    (None, "seed", "abc", "seed"),
    ("mlp.architecture", "hidden_dims", [512, "wide"], "mlp.architecture.hidden_dims[1]"),
    ("anchors", "cedict_cap", 1.5, "anchors.cedict_cap"),
    ("ridge", "priors", ["identity", "rotation"], "rotation"),
    ("pairs", "traditional", "yes", "traditional"),
    ("mlp", "patience", 0, "patience"),
    (None, "encode_workers", 0, "encode_workers"),
])
def test_wrong_value_types_are_one_line_config_errors(tmp_path, capsys, section, key, value, word):
    # from_dict checks keys only: these used to end in a TypeError traceback deep inside training
    cfg = yaml.safe_load(TINY.read_text())
    node = cfg
    for part in (section.split(".") if section else []):
        node = node[part]
    node[key] = value
    assert main(["--config", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("config error:") and word in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_yaml_exponent_without_dot_is_a_number():
    # PyYAML (YAML 1.1) reads `lr: 1e-3` as the string "1e-3"
    from alignment.train import TrainConfig
    from zh_steve.config_utils import from_dict

    cfg = from_dict(TrainConfig, yaml.safe_load("mlp: {lr: 1e-3}\nridge: {lambdas: [1e-2, 1]}\n"))
    assert cfg.mlp.lr == 1e-3 and cfg.ridge.lambdas == [0.01, 1.0]


def test_training_encodes_what_the_agent_serves(tmp_path):
    """Every input goes through the agent's routing rule for the Chinese tower: Traditional → Simplified."""
    from alignment.pairs import ClassInfo, Pair, PairSet
    from alignment.train import TrainConfig, embed

    class Recorder:
        dim = 4

        def __init__(self, identity):
            self.identity, self.seen = identity, []

        def encode(self, texts, batch_size=64, progress=False):
            self.seen += texts
            return torch.randn(len(texts), self.dim)

    cls = [ClassInfo("chop a tree", "train", "compose", verb="chop", object="tree")]
    pairs = [Pair(text=t, class_id="chop a tree", split="train", lang=lang, source="compose", style="imperative")
             for t, lang in (("砍樹", "zh-Hant"), ("砍树", "zh-Hans"), ("Chop A Tree", "en"))]
    src, tgt = Recorder("rec:src"), Recorder("rec:tgt")
    data = embed(PairSet(pairs, cls, held_out={}), [], src, tgt, TrainConfig(cache_dir=str(tmp_path)))
    assert sorted(src.seen) == sorted({route("砍樹", "zh").text_for_encoder, route("Chop A Tree", "zh").text_for_encoder})
    assert sorted(src.seen) == ["Chop A Tree", "砍树"]
    x = data.splits["train"].x
    assert torch.equal(x[0], x[1]) and not torch.equal(x[0], x[2])


def test_evaluate_cli_on_the_tiny_layer(tiny_run, tmp_path, capsys):
    """python -m alignment.evaluate: rebuilds the source encoder from the run, prints and writes JSON."""
    from alignment.evaluate import main as evaluate_main

    out, _ = tiny_run[0]
    tsv = tmp_path / "ff.tsv"
    tsv.write_text("instruction\tprompt\n砍树\tchop down the tree, gather wood, pick up wood, chop it down, break "
                   "tree\n跳一下\tjump\n騎馬\tride a horse\n", encoding="utf-8")
    assert evaluate_main(["--layer", str(out), "--input", str(tsv), "--json", str(tmp_path / "r.json")]) == 0
    text = capsys.readouterr().out
    assert "seen" in text and "unseen" in text and "top1" in text
    res = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert res["all"]["n"] == 3 and res["seen"]["n"] == 2 and res["unseen"]["n"] == 1
    assert set(res["all"]["goal"]) == {"regress", "snap", "blend"}
    assert res["source_encoder"].startswith("chinese-clip-text:")
    assert evaluate_main(["--layer", str(out / "rungs" / "procrustes"), "--input", str(tsv), "--json",
                          "--goal-mode", "snap"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["all"]["goal"]) == {"snap"}
    tsv.write_text("砍树\tchop a giant\n", encoding="utf-8")
    assert evaluate_main(["--layer", str(out), "--input", str(tsv)]) == 2
    err = capsys.readouterr().err.strip()
    assert "ff.tsv:1: unknown class prompt" in err and len(err.splitlines()) == 1


def test_explain_cli(tiny_run, tmp_path, capsys):
    """python -m zh_steve.explain on an alignment config (its trained layer + bank) and on the tiny agent config."""
    from zh_steve.explain import main as explain_main

    out, _ = tiny_run[0]
    cfg = yaml.safe_load(TINY.read_text())
    cfg["out"] = str(out)
    path = _write(tmp_path, cfg)
    assert explain_main(["砍樹", "--config", str(path), "--top", "3", "--json"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert e["route"]["traditional_to_simplified"] and e["route"]["text_for_encoder"] == "砍树"
    assert len(e["top"]) == 3 and e["top"][0]["score"] >= e["top"][1]["score"] >= e["top"][2]["score"]
    assert e["bank"]["origin"].startswith("saved with the layer") and e["goal"]["mode"] == "regress"
    assert explain_main(["chop a tree", "--config", str(path), "--goal-mode", "snap"]) == 0
    text = capsys.readouterr().out
    assert "target (English) encoder directly" in text and "goal modes apply to Chinese" in text
    assert explain_main(["砍树", "--config", str(path), "--goal-mode", "snap"]) == 0
    assert "snap: nearest prompt" in capsys.readouterr().out
    cfg["out"] = str(tmp_path / "untrained")
    assert explain_main(["砍树", "--config", str(_write(tmp_path, cfg))]) == 2
    assert "train it first" in capsys.readouterr().err
    agent_cfg = yaml.safe_load((ROOT / "configs" / "agent_tiny.yaml").read_text())
    agent_cfg["tiny"]["cache_dir"] = str(tmp_path / "tiny")
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(agent_cfg), encoding="utf-8")
    import zh_steve.policy
    import zh_steve.prior

    def refuse(*args, **kwargs):
        raise AssertionError("explain must not build the policy or the prior")

    with pytest.MonkeyPatch.context() as mp:  # the text side only (assembly.build_text)
        mp.setattr(zh_steve.policy.Steve1Policy, "__init__", refuse)
        mp.setattr(zh_steve.prior.Steve1Prior, "__init__", refuse)
        assert explain_main(["砍树", "--config", str(tmp_path / "agent.yaml"), "--top", "2"]) == 0
    text = capsys.readouterr().out
    assert "tiny random weights" in text and "lexicon class prompts" in text and text.count("\n  ") == 2
