"""The mapping ladder: mean (floor) → identity → orthogonal Procrustes (and Procrustes blended toward identity) →
ridge (toward 0 and toward a prior map) → residual MLP on the best linear rung (and that MLP with its residual scaled
by α); blend weights are chosen on val; every rung gets a norm calibration.

All rungs share the standardisation fitted on the train split (inputs: per-dimension over train pairs;
targets: per-dimension over train class prompts) and are returned as :class:`AlignmentLayer` objects, so any
rung can be evaluated, saved and used at runtime the same way. Optional *anchors* (word-level zh→en pairs from the
lexicon and CC-CEDICT, see :mod:`alignment.anchors`) join the train pairs, weighted, in every closed-form fit.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from zh_steve.alignment_layer import AlignmentConfig, AlignmentLayer, MLPArchitecture
from zh_steve.errors import ConfigError
from zh_steve.goal import hub_penalty, hub_reference

from .metrics import alignment_metrics, r2_standardized, retrieval

LINEAR_RUNGS = ("identity", "procrustes", "ridge", "ridge_prior")


@dataclass
class SplitData:
    """Source embeddings of one split and the class index (row of ``class_emb``) each one means."""

    x: torch.Tensor        # [N, Din] raw source embeddings
    cls: torch.Tensor      # [N] long


@dataclass
class AnchorData:
    """Extra train rows with their own raw targets (word-level pairs), counted ``weight`` times each."""

    x: torch.Tensor        # [A, Din] raw source embeddings
    y: torch.Tensor        # [A, Dout] raw target embeddings
    weight: float = 1.0


@dataclass
class AlignmentData:
    """Everything the ladder needs, independent of where the embeddings came from."""

    splits: dict[str, SplitData]
    class_emb: torch.Tensor                  # [C, Dout] raw target embeddings of every class prompt
    train_classes: torch.Tensor              # [Ct] long: rows of class_emb that are train classes
    hard: torch.Tensor | None = None         # [C, C] bool: hard negatives (same verb / same object)
    source_identity: str = ""
    target_identity: str = ""
    anchors: AnchorData | None = None

    @property
    def in_dim(self) -> int:
        return int(self.splits["train"].x.shape[1])

    @property
    def out_dim(self) -> int:
        return int(self.class_emb.shape[1])

    def fit_rows(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw (x [N, Din], y [N, Dout], weight [N]) for the closed-form fits: train pairs, then weighted anchors."""
        tr = self.splits["train"]
        x, y = tr.x.float(), self.class_emb[tr.cls].float()
        w = torch.ones(x.shape[0])
        if self.anchors is not None and self.anchors.x.shape[0]:
            x = torch.cat([x, self.anchors.x.float()])
            y = torch.cat([y, self.anchors.y.float()])
            w = torch.cat([w, torch.full((self.anchors.x.shape[0],), float(self.anchors.weight))])
        return x, y, w


@dataclass
class RidgeConfig:
    """Closed-form ridge; ``priors``: the maps it may shrink toward besides zero (λ and prior chosen on val)."""

    lambdas: list[float] = field(default_factory=lambda: [1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0,
                                                          300.0, 1000.0])
    priors: list[str] = field(default_factory=lambda: ["identity", "procrustes"])

    def __post_init__(self) -> None:
        if not self.lambdas or any(l < 0 for l in self.lambdas):
            raise ConfigError("ridge.lambdas must be a non-empty list of non-negative numbers")
        bad = sorted(set(self.priors) - {"identity", "procrustes"})
        if bad:
            raise ConfigError(f"ridge.priors: unknown prior(s) {bad}; use identity and/or procrustes")


@dataclass
class MLPConfig:
    """Residual MLP on top of the best linear rung, trained with MSE + (1 − cos) + InfoNCE, early-stopped on val."""

    architecture: MLPArchitecture = field(default_factory=lambda: MLPArchitecture(dropout=0.1))
    train_linear: bool = True       # fine-tune the linear map too (it starts at the closed-form solution)
    epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    w_mse: float = 1.0              # MSE in the standardised target space
    w_cos: float = 0.1              # 1 − cosine, centred on the train class prompts' mean
    w_nce: float = 1.0              # InfoNCE over the candidate class prompts (nce_candidates)
    nce_candidates: str = "train"   # train: train class prompts only | all: also val/test prompts (transductive)
    temperature: float = 0.05
    hard_negative_weight: float = 4.0  # hard negatives count this many times in the InfoNCE denominator
    patience: int = 20              # epochs without a better val top-1 before stopping
    anchors: bool = True            # also fit the word anchors (MSE, their weight) in every batch
    anchor_ratio: float = 1.0       # anchor rows drawn per instruction pair in a batch (fewer: a cheaper epoch)
    mixup: float = 0.0              # > 0: also fit mixed pairs (λ ~ Beta(mixup, mixup)) to mixed targets; 0 = off

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ConfigError("mlp.patience must be >= 1 (epochs without a better val top-1 before stopping)")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.temperature <= 0:
            raise ConfigError("mlp: epochs, batch_size, lr and temperature must be positive")
        if self.nce_candidates not in ("train", "all"):
            raise ConfigError(f"mlp.nce_candidates must be 'train' or 'all', got {self.nce_candidates!r}")
        if self.anchor_ratio <= 0:
            raise ConfigError("mlp.anchor_ratio must be > 0 (anchor rows per instruction pair in a batch)")
        if self.hard_negative_weight < 1.0:
            raise ConfigError("mlp.hard_negative_weight must be >= 1 (1 disables the up-weighting)")
        if self.mixup < 0:
            raise ConfigError("mlp.mixup must be >= 0 (the Beta parameter of the mixing weight; 0 = off)")


