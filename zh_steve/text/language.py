"""Instruction validation and routing: which text tower an instruction goes to, and in what form.

Routing rules:

* ``zh`` → Chinese-CLIP → alignment layer. Traditional characters are converted to Simplified first
  (OpenCC ``t2s``): Chinese-CLIP was trained mostly on Simplified text and the alignment pairs are Simplified.
* ``mixed`` (e.g. "去挖 dirt") → the Chinese-CLIP path as well. Its BERT vocabulary also covers Latin words
  (as word pieces), while MineCLIP's byte-level BPE turns Chinese into meaningless byte tokens, so only the
  Chinese tower sees the whole instruction.
* ``en`` → MineCLIP directly, lower-cased (STEVE-1's interactive mode lower-cases prompts; the CLIP tokenizer
  lower-cases anyway, so this only makes the stored text explicit).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from ..errors import InvalidInstructionError

MAX_INSTRUCTION_CHARS = 200
MIXED_MIN_SHARE = 0.2  # each script needs at least this share of the letters for "mixed"

Language = Literal["zh", "en", "mixed"]
_WHITESPACE = re.compile(r"\s+")


def _is_han(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF      # CJK Unified Ideographs
        or 0x3400 <= cp <= 0x4DBF   # Extension A
        or 0x20000 <= cp <= 0x2EBEF  # Extensions B–F
        or 0xF900 <= cp <= 0xFAFF   # Compatibility Ideographs
        or cp == 0x3007             # 〇
    )


def _is_latin(ch: str) -> bool:
    return ch.isalpha() and ch.isascii() or (ch.isalpha() and "LATIN" in unicodedata.name(ch, ""))


def normalize_instruction(text: str) -> str:
    """NFKC (folds full-width forms), strip, collapse whitespace; reject unusable instructions.

    Raises :class:`InvalidInstructionError` for a non-string, an empty / whitespace-only text, a text without
    any letter or digit (only punctuation or symbols), control characters, or more than
    :data:`MAX_INSTRUCTION_CHARS` characters after normalisation.
    """
    if not isinstance(text, str):
        raise InvalidInstructionError(f"an instruction must be a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text)
    controls = sorted({f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in ("Cc", "Cf")
                       and not c.isspace()})
    if controls:
        raise InvalidInstructionError(f"the instruction contains control characters: {', '.join(controls)}")
    text = _WHITESPACE.sub(" ", text).strip()
    if not text:
        raise InvalidInstructionError("the instruction is empty; say what the agent should do, e.g. 砍树")
    if not any(unicodedata.category(c)[0] in "LN" for c in text):
        raise InvalidInstructionError(f"the instruction {text!r} has no words (only punctuation or symbols)")
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise InvalidInstructionError(
            f"the instruction has {len(text)} characters; at most {MAX_INSTRUCTION_CHARS} are accepted "
            f"(STEVE-1 follows short commands such as 砍树 or 'chop a tree')"
        )
    return text


def detect_language(text: str) -> Language:
    """``zh`` / ``en`` / ``mixed`` from the counts of Han characters and Latin letters.

    Each Han character counts as one word-sized unit and each Latin *word* as one unit, so "去挖 dirt"
    (2 Han, 1 word) is mixed while a Chinese sentence with one brand name stays mostly Chinese only if the
    Latin share is below :data:`MIXED_MIN_SHARE`. Texts with neither (digits only) count as ``en``.
    """
    han = sum(_is_han(c) for c in text)
    latin_words = len(re.findall(r"[^\W\d_]+", "".join(c if _is_latin(c) else " " for c in text)))
    total = han + latin_words
    if total == 0 or han == 0:
        return "en"
    if latin_words == 0:
        return "zh"
    share = min(han, latin_words) / total
    if share >= MIXED_MIN_SHARE:
        return "mixed"
    return "zh" if han > latin_words else "en"


@functools.lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → Simplified Chinese (OpenCC ``t2s``); other characters are unchanged."""
    return _t2s().convert(text)


def is_traditional(text: str) -> bool:
    """True when converting to Simplified changes some Han character (e.g. 砍樹 → 砍树)."""
    simplified = to_simplified(text)
    if len(simplified) != len(text):  # a phrase conversion changed the length: compare Han content only
        return [c for c in simplified if _is_han(c)] != [c for c in text if _is_han(c)]
    return any(_is_han(a) and a != b for a, b in zip(text, simplified))


Lang = Literal["auto", "zh", "en"]  # "auto" = decide from the text; "zh"/"en" force a tower


@dataclass(frozen=True)
class Route:
    language: Language  # what the text is (detected)
    text_for_encoder: str
    traditional: bool
    reason: str
    tower: Literal["zh", "en"] = "zh"  # zh: Chinese-CLIP → alignment layer; en: MineCLIP

    @property
    def uses_chinese_clip(self) -> bool:
        return self.tower == "zh"


def route(text: str, lang: Lang = "auto") -> Route:
    """Validate ``text`` and decide which tower encodes it, in what form (rules: the module docstring).

    ``lang="en"`` forces MineCLIP (lower-cased text); ``lang="zh"`` forces Chinese-CLIP (Traditional still
    converted; an English text is passed unchanged). The agent, the trainer and eval all route through here.
    """
    if lang not in ("auto", "zh", "en"):
        raise InvalidInstructionError(f"lang must be 'auto', 'zh' or 'en', got {lang!r}")
    clean = normalize_instruction(text)
    language = detect_language(clean)
    if lang == "en" or (lang == "auto" and language == "en"):
        forced = "" if language == "en" else " (forced: lang='en')"
        return Route(language, clean.lower(), False, f"English: encoded by MineCLIP directly (lower-cased){forced}",
                     tower="en")
    if language == "en":  # lang == "zh": English text through the Chinese tower, as written
        return Route(language, clean, False, "forced lang='zh': Chinese-CLIP → alignment layer", tower="zh")
    traditional = is_traditional(clean)
    encoded = to_simplified(clean) if traditional else clean
    why = "Chinese" if language == "zh" else "Chinese with Latin words: Chinese-CLIP's vocabulary covers both"
    if traditional:
        why += "; Traditional converted to Simplified"
    return Route(language, encoded, traditional, f"{why}; Chinese-CLIP → alignment layer", tower="zh")
