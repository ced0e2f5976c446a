"""Instruction pairs (Chinese text → English class prompt) generated from the lexicon, split by class.

A *class* is one English prompt: the text MineCLIP encodes as the target. Classes come from

* the 11 STEVE-1 paper prompts (hand-written Chinese phrasings; some compositions below fold into them),
* stand-alone actions (jump, sneak, …),
* compositions verb × object over compatible tags (``mine`` × ``iron_ore`` → "mine iron ore").

Every class gets several Chinese phrasings: base phrases (verb form + object form, or the hand-written
phrasings) inside imperative / polite (请…) / colloquial (帮我…, 去…吧, …一下) templates, plus Traditional
Chinese variants (OpenCC ``s2tw``). Optionally English paraphrases are added as inputs too ("both sides":
English through Chinese-CLIP should also land on MineCLIP(en)).

The split is by class. A few verbs and objects are held out entirely: every composition using a held-out
verb or object goes to val or test, so those classes are unseen combinations *and* unseen words. Only entries
whose Chinese words occur nowhere else (no other entry, template or phrasing contains them) can be held out.
Everything is deterministic given the seed.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from zh_steve.errors import ConfigError

from . import lexicon
from .lexicon import Entry

SPLITS = ("train", "val", "test")

# (style, pattern): {p} is the base phrase
TEMPLATES: tuple[tuple[str, str], ...] = (
    ("imperative", "{p}"),
    ("imperative", "{p}。"),
    ("imperative", "{p}！"),
    ("polite", "请{p}"),
    ("polite", "请你{p}"),
    ("polite", "麻烦你{p}"),
    ("polite", "劳驾{p}"),
    ("polite", "请帮忙{p}"),
    ("polite", "可以请你{p}吗"),
    ("colloquial", "帮我{p}"),
    ("colloquial", "去{p}吧"),
    ("colloquial", "{p}一下"),
    ("colloquial", "给我{p}"),
    ("colloquial", "快{p}"),
    ("colloquial", "{p}吧"),
    ("colloquial", "你去{p}"),
    ("colloquial", "我想让你{p}"),
    ("colloquial", "能不能{p}"),
    ("colloquial", "赶紧{p}"),
    ("colloquial", "现在{p}"),
    ("colloquial", "先{p}"),
    ("colloquial", "咱们{p}吧"),
)


@dataclass
class PairsConfig:
    """How many phrasings per class, which variants, and how the held-out split is drawn."""

    phrasings_per_class: int = 6          # composed classes
    eval_phrasings_per_class: int | None = None  # composed val/test classes (None: phrasings_per_class)
    paper_phrasings_per_class: int = 40   # the 11 paper prompts
    action_phrasings_per_class: int = 12  # stand-alone actions
    traditional: bool = True              # add OpenCC s2tw variants
    traditional_fraction: float = 1.0     # share of simplified phrasings that get a Traditional twin
    both_sides: bool = True               # also feed English paraphrases through the source encoder
    en_phrasings_per_class: int = 2
    both_sides_splits: list[str] = field(default_factory=lambda: ["train"])
    n_val_verbs: int = 3
    n_test_verbs: int = 3
    val_object_fraction: float = 0.08
    test_object_fraction: float = 0.08
    max_classes_per_split: int | None = None  # subsample composed classes (tiny runs); None = all

    def __post_init__(self) -> None:
        for name in ("phrasings_per_class", "paper_phrasings_per_class", "action_phrasings_per_class"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"pairs.{name} must be >= 1")
        if self.eval_phrasings_per_class is not None and self.eval_phrasings_per_class < 1:
            raise ConfigError("pairs.eval_phrasings_per_class must be >= 1 (or null: phrasings_per_class)")
        if not 0.0 <= self.traditional_fraction <= 1.0:
            raise ConfigError("pairs.traditional_fraction must be in [0, 1]")
        if self.val_object_fraction < 0 or self.test_object_fraction < 0 or (
                self.val_object_fraction + self.test_object_fraction >= 0.9):
            raise ConfigError("pairs.val_object_fraction + test_object_fraction must be in [0, 0.9)")
        bad = sorted(set(self.both_sides_splits) - set(SPLITS))
        if bad:
            raise ConfigError(f"pairs.both_sides_splits: unknown split(s) {bad}; use {list(SPLITS)}")


@dataclass(frozen=True)
class ClassInfo:
    """One target class: its English prompt, split, and the lexicon ids it was built from."""

    class_id: str
    split: str
    source: str              # paper | action | compose
    verb: str | None = None
    object: str | None = None
    name: str | None = None  # paper / action id


@dataclass(frozen=True)
class Pair:
    """One training example: ``text`` (input to the source encoder) means the English prompt ``class_id``."""

    text: str
    class_id: str
    split: str
    lang: str       # zh-Hans | zh-Hant | en
    source: str     # paper | action | compose
    style: str      # imperative | polite | colloquial | en
    verb: str | None = None
    object: str | None = None


@dataclass
class PairSet:
    pairs: list[Pair]
    classes: list[ClassInfo]
    held_out: dict[str, list[str]]     # val_verbs, test_verbs, val_objects, test_objects
    dropped_ambiguous: int = 0

    def class_index(self) -> dict[str, int]:
        return {c.class_id: i for i, c in enumerate(self.classes)}

    def split(self, name: str) -> list[Pair]:
        return [p for p in self.pairs if p.split == name]

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {"pairs": len(self.pairs), "classes": len(self.classes),
                                  "dropped_ambiguous": self.dropped_ambiguous, "held_out": self.held_out}
        for s in SPLITS:
            ps = self.split(s)
            out[s] = {
                "pairs": len(ps),
                "classes": sum(1 for c in self.classes if c.split == s),
                "by_lang": dict(sorted(Counter(p.lang for p in ps).items())),
                "by_source": dict(sorted(Counter(p.source for p in ps).items())),
            }
        return out

    def write_jsonl(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for p in self.pairs:
                f.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------------------------------------
# words: what an entry contributes to a sentence, and which entries can be held out
# ----------------------------------------------------------------------------------------------------------

def content_words(entry: Entry) -> tuple[str, ...]:
    """Chinese content words of an entry: each form split at ``{o}``; one-character function pieces of a
    multi-piece pattern (在{o}里 → 在) are dropped, a bare one-character verb (砍{o} → 砍) is kept."""
    out: list[str] = []
    for form in entry.zh:
        parts = [p for p in form.split("{o}") if p]
        out.extend(parts if len(parts) == 1 else [p for p in parts if len(p) >= 2])
    return tuple(dict.fromkeys(out))


@lru_cache(maxsize=1)
def _s2tw():
    import opencc

    return opencc.OpenCC("s2tw")


def to_traditional(text: str) -> str:
    """Simplified → Traditional Chinese as people type it (OpenCC ``s2tw``: 吃, 著, 裡, 床, 麵).

    Plain ``s2t`` gives OpenCC's etymological forms (喫, 裏, 牀, 麪) and leaves 着 alone, which Traditional
    Chinese users rarely write; ``s2tw`` changes characters only, no Taiwan-specific vocabulary.
    """
    return _s2tw().convert(text)


def _template_texts() -> list[str]:
    return [t.replace("{p}", " ") for _, t in TEMPLATES]


def holdout_candidates(kind: str) -> list[str]:
    """Ids of verbs (``kind="verb"``) or objects whose content words appear in no other entry or template."""
    table = lexicon.VERBS if kind == "verb" else lexicon.OBJECTS
    all_texts: list[tuple[str, str]] = []  # (entry id, literal text it contributes)
    for e in lexicon.all_entries():
        for form in e.zh:
            all_texts.extend((f"{e.kind}:{e.id}", p) for p in form.split("{o}") if p)
    all_texts.extend(("template", t) for t in _template_texts())
    out = []
    for eid, e in table.items():
        me = f"{e.kind}:{eid}"
        words = content_words(e)
        if all(w not in text for w in words for owner, text in all_texts if owner != me):
            out.append(eid)
    return sorted(out)


def choose_held_out(cfg: PairsConfig, seed: int) -> dict[str, list[str]]:
    """Held-out verbs and objects for val and test, drawn from the eligible ones with ``seed``."""
    rng = random.Random(f"held-out|{seed}")
    verbs = holdout_candidates("verb")
    objects = [o for o in holdout_candidates("object") if any(
        lexicon.compatible(v, lexicon.OBJECTS[o]) for v in lexicon.VERBS.values())]
    rng.shuffle(verbs)
    rng.shuffle(objects)
    nv, nt = cfg.n_val_verbs, cfg.n_test_verbs
    if nv + nt > len(verbs):
        raise ConfigError(f"pairs: {nv}+{nt} held-out verbs requested but only {len(verbs)} are eligible")
    n_obj = len(lexicon.OBJECTS)
    nvo, nto = round(cfg.val_object_fraction * n_obj), round(cfg.test_object_fraction * n_obj)
    if nvo + nto > len(objects):
        raise ConfigError(f"pairs: {nvo}+{nto} held-out objects requested but only {len(objects)} are eligible")
    return {
        "val_verbs": sorted(verbs[:nv]), "test_verbs": sorted(verbs[nv:nv + nt]),
        "val_objects": sorted(objects[:nvo]), "test_objects": sorted(objects[nvo:nvo + nto]),
    }


# ----------------------------------------------------------------------------------------------------------
# classes
# ----------------------------------------------------------------------------------------------------------

def composed_class_id(verb: Entry, obj: Entry) -> str:
    return verb.en[0].format(o=obj.en[0])


def _composed_split(verb: str, obj: str, held: dict[str, list[str]]) -> str:
    if verb in held["test_verbs"] or obj in held["test_objects"]:
        return "test"
    if verb in held["val_verbs"] or obj in held["val_objects"]:
        return "val"
    return "train"


def build_classes(cfg: PairsConfig, seed: int) -> tuple[list[ClassInfo], dict[str, list[str]]]:
    """All classes with their split (paper prompts and stand-alone actions are always train)."""
    held = choose_held_out(cfg, seed)
    classes: list[ClassInfo] = [ClassInfo(e.en[0], "train", "paper", name=k) for k, e in lexicon.PAPER.items()]
    classes += [ClassInfo(e.en[0], "train", "action", name=k) for k, e in lexicon.ACTIONS.items()]
    seen = {c.class_id for c in classes}
    composed: dict[str, list[ClassInfo]] = defaultdict(list)
    for vid, v in lexicon.VERBS.items():
        for oid, o in lexicon.OBJECTS.items():
            if not lexicon.compatible(v, o) or (vid, oid) in lexicon.PAPER_COVERS:
                continue
            cid = composed_class_id(v, o)
            if cid in seen:  # two entries spelling the same English prompt: keep the first
                continue
            seen.add(cid)
            split = _composed_split(vid, oid, held)
            composed[split].append(ClassInfo(cid, split, "compose", verb=vid, object=oid))
    for split in SPLITS:
        items = composed[split]
        if cfg.max_classes_per_split is not None and len(items) > cfg.max_classes_per_split:
            rng = random.Random(f"subsample|{seed}|{split}")
            keep = set(rng.sample(range(len(items)), cfg.max_classes_per_split))
            items = [c for i, c in enumerate(items) if i in keep]
        classes += items
    return classes, held


# ----------------------------------------------------------------------------------------------------------
# phrasings
# ----------------------------------------------------------------------------------------------------------

def _styled(base: str, pattern: str) -> str | None:
    if pattern.startswith(("去", "你去")) and base.startswith(("去", "到", "前往")):
        return None  # 去去村庄吧
    return pattern.replace("{p}", base)


def _pick_phrasings(bases: list[str], k: int, n_bare: int, rng: random.Random) -> list[tuple[str, str]]:
    """``n_bare`` base phrases as they are (the first one always), then styled ones round-robin by style."""
    picked: list[tuple[str, str]] = [(bases[0], "imperative")]
    rest = bases[1:]
    rng.shuffle(rest)
    picked += [(b, "imperative") for b in rest[:max(0, n_bare - 1)]]
    by_style: dict[str, list[str]] = defaultdict(list)
    for b in bases:
        for style, pattern in TEMPLATES:
            if pattern == "{p}":
                continue
            text = _styled(b, pattern)
            if text is not None:
                by_style[style].append(text)
    pools = [by_style[s] for s in ("polite", "colloquial", "imperative")]
    for pool in pools:
        rng.shuffle(pool)
    taken = {t for t, _ in picked}
    styles = ("polite", "colloquial", "imperative")
    i = 0
    while len(picked) < k and any(pools):
        pool, style = pools[i % 3], styles[i % 3]
        i += 1
        while pool:
            text = pool.pop()
            if text not in taken:
                taken.add(text)
                picked.append((text, style))
                break
    return picked[:k]


def _bases_and_english(c: ClassInfo) -> tuple[list[str], list[str]]:
    if c.source == "compose":
        v, o = lexicon.VERBS[c.verb], lexicon.OBJECTS[c.object]  # type: ignore[index]
        zh = [vf.format(o=of) for vf in v.zh for of in o.zh]
        en = [vf.format(o=of) for vf in v.en for of in o.en]
        return zh, en
    table = lexicon.PAPER if c.source == "paper" else lexicon.ACTIONS
    e = table[c.name]  # type: ignore[index]
    en = list(e.en)
    if c.source == "paper":
        en += [part.strip() for part in e.en[0].split(",") if part.strip() != e.en[0]]
    return list(e.zh), list(dict.fromkeys(en))


def build_pairs(cfg: PairsConfig | None = None, seed: int = 0) -> PairSet:
    """Generate every pair, split by class, deterministically from ``seed``."""
    cfg = cfg or PairsConfig()
    classes, held = build_classes(cfg, seed)
    pairs: list[Pair] = []
    for c in classes:
        rng = random.Random(f"phrasings|{seed}|{c.class_id}")
        bases, english = _bases_and_english(c)
        if c.source == "compose":
            k = cfg.phrasings_per_class
            if c.split != "train" and cfg.eval_phrasings_per_class is not None:
                k = cfg.eval_phrasings_per_class
            n_bare = max(1, k // 3)
        else:
            k = cfg.paper_phrasings_per_class if c.source == "paper" else cfg.action_phrasings_per_class
            n_bare = min(len(bases), k)
        for text, style in _pick_phrasings(bases, k, n_bare, rng):
            pairs.append(Pair(text, c.class_id, c.split, "zh-Hans", c.source, style, c.verb, c.object))
            if cfg.traditional and rng.random() < cfg.traditional_fraction:
                trad = to_traditional(text)
                if trad != text:
                    pairs.append(Pair(trad, c.class_id, c.split, "zh-Hant", c.source, style, c.verb, c.object))
        if cfg.both_sides and c.split in cfg.both_sides_splits:
            others = english[1:]
            rng.shuffle(others)
            for text in [english[0], *others][:cfg.en_phrasings_per_class]:
                pairs.append(Pair(text, c.class_id, c.split, "en", c.source, "en", c.verb, c.object))
    pairs, dropped = _drop_ambiguous(pairs)
    return PairSet(pairs=pairs, classes=classes, held_out=held, dropped_ambiguous=dropped)


def _drop_ambiguous(pairs: Iterable[Pair]) -> tuple[list[Pair], int]:
    """Remove exact duplicates, and every pair whose text is also used for another class."""
    pairs = list(dict.fromkeys(pairs))
    owners: dict[str, set[str]] = defaultdict(set)
    for p in pairs:
        owners[p.text].add(p.class_id)
    kept = [p for p in pairs if len(owners[p.text]) == 1]
    return kept, len(pairs) - len(kept)


def held_out_words(pairset: PairSet) -> dict[str, list[str]]:
    """Chinese content words (Simplified and Traditional) of every held-out verb and object."""
    out: dict[str, list[str]] = {}
    for key, ids in pairset.held_out.items():
        table = lexicon.VERBS if key.endswith("verbs") else lexicon.OBJECTS
        for i in ids:
            words = content_words(table[i])
            out[f"{key[:-1]}:{i}"] = sorted(set(words) | {to_traditional(w) for w in words})
    return out



def dev_folds(pairset: PairSet, n_folds: int, verbs_per_fold: int, object_fraction: float,
              seed: int) -> list[dict[str, list[str]]]:
    """Disjoint groups of *train* words for cross-fitting: each ``{"dev_verbs": [...], "dev_objects": [...]}``.

    Drawn, with ``seed``, from the verbs and objects that could be held out (:func:`holdout_candidates`) but are
    not held out for val/test, so a fold mimics val/test: unseen words in unseen combinations."""
    if n_folds < 1:
        return []
    held = {i for ids in pairset.held_out.values() for i in ids}
    rng = random.Random(f"dev-folds|{seed}")
    verbs = [v for v in holdout_candidates("verb") if v not in held]
    objects = [o for o in holdout_candidates("object") if o not in held and any(
        lexicon.compatible(v, lexicon.OBJECTS[o]) for v in lexicon.VERBS.values())]
    rng.shuffle(verbs)
    rng.shuffle(objects)
    n_obj = round(object_fraction * len(lexicon.OBJECTS))
    if n_folds * verbs_per_fold > len(verbs) or n_folds * n_obj > len(objects):
        raise ConfigError(f"dev: {n_folds} folds × {verbs_per_fold} verbs / {n_obj} objects requested but only "
                          f"{len(verbs)} verbs / {len(objects)} objects are eligible; lower dev.folds")
    return [{"dev_verbs": sorted(verbs[k * verbs_per_fold:(k + 1) * verbs_per_fold]),
             "dev_objects": sorted(objects[k * n_obj:(k + 1) * n_obj])} for k in range(n_folds)]
