"""OpenAI CLIP BPE ids laid out the way MineCLIP feeds its text tower.

MineCLIP tokenises with the Hugging Face fast tokenizer of ``openai/clip-vit-base-patch16``
(``add_special_tokens=False``) and builds each row as ``[BOS] + ids[:75] + [EOS] + [0] * pad`` (length 77).
Padding is **0** (not EOS) and the EOS is the largest id in every row, which the tower's argmax pooling relies on.

Two ways to get the BPE:

* :meth:`MineClipTokenizer.from_pretrained` — the hub tokenizer (needs the files in the HF cache or a local dir);
* :meth:`MineClipTokenizer.from_open_clip_bpe` — fully offline: the same vocabulary rebuilt from
  ``bpe_simple_vocab_16e6.txt.gz`` that the ``open-clip-torch`` wheel ships (the file is read as data; the
  ``open_clip`` package is never imported). :meth:`MineClipTokenizer.default` uses this one.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..errors import WeightsNotFoundError, ZhSteveError

BOS_ID = 49406
EOS_ID = 49407
PAD_ID = 0
CONTEXT_LENGTH = 77
MAX_BPE_TOKENS = CONTEXT_LENGTH - 2  # 75 content tokens fit between BOS and EOS
VOCAB_SIZE = 49408
N_MERGES = VOCAB_SIZE - 2 * 256 - 2  # 48,894 merges used by CLIP

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
HUB_NAME = "openai/clip-vit-base-patch16"
OPEN_CLIP_BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"

# The pre-tokenizer split of the hub tokenizer.json: the special strings first, then CLIP's word regex.
SPLIT_PATTERN = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)


class TokenizerError(ZhSteveError, ValueError):
    """Texts passed to the tokenizer are not a list of strings."""


def open_clip_bpe_path() -> Path:
    """Location of the BPE file inside the installed ``open-clip-torch`` wheel (the package is not imported)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            "the CLIP BPE vocabulary is read from the open-clip-torch wheel, which is not installed: "
            "`pip install --no-deps open-clip-torch` (only its data file is used), or pass path=..."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / OPEN_CLIP_BPE_FILE
    if not path.is_file():
        raise WeightsNotFoundError(f"{path} is missing from the open-clip-torch installation; reinstall it")
    return path


def byte_alphabet() -> list[str]:
    """The 256 printable stand-ins for bytes used by byte-level BPE, in CLIP's vocabulary order.

    Bytes that are already visible Latin-1 characters map to themselves and come first (in byte order);
    the remaining bytes (controls, space, NBSP, soft hyphen) map to U+0100 onwards, in byte order.
    """
    visible = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    hidden = [b for b in range(256) if b not in set(visible)]
    return [chr(b) for b in visible] + [chr(256 + i) for i in range(len(hidden))]


def clip_vocab_and_merges(bpe_gz: str | Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's 49,408-entry vocabulary and its merge list, derived from OpenAI's ``bpe_simple_vocab_16e6``.

    Layout: 256 byte symbols, the same with ``</w>``, one entry per merge (the merged pair), then
    ``<|startoftext|>`` = 49406 and ``<|endoftext|>`` = 49407.
    """
    lines = gzip.open(bpe_gz, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 1 + N_MERGES]]  # line 0 is a version header
    if len(merges) != N_MERGES or any(len(m) != 2 for m in merges):
        raise WeightsNotFoundError(f"{bpe_gz} does not look like CLIP's BPE merge file")
    alphabet = byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + [a + b for a, b in merges] + [BOS_TOKEN, EOS_TOKEN]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    assert len(vocab) == VOCAB_SIZE and vocab[EOS_TOKEN] == EOS_ID
    return vocab, merges  # type: ignore[return-value]


def build_clip_fast_tokenizer(bpe_gz: str | Path):
    """A ``tokenizers.Tokenizer`` with the pipeline of CLIP's hub ``tokenizer.json``.

    NFC → whitespace runs to one space → lowercase; split with :data:`SPLIT_PATTERN` (matches kept);
    byte-level mapping; BPE whose word-final symbols carry ``</w>``. The two special strings are added tokens.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE

    vocab, merges = clip_vocab_and_merges(bpe_gz)
    tok = Tokenizer(
        BPE(vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="</w>",
            unk_token=EOS_TOKEN, fuse_unk=False)
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(BOS_TOKEN, special=True), AddedToken(EOS_TOKEN, special=True)])
    return tok


