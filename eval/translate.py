"""zh → en machine translation for the ``translate`` baseline: MarianMT through transformers.

The real model is ``Helsinki-NLP/opus-mt-zh-en`` (MarianMTModel + MarianTokenizer; from the hub or a local
directory). For offline runs and tests, :func:`build_tiny_marian` writes a *tiny random Marian* of the same
architecture with SentencePiece models trained here on the task suite's texts plus generated lines; it is
loaded through the very same ``from_pretrained`` path and labelled "tiny random Marian (offline stand-in)"
wherever it is used. Its translations are gibberish: it measures plumbing and latency shape, not quality.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import pickle
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from zh_steve.errors import UnsafeCheckpointError, WeightsNotFoundError

REAL_MARIAN = "Helsinki-NLP/opus-mt-zh-en"
TINY_LABEL = "tiny random Marian (offline stand-in)"
_MARKER = "zh_steve_standin.json"


class MarianTranslator:
    """Translate Chinese to English with a MarianMT checkpoint (hub id or local dir)."""

    def __init__(
        self,
        source: str | Path = REAL_MARIAN,
        num_beams: int = 1,
        max_new_tokens: int = 64,
        device: str = "cpu",
        min_new_tokens: int = 0,
    ) -> None:
        import torch
        from transformers import MarianMTModel, MarianTokenizer

        self.source = str(source)
        marker = Path(self.source) / _MARKER
        self.label = json.loads(marker.read_text())["label"] if marker.is_file() else self.source
        self.is_standin = marker.is_file()
        try:
            local = Path(self.source)
            if local.is_dir() and not (local / "config.json").is_file():
                raise OSError(f"{local} has no config.json (not a saved MarianMT model)")
            with warnings.catch_warnings():  # sacremoses is only used for en→x source text
                warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")
                self.tokenizer = MarianTokenizer.from_pretrained(self.source)
            self.model = MarianMTModel.from_pretrained(self.source).to(device).eval()
        except pickle.UnpicklingError as e:  # transformers loads .bin weights-only; say so in our own terms
            raise UnsafeCheckpointError(
                f"refused to load MarianMT {self.source!r}: its pickled weights reference objects outside torch's "
                f"weights-only allowlist ({str(e).splitlines()[0][:200]}). Use the safetensors weights instead."
            ) from e
        except (OSError, ValueError, TypeError) as e:
            raise WeightsNotFoundError(
                f"could not load MarianMT {self.source!r} ({type(e).__name__}: {e}). Download it on a machine "
                f"with internet (`huggingface-cli download {REAL_MARIAN} --local-dir weights/opus-mt-zh-en`) and "
                "pass --marian weights/opus-mt-zh-en, or use --marian tiny (offline stand-in, random weights)."
            ) from e
        self.device = device
        self.num_beams = int(num_beams)
        self.max_new_tokens = int(max_new_tokens)
        self.min_new_tokens = int(min_new_tokens)
        self._torch = torch

    def describe(self) -> dict:
        return {"model": self.label, "source": self.source, "num_beams": self.num_beams,
                "max_new_tokens": self.max_new_tokens, "random_weights": self.is_standin}

    def translate_timed(self, text: str) -> tuple[str, dict[str, float]]:
        """Translate one sentence; returns the English text and per-stage wall times in ms."""
        t0 = time.perf_counter()
        batch = self.tokenizer([text], return_tensors="pt").to(self.device)
        t1 = time.perf_counter()
        with self._torch.inference_mode():
            out = self.model.generate(
                **batch, num_beams=self.num_beams, do_sample=False,
                max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens,
            )
        t2 = time.perf_counter()
        en = self.tokenizer.decode(out[0], skip_special_tokens=True).strip()
        t3 = time.perf_counter()
        ms = {"tokenize_ms": (t1 - t0) * 1e3, "generate_ms": (t2 - t1) * 1e3, "decode_ms": (t3 - t2) * 1e3}
        ms["total_ms"] = (t3 - t0) * 1e3
        return en, ms

    def translate(self, texts: Sequence[str]) -> list[str]:
        return [self.translate_timed(t)[0] for t in texts]


# ---------------------------------------------------------------- the offline stand-in
_ZH_VERBS = ["挖", "收集", "砍", "打", "找", "去拿", "采", "捡", "看", "打开", "弄点", "拿"]
_EN_VERBS = ["dig", "collect", "chop", "break", "find", "go get", "pick", "pick up", "look at", "open", "get some", "take"]
_ZH_NOUNS = ["泥土", "木头", "树", "树叶", "种子", "花", "天空", "沙子", "石头", "水", "草", "背包", "动物", "山"]
_EN_NOUNS = ["dirt", "wood", "tree", "leaves", "seeds", "flower", "sky", "sand", "stone", "water", "grass", "inventory", "animal", "mountain"]
_ZH_TAILS = ["", "吧", "，快点", "，越多越好", "去"]
_EN_TAILS = ["", " now", ", quickly", ", as much as possible", " please"]


def standin_corpus(texts: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """Chinese and English lines to train the stand-in tokenizers: ``texts`` plus a few hundred generated."""
    zh, en = [], []
    for (zv, ev), (zn, enn), (zt, et) in itertools.product(
        zip(_ZH_VERBS, _EN_VERBS), zip(_ZH_NOUNS, _EN_NOUNS), zip(_ZH_TAILS, _EN_TAILS)
    ):
        zh.append(f"{zv}{zn}{zt}")
        en.append(f"{ev} {enn}{et}")
    for t in texts:
        (zh if any("\u4e00" <= ch <= "\u9fff" for ch in t) else en).append(t)
    return zh, en


def _train_spm(lines: list[str], vocab_size: int) -> bytes:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=buf, vocab_size=vocab_size, model_type="unigram",
        character_coverage=1.0, hard_vocab_limit=False, bos_id=-1, eos_id=1, unk_id=0, pad_id=-1,
        minloglevel=2, num_threads=1,
    )
    return buf.getvalue()


def build_tiny_marian(cache_dir: str | Path, texts: Iterable[str] = (), seed: int = 0) -> Path:
    """Write (or reuse) a tiny random MarianMT + trained SentencePiece tokenizer; returns its directory."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    zh, en = standin_corpus(texts)
    digest = hashlib.sha256("\n".join(zh + ["|"] + en + [str(seed)]).encode()).hexdigest()[:12]
    out = Path(cache_dir) / f"tiny-marian-zh-en-{digest}"
    if (out / _MARKER).is_file():
        return out
    tmp = out.with_name(out.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "source.spm").write_bytes(_train_spm(zh, 400))
    (tmp / "target.spm").write_bytes(_train_spm(en, 300))
    vocab: dict[str, int] = {"</s>": 0, "<unk>": 1}
    pieces = {}
    for name in ("source.spm", "target.spm"):
        sp = spm.SentencePieceProcessor(model_file=str(tmp / name))
        pieces[name] = {sp.id_to_piece(i) for i in range(sp.get_piece_size())}
        for i in range(sp.get_piece_size()):
            vocab.setdefault(sp.id_to_piece(i), len(vocab))
    source_only = sorted(vocab[p] for p in pieces["source.spm"] - pieces["target.spm"] if p in vocab)
    vocab["<pad>"] = len(vocab)
    (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")
        tok = MarianTokenizer(
            source_spm=str(tmp / "source.spm"), target_spm=str(tmp / "target.spm"), vocab=str(tmp / "vocab.json"),
            source_lang="zh", target_lang="en",
        )
    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
        pad_token_id=pad, eos_token_id=0, decoder_start_token_id=pad, forced_eos_token_id=0,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config).eval()
    # the vocabulary is shared (as in opus-mt); keep the random decoder on English pieces
    model.generation_config.suppress_tokens = sorted({*source_only, vocab["<unk>"], pad} - {0})
    tok.save_pretrained(tmp)
    model.save_pretrained(tmp)
    (tmp / _MARKER).write_text(json.dumps({"label": TINY_LABEL, "seed": seed}), encoding="utf-8")
    if out.exists():  # another process finished first
        return out
    tmp.rename(out)
    return out


def load_translator(
    spec: str,
    cache_dir: str | Path,
    texts: Iterable[str] = (),
    num_beams: int = 1,
    device: str = "cpu",
) -> MarianTranslator:
    """``spec`` = hub id or local dir of a MarianMT zh→en model, or ``tiny`` for the offline stand-in."""
    if spec == "tiny":
        path = build_tiny_marian(cache_dir, texts)
        return MarianTranslator(path, num_beams=num_beams, max_new_tokens=12, device=device, min_new_tokens=3)
    from zh_steve.weights import local_snapshot

    return MarianTranslator(local_snapshot(spec), num_beams=num_beams, device=device)
