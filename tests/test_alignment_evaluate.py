"""The free-form set and its reader (the CLI itself runs on a tiny trained layer in test_alignment_train.py)."""

from __future__ import annotations

import pytest
import torch

from alignment.evaluate import DEFAULT_FREEFORM, FreeformFormatError, read_freeform, resolve_prompts, score
from alignment.pairs import PairsConfig, build_classes
from zh_steve.goal import PromptBank
from zh_steve.text.language import is_traditional


def test_the_shipped_free_form_set():
    items = read_freeform(DEFAULT_FREEFORM)
    assert len(items) >= 150
    assert len({it.text for it in items}) == len(items)
    classes, _ = build_classes(PairsConfig(), 0)        # the default split of configs/alignment*.yaml
    split = {c.class_id: c.split for c in classes}
    assert all(it.prompt in split for it in items)      # every prompt is a class prompt
    seen = sum(split[it.prompt] == "train" for it in items)
    assert seen >= 60 and len(items) - seen >= 60       # seen and held-out (unseen) classes
    assert sum(is_traditional(it.text) for it in items) >= 25
    sources = {c.class_id: c.source for c in classes}
    assert {"paper", "action", "compose"} <= {sources[it.prompt] for it in items}


def test_malformed_lines_and_unknown_prompts_name_the_line(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("# c\ninstruction\tprompt\n砍树\tchop a tree\n挖土\n", encoding="utf-8")
    with pytest.raises(FreeformFormatError, match=r"x\.tsv:4: expected"):
        read_freeform(f)
    f.write_text("砍树\tchop a tree\n挖土\tdig a hole\n", encoding="utf-8")
    items = read_freeform(f)
    bank = PromptBank(texts=["chop a tree"], emb=torch.ones(1, 3))
    with pytest.raises(FreeformFormatError, match=r":2: unknown class prompt 'dig a hole'"):
        resolve_prompts(items, bank, f)
    f.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(FreeformFormatError, match="no instructions"):
        read_freeform(f)
    with pytest.raises(FreeformFormatError, match="not found"):
        read_freeform(tmp_path / "missing.tsv")


def test_score_splits_seen_and_unseen():
    emb = torch.eye(4) * 2 + 1
    bank = PromptBank(texts=list("abcd"), emb=emb, splits=["train", "train", "val", "test"])
    cls = torch.tensor([0, 1, 2, 3])
    res = score(emb.clone(), cls, bank)                   # perfect predictions
    assert res["all"]["top1"] == 1.0 and res["seen"]["n"] == 2 and res["unseen"]["n"] == 2
    assert res["all"]["goal"]["snap"]["hit"] == 1.0 and res["all"]["norm_ratio"] == pytest.approx(1.0)
    wrong = emb[[1, 0, 3, 2]]
    res = score(wrong, cls, bank)
    assert res["unseen"]["top1"] == 0.0 and res["unseen"]["goal"]["snap"]["hit"] == 0.0


def test_vectorised_goal_metrics_follow_choose_goal():
    from alignment.evaluate import goal_metrics
    from zh_steve.goal import choose_goal

    g = torch.Generator().manual_seed(0)
    emb = torch.randn(12, 6, generator=g) + 3.0
    bank = PromptBank(texts=[str(i) for i in range(12)], emb=emb, splits=["train"] * 8 + ["val"] * 4,
                      blend_margin=0.05)
    pred = emb[torch.arange(12) % 12] + 0.8 * torch.randn(12, 6, generator=g)
    cls = torch.arange(12)
    for mode in ("regress", "snap", "blend"):
        m = goal_metrics(pred, cls, bank, mode)
        snaps = [choose_goal(p, bank, mode)[1].snapped for p in pred]
        assert m["snap_rate"] == pytest.approx(sum(snaps) / 12)
    assert 0 < goal_metrics(pred, cls, bank, "blend")["snap_rate"] < 1   # the example exercises both branches