# ----------------------------------------------------------------------------------------------------------
# statistics and the floor
# ----------------------------------------------------------------------------------------------------------

def _std(t: torch.Tensor) -> torch.Tensor:
    """Per-dimension std; a dimension (numerically) constant on train gets 1, i.e. it is only centred.

    Dividing by a clamped ~0 std would turn a tiny deviation at inference into a huge standardised input.
    """
    s = t.std(0, unbiased=False)
    tiny = 1e-6 * t.abs().amax(0).clamp_min(1.0)
    return torch.where(s > tiny, s, torch.ones_like(s))


@torch.no_grad()
def copy_stats(layer: AlignmentLayer, source: AlignmentLayer) -> AlignmentLayer:
    """Give ``layer`` the standardisation statistics (x/y mean and std) of ``source``; returns ``layer``."""
    for name in ("x_mean", "x_std", "y_mean", "y_std"):
        getattr(layer, name).copy_(getattr(source, name))
    return layer


def new_layer(data: AlignmentData, kind: str, stats: AlignmentLayer | None = None, **cfg_kwargs) -> AlignmentLayer:
    """An :class:`AlignmentLayer` of ``kind`` carrying the train-split standardisation statistics (or ``stats``'s:
    a dev fold's refit keeps the full train split's, so fold maps can be compared and averaged)."""
    cfg = AlignmentConfig(kind=kind, in_dim=data.in_dim, out_dim=data.out_dim, source_encoder=data.source_identity,
                          target_encoder=data.target_identity, **cfg_kwargs)
    layer = AlignmentLayer(cfg)
    with torch.no_grad():
        if stats is not None:
            return copy_stats(layer, stats).eval()
        x = data.splits["train"].x.float()
        y = data.class_emb[data.train_classes].float()
        layer.x_mean.copy_(x.mean(0))
        layer.x_std.copy_(_std(x))
        layer.y_mean.copy_(y.mean(0))
        layer.y_std.copy_(_std(y))
    return layer.eval()


def fit_mean(data: AlignmentData) -> AlignmentLayer:
    """The floor: always the mean train class prompt embedding."""
    return new_layer(data, "mean")


