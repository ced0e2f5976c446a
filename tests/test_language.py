"""Instruction validation and routing (zh / en / mixed, Traditional → Simplified)."""

from __future__ import annotations

import pytest

from zh_steve.errors import InvalidInstructionError
from zh_steve.text.language import (
    MAX_INSTRUCTION_CHARS,
    detect_language,
    is_traditional,
    normalize_instruction,
    route,
    to_simplified,
)


@pytest.mark.parametrize(
    "text, language, encoded, traditional",
    [
        ("砍树", "zh", "砍树", False),
        ("砍樹", "zh", "砍树", True),
        ("  請幫我挖鑽石  ", "zh", "请帮我挖钻石", True),
        ("chop a tree", "en", "chop a tree", False),
        ("Chop A TREE", "en", "chop a tree", False),
        ("去挖 dirt", "mixed", "去挖 dirt", False),
        ("用 iron pickaxe 挖 diamond", "mixed", "用 iron pickaxe 挖 diamond", False),
        ("我要去挖 TNT 然后回家看看", "zh", "我要去挖 TNT 然后回家看看", False),
        ("ｃｈｏｐ　ａ　ｔｒｅｅ", "en", "chop a tree", False),  # full-width forms folded by NFKC
    ],
)
def test_route(text, language, encoded, traditional):
    r = route(text)
    assert (r.language, r.text_for_encoder, r.traditional) == (language, encoded, traditional)
    assert r.uses_chinese_clip == (language != "en")
    assert r.reason


@pytest.mark.parametrize(
    "bad", ["", "   ", "\t\n ", "！！！", "...?!", "→★", "a" * 300, "砍\x00树", None, 42, ["砍树"]]
)
def test_invalid_instructions(bad):
    with pytest.raises(InvalidInstructionError):
        route(bad)


def test_length_limit_boundary():
    assert normalize_instruction("树" * MAX_INSTRUCTION_CHARS) == "树" * MAX_INSTRUCTION_CHARS
    with pytest.raises(InvalidInstructionError, match=str(MAX_INSTRUCTION_CHARS)):
        normalize_instruction("树" * (MAX_INSTRUCTION_CHARS + 1))


def test_normalize_collapses_whitespace():
    assert normalize_instruction(" 去\t挖\n\n 泥土 ") == "去 挖 泥土"


def test_detect_language():
    assert detect_language("挖泥土") == "zh"
    assert detect_language("dig dirt") == "en"
    assert detect_language("挖 dirt") == "mixed"
    assert detect_language("64") == "en"


def test_traditional_helpers():
    assert is_traditional("砍樹") and not is_traditional("砍树") and not is_traditional("chop tree")
    assert to_simplified("鑽石鎬") == "钻石镐"
