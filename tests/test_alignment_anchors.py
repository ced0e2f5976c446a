"""Word-level anchors: lexicon words and CC-CEDICT glosses join train, and no held-out word reaches train."""

from __future__ import annotations

import pytest
import torch

from alignment import anchors as A
from alignment.pairs import PairsConfig, build_pairs, held_out_words


@pytest.fixture(scope="module")
def pairset():
    return build_pairs(PairsConfig(phrasings_per_class=2, paper_phrasings_per_class=4, action_phrasings_per_class=2,
                                   max_classes_per_split=200), seed=0)


def _held_zh(pairset) -> list[str]:
    return sorted({w for ws in held_out_words(pairset).values() for w in ws})


def test_lexicon_anchors_are_train_words_only(pairset):
    anchors = A.lexicon_anchors(pairset)
    assert len(anchors) > 100
    zh = {a.zh for a in anchors}
    assert "砍" in zh  # a train verb alone (chop is never held out: its words occur elsewhere)
    held = _held_zh(pairset)
    assert held and not any(w in a.zh for a in anchors for w in held)
    by_zh = {a.zh: a.en for a in anchors}
    assert by_zh["砍"] == "chop down" and "{o}" not in "".join(by_zh.values())


def test_clean_gloss_keeps_short_plain_glosses():
    assert A.clean_gloss("to chop") == "chop"
    assert A.clean_gloss("torch (lit.)") == "torch"
    assert A.clean_gloss("iron ore") == "iron ore"
    for bad in ("surname Li", "variant of 樹[shu4]", "CL:棵[ke1]", "to throw sth at sb", "Beijing",
                "a very long gloss of many words", "(Tw) saddle horse"):
        assert A.clean_gloss(bad) is None, bad


def test_no_held_out_word_reaches_train_through_the_dictionary(pairset, monkeypatch):
    held_verbs = pairset.held_out["val_verbs"] + pairset.held_out["test_verbs"]
    held_objs = pairset.held_out["val_objects"] + pairset.held_out["test_objects"]
    from alignment import lexicon

    v, o = lexicon.VERBS[held_verbs[0]], lexicon.OBJECTS[held_objs[0]]
    v_zh = A.content_words(v)[0]
    o_zh = A.content_words(o)[0]
    o_en = o.en[0].split()[-1]
    fake = [
        {"simplified": v_zh + "走", "traditional": v_zh + "走", "definitions": ["to leave"]},  # held-out Chinese
        {"simplified": "东西", "traditional": "東西", "definitions": [o_en]},                    # held-out English
        {"simplified": o_zh, "traditional": o_zh, "definitions": ["thing"]},                    # held-out object
        {"simplified": "木头", "traditional": "木頭", "definitions": ["log"]},                   # fine
    ]
    monkeypatch.setattr(A, "_cedict_entries", lambda: fake)
    out = A.build_anchors(A.AnchorsConfig(lexicon_words=False, cedict=True, cedict_cap=10), pairset)
    assert [(a.zh, a.en) for a in out] == [("木头", "log")]


@pytest.mark.slow  # parses all 122k CC-CEDICT entries (~20 s); the logic is covered fast above
def test_the_real_dictionary_is_filtered_capped_and_honest(pairset):
    cap = 3000
    out = A.build_anchors(A.AnchorsConfig(lexicon_words=True, cedict=True, cedict_cap=cap), pairset)
    cedict = [a for a in out if a.source == "cedict"]
    assert len(cedict) == cap
    ok = A.held_out_filter(pairset)
    assert all(ok(a.zh, a.en) for a in out)
    held = _held_zh(pairset)
    assert not any(w in a.zh for a in out for w in held)
    assert all(1 <= len(a.zh) <= 4 and 1 <= len(a.en.split()) <= 3 for a in cedict)
    assert len({a.zh for a in out}) == len(out)
    train_texts = {p.text for p in pairset.pairs}
    assert not any(a.zh in train_texts for a in out)