class MineClipTokenizer:
    """Texts → ``LongTensor [N, 77]`` rows ``[49406] + bpe[:75] + [49407] + [0] * pad``."""

    def __init__(self, encode_ids: Callable[[list[str]], list[list[int]]], identity: str) -> None:
        """``encode_ids`` maps texts to their BPE ids without special tokens; ``identity`` names the vocabulary."""
        self._encode_ids = encode_ids
        self.identity = identity
        self.context_length = CONTEXT_LENGTH

    # -- constructors ------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_dir: str = HUB_NAME, **kwargs) -> MineClipTokenizer:
        """The hub fast tokenizer (``AutoTokenizer``, ``use_fast=True``), exactly as MineCLIP loads it."""
        from transformers import AutoTokenizer

        try:
            hf = AutoTokenizer.from_pretrained(name_or_dir, use_fast=True, **kwargs)
        except OSError as e:
            raise WeightsNotFoundError(
                f"could not load the CLIP tokenizer {name_or_dir!r} ({e}). Offline, use "
                f"MineClipTokenizer.from_open_clip_bpe() (same ids), or download {HUB_NAME} to a local dir."
            ) from e

        def encode(texts: list[str]) -> list[list[int]]:
            return hf(texts, add_special_tokens=False)["input_ids"]

        return cls(encode, identity=f"hf:{name_or_dir}")

    @classmethod
    def from_open_clip_bpe(cls, path: str | Path | None = None) -> MineClipTokenizer:
        """Offline: rebuild the fast tokenizer from the open-clip-torch BPE file (or ``path``)."""
        path = Path(path) if path is not None else open_clip_bpe_path()
        if not path.is_file():
            raise WeightsNotFoundError(f"CLIP BPE file not found: {path}")
        backend = build_clip_fast_tokenizer(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]

        def encode(texts: list[str]) -> list[list[int]]:
            return [enc.ids for enc in backend.encode_batch(texts, add_special_tokens=False)]

        return cls(encode, identity=f"clip-bpe-16e6:{digest}")

    @classmethod
    def default(cls) -> MineClipTokenizer:
        """The offline tokenizer (:meth:`from_open_clip_bpe`); it gives the hub ids for all golden cases.

        Built once per process (about 2 s) and shared: the tokenizer holds no mutable state.
        """
        return _default_tokenizer()

    # -- encoding ----------------------------------------------------------------------------------------
    def bpe_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Raw BPE ids per text (no BOS/EOS, no truncation)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TokenizerError("MineClipTokenizer expects a list of strings")
        return self._encode_ids(list(texts)) if texts else []

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, list[int]]:
        """``(tokens [N, 77] int64, number of BPE tokens per text before truncation)``."""
        ids = self.bpe_ids(texts)
        rows = torch.full((len(ids), CONTEXT_LENGTH), PAD_ID, dtype=torch.long)
        for i, seq in enumerate(ids):
            row = [BOS_ID, *seq[:MAX_BPE_TOKENS], EOS_ID]
            rows[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return rows, [len(seq) for seq in ids]

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        return self.encode(texts)[0]

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        """Per text: True when it has more than 75 BPE tokens, so MineCLIP only sees a prefix of it."""
        return [n > MAX_BPE_TOKENS for n in self.encode(texts)[1]]


@functools.lru_cache(maxsize=1)
def _default_tokenizer() -> MineClipTokenizer:
    return MineClipTokenizer.from_open_clip_bpe()
