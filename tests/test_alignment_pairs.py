"""Instruction pairs: size, lexicon coverage, determinism, and a class split with truly unseen words."""

from __future__ import annotations

import json

import pytest

from alignment import lexicon
from alignment.pairs import PairsConfig, build_pairs, held_out_words, holdout_candidates
from zh_steve.config_utils import from_dict
from zh_steve.errors import ConfigError

# STEVE-1 run_agent/paper_prompts.py (STEVE1_FACTS.md §5)
PAPER = {
    "dig": "dig as far as possible",
    "dirt": "get dirt, dig hole, dig dirt, gather a ton of dirt, collect dirt",
    "sky": "look at the sky",
    "leaves": "break leaves",
    "wood": "chop down the tree, gather wood, pick up wood, chop it down, break tree",
    "seeds": "break tall grass, break grass, collect seeds, punch the ground, run around in circles getting seeds "
             "from bushes",
    "flower": "break a flower",
    "explore": "go explore",
    "swim": "go swimming",
    "underwater": "go underwater",
    "inventory": "open inventory",
}


@pytest.fixture(scope="module")
def pairset():
    return build_pairs(PairsConfig(), seed=0)


def test_lexicon_size_and_shape():
    entries = lexicon.all_entries()
    assert len(entries) >= 250
    assert all(e.zh and e.en for e in entries)
    assert len({(e.kind, e.id) for e in entries}) == len(entries)
    assert all("{o}" in p for v in lexicon.VERBS.values() for p in (*v.zh, *v.en))
    # every object can be used by at least one verb
    assert all(any(lexicon.compatible(v, o) for v in lexicon.VERBS.values()) for o in lexicon.OBJECTS.values())
    assert {"砍树", "伐木", "砍木头"} <= set(lexicon.PAPER["wood"].zh)


def test_paper_prompts_are_the_official_eleven(pairset):
    assert lexicon.paper_prompts() == PAPER
    ids = {c.class_id for c in pairset.classes}
    assert set(PAPER.values()) <= ids
    for name, prompt in PAPER.items():
        zh = [p for p in pairset.pairs if p.class_id == prompt and p.lang != "en"]
        assert len(zh) >= 8, name


def test_enough_pairs_and_every_split_populated(pairset):
    assert len(pairset.pairs) >= 2000
    s = pairset.summary()
    for split in ("train", "val", "test"):
        assert s[split]["pairs"] > 0 and s[split]["classes"] > 0
    assert s["train"]["by_lang"].get("zh-Hant", 0) > 0
    styles = {p.style for p in pairset.pairs}
    assert {"imperative", "polite", "colloquial"} <= styles
    assert any(p.text.startswith("请") for p in pairset.pairs)
    assert any(p.text.startswith("帮我") for p in pairset.pairs)


def test_deterministic_given_seed():
    a, b = build_pairs(PairsConfig(), seed=3), build_pairs(PairsConfig(), seed=3)
    assert a.pairs == b.pairs and a.held_out == b.held_out
    c = build_pairs(PairsConfig(), seed=4)
    assert c.held_out != a.held_out


def test_no_class_in_two_splits_and_no_text_in_two_classes(pairset):
    split_of: dict[str, set[str]] = {}
    owner: dict[str, set[str]] = {}
    for p in pairset.pairs:
        split_of.setdefault(p.class_id, set()).add(p.split)
        owner.setdefault(p.text, set()).add(p.class_id)
    assert all(len(v) == 1 for v in split_of.values())
    assert all(len(v) == 1 for v in owner.values())
    declared = {c.class_id: c.split for c in pairset.classes}
    assert all(declared[p.class_id] == p.split for p in pairset.pairs)


def test_held_out_verbs_and_objects_are_absent_from_train(pairset):
    held = pairset.held_out
    assert len(held["val_verbs"]) == 3 and len(held["test_verbs"]) == 3
    assert held["val_objects"] and held["test_objects"]
    assert not set(held["val_verbs"]) & set(held["test_verbs"])
    train = pairset.split("train")
    assert not {p.verb for p in train} & set(held["val_verbs"] + held["test_verbs"])
    assert not {p.object for p in train} & set(held["val_objects"] + held["test_objects"])
    train_text = "\n".join(p.text for p in train if p.lang != "en")
    for entry, words in held_out_words(pairset).items():
        for w in words:
            assert w not in train_text, f"{entry}: {w!r} occurs in a train instruction"
    # held-out verbs really are used by val/test classes
    for v in held["val_verbs"]:
        assert any(p.verb == v for p in pairset.split("val"))
    for v in held["test_verbs"]:
        assert any(p.verb == v for p in pairset.split("test"))


def test_holdout_candidates_exclude_shared_words():
    verbs = holdout_candidates("verb")
    assert "dig" not in verbs and "mine" not in verbs  # 挖 is shared by both
    assert "chop" not in verbs                          # 砍 occurs in the paper prompt phrasings
    assert len(verbs) >= 6


def test_both_sides_option_and_traditional_toggle():
    off = build_pairs(PairsConfig(both_sides=False, traditional=False), seed=0)
    assert not any(p.lang == "en" for p in off.pairs)
    assert not any(p.lang == "zh-Hant" for p in off.pairs)
    on = build_pairs(PairsConfig(both_sides=True, en_phrasings_per_class=2), seed=0)
    en = [p for p in on.pairs if p.lang == "en"]
    assert en and all(p.split == "train" for p in en)
    assert any(p.text == p.class_id for p in en)  # the class prompt itself goes through Chinese-CLIP too


def test_jsonl_round_trip(tmp_path, pairset):
    path = tmp_path / "pairs.jsonl"
    pairset.write_jsonl(path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(pairset.pairs)
    assert set(rows[0]) >= {"text", "class_id", "split", "lang", "source", "style"}


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(PairsConfig, {"phrasings": 3})
    with pytest.raises(ConfigError):
        PairsConfig(phrasings_per_class=0)
    with pytest.raises(ConfigError):
        build_pairs(PairsConfig(n_val_verbs=50), seed=0)


def test_traditional_variants_use_the_characters_people_type():
    from alignment.pairs import to_traditional

    # s2t gave 喫掉麪包，看着牀裏: archaic/etymological forms and an unconverted 着
    assert to_traditional("吃掉面包，看着床里的猫") == "吃掉麵包，看著床裡的貓"
    assert to_traditional("挖个坑") == "挖個坑"


def test_eval_phrasings_keep_val_and_test_while_train_gets_fewer():
    base = dict(max_classes_per_split=120, paper_phrasings_per_class=4, action_phrasings_per_class=2)
    full = build_pairs(PairsConfig(phrasings_per_class=6, **base), seed=0)
    lean = build_pairs(PairsConfig(phrasings_per_class=2, eval_phrasings_per_class=6, **base), seed=0)
    assert lean.held_out == full.held_out and lean.classes == full.classes
    for split in ("val", "test"):
        assert lean.split(split) == full.split(split)                  # the same held-out pairs, pair for pair
    composed = lambda ps: [p for p in ps.split("train") if p.source == "compose"]
    assert 0 < len(composed(lean)) < 0.5 * len(composed(full))
    with pytest.raises(ConfigError, match="eval_phrasings_per_class"):
        PairsConfig(eval_phrasings_per_class=0)
