"""The translate baseline's MarianMT path, exercised with the tiny random stand-in built offline."""

from __future__ import annotations

import pytest

from eval.methods import TranslateMethod
from eval.tasks import load_tasks
from eval.translate import TINY_LABEL, MarianTranslator, build_tiny_marian, load_translator
from zh_steve.errors import WeightsNotFoundError


@pytest.fixture(scope="session")
def tiny_marian_dir(tmp_path_factory):
    texts = [p.text for t in load_tasks() for p in t.zh] + [t.prompt_en for t in load_tasks()]
    return build_tiny_marian(tmp_path_factory.mktemp("marian"), texts)


def test_tiny_marian_has_the_hub_file_layout_and_is_cached(tiny_marian_dir):
    names = {p.name for p in tiny_marian_dir.iterdir()}
    assert {"config.json", "source.spm", "target.spm", "vocab.json", "tokenizer_config.json"} <= names
    assert any(n.endswith(".safetensors") for n in names)
    mtime = (tiny_marian_dir / "config.json").stat().st_mtime
    texts = [p.text for t in load_tasks() for p in t.zh] + [t.prompt_en for t in load_tasks()]
    assert build_tiny_marian(tiny_marian_dir.parent, texts) == tiny_marian_dir
    assert (tiny_marian_dir / "config.json").stat().st_mtime == mtime


def test_tiny_marian_loads_through_from_pretrained_and_translates(tiny_marian_dir):
    tr = MarianTranslator(tiny_marian_dir, max_new_tokens=8, min_new_tokens=3)
    assert tr.label == TINY_LABEL and tr.describe()["random_weights"] is True
    assert type(tr.model).__name__ == "MarianMTModel" and type(tr.tokenizer).__name__ == "MarianTokenizer"
    ids = tr.tokenizer("砍树，收集木头")["input_ids"]
    assert tr.tokenizer.unk_token_id not in ids  # the SentencePiece model covers the suite's Chinese
    en, ms = tr.translate_timed("砍树，收集木头")
    assert en and en.isascii()  # the random decoder is kept on English pieces
    assert set(ms) == {"tokenize_ms", "generate_ms", "decode_ms", "total_ms"} and ms["total_ms"] >= ms["generate_ms"]
    assert tr.translate(["去游泳"])[0]


def test_translate_method_times_translation_then_resets_agent_in_english(tiny_marian_dir):
    from eval.baselines import RandomAgent

    calls = []

    class Spy(RandomAgent):
        def reset(self, instruction, lang="auto"):
            calls.append((instruction, lang))
            super().reset(instruction, lang)

    task = load_tasks(only=["swim"])[0]
    g = TranslateMethod(MarianTranslator(tiny_marian_dir, max_new_tokens=6, min_new_tokens=2)).setup(Spy(), task, 1)
    assert calls == [(g.instruction, "en")] and g.source_text == task.zh[1].text and g.translation == g.instruction
    assert g.timings_ms["total_ms"] == pytest.approx(g.timings_ms["translate.total_ms"] + g.timings_ms["embed.total_ms"])


def test_missing_model_dir_says_how_to_get_it(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="opus-mt-zh-en"):
        load_translator(str(tmp_path), tmp_path)


def test_malicious_marian_bin_is_refused_and_never_runs(tmp_path):
    """A Marian dir whose weights are a pickle that would run code: refused as UnsafeCheckpointError."""
    import torch
    from payloads import RunsCode

    from eval.translate import MarianTranslator, build_tiny_marian
    from zh_steve.errors import UnsafeCheckpointError

    d = build_tiny_marian(tmp_path / "marian", ["挖泥土", "dig dirt"])
    for f in list(d.glob("*.safetensors")):
        f.unlink()
    torch.save({"model.shared.weight": RunsCode(tmp_path / "PWNED")}, d / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match="weights-only"):
        MarianTranslator(d)
    assert not (tmp_path / "PWNED").exists()
