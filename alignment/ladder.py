"""The mapping ladder: mean vector (floor) → ridge (closed form, λ on val) → ridge + residual MLP.

All rungs share the standardisation fitted on the train split (inputs: per-dimension over train pairs;
targets: per-dimension over train class prompts) and are returned as :class:`AlignmentLayer` objects, so any
rung can be evaluated, saved and used at runtime the same way.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from zh_steve.alignment_layer import AlignmentConfig, AlignmentLayer
from zh_steve.errors import ConfigError

from .config_types import check_types
from .metrics import alignment_metrics, retrieval


@dataclass
class SplitData:
    """Source embeddings of one split and the class index (row of ``class_emb``) each one means."""

    x: torch.Tensor        # [N, Din] raw source embeddings
    cls: torch.Tensor      # [N] long


@dataclass
class AlignmentData:
    """Everything the ladder needs, independent of where the embeddings came from."""

    splits: dict[str, SplitData]
    class_emb: torch.Tensor                  # [C, Dout] raw target embeddings of every class prompt
    train_classes: torch.Tensor              # [Ct] long: rows of class_emb that are train classes
    hard: torch.Tensor | None = None         # [C, C] bool: hard negatives (same verb / same object)
    source_identity: str = ""
    target_identity: str = ""

    @property
    def in_dim(self) -> int:
        return int(self.splits["train"].x.shape[1])

    @property
    def out_dim(self) -> int:
        return int(self.class_emb.shape[1])


@dataclass
class RidgeConfig:
    lambdas: list[float] = field(default_factory=lambda: [1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0])

    def __post_init__(self) -> None:
        check_types(self)
        if not self.lambdas or any(l < 0 for l in self.lambdas):
            raise ConfigError("ridge.lambdas must be a non-empty list of non-negative numbers")


@dataclass
class MLPConfig:
    """Residual MLP on top of the ridge map, trained with MSE + (1 − cos) + InfoNCE, early-stopped on val top-1."""

    hidden_dims: list[int] = field(default_factory=lambda: [512])
    activation: str = "gelu"
    dropout: float = 0.1
    train_linear: bool = True       # fine-tune the ridge map too (it starts at the closed-form solution)
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

    def __post_init__(self) -> None:
        check_types(self)
        if self.patience < 1:
            raise ConfigError("mlp.patience must be >= 1 (epochs without a better val top-1 before stopping)")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.temperature <= 0:
            raise ConfigError("mlp: epochs, batch_size, lr and temperature must be positive")
        if self.nce_candidates not in ("train", "all"):
            raise ConfigError(f"mlp.nce_candidates must be 'train' or 'all', got {self.nce_candidates!r}")
        if self.hard_negative_weight < 1.0:
            raise ConfigError("mlp.hard_negative_weight must be >= 1 (1 disables the up-weighting)")


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


def new_layer(data: AlignmentData, kind: str, **cfg_kwargs) -> AlignmentLayer:
    """An :class:`AlignmentLayer` of ``kind`` carrying the train-split standardisation statistics."""
    cfg = AlignmentConfig(kind=kind, in_dim=data.in_dim, out_dim=data.out_dim, source_encoder=data.source_identity,
                          target_encoder=data.target_identity, **cfg_kwargs)
    layer = AlignmentLayer(cfg)
    x = data.splits["train"].x.float()
    y = data.class_emb[data.train_classes].float()
    with torch.no_grad():
        layer.x_mean.copy_(x.mean(0))
        layer.x_std.copy_(_std(x))
        layer.y_mean.copy_(y.mean(0))
        layer.y_std.copy_(_std(y))
    return layer.eval()


def fit_mean(data: AlignmentData) -> AlignmentLayer:
    """The floor: always the mean train class prompt embedding."""
    return new_layer(data, "mean")


# ----------------------------------------------------------------------------------------------------------
# ridge
# ----------------------------------------------------------------------------------------------------------

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


def fit_ridge(data: AlignmentData, cfg: RidgeConfig | None = None) -> tuple[AlignmentLayer, list[dict[str, float]]]:
    """Closed-form ridge on standardised embeddings; λ (scaled by N) chosen by val top-1, then val R².

    Returns the best layer and one row per λ with its val metrics.
    """
    cfg = cfg or RidgeConfig()
    if not cfg.lambdas or any(l < 0 for l in cfg.lambdas):
        raise ConfigError("ridge.lambdas must be a non-empty list of non-negative numbers")
    base = new_layer(data, "ridge")
    tr = data.splits["train"]
    xs = base.standardize_input(tr.x.float()).double()                       # [N, Din]
    ys = ((data.class_emb[tr.cls].float() - base.y_mean) / base.y_std).double()  # [N, Dout]
    n = xs.shape[0]
    x_mu, y_mu = xs.mean(0), ys.mean(0)
    xc, yc = xs - x_mu, ys - y_mu
    evals, evecs = torch.linalg.eigh(xc.T @ xc / n)                          # covariance eigendecomposition
    xty = evecs.T @ (xc.T @ yc / n)                                          # [Din, Dout] in the eigenbasis
    val = data.splits["val"]
    rows, best, best_key = [], None, None
    # directions with (numerically) zero variance get weight 0 instead of 0/0: with λ = 0 and a rank-deficient
    # covariance (N < Din, constant dims) this is the minimum-norm least-squares solution, not NaN
    evals = evals.clamp_min(0)
    cutoff = evals.max() * evals.numel() * torch.finfo(evals.dtype).eps
    for lam in cfg.lambdas:
        denom = evals + lam
        inv = torch.where(denom > cutoff, 1.0 / denom.clamp_min(cutoff), torch.zeros_like(denom))
        w = evecs @ (xty * inv.unsqueeze(1))                                  # [Din, Dout]
        b = y_mu - x_mu @ w
        layer = copy.deepcopy(base)
        layer.config.ridge_lambda = float(lam)
        with torch.no_grad():
            layer.linear.weight.copy_(w.T.float())
            layer.linear.bias.copy_(b.float())
        m = alignment_metrics(predict(layer, val.x), val.cls, data.class_emb, layer.y_mean, layer.y_std)
        rows.append({"lambda": float(lam), "val_top1": m["top1"], "val_r2": m["r2"], "val_mrr": m["mrr"]})
        key = (m["top1"], m["r2"])
        if best_key is None or key > best_key:
            best, best_key = layer, key
    assert best is not None
    return best, rows


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


def train_mlp(
    data: AlignmentData,
    ridge: AlignmentLayer,
    cfg: MLPConfig | None = None,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    log: Callable[[dict], None] | None = None,
    progress: bool = False,
    min_val_r2: float | None = None,
) -> AlignmentLayer:
    """Train ridge + residual MLP (identical to ``ridge`` at step 0); return the best-val-top-1 state.

    ``min_val_r2``: epochs whose val R² is below it are never kept (the rung choice would refuse them, so
    keeping one could throw away an earlier epoch that beats ridge and keeps the raw geometry).
    """
    cfg = cfg or MLPConfig()
    torch.manual_seed(seed)
    layer = new_layer(data, "mlp", hidden_dims=list(cfg.hidden_dims), activation=cfg.activation,
                      dropout=cfg.dropout, ridge_lambda=ridge.config.ridge_lambda)
    layer.linear.load_state_dict(ridge.linear.state_dict())
    layer.linear.requires_grad_(cfg.train_linear)
    layer.to(device)

    tr, val = data.splits["train"], data.splits["val"]
    x_tr = tr.x.float().to(device)
    class_emb = data.class_emb.float().to(device)
    rows = data.train_classes if cfg.nce_candidates == "train" else torch.arange(class_emb.shape[0])
    rows = rows.to(device)                                                 # candidate class prompts
    pos_of = torch.full((class_emb.shape[0],), -1, dtype=torch.long, device=device)
    pos_of[rows] = torch.arange(rows.numel(), device=device)
    y_idx = tr.cls.to(device)
    label = pos_of[y_idx]                                                  # [N] row among the candidates
    if (label < 0).any():
        raise ConfigError("every train pair's class must be a train class")
    center = class_emb[data.train_classes.to(device)].mean(0)             # centre of the train prompts
    cand_c = F.normalize(class_emb[rows] - center, dim=-1)                 # [Cc, D]
    hard_bias = None
    if data.hard is not None and cfg.hard_negative_weight > 1.0:
        hard = data.hard.to(device)[rows][:, rows]                         # [Cc, Cc]
        hard_bias = hard.float() * math.log(cfg.hard_negative_weight)

    params = [p for p in layer.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(x_tr.shape[0] / cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg.epochs * steps_per_epoch, cfg.warmup_steps))
    gen = torch.Generator().manual_seed(seed)

    def val_score() -> tuple[float, float]:
        m = alignment_metrics(predict(layer, val.x), val.cls, data.class_emb, layer.y_mean.cpu(), layer.y_std.cpu())
        return m["top1"], m["r2"]

    best_key, best_state, best_epoch = val_score(), copy.deepcopy(layer.state_dict()), 0
    if log:
        log({"epoch": 0, "val_top1": best_key[0], "val_r2": best_key[1]})
    from tqdm.auto import tqdm

    bar = tqdm(range(1, cfg.epochs + 1), desc="mlp", disable=not progress, leave=False)
    for epoch in bar:
        t0 = time.time()
        layer.train()
        perm = torch.randperm(x_tr.shape[0], generator=gen).to(device)
        sums = {"loss": 0.0, "mse": 0.0, "cos": 0.0, "nce": 0.0}
        for s in range(0, perm.numel(), cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            ys_true = (class_emb[y_idx[idx]] - layer.y_mean) / layer.y_std
            ys_pred = layer.map_standardized(layer.standardize_input(x_tr[idx]))
            mse = F.mse_loss(ys_pred, ys_true)
            q = F.normalize(layer.destandardize_output(ys_pred) - center, dim=-1)
            cos = 1.0 - (q * cand_c[label[idx]]).sum(-1).mean()
            logits = q @ cand_c.T / cfg.temperature                         # [B, Ct]
            if hard_bias is not None:
                logits = logits + hard_bias[label[idx]]
            nce = F.cross_entropy(logits, label[idx])
            loss = cfg.w_mse * mse + cfg.w_cos * cos + cfg.w_nce * nce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            for k, v in (("loss", loss), ("mse", mse), ("cos", cos), ("nce", nce)):
                sums[k] += float(v.detach()) * idx.numel()
        v_top1, v_r2 = val_score()
        row = {"epoch": epoch, **{f"train_{k}": v / x_tr.shape[0] for k, v in sums.items()},
               "val_top1": v_top1, "val_r2": v_r2, "lr": sched.get_last_lr()[0], "seconds": time.time() - t0}
        if (v_top1, v_r2) > best_key and (min_val_r2 is None or v_r2 >= min_val_r2):
            best_key, best_state, best_epoch = (v_top1, v_r2), copy.deepcopy(layer.state_dict()), epoch
        row["best_epoch"] = best_epoch
        if log:
            log(row)
        bar.set_postfix(val_top1=f"{v_top1:.3f}", best=f"{best_key[0]:.3f}")
        if epoch - best_epoch >= cfg.patience:
            break
    layer.load_state_dict(best_state)
    layer.requires_grad_(False)
    return layer.cpu().eval()


# ----------------------------------------------------------------------------------------------------------
# evaluation of every rung
# ----------------------------------------------------------------------------------------------------------

def evaluate(layers: dict[str, AlignmentLayer], data: AlignmentData) -> dict[str, dict[str, dict[str, float]]]:
    """``metrics[split][rung]`` for every split and rung."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split, d in data.splits.items():
        out[split] = {}
        for rung, layer in layers.items():
            layer = layer.cpu()
            out[split][rung] = alignment_metrics(predict(layer, d.x), d.cls, data.class_emb,
                                                 layer.y_mean, layer.y_std)
    return out


__all__ = ["AlignmentData", "MLPConfig", "RidgeConfig", "SplitData", "evaluate", "fit_mean", "fit_ridge",
           "new_layer", "predict", "retrieval", "train_mlp"]
