"""MineClipTokenizer: golden ids (all cases of clip_tokens.json), layout, truncation flag, hub-path loading."""

from __future__ import annotations

import json

import pytest
import torch

from zh_steve.errors import WeightsNotFoundError, ZhSteveError
from zh_steve.text.clip_tokenizer import (
    BOS_ID,
    BOS_TOKEN,
    EOS_ID,
    EOS_TOKEN,
    MAX_BPE_TOKENS,
    MineClipTokenizer,
    build_clip_fast_tokenizer,
    byte_alphabet,
    open_clip_bpe_path,
)
from tests.conftest import golden_path


def _cases() -> list[dict]:
    return json.loads((golden_path() / "clip_tokens.json").read_text(encoding="utf-8"))["cases"]


CASES = _cases()


@pytest.fixture(scope="module")
def tok() -> MineClipTokenizer:
    return MineClipTokenizer.default()


def test_fixture_has_all_cases():
    data = json.loads((golden_path() / "clip_tokens.json").read_text(encoding="utf-8"))
    assert len(data["cases"]) == data["n_cases"]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}:{c['category']}" for i, c in enumerate(CASES)])
def test_golden_tokens77(tok, case):
    rows, n_bpe = tok.encode([case["text"]])
    assert rows.dtype == torch.long and rows.shape == (1, 77)
    assert rows[0].tolist() == case["tokens77"]
    assert n_bpe[0] == case["n_bpe_tokens"]
    assert tok.truncated([case["text"]]) == [case["truncated"]]
    assert tok.bpe_ids([case["text"]])[0] == case["bpe_ids_hf_fast"]


def test_batch_equals_single_rows(tok):
    texts = [c["text"] for c in CASES]
    rows = tok(texts)
    assert rows.tolist() == [c["tokens77"] for c in CASES]


def test_layout_and_eos_is_row_max(tok):
    rows, n = tok.encode(["chop a tree", "", "tree " * 80])
    assert (rows[:, 0] == BOS_ID).all()
    assert rows.argmax(dim=-1).tolist() == [min(k, MAX_BPE_TOKENS) + 1 for k in n]
    assert rows[1, :3].tolist() == [BOS_ID, EOS_ID, 0]
    assert rows[2, -1].item() == EOS_ID and tok.truncated(["tree " * 80]) == [True]


def test_vocab_construction():
    alphabet = byte_alphabet()
    assert len(alphabet) == len(set(alphabet)) == 256 and alphabet[0] == "!"
    backend = build_clip_fast_tokenizer(open_clip_bpe_path())
    assert backend.get_vocab_size() == 49408
    assert backend.token_to_id(BOS_TOKEN) == BOS_ID and backend.token_to_id(EOS_TOKEN) == EOS_ID


def test_rejects_non_list(tok):
    with pytest.raises(ZhSteveError):
        tok("chop a tree")
    with pytest.raises(ZhSteveError):
        tok(["ok", 3])


def test_empty_batch(tok):
    assert tok([]).shape == (0, 77)


def test_from_pretrained_local_dir_matches_offline(tmp_path, tok):
    """The AutoTokenizer path (what MineCLIP calls) gives the same rows once a tokenizer dir exists."""
    from transformers import PreTrainedTokenizerFast

    backend = build_clip_fast_tokenizer(open_clip_bpe_path())
    PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN,
                            unk_token=EOS_TOKEN).save_pretrained(tmp_path)
    hub_like = MineClipTokenizer.from_pretrained(str(tmp_path))
    texts = [c["text"] for c in CASES]
    assert torch.equal(hub_like(texts), tok(texts))


def test_from_pretrained_missing_is_clear(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="from_open_clip_bpe"):
        MineClipTokenizer.from_pretrained(str(tmp_path / "nope"), local_files_only=True)


def test_missing_bpe_file(tmp_path):
    with pytest.raises(WeightsNotFoundError):
        MineClipTokenizer.from_open_clip_bpe(tmp_path / "missing.txt.gz")