def test_dev_folds_hold_out_train_words_honestly(pairset):
    from dataclasses import replace

    from alignment.pairs import dev_folds
    from alignment.train import DevConfig, build_dev_folds

    groups = dev_folds(pairset, 3, 3, 0.05, seed=0)
    held = {i for ids in pairset.held_out.values() for i in ids}
    words = [set(g["dev_verbs"]) | set(g["dev_objects"]) for g in groups]
    assert len(groups) == 3 and all(len(g["dev_verbs"]) == 3 for g in groups)
    assert not any(w & held for w in words)                                    # never a val/test word
    assert not (words[0] & words[1] or words[0] & words[2] or words[1] & words[2])  # disjoint folds
    anchors = A.lexicon_anchors(pairset)
    folds = build_dev_folds(pairset, anchors, len(anchors), DevConfig(folds=3, object_fraction=0.05), seed=0)
    train = pairset.split("train")
    for g, f in zip(groups, folds):
        fold_words = _held_zh(replace(pairset, held_out={"val_verbs": g["dev_verbs"], "val_objects": g["dev_objects"],
                                                         "test_verbs": [], "test_objects": []}))
        kept = [a for a, k in zip(anchors, f.anchors.tolist()) if k]
        assert len(kept) < len(anchors) and not any(w in a.zh for a in kept for w in fold_words)
        fit_texts = [p.text for p, k in zip(train, f.train.tolist()) if k]
        assert not any(w in t for t in fit_texts for w in fold_words)          # no dev word in the fold's fit
        dev = [p for p, k in zip(train, f.dev.tolist()) if k]
        assert dev and all(p.lang != "en" and (p.verb in g["dev_verbs"] or p.object in g["dev_objects"]) for p in dev)
        kept_cls = {pairset.classes[i].class_id for i in f.train_classes.tolist()}
        assert not kept_cls & {p.class_id for p in dev}


def test_seen_dev_queries_are_whole_served_texts_of_kept_train_classes(pairset):
    from alignment.train import DevConfig, build_dev_folds
    from zh_steve.text.language import route

    anchors = A.lexicon_anchors(pairset)
    plain = build_dev_folds(pairset, anchors, len(anchors), DevConfig(folds=2, object_fraction=0.05), seed=0)
    folds = build_dev_folds(pairset, anchors, len(anchors), DevConfig(folds=2, object_fraction=0.05), seed=0,
                            seen_fraction=0.1)
    train = pairset.split("train")
    served = [route(p.text, lang="zh").text_for_encoder for p in train]
    for f, g in zip(folds, plain):
        assert g.seen is None and f.seen is not None and torch.equal(f.dev, g.dev)
        seen = f.seen.tolist()
        assert 0.05 < sum(seen) / sum(g.train.tolist()) < 0.15
        assert not (f.seen & f.train).any() and not (f.seen & f.dev).any()       # out of the fit, not dev words
        assert torch.equal(f.train | f.seen, g.train)                            # nothing else changes
        kept = {pairset.classes[i].class_id for i in f.train_classes.tolist()}
        picked = {t for t, s in zip(served, seen) if s}
        for p, t, s in zip(train, served, seen):
            if s:
                assert p.lang != "en" and p.class_id in kept
            elif p.lang != "en" and t in picked:                                 # a Traditional twin never stays
                raise AssertionError(f"{p.text!r} is in the fit but its served text is a seen query")


def test_too_many_dev_folds_is_a_config_error_that_says_what_to_do(pairset):
    from zh_steve.errors import ConfigError

    from alignment.pairs import dev_folds
    from alignment.train import DevConfig

    assert dev_folds(pairset, 0, 3, 0.08, seed=0) == []
    with pytest.raises(ConfigError, match="lower dev.folds"):
        dev_folds(pairset, 10, 3, 0.08, seed=0)
    with pytest.raises(ConfigError, match="dev"):
        DevConfig(folds=-1)