@torch.no_grad()
def predict(layer: AlignmentLayer, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Raw predictions of ``layer`` for raw inputs ``x`` (eval mode, on the layer's device, returned on CPU)."""
    was_training = layer.training
    layer.eval()
    dev = layer.x_mean.device
    out = torch.cat([layer(x[i:i + batch_size].to(dev)).cpu() for i in range(0, x.shape[0], batch_size)]) \
        if x.shape[0] else torch.zeros(0, layer.config.out_dim)
    layer.train(was_training)
    return out


def val_metrics(layer: AlignmentLayer, data: AlignmentData) -> dict[str, float]:
    """Val top-1 / top-5 / MRR and R² of ``layer``: what the ladder's choices read (the cosines and the norm ratio
    of :func:`alignment_metrics` are left to the final table)."""
    val = data.splits["val"]
    pred, y_mean, y_std = predict(layer, val.x), layer.y_mean.cpu(), layer.y_std.cpu()
    if not pred.shape[0]:
        return alignment_metrics(pred, val.cls, data.class_emb, y_mean, y_std)
    return {**retrieval(pred, val.cls, data.class_emb, y_mean),
            "r2": r2_standardized(pred, data.class_emb[val.cls.long()], y_mean, y_std), "n": int(pred.shape[0])}


# ----------------------------------------------------------------------------------------------------------
# raw-space affine maps (identity, Procrustes) written into the standardised layer
# ----------------------------------------------------------------------------------------------------------

@torch.no_grad()
def set_raw_affine(layer: AlignmentLayer, a: torch.Tensor, c: torch.Tensor) -> AlignmentLayer:
    """Make ``layer`` compute y = x·a + c in raw space (a [Din, Dout], c [Dout]) through its standardised linear."""
    w = layer.x_std.double()[:, None] * a.double() / layer.y_std.double()[None, :]      # [Din, Dout]
    b = (layer.x_mean.double() @ a.double() + c.double() - layer.y_mean.double()) / layer.y_std.double()
    layer.linear.weight.copy_(w.T.float())
    layer.linear.bias.copy_(b.float())
    return layer


def fit_identity(data: AlignmentData, stats: AlignmentLayer | None = None) -> AlignmentLayer | None:
    """No map at all: y = x (only when source and target have the same size); None otherwise."""
    if data.in_dim != data.out_dim:
        return None
    layer = new_layer(data, "identity", stats)
    return set_raw_affine(layer, torch.eye(data.in_dim), torch.zeros(data.out_dim))


def fit_procrustes(data: AlignmentData, stats: AlignmentLayer | None = None) -> AlignmentLayer:
    """Scaled orthogonal Procrustes on centred raw embeddings: y = s·(x − μx)·R + μy, R with orthonormal columns
    (rows when Din > Dout), fitted on the weighted train pairs + anchors."""
    x, y, w = (t.double() for t in data.fit_rows())
    wn = w / w.sum()
    mx, my = wn @ x, wn @ y
    xc, yc = x - mx, y - my
    u, sv, vh = torch.linalg.svd((xc * wn[:, None]).T @ yc, full_matrices=False)   # [Din, k], [k], [k, Dout]
    r = u @ vh
    scale = sv.sum() / (wn @ (xc ** 2).sum(1)).clamp_min(1e-12)
    a = scale * r
    return set_raw_affine(new_layer(data, "procrustes", stats), a, my - mx @ a)


# ----------------------------------------------------------------------------------------------------------
# ridge (toward zero or toward a prior map W0)
# ----------------------------------------------------------------------------------------------------------

def fit_ridge(data: AlignmentData, cfg: RidgeConfig | None = None, prior: AlignmentLayer | None = None,
              stats: AlignmentLayer | None = None) -> tuple[AlignmentLayer, list[dict[str, float]]]:
    """Closed-form ridge on standardised embeddings, W = argmin ‖XW − Y‖² + λN‖W − W0‖² (W0 = 0, or ``prior``'s
    standardised map); λ chosen by val top-1, then val R². Returns the best layer and one row per λ."""
    cfg = cfg or RidgeConfig()
    if not cfg.lambdas or any(l < 0 for l in cfg.lambdas):
        raise ConfigError("ridge.lambdas must be a non-empty list of non-negative numbers")
    base = new_layer(data, "ridge", stats, prior=prior.config.kind if prior is not None else "zero")
    x, y, w = data.fit_rows()
    xs = base.standardize_input(x).double()                                  # [N, Din]
    ys = ((y - base.y_mean) / base.y_std).double()                           # [N, Dout]
    wn = (w / w.sum()).double()
    x_mu, y_mu = wn @ xs, wn @ ys
    xc, yc = xs - x_mu, ys - y_mu
    evals, evecs = torch.linalg.eigh((xc * wn[:, None]).T @ xc)              # weighted covariance
    xty = (xc * wn[:, None]).T @ yc                                          # [Din, Dout]
    w0 = prior.linear.weight.detach().double().T if prior is not None else torch.zeros_like(xty)
    rows, best, best_key = [], None, None
    # directions with (numerically) zero variance get weight 0 instead of 0/0: with λ = 0 and a rank-deficient
    # covariance (N < Din, constant dims) this is the minimum-norm least-squares solution, not NaN
    evals = evals.clamp_min(0)
    cutoff = evals.max() * evals.numel() * torch.finfo(evals.dtype).eps
    for lam in cfg.lambdas:
        denom = evals + lam
        inv = torch.where(denom > cutoff, 1.0 / denom.clamp_min(cutoff), torch.zeros_like(denom))
        wmat = evecs @ ((evecs.T @ (xty + lam * w0)) * inv.unsqueeze(1))      # [Din, Dout]
        b = y_mu - x_mu @ wmat
        layer = copy.deepcopy(base)
        layer.config.ridge_lambda = float(lam)
        with torch.no_grad():
            layer.linear.weight.copy_(wmat.T.float())
            layer.linear.bias.copy_(b.float())
        m = val_metrics(layer, data)
        rows.append({"lambda": float(lam), "val_top1": m["top1"], "val_r2": m["r2"], "val_mrr": m["mrr"]})
        key = (m["top1"], m["r2"])
        if best_key is None or key > best_key:
            best, best_key = layer, key
    assert best is not None
    return best, rows


# ----------------------------------------------------------------------------------------------------------
# norm calibration
# ----------------------------------------------------------------------------------------------------------

@torch.no_grad()
def calibrate_norm(layer: AlignmentLayer, data: AlignmentData, max_scale: float = 8.0) -> AlignmentLayer:
    """Set ``layer.out_scale`` so the mean ‖prediction‖ / ‖target‖ over the train pairs is 1.

    The scale stretches the prediction's deviation from the centre (y_mean), so retrieval by centred cosine is
    unchanged; it undoes the shrinkage toward the mean that least squares produces. The mean floor is left alone.
    """
    if layer.linear is None:
        return layer
    tr = data.splits["train"]
    layer.out_scale.fill_(1.0)
    dev = predict(layer, tr.x).double() - layer.y_mean.double().cpu()       # [N, D] deviation at scale 1
    centre = layer.y_mean.double().cpu()
    tnorm = data.class_emb[tr.cls].double().norm(dim=-1).clamp_min(1e-12)
    cc, cd, dd = centre @ centre, dev @ centre, (dev * dev).sum(-1)          # ‖c + s·d‖² = cc + 2s·cd + s²·dd

    def ratio(s: float) -> float:
        return float(((cc + 2 * s * cd + s * s * dd).clamp_min(0).sqrt() / tnorm).mean())

    if ratio(0.0) >= 1.0:                   # the centre alone is already as long as the targets: nothing to undo
        return layer
    lo, hi = 0.0, max_scale
    if ratio(hi) < 1.0:
        layer.out_scale.fill_(hi)
        return layer
    for _ in range(50):                     # ‖c + s·d‖ is convex in s and ratio(0) < 1: one crossing above 0
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ratio(mid) < 1.0 else (lo, mid)
    layer.out_scale.fill_(hi)
    return layer


# ----------------------------------------------------------------------------------------------------------
# residual MLP
# ----------------------------------------------------------------------------------------------------------

def _lr_lambda(total: int, warmup: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return f


@dataclass
class Candidates:
    """The InfoNCE candidate set: which class prompts compete, each train pair's row among them, hard negatives."""

    rows: torch.Tensor               # [Cc] long: rows of class_emb that are candidates
    label: torch.Tensor              # [N] long: each train pair's row among the candidates
    y_idx: torch.Tensor              # [N] long: each train pair's row of class_emb
    center: torch.Tensor             # [D] centre of the train prompts (the retrieval centre)
    cand: torch.Tensor               # [Cc, D] centred, L2-normalised candidate prompts
    hard_bias: torch.Tensor | None   # [Cc, Cc] log-weight added to hard negatives' logits


def make_candidates(data: AlignmentData, cfg: MLPConfig, device: str | torch.device) -> Candidates:
    class_emb = data.class_emb.float().to(device)
    rows = (data.train_classes if cfg.nce_candidates == "train" else torch.arange(class_emb.shape[0])).to(device)
    pos_of = torch.full((class_emb.shape[0],), -1, dtype=torch.long, device=device)
    pos_of[rows] = torch.arange(rows.numel(), device=device)
    y_idx = data.splits["train"].cls.to(device)
    label = pos_of[y_idx]
    if (label < 0).any():
        raise ConfigError("every train pair's class must be a train class")
    center = class_emb[data.train_classes.to(device)].mean(0)
    hard_bias = None
    if data.hard is not None and cfg.hard_negative_weight > 1.0:
        hard = data.hard.to(device)[rows][:, rows]
        hard_bias = hard.float() * math.log(cfg.hard_negative_weight)
    return Candidates(rows, label, y_idx, center, F.normalize(class_emb[rows] - center, dim=-1), hard_bias)


def mlp_loss(layer: AlignmentLayer, x: torch.Tensor, idx: torch.Tensor, class_emb: torch.Tensor,
             c: Candidates, cfg: MLPConfig, ys_pred: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Weighted MSE (standardised) + (1 − centred cos) + InfoNCE with up-weighted hard negatives for batch ``idx``
    (``ys_pred``: the batch's standardised predictions when the caller has them)."""
    ys_true = (class_emb[c.y_idx[idx]] - layer.y_mean) / layer.y_std
    if ys_pred is None:
        ys_pred = layer.map_standardized(layer.standardize_input(x[idx]))
    mse = F.mse_loss(ys_pred, ys_true)
    q = F.normalize(layer.destandardize_output(ys_pred) - c.center, dim=-1)
    cos = 1.0 - (q * c.cand[c.label[idx]]).sum(-1).mean()
    logits = q @ c.cand.T / cfg.temperature                                  # [B, Cc]
    if c.hard_bias is not None:
        logits = logits + c.hard_bias[c.label[idx]]
    nce = F.cross_entropy(logits, c.label[idx])
    return {"loss": cfg.w_mse * mse + cfg.w_cos * cos + cfg.w_nce * nce, "mse": mse, "cos": cos, "nce": nce}


def mixup_loss(layer: AlignmentLayer, x: torch.Tensor, idx: torch.Tensor, class_emb: torch.Tensor,
                   c: Candidates, cfg: MLPConfig, gen: torch.Generator,
                   frozen: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Mixup: each pair of batch ``idx`` mixed with a shuffled partner, x̃ = λx_i + (1 − λ)x_j (λ ~ Beta(a, a)), fitted
    to ỹ = λy_i + (1 − λ)y_j (MSE) and to the soft label λ·i + (1 − λ)·j (InfoNCE). Mixed inputs between classes
    must land between their prompts, not on one of them. ``frozen`` (standardised inputs, base outputs): the fixed
    base's rows, so only the residual runs."""
    j = idx[torch.randperm(idx.numel(), generator=gen).to(idx.device)]
    lam = torch.distributions.Beta(cfg.mixup, cfg.mixup).sample((idx.numel(), 1)).to(x.device)
    if frozen is not None:
        xs, lin = frozen
        xs_mix = lam * xs[idx] + (1 - lam) * xs[j]
        ys_pred = lam * lin[idx] + (1 - lam) * lin[j] + layer.mlp(xs_mix)       # the base is linear
    else:
        ys_pred = layer.map_standardized(layer.standardize_input(lam * x[idx] + (1 - lam) * x[j]))
    ys_true = (lam * class_emb[c.y_idx[idx]] + (1 - lam) * class_emb[c.y_idx[j]] - layer.y_mean) / layer.y_std
    q = F.normalize(layer.destandardize_output(ys_pred) - c.center, dim=-1)
    logits = q @ c.cand.T / cfg.temperature
    if c.hard_bias is not None:
        logits = logits + lam * c.hard_bias[c.label[idx]] + (1 - lam) * c.hard_bias[c.label[j]]
    soft = lam * F.one_hot(c.label[idx], logits.shape[1]) + (1 - lam) * F.one_hot(c.label[j], logits.shape[1])
    return cfg.w_mse * F.mse_loss(ys_pred, ys_true) + cfg.w_nce * F.cross_entropy(logits, soft)



def train_mlp(
    data: AlignmentData,
    base: AlignmentLayer,
    cfg: MLPConfig | None = None,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    log: Callable[[dict], None] | None = None,
    progress: bool = False,
    min_val_r2: float | None = None,
    fixed_epochs: int | None = None,
) -> AlignmentLayer:
    """Train ``base`` (a linear rung) + residual MLP (identical to ``base`` at step 0); return the best-val state.

    ``min_val_r2``: epochs whose val R² is below it are never kept (the rung choice would refuse them, so
    keeping one could throw away an earlier epoch that beats the base and keeps the raw geometry).
    """
    cfg = cfg or MLPConfig()
    torch.manual_seed(seed)
    layer = new_layer(data, "mlp", base, mlp=cfg.architecture, ridge_lambda=base.config.ridge_lambda,
                      prior=base.config.kind if base.config.kind != "ridge" else f"ridge:{base.config.prior}")
    layer.linear.load_state_dict(base.linear.state_dict())
    layer.linear.requires_grad_(cfg.train_linear)
    layer.to(device)
    x_tr = data.splits["train"].x.float().to(device)
    class_emb = data.class_emb.float().to(device)
    cands = make_candidates(data, cfg, device)
    anchors = None
    if cfg.anchors and data.anchors is not None and data.anchors.x.shape[0] and data.anchors.weight > 0:
        anchors = (data.anchors.x.float().to(device), data.anchors.y.float().to(device))

    params = [p for p in layer.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(x_tr.shape[0] / cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg.epochs * steps_per_epoch, cfg.warmup_steps))
    gen = torch.Generator().manual_seed(seed)

    def val_key() -> tuple[float, float]:
        if fixed_epochs is not None:       # a fixed epoch count: no split is looked at
            return float("nan"), float("nan")
        m = val_metrics(layer, data)
        return m["top1"], m["r2"]

    best_key, best_state, best_epoch = val_key(), copy.deepcopy(layer.state_dict()), 0
    if log:
        log({"epoch": 0, "val_top1": best_key[0], "val_r2": best_key[1]})
    from tqdm.auto import tqdm

    n_epochs = cfg.epochs if fixed_epochs is None else fixed_epochs
    bar = tqdm(range(1, n_epochs + 1), desc="mlp", disable=not progress, leave=False)
    # a fixed base: standardised inputs and the base's outputs computed once, the batches run only the residual
    frozen = not cfg.train_linear
    if frozen:
        with torch.no_grad():
            xs_tr = layer.standardize_input(x_tr)
            lin_tr = layer.linear(xs_tr)
            if anchors is not None:
                xs_an = layer.standardize_input(anchors[0])
                lin_an = layer.linear(xs_an)
    for epoch in bar:
        t0 = time.time()
        layer.train()
        perm = torch.randperm(x_tr.shape[0], generator=gen).to(device)
        sums = {"loss": 0.0, "mse": 0.0, "cos": 0.0, "nce": 0.0, "anchor_mse": 0.0, "mix": 0.0}
        for s in range(0, perm.numel(), cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            losses = mlp_loss(layer, x_tr, idx, class_emb, cands, cfg,
                              ys_pred=lin_tr[idx] + layer.mlp(xs_tr[idx]) if frozen else None)
            if anchors is not None:  # anchor_ratio × as many anchor rows, drawn at random
                n_pick = max(1, round(cfg.anchor_ratio * idx.numel()))
                pick = torch.randint(0, anchors[0].shape[0], (n_pick,), generator=gen).to(device)
                pred = (lin_an[pick] + layer.mlp(xs_an[pick]) if frozen
                        else layer.map_standardized(layer.standardize_input(anchors[0][pick])))
                losses["anchor_mse"] = F.mse_loss(pred, (anchors[1][pick] - layer.y_mean) / layer.y_std)
                losses["loss"] = losses["loss"] + cfg.w_mse * data.anchors.weight * losses["anchor_mse"]
            if cfg.mixup > 0:   # pairs mixed with a shuffled batch, fitted to the same mix of their targets
                losses["mix"] = mixup_loss(layer, x_tr, idx, class_emb, cands, cfg, gen,
                                           (xs_tr, lin_tr) if frozen else None)
                losses["loss"] = losses["loss"] + losses["mix"]
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            sched.step()
            for k, v in losses.items():
                sums[k] += float(v.detach()) * idx.numel()
        v_top1, v_r2 = val_key()
        row = {"epoch": epoch, **{f"train_{k}": v / x_tr.shape[0] for k, v in sums.items()},
               "val_top1": v_top1, "val_r2": v_r2, "lr": sched.get_last_lr()[0], "seconds": time.time() - t0}
        if (v_top1, v_r2) > best_key and (min_val_r2 is None or v_r2 >= min_val_r2):
            best_key, best_state, best_epoch = (v_top1, v_r2), copy.deepcopy(layer.state_dict()), epoch
        if fixed_epochs is not None:
            best_state, best_epoch = layer.state_dict(), epoch
        row["best_epoch"] = best_epoch
        if log:
            log(row)
        bar.set_postfix(val_top1=f"{v_top1:.3f}", best=f"{best_key[0]:.3f}")
        if fixed_epochs is None and epoch - best_epoch >= cfg.patience:
            break
    layer.load_state_dict(best_state)
    layer.requires_grad_(False)
    return layer.cpu().eval()


# ----------------------------------------------------------------------------------------------------------
# shrunk rungs: a fraction of the way from a simpler map (α / β on val)
# ----------------------------------------------------------------------------------------------------------

@torch.no_grad()
def shrink_residual(mlp: AlignmentLayer, alpha: float) -> AlignmentLayer:
    """A copy of the MLP rung whose residual is scaled by ``alpha``: y_s = linear(x_s) + α·mlp(x_s).

    The residual's last layer is linear, so scaling its weight and bias is exact and the layer format is unchanged
    (kind "mlp"). α = 0 is the MLP's linear part (its base when ``train_linear`` is off), α = 1 the MLP; α = ½ the
    average of the two outputs (before norm calibration).
    """
    if mlp.mlp is None:
        raise ConfigError("shrink_residual needs an MLP rung")
    out = copy.deepcopy(mlp)
    out.mlp.out.weight.mul_(alpha)
    out.mlp.out.bias.mul_(alpha)
    out.out_scale.fill_(1.0)
    return out


@torch.no_grad()
def blend_linear(a: AlignmentLayer, b: AlignmentLayer, beta: float, kind: str | None = None) -> AlignmentLayer:
    """The affine map (1 − β)·a + β·b (both linear rungs of the same data: same standardisation, so the blend is
    the same in raw space)."""
    if a.linear is None or b.linear is None or a.mlp is not None or b.mlp is not None:
        raise ConfigError("blend_linear needs two affine rungs")
    out = copy.deepcopy(b)
    if kind is not None:
        out.config.kind = kind
    out.linear.weight.copy_((1 - beta) * a.linear.weight + beta * b.linear.weight)
    out.linear.bias.copy_((1 - beta) * a.linear.bias + beta * b.linear.bias)
    out.out_scale.fill_(1.0)
    return out


def choose_on_val(make: Callable[[float], AlignmentLayer], grid: list[float], data: AlignmentData,
                  name: str) -> tuple[AlignmentLayer, list[dict[str, float]]]:
    """The layer ``make(g)`` with the best val top-1 (then R²) over ``grid``; one row per grid value."""
    if not grid:
        raise ConfigError(f"{name}: the grid must not be empty")
    rows, best, best_key = [], None, None
    for g in grid:
        layer = make(float(g))
        m = val_metrics(layer, data)
        rows.append({name: float(g), "val_top1": m["top1"], "val_r2": m["r2"], "val_top5": m["top5"]})
        if best_key is None or (m["top1"], m["r2"]) > best_key:
            best, best_key = layer, (m["top1"], m["r2"])
    assert best is not None
    return best, rows


# ----------------------------------------------------------------------------------------------------------
# cross-fitting on dev folds carved from train: the MLP's early stopping and α never see val or test
# ----------------------------------------------------------------------------------------------------------

@dataclass
class DevFold:
    """One dev fold of the train split: train words held out of the MLP's fit and used for its early stopping.

    ``train`` / ``dev``: bool masks over the train pairs (dev = the held-out classes' pairs the model is scored on);
    ``anchors``: bool mask over the anchor rows it may fit; ``train_classes``: the train classes it keeps;
    ``seen``: optional phrasings of kept classes held out of the fit too (seen-class queries for the hubness
    weight, :func:`choose_hub_weight`)."""

    train: torch.Tensor          # [N] bool
    dev: torch.Tensor            # [N] bool
    anchors: torch.Tensor | None  # [A] bool
    train_classes: torch.Tensor  # [Ct'] long
    name: str = ""
    seen: torch.Tensor | None = None  # [N] bool


def fold_data(data: AlignmentData, fold: DevFold) -> AlignmentData:
    """The fold's view of ``data``: its train rows and anchors as "train", its dev rows as "val"."""
    tr = data.splits["train"]
    anchors = data.anchors
    if anchors is not None and fold.anchors is not None:
        anchors = AnchorData(anchors.x[fold.anchors], anchors.y[fold.anchors], anchors.weight)
    splits = {"train": SplitData(tr.x[fold.train], tr.cls[fold.train]),
              "val": SplitData(tr.x[fold.dev], tr.cls[fold.dev])}
    if fold.seen is not None:
        splits["seen"] = SplitData(tr.x[fold.seen], tr.cls[fold.seen])
    return AlignmentData(splits=splits,
                         class_emb=data.class_emb, train_classes=fold.train_classes, hard=data.hard,
                         source_identity=data.source_identity, target_identity=data.target_identity, anchors=anchors)


@torch.no_grad()
def average_mlps(layers: list[AlignmentLayer]) -> AlignmentLayer:
    """One MLP rung computing exactly the mean of ``layers``' outputs (same standardisation, any affine parts).

    The residual MLPs run side by side: the first hidden layers are stacked, deeper ones block-diagonal, and the
    output layer concatenates them at weight 1/K, so the average is an ordinary (wider) MLP layer."""
    if not layers or any(l.mlp is None for l in layers):
        raise ConfigError("average_mlps needs one or more MLP rungs")
    k, first = len(layers), layers[0]
    arch = copy.deepcopy(first.config.mlp)
    arch.hidden_dims = [h * k for h in arch.hidden_dims]
    out = new_layer_like(first, mlp=arch)
    out.linear.weight.copy_(torch.stack([l.linear.weight for l in layers]).mean(0))
    out.linear.bias.copy_(torch.stack([l.linear.bias for l in layers]).mean(0))
    linears = [[m for m in l.mlp.hidden if isinstance(m, torch.nn.Linear)] for l in layers]
    targets = [m for m in out.mlp.hidden if isinstance(m, torch.nn.Linear)]
    for depth, target in enumerate(targets):
        ws = [ls[depth].weight for ls in linears]
        target.weight.copy_(torch.cat(ws) if depth == 0 else torch.block_diag(*ws))
        target.bias.copy_(torch.cat([ls[depth].bias for ls in linears]))
    out.mlp.out.weight.copy_(torch.cat([l.mlp.out.weight for l in layers], dim=1) / k)
    out.mlp.out.bias.copy_(torch.stack([l.mlp.out.bias for l in layers]).mean(0))
    return out.eval()


def new_layer_like(layer: AlignmentLayer, **changes) -> AlignmentLayer:
    """A fresh layer with ``layer``'s config (``changes`` applied) and standardisation statistics."""
    cfg = copy.deepcopy(layer.config)
    for k, v in changes.items():
        setattr(cfg, k, v)
    return copy_stats(AlignmentLayer(cfg), layer).eval()


def refit_like(base: AlignmentLayer, data: AlignmentData) -> AlignmentLayer:
    """``base``'s linear rung fitted again on ``data`` (same kind, prior and λ; ``base``'s standardisation)."""
    kind, prior_kind = base.config.kind, base.config.prior
    if kind == "identity":
        out = fit_identity(data, stats=base)
        assert out is not None
        return out
    if kind == "procrustes":
        return fit_procrustes(data, stats=base)
    if kind != "ridge" or base.config.ridge_lambda is None:
        raise ConfigError(f"cannot refit a {kind!r} rung on a dev fold")
    prior = {"procrustes": lambda: fit_procrustes(data, stats=base),
             "identity": lambda: fit_identity(data, stats=base)}.get(prior_kind or "zero", lambda: None)()
    layer, _ = fit_ridge(data, RidgeConfig(lambdas=[base.config.ridge_lambda], priors=[]), prior=prior, stats=base)
    return layer


def cross_fit_mlp(data: AlignmentData, base: AlignmentLayer, cfg: MLPConfig, folds: list[DevFold],
                  alphas: list[float], refit: Callable[[AlignmentData], AlignmentLayer] | None = None, *,
                  device: str | torch.device = "cpu", seed: int = 0,
                  log: Callable[[dict], None] | None = None, progress: bool = False,
                  max_r2_drop: float | None = None, final_fit: bool = False,
                  hub: tuple[list[float], int] | None = None) -> tuple[AlignmentLayer, float, list[dict]]:
    """One residual MLP per dev fold, each fitted without its fold's words (on ``refit(fold data)``: the base rung
    refitted without them, so the dev words are unseen by the whole map) and early-stopped on their pairs. The rung
    is ``base`` + the folds' averaged residuals (:func:`average_mlps`), and α (the residual's scale) is the grid
    value with the best mean dev top-1 across folds. Val and test are never looked at.
    ``hub`` (weights, k): also choose the prompt bank's hubness weight on the folds (:func:`choose_hub_weight`);
    its rows (``"hub_weight"`` set) follow the α rows and the last row is the choice.
    Returns (the MLP rung, α, one row per fold and α)."""
    if not folds:
        raise ConfigError("cross_fit_mlp needs at least one dev fold")
    models, rows, best_epochs = [], [], []
    scores = torch.zeros(len(alphas))
    fds = [fold_data(data, f) for f in folds]
    for i, (fold, fd) in enumerate(zip(folds, fds)):
        fold_base = refit(fd) if refit is not None else base
        floor = None if max_r2_drop is None else val_metrics(fold_base, fd)["r2"] - max_r2_drop

        def fold_log(row: dict, i: int = i) -> None:
            if log:
                log({"fold": i, **row})

        fold_rows: list[dict] = []
        m = train_mlp(fd, fold_base, cfg, device=device, seed=seed + i, log=lambda r: (fold_rows.append(r),
                                                                                           fold_log(r)),
                      progress=progress, min_val_r2=floor)
        best_epochs.append(fold_rows[-1].get("best_epoch", 0))
        models.append(m)
        for j, a in enumerate(alphas):
            top1 = val_metrics(shrink_residual(m, a), fd)["top1"]
            scores[j] += top1 / len(folds)
            rows.append({"fold": i, "name": fold.name, "alpha": float(a), "dev_top1": top1,
                         "dev_pairs": int(fold.dev.sum()), "train_pairs": int(fold.train.sum())})
    best = int(torch.argmax(scores))      # ties: the first in the grid's order
    if hub is not None:
        rows += choose_hub_weight([shrink_residual(m, alphas[best]) for m in models], fds, *hub)
    if final_fit:   # one MLP on all of train for the folds' mean best epoch count (no split looked at)
        n = round(sum(best_epochs) / len(best_epochs))
        out = train_mlp(data, base, cfg, device=device, seed=seed, progress=progress, fixed_epochs=n)
        return out, float(alphas[best]), rows
    out = average_mlps(models)
    with torch.no_grad():                 # the residuals on the base fitted to all of train
        out.linear.load_state_dict(base.linear.state_dict())
    out.config.prior, out.config.ridge_lambda = models[0].config.prior, base.config.ridge_lambda
    return out, float(alphas[best]), rows


def choose_hub_weight(models: list[AlignmentLayer], fds: list[AlignmentData], weights: list[float],
                      k: int) -> list[dict]:
    """The prompt bank's hubness weight w (:class:`zh_steve.goal.PromptBank`: rank by centred cosine − w × the
    prompt's mean cosine to its ``k`` nearest reference predictions) chosen on dev folds: for each fold's model,
    the reference is its predictions of its own train pairs (per class), and a weight scores the mean of the
    fold's unseen-class top-1 (its held-out words, "val") and seen-class top-1 (held-out phrasings of kept
    classes, "seen"), averaged over folds: the correction must not buy unseen classes with seen ones.
    Returns one row per fold and weight, then ``{"hub_weight": best, "chosen": True, ...}``."""
    if not weights or any(w < 0 for w in weights):
        raise ConfigError("hub.weights must be a non-empty list of numbers >= 0")
    rows, totals = [], torch.zeros(len(weights))
    for i, (m, fd) in enumerate(zip(models, fds)):
        if "seen" not in fd.splits or not fd.splits["seen"].x.shape[0]:
            raise ConfigError("choosing hub.weight needs seen-class queries in every dev fold: set hub.seen_fraction > 0")
        tr = fd.splits["train"]
        center = m.y_mean.cpu()
        ref = hub_reference(predict(m, tr.x), tr.cls, center)
        base_pen = hub_penalty(F.normalize(fd.class_emb.float() - center, dim=-1), ref, k)
        preds = {s: predict(m, fd.splits[s].x) for s in ("val", "seen")}
        for j, w in enumerate(weights):
            r = {s: retrieval(preds[s], fd.splits[s].cls, fd.class_emb, center, penalty=w * base_pen)
                 for s in ("val", "seen")}
            both = 0.5 * (r["val"]["top1"] + r["seen"]["top1"])
            totals[j] += both / len(models)
            rows.append({"fold": i, "hub_weight": float(w), "hub_k": k, "unseen_top1": r["val"]["top1"],
                         "unseen_top5": r["val"]["top5"], "seen_top1": r["seen"]["top1"], "balanced_top1": both})
    best = int(torch.argmax(totals))      # ties: the first (smallest, if the grid is sorted) weight
    rows.append({"hub_weight": float(weights[best]), "hub_k": k, "chosen": True,
                 "balanced_top1": float(totals[best])})
    return rows


# ----------------------------------------------------------------------------------------------------------
# evaluation of every rung
# ----------------------------------------------------------------------------------------------------------

def evaluate(layers: dict[str, AlignmentLayer], data: AlignmentData,
             max_train_rows: int | None = 4096) -> dict[str, dict[str, dict[str, float]]]:
    """``metrics[split][rung]`` for every split and rung. The train split (a fit diagnostic, never a choice) is
    scored on a fixed random sample of ``max_train_rows`` pairs when it is larger (its ``n`` says so)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split, d in data.splits.items():
        x, cls = d.x, d.cls
        if split == "train" and max_train_rows is not None and x.shape[0] > max_train_rows:
            rows = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))[:max_train_rows]
            x, cls = x[rows], cls[rows]
        out[split] = {}
        for rung, layer in layers.items():
            layer = layer.cpu()
            out[split][rung] = alignment_metrics(predict(layer, x), cls, data.class_emb, layer.y_mean, layer.y_std)
    return out


__all__ = ["AlignmentData", "AnchorData", "DevFold", "average_mlps", "choose_hub_weight", "cross_fit_mlp", "fold_data", "new_layer_like", "refit_like", "LINEAR_RUNGS", "MLPConfig", "RidgeConfig", "SplitData", "blend_linear",
           "calibrate_norm", "choose_on_val", "evaluate", "fit_identity", "fit_mean", "fit_procrustes", "fit_ridge", "make_candidates", "mixup_loss", "mlp_loss",
           "new_layer", "predict", "retrieval", "shrink_residual", "train_mlp", "val_metrics"]
