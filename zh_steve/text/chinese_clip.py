"""Chinese-CLIP text tower (RoBERTa-wwm-ext + text projection) through ``transformers``.

The released checkpoints (e.g. ``OFA-Sys/chinese-clip-vit-base-patch16``) are dual image+text models. Loading
them with ``ChineseCLIPTextModel`` silently leaves every text weight random, so we load ``ChineseCLIPModel``,
check from the loading report that every text weight and ``text_projection`` really came from the file, then
keep only the text tower and the projection.

Note (transformers 5.23): after loading, ``_init_weights`` zeroes row ``pad_token_id`` (0) of the word
embeddings even though the checkpoint holds a value there. That row only feeds [PAD] positions, which the
attention mask removes, so the [CLS] feature is unaffected (tests check padding invariance).

Feature = ``text_projection(last_hidden_state[:, 0])`` — the [CLS] hidden state projected to 512-d,
unnormalised (the BERT pooler is not used). Tokenizer: ``BertTokenizer`` of the same repo, context 52.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import (CheckpointError, ConfigError, InvalidInstructionError, UnsafeCheckpointError,
                      WeightsNotFoundError)
from ..linear import pack_linears, unpack_linears, use_weight_major
from .batching import length_sorted_batches
from ..published import CHINESE_CLIP_HUB_ID
from .mineclip_text import state_dict_digest

CONTEXT_LENGTH = 52
TEXT_PREFIXES = ("text_model.", "text_projection.")


def download_hint(name: str = CHINESE_CLIP_HUB_ID) -> str:
    """What to do when a Chinese-CLIP checkpoint is not available locally."""
    return (f"Download it on a machine with network access, e.g. `hf download {name} --local-dir "
            f"weights/{name.rstrip('/').split('/')[-1]}`, copy the directory here and pass that path (or put it in "
            "the Hugging Face cache and set HF_HUB_OFFLINE=1).")


def cn_clip_vocab_path() -> Path:
    """``vocab.txt`` (21,128 entries) shipped in the cn-clip wheel; the package itself is never imported."""
    spec = importlib.util.find_spec("cn_clip")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError("the Chinese-CLIP vocab.txt comes from the cn-clip wheel: "
                                   "`pip install --no-deps cn-clip` (only its vocab.txt is used)")
    path = Path(list(spec.submodule_search_locations)[0]) / "clip" / "vocab.txt"
    if not path.is_file():
        raise WeightsNotFoundError(f"{path} is missing from the cn-clip installation; reinstall it")
    return path


def _cls_only_forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                      **kwargs) -> torch.Tensor:
    """The last text layer for the [CLS] position alone: ``[N, L, H]`` → ``[N, 1, H]``.

    The feature reads only [CLS]'s final hidden state, so the last layer needs the keys and values of every
    position but the query, attention output, feed-forward and norms of position 0 only (about 1/12 of the tower's
    work for a few-token text). Same weights, same math as the full layer (post-LN BERT)."""
    a = self.attention.self
    n, length, hid = hidden_states.shape
    heads, d = a.num_attention_heads, a.attention_head_size
    cls = hidden_states[:, 0]                                                       # [N, H] (2-D: a plain GEMM)
    q = a.query(cls).view(n, heads, 1, d)                                           # [N, h, 1, d]
    k = a.key(hidden_states).view(n, length, heads, d).transpose(1, 2)             # [N, h, L, d]
    v = a.value(hidden_states).view(n, length, heads, d).transpose(1, 2)
    mask = attention_mask[..., :1, :] if attention_mask is not None and attention_mask.dim() == 4 else None
    if attention_mask is not None and mask is None:
        raise ValueError(f"unexpected attention mask of shape {tuple(attention_mask.shape)}")
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=a.scaling)  # [N, h, 1, d]
    x = self.attention.output(y.reshape(n, hid), cls)                               # [N, H]
    return self.output(self.intermediate(x), x)[:, None]                            # [N, 1, H]


def cls_only_last_layer(text_model: nn.Module) -> nn.Module:
    """Make the last encoder layer of a ``ChineseCLIPTextModel`` compute [CLS] only (:func:`_cls_only_forward`);
    in place, same modules and state-dict keys; ``last_hidden_state`` then has length 1. Returns ``text_model``."""
    last = text_model.encoder.layer[-1]
    if getattr(last, "_cls_only", False):
        return text_model
    base = type(last)
    if base.__name__ != "ChineseCLIPTextLayer":
        raise TypeError(f"expected a ChineseCLIPTextLayer, got {base.__name__}")
    if base not in _CLS_ONLY:
        _CLS_ONLY[base] = type("ClsOnlyChineseCLIPTextLayer", (base,), {"forward": _cls_only_forward, "_cls_only": True})
    last.__class__ = _CLS_ONLY[base]
    return text_model


_CLS_ONLY: dict[type, type] = {}


class ChineseClipTextTower(nn.Module):
    """``ChineseCLIPTextModel`` (no pooler) + ``text_projection``: input ids → projected [CLS] feature."""

    def __init__(self, text_model: nn.Module, text_projection: nn.Linear) -> None:
        super().__init__()
        self.text_model = cls_only_last_layer(text_model)
        self.text_projection = text_projection

    def forward(
        self,
        input_ids: torch.Tensor,                      # [N, L]
        attention_mask: torch.Tensor | None = None,   # [N, L]
        token_type_ids: torch.Tensor | None = None,   # [N, L]
    ) -> torch.Tensor:                                # [N, projection_dim]
        if (not torch.is_grad_enabled() and not self.training and self._plain_bert()
                and (attention_mask is None or bool(attention_mask.all()))):
            return self._forward_unpadded(input_ids, token_type_ids)
        out = self.text_model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return self.text_projection(out.last_hidden_state[:, 0])

    def _plain_bert(self) -> bool:
        """Whether the config is the post-LN BERT that :meth:`_forward_unpadded` writes out (Chinese-CLIP's is)."""
        c = self.text_model.config
        return (getattr(c, "position_embedding_type", "absolute") == "absolute" and c.hidden_act == "gelu"
                and not getattr(c, "is_decoder", False))

    def _forward_unpadded(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        """Inference on texts of one length (no padding): the same modules and the same operations, in the same
        order, as the transformers forward, without its per-layer dispatch (the features are bit-identical,
        tested; "砍树" 13.5 → 11.3 ms p50, full size, bf16). The last layer computes [CLS] alone."""
        emb = self.text_model.embeddings
        n, length = input_ids.shape
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        h = emb.word_embeddings(input_ids) + emb.token_type_embeddings(token_type_ids)       # [N, L, H]
        h = emb.LayerNorm(h + emb.position_embeddings.weight[:length])
        layers = self.text_model.encoder.layer
        for i, layer in enumerate(layers):
            a = layer.attention.self
            heads, d = a.num_attention_heads, a.attention_head_size
            x = h[:, :1].contiguous() if i == len(layers) - 1 else h                          # queries: [N, q, H]
            q = a.query(x).view(n, -1, heads, d).transpose(1, 2)                               # [N, h, q, d]
            k = a.key(h).view(n, length, heads, d).transpose(1, 2)                             # [N, h, L, d]
            v = a.value(h).view(n, length, heads, d).transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v, scale=a.scaling)                      # [N, h, q, d]
            y = y.transpose(1, 2).reshape(n, -1, heads * d)
            x = layer.attention.output.LayerNorm(layer.attention.output.dense(y) + x)
            h = layer.output.LayerNorm(layer.output.dense(F.gelu(layer.intermediate.dense(x))) + x)
        return self.text_projection(h[:, 0])


def _text_key(key: str) -> bool:
    return key.startswith(TEXT_PREFIXES) or key == "text_projection.weight"


def _check_loading_info(info: dict, where: str) -> None:
    """Raise if any text-tower weight was not loaded from the checkpoint (missing or shape-mismatched)."""
    missing = sorted(k for k in info.get("missing_keys", ()) if _text_key(k))
    mismatched = sorted(
        f"{k} (checkpoint {list(a)}, model {list(b)})"
        for k, a, b in (tuple(m) for m in info.get("mismatched_keys", ()))
        if _text_key(k)
    )
    if missing or mismatched:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} text key(s): {', '.join(missing[:40])}")
        if mismatched:
            parts.append(f"mis-shaped {len(mismatched)} text key(s): {', '.join(mismatched[:40])}")
        raise CheckpointError(
            f"{where} is not a complete Chinese-CLIP checkpoint for the text tower ({'; '.join(parts)}). "
            f"These weights would stay random; refusing to continue."
        )


