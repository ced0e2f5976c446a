"""Goal modes: what MineCLIP-space vector the STEVE-1 prior gets for an instruction.

* ``regress``: the alignment layer's output as it is.
* ``snap``: the target encoder's own embedding of the nearest English prompt in a :class:`PromptBank` (the class
  prompts the layer was trained with, plus any the user adds), i.e. a vector the prior has seen in training.
* ``blend``: snap when the retrieval is confident (top-1 − top-2 score ≥ ``margin``), regress otherwise.

Snap and blend rank the prompts by :meth:`PromptBank.scores`: the centred cosine, minus, when the bank carries a
hubness correction (``hub_weight`` > 0), ``hub_weight`` × the prompt's *hubness* — the mean centred cosine of the
prompt to its ``hub_k`` nearest *reference* vectors, the layer's own predictions for its training instructions
averaged per train class (CSLS-style: a prompt that many training predictions sit on, i.e. a train class, is
discounted, which undoes the pull of unseen instructions toward seen classes). ``regress`` is never changed.

The bank is saved beside the alignment layer by ``python -m alignment.train`` (``prompt_bank.safetensors`` with the
raw embeddings + ``prompt_bank.json`` with the texts, their split, the encoder identity and the blend margin chosen
on val). Users extend it with their own English prompts from a text file (one per line), embedded once by the
target encoder and cached on disk.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import ConfigError, WeightsNotFoundError, ZhSteveError

GOAL_MODES = ("regress", "snap", "blend")
BANK_WEIGHTS = "prompt_bank.safetensors"
BANK_META = "prompt_bank.json"
DEFAULT_BLEND_MARGIN = 0.05
DEFAULT_PROMPT_CACHE = Path("~/.cache/zh-steve/prompt_bank")


@dataclass
class PromptBank:
    """English prompts and their raw target-space embeddings; retrieval by cosine around ``center``."""

    texts: list[str]
    emb: torch.Tensor                           # [C, D] raw target embeddings
    splits: list[str] = field(default_factory=list)  # train | val | test | user, one per text
    encoder: str = ""                           # identity of the target encoder that embedded them
    center: torch.Tensor | None = None          # [D]; default: mean of the train prompts (= the layer's y_mean)
    blend_margin: float = DEFAULT_BLEND_MARGIN
    hub_ref: torch.Tensor | None = None         # [R, D] unit, centred reference predictions (see hub_reference)
    hub_k: int = 5
    hub_weight: float = 0.0                     # 0: rank by plain centred cosine

    def __post_init__(self) -> None:
        if len(self.texts) != self.emb.shape[0]:
            raise ConfigError(f"prompt bank: {len(self.texts)} texts but {self.emb.shape[0]} embeddings")
        if not self.splits:
            self.splits = ["user"] * len(self.texts)
        self.emb = self.emb.float()
        if self.center is None:
            rows = [i for i, s in enumerate(self.splits) if s == "train"] or list(range(len(self.texts)))
            self.center = self.emb[rows].mean(0)
        if self.hub_weight < 0 or self.hub_k < 1:
            raise ConfigError(f"prompt bank: hub_weight must be >= 0 and hub_k >= 1, got {self.hub_weight}, {self.hub_k}")
        if self.hub_weight > 0 and self.hub_ref is None:
            raise ConfigError("prompt bank: hub_weight > 0 needs hub_ref (the reference predictions)")
        self._index = {t: i for i, t in enumerate(self.texts)}
        self._penalty: tuple[tuple, torch.Tensor | None] = ((), None)

    @property
    def penalty(self) -> torch.Tensor | None:
        """[C] ``hub_weight`` × each prompt's hubness (None when ``hub_weight`` is 0); computed once per setting."""
        if self.hub_weight <= 0:
            return None
        if self.hub_ref is None:
            raise ConfigError("prompt bank: hub_weight > 0 needs hub_ref (the reference predictions)")
        key = (id(self.hub_ref), id(self.emb), self.hub_k, self.hub_weight)
        if self._penalty[0] != key:
            cand = F.normalize(self.emb - self.center, dim=-1)
            self._penalty = (key, self.hub_weight * hub_penalty(cand, self.hub_ref.float(), self.hub_k))
        return self._penalty[1]

    def index(self, text: str) -> int | None:
        return self._index.get(text)

    def similarities(self, pred: torch.Tensor) -> torch.Tensor:
        """Centred cosine of each prediction [N, D] with every prompt → [N, C]."""
        q = F.normalize(pred.float() - self.center, dim=-1)
        return q @ F.normalize(self.emb - self.center, dim=-1).T

    def scores(self, pred: torch.Tensor) -> torch.Tensor:
        """The ranking score of every prompt for each prediction [N, D] → [N, C]: centred cosine − the prompt's
        hubness penalty (none when ``hub_weight`` is 0). Snap and blend rank by it."""
        sims = self.similarities(pred)
        return sims if self.penalty is None else sims - self.penalty[None, :]

    # --- persistence ----------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"emb": self.emb.contiguous(), "center": self.center.contiguous()}
        if self.hub_ref is not None:
            tensors["hub_ref"] = self.hub_ref.contiguous()
        save_file(tensors, str(directory / BANK_WEIGHTS))
        meta = {"texts": self.texts, "splits": self.splits, "encoder": self.encoder, "blend_margin": self.blend_margin,
                "hub_k": self.hub_k, "hub_weight": self.hub_weight}
        (directory / BANK_META).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> PromptBank:
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / BANK_WEIGHTS).is_file() or not (directory / BANK_META).is_file():
            raise WeightsNotFoundError(f"no prompt bank in {directory} ({BANK_WEIGHTS} + {BANK_META}); retrain the "
                                       "layer with `python -m alignment.train` (it writes the bank), or use "
                                       "goal_mode: regress")
        meta = json.loads((directory / BANK_META).read_text(encoding="utf-8"))
        t = load_file(str(directory / BANK_WEIGHTS))
        return cls(texts=list(meta["texts"]), emb=t["emb"], splits=list(meta.get("splits", [])),
                   encoder=meta.get("encoder", ""), center=t.get("center"),
                   blend_margin=float(meta.get("blend_margin", DEFAULT_BLEND_MARGIN)), hub_ref=t.get("hub_ref"),
                   hub_k=int(meta.get("hub_k", 5)), hub_weight=float(meta.get("hub_weight", 0.0)))

    # --- user prompts ---------------------------------------------------------------------------------------
    def extend(self, texts: list[str], encoder, cache_dir: str | Path | None = None) -> PromptBank:
        """A new bank with ``texts`` added (embedded by ``encoder``, which must be the bank's target encoder;
        the embeddings are cached on disk keyed by the encoder identity and the texts, so they are computed once)."""
        if self.encoder and encoder.identity != self.encoder:
            raise ConfigError(f"the prompt bank was embedded by {self.encoder!r}; extending it with "
                              f"{encoder.identity!r} would mix two spaces")
        new = [t for t in dict.fromkeys(t.strip() for t in texts) if t and t not in self._index]
        if not new:
            return self
        emb = _cached_encode(encoder, new, cache_dir)
        return PromptBank(texts=self.texts + new, emb=torch.cat([self.emb, emb]), splits=self.splits + ["user"] * len(new),
                          encoder=self.encoder or encoder.identity, center=self.center, blend_margin=self.blend_margin,
                          hub_ref=self.hub_ref, hub_k=self.hub_k, hub_weight=self.hub_weight)

    def extend_from_file(self, path: str | Path, encoder, cache_dir: str | Path | None = None) -> PromptBank:
        """Add the English prompts of a text file (one per line; blank lines and ``#`` comments skipped)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"prompt file not found: {path}")
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        return self.extend([ln for ln in lines if ln and not ln.startswith("#")], encoder, cache_dir)


def hub_reference(pred: torch.Tensor, cls: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """The hubness reference [R, D]: predictions [N, D] of known instructions, centred on ``center``, unit-length,
    averaged per class ``cls`` [N] and normalised again (one row per class present)."""
    q = F.normalize(pred.double() - center.double(), dim=-1)
    n = int(cls.max()) + 1 if cls.numel() else 0
    sums = torch.zeros(n, q.shape[1], dtype=torch.float64).index_add_(0, cls.long(), q)
    present = torch.bincount(cls.long(), minlength=n) > 0
    return F.normalize(sums[present], dim=-1).float()


def hub_penalty(cand: torch.Tensor, ref: torch.Tensor, k: int) -> torch.Tensor:
    """Hubness of each unit, centred prompt ``cand`` [C, D]: its mean cosine to its ``k`` nearest rows of ``ref``
    [R, D] → [C] (the CSLS neighbourhood term)."""
    sims = cand.float() @ ref.float().T                                     # [C, R]
    return sims.topk(min(k, sims.shape[1]), dim=1).values.mean(1)


def _cached_encode(encoder, texts: list[str], cache_dir: str | Path | None) -> torch.Tensor:
    from safetensors.torch import load_file, save_file

    root = Path(cache_dir or DEFAULT_PROMPT_CACHE).expanduser()
    key = hashlib.sha256(json.dumps([encoder.identity, texts], ensure_ascii=False).encode("utf-8")).hexdigest()[:24]
    path = root / f"{key}.safetensors"
    if path.is_file():
        return load_file(str(path))["emb"]
    emb = encoder.encode(texts).float().contiguous()
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({"emb": emb}, str(tmp))
    tmp.replace(path)
    return emb


@dataclass
class GoalDecision:
    """What the goal mode did for one instruction, with the retrieval that informed it."""

    mode: str
    snapped: bool
    prompt: str | None            # nearest bank prompt (None without a bank)
    score: float | None           # its centred cosine (before any hubness penalty: the out-of-distribution check)
    margin: float | None          # top-1 − top-2 ranking score (PromptBank.scores)
    top: list[tuple[str, float]]  # the top-k prompts and their ranking scores
    reason: str

    def as_dict(self) -> dict:
        return {"mode": self.mode, "snapped": self.snapped, "prompt": self.prompt, "score": self.score,
                "margin": self.margin, "top": [[t, s] for t, s in self.top], "reason": self.reason}


def choose_goal(pred: torch.Tensor, bank: PromptBank | None, mode: str = "regress", *, margin: float | None = None,
                top: int = 5) -> tuple[torch.Tensor, GoalDecision]:
    """The goal vector [1, D] for one prediction ``pred`` [1, D] (or [D]) under ``mode``, and why."""
    if mode not in GOAL_MODES:
        raise ConfigError(f"goal_mode must be one of {list(GOAL_MODES)}, got {mode!r}")
    pred = pred.reshape(1, -1).float()
    if bank is None:
        if mode != "regress":
            raise ZhSteveError(f"goal_mode {mode!r} needs a prompt bank beside the alignment layer")
        return pred, GoalDecision(mode, False, None, None, None, [], "regress: the alignment layer's output")
    if bank.emb.shape[1] != pred.shape[1]:
        raise ConfigError(f"prompt bank vectors are {bank.emb.shape[1]}-d but the prediction is {pred.shape[1]}-d")
    sims = bank.scores(pred)[0]                                            # [C]
    k = min(max(top, 2), sims.numel())
    vals, idx = sims.topk(k)
    best_cos = float(bank.similarities(pred)[0, int(idx[0])])
    ranked = [(bank.texts[int(i)], float(v)) for v, i in zip(vals, idx)]
    gap = float(vals[0] - vals[1]) if k > 1 else float("inf")
    threshold = bank.blend_margin if margin is None else margin
    snap = mode == "snap" or (mode == "blend" and gap >= threshold)
    if mode == "regress":
        reason = "regress: the alignment layer's output"
    elif mode == "snap":
        reason = f"snap: nearest prompt {ranked[0][0]!r}"
    else:
        reason = (f"blend: margin {gap:.3f} ≥ {threshold:.3f}, snapped to {ranked[0][0]!r}" if snap else
                  f"blend: margin {gap:.3f} < {threshold:.3f}, kept the regressed vector")
    goal = bank.emb[int(idx[0])].reshape(1, -1).clone() if snap else pred
    return goal, GoalDecision(mode, snap, ranked[0][0], best_cos, gap, ranked[:top], reason)


_BANKS: dict[tuple, PromptBank] = {}


def bank_for(alignment_dir: str | Path | None, prompts_file: str | Path | None = None, encoder=None) -> PromptBank:
    """The prompt bank saved beside an alignment layer, extended with a user prompt file (loaded once per process)."""
    if alignment_dir is None:
        raise ConfigError("goal_mode snap/blend needs a trained alignment layer (its prompt bank): set `alignment:` "
                          "to a directory written by python -m alignment.train, or use goal_mode: regress")
    key = (str(Path(alignment_dir).resolve()), str(prompts_file), getattr(encoder, "identity", None))
    if key not in _BANKS:
        bank = PromptBank.load(alignment_dir)
        if prompts_file is not None:
            if encoder is None:
                raise ConfigError("extending the prompt bank needs the target (MineCLIP) text encoder")
            bank = bank.extend_from_file(prompts_file, encoder)
        _BANKS[key] = bank
    return _BANKS[key]


def apply_goal_mode(vec: torch.Tensor, mode: str, alignment_dir: str | Path | None,
                    prompts_file: str | Path | None = None, encoder=None) -> tuple[torch.Tensor, dict]:
    """The agent's one call: the MineCLIP-space vector [1, D] the prior gets under ``mode``, and the decision."""
    if mode == "regress":
        return vec, {"mode": "regress", "snapped": False}
    goal, decision = choose_goal(vec, bank_for(alignment_dir, prompts_file, encoder), mode)
    return goal.to(dtype=vec.dtype), decision.as_dict()