def _local_files_only(value: bool | None) -> bool:
    from ..hub import is_offline  # HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read at call time

    return is_offline() if value is None else value


def _source(name_or_path: str, revision: str | None, model: nn.Module) -> str:
    """Where the weights came from (display only: the identity depends on the weights themselves)."""
    commit = getattr(model.config, "_commit_hash", None) or revision
    source = str(Path(name_or_path).resolve()) if Path(name_or_path).is_dir() else name_or_path
    return f"{source}@{commit}" if commit else source


class ChineseClipTextEncoder:
    """Chinese (or mixed) instruction → Chinese-CLIP text feature (float32 CPU ``[N, 512]``, unnormalised)."""

    def __init__(self, tower: ChineseClipTextTower, tokenizer, identity: str,
                 context_length: int = CONTEXT_LENGTH) -> None:
        self.tower = use_weight_major(tower.eval().requires_grad_(False))  # few-token products read W once
        self.tokenizer = tokenizer
        self.identity = identity
        self.source = identity  # where the weights came from; from_pretrained sets the hub id / directory
        self.context_length = context_length
        self.dim = tower.text_projection.out_features

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = CHINESE_CLIP_HUB_ID,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        revision: str | None = None,
        local_files_only: bool | None = None,
    ) -> ChineseClipTextEncoder:
        """Load a dual Chinese-CLIP checkpoint (hub id or local dir) and keep the verified text tower."""
        from transformers import BertTokenizer, ChineseCLIPModel

        name = os.path.expanduser(str(name_or_path))
        offline = _local_files_only(local_files_only)
        looks_local = name.startswith(("/", "./", "../")) or name.count("/") > 1
        if looks_local and not Path(name).exists():
            raise WeightsNotFoundError(f"Chinese-CLIP directory not found: {name}. " + download_hint())
        if Path(name).exists() and not Path(name).is_dir():
            raise ConfigError(f"{name} is a file; pass the model directory (config.json + weights + vocab.txt)")
        try:
            # ignore_mismatched_sizes: mis-shaped keys come back in the loading report, so the text ones can be
            # named in our error (vision mismatches do not matter: the vision tower is dropped).
            model, info = ChineseCLIPModel.from_pretrained(
                name, revision=revision, local_files_only=offline, output_loading_info=True, dtype=torch.float32,
                ignore_mismatched_sizes=True,
            )
        except pickle.UnpicklingError as e:  # a .bin whose unpickling would need more than tensors
            raise UnsafeCheckpointError(
                f"refused to load Chinese-CLIP {name!r}: its pickled weights reference objects outside torch's "
                f"weights-only allowlist ({str(e).splitlines()[0][:200]}). Use the safetensors weights instead."
            ) from e
        except OSError as e:  # not cached / no network / not a model dir
            raise WeightsNotFoundError(
                f"Chinese-CLIP model {name!r} could not be loaded ({str(e).splitlines()[0][:300]}). "
                + download_hint()
            ) from e
        except (RuntimeError, ValueError) as e:  # size mismatches, corrupt files
            raise CheckpointError(f"Chinese-CLIP checkpoint {name!r} could not be loaded: {e}") from e
        _check_loading_info(info, name)

        tower = ChineseClipTextTower(model.text_model, model.text_projection)
        del model  # drops the vision tower; only the text tower stays referenced
        tower = tower.to(device=device, dtype=dtype)

        try:
            tokenizer = BertTokenizer.from_pretrained(name, revision=revision, local_files_only=offline)
        except OSError as e:
            raise WeightsNotFoundError(
                f"the tokenizer (vocab.txt) of {name!r} could not be loaded: {e}. " + download_hint(name)
            ) from e
        vocab_size = tower.text_model.config.vocab_size
        if len(tokenizer) > vocab_size:
            raise CheckpointError(f"{name}: tokenizer has {len(tokenizer)} tokens but the model only {vocab_size}")

        vocab_digest = hashlib.sha256("\n".join(sorted(tokenizer.get_vocab())).encode()).hexdigest()[:12]
        digest = state_dict_digest(tower.state_dict())
        # the same weights give the same identity whether they came from the hub id, the HF cache or a copied
        # directory, so embedding caches and the alignment layer's recorded encoder stay valid across layouts
        identity = f"chinese-clip-text:weights={digest}:vocab={vocab_digest}:ctx{CONTEXT_LENGTH}"
        encoder = cls(tower, tokenizer, identity)
        encoder.source = _source(name, revision, tower.text_model)
        return encoder

    def to_runtime(self, dtype: torch.dtype | None = None) -> ChineseClipTextEncoder:
        """Make the tower ready to embed instructions at run time: cast it to ``dtype`` (None: keep), and on a CPU
        with native bfloat16 pack a bfloat16 tower's linear weights once (:func:`zh_steve.linear.pack_linears`:
        the same features bit for bit; "砍树" 24.0 → 18.1 ms p50 on 2 cores, full size). Calling it again with
        another dtype unpacks first. Returns ``self``."""
        if dtype is not None:
            unpack_linears(self.tower)  # (no-op unless packed: packed weights are cast from their plain form)
            self.tower.to(dtype)
        pack_linears(self.tower)  # only bf16 CPU weights, only where bf16 is native
        return self

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """BERT ids ``[CLS] … [SEP]`` padded/truncated to the batch max (at most 52)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InvalidInstructionError("ChineseClipTextEncoder.encode expects a list of strings")
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.context_length,
                              return_tensors="pt")

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(texts, str):
            raise InvalidInstructionError("ChineseClipTextEncoder.encode expects a list of strings")
        if len(texts) == 0:
            return torch.zeros(0, self.dim, dtype=torch.float32)
        if not all(isinstance(t, str) for t in texts):
            raise InvalidInstructionError("ChineseClipTextEncoder.encode expects a list of strings")
        device = next(self.tower.parameters()).device
        # token ids without padding; batches then hold texts of one length (no padding work), rows come back
        # in the input order
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.context_length)["input_ids"]
        out = torch.empty(len(texts), self.dim, dtype=torch.float32)
        for rows in length_sorted_batches([len(x) for x in ids], batch_size, progress, "Chinese-CLIP text"):
            input_ids = torch.tensor([ids[i] for i in rows], dtype=torch.long, device=device)  # [B, L], one L
            ones = torch.ones_like(input_ids)
            out[rows] = self.tower(input_ids, attention_mask=ones, token_type_ids=torch.zeros_like(input_ids)
                                   ).float().cpu()
        return out
