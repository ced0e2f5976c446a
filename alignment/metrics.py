"""Metrics that tell a useful alignment from a useless one.

MineCLIP text embeddings of short instructions are crowded (high mean pairwise cosine), so raw cosine and raw
MSE flatter a predictor that always outputs the mean vector. The metrics that matter are class-level retrieval
(top-1 / top-5 / MRR of the aligned vector among the MineCLIP embeddings of *all* class prompts, by centred
cosine) and R² in the standardised target space; raw cosine, centred cosine and the norm ratio are reported
next to them. :func:`alignment_metrics` centres on ``y_mean``, the mean of the *train* class prompts: the
centre the training losses use, fitted without val/test prompts, and the exact output of the mean floor.

Ties (e.g. a constant predictor sitting exactly on the centre) are scored as the expectation under random
tie-breaking, so a constant predictor scores chance: top-1 = 1/C, MRR = H_C / C. A prediction with a NaN or
inf in it retrieves nothing (0 for every retrieval metric): NaN compares false with everything, and would
otherwise count as ranked first.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

METRIC_KEYS = ("top1", "top5", "mrr", "r2", "raw_cos", "centred_cos", "norm_ratio")
_EULER_GAMMA = 0.5772156649015329


def _harmonic(n: torch.Tensor) -> torch.Tensor:
    """H_n = 1 + 1/2 + … + 1/n for float64 tensors (H_0 = 0)."""
    return torch.digamma(n + 1.0) + _EULER_GAMMA


def retrieval(
    pred: torch.Tensor, target_idx: torch.Tensor, class_emb: torch.Tensor, center: torch.Tensor | None = None,
    *, penalty: torch.Tensor | None = None, chunk: int = 2048, tol: float = 1e-9,
) -> dict[str, float]:
    """Top-1, top-5 and MRR of each prediction's own class among ``class_emb`` by centred cosine.

    pred [N, D], target_idx [N] (row of class_emb), class_emb [C, D]; center defaults to class_emb.mean(0).
    ``penalty`` [C]: subtracted from every prediction's cosine with that class (the prompt bank's hubness
    correction, :meth:`zh_steve.goal.PromptBank.scores`); None = plain centred cosine.

    Exact float64 ranks, computed fast: every row is ranked from float32 scores, whose error is below
    ``_SCREEN``; only rows with another class within ``_SCREEN`` of their own (a near tie) or a non-finite
    score are ranked again in float64 (:func:`_rank_stats`).
    """
    class_emb = class_emb.double()
    center = class_emb.mean(0) if center is None else center.double()
    cand = F.normalize(class_emb - center, dim=-1)                         # [C, D]
    cand32 = cand.float()
    pen = penalty.double()[None, :] if penalty is not None else None
    pen32 = pen.float() if pen is not None else None
    top1 = top5 = rr = 0.0
    for s in range(0, pred.shape[0], chunk):
        q = F.normalize(pred[s:s + chunk].double() - center, dim=-1)       # [n, D]
        idx = target_idx[s:s + chunk].long().view(-1, 1)
        sims32 = q.float() @ cand32.T                                      # [n, C]
        if pen32 is not None:
            sims32 = sims32 - pen32
        own32 = sims32.gather(1, idx)
        close = ((sims32 - own32).abs() <= _SCREEN).sum(1)                 # own is always one of them (if finite)
        redo = (close != 1) | ~torch.isfinite(sims32).all(1)
        greater = (sims32 > own32 + _SCREEN).sum(1).double()               # exact where not redo
        ties = torch.zeros_like(greater)
        finite = torch.ones_like(greater)
        if redo.any():                                                     # near ties / non-finite: float64
            sims = q[redo] @ cand.T
            if pen is not None:
                sims = sims - pen
            greater[redo], ties[redo], finite[redo] = _rank_stats(sims, idx[redo], tol)
        # own rank is uniform on g+1 … g+t+1
        top1 += (((1.0 - greater) / (ties + 1.0)).clamp(0, 1) * finite).sum().item()
        top5 += (((5.0 - greater) / (ties + 1.0)).clamp(0, 1) * finite).sum().item()
        rr += ((_harmonic(greater + ties + 1.0) - _harmonic(greater)) / (ties + 1.0) * finite).sum().item()
    n = max(1, pred.shape[0])
    return {"top1": top1 / n, "top5": top5 / n, "mrr": rr / n}


# float32 centred-cosine scores of unit vectors (D ≤ a few thousand) are within ~D·2⁻²⁴ ≈ 3e-5 of float64 at
# worst; a gap wider than this is decided the same way in either precision
_SCREEN = 1e-4


def _rank_stats(sims: torch.Tensor, own_idx: torch.Tensor, tol: float) -> tuple[torch.Tensor, ...]:
    """float64 scores [n, C] → (classes scoring above their own, other classes tied with it within ``tol``, 1 if
    the row is finite else 0); a non-finite row ranks nothing."""
    finite = torch.isfinite(sims).all(1)                                   # [n]; non-finite rows score 0
    sims = torch.where(finite[:, None], sims, torch.zeros_like(sims))
    own = sims.gather(1, own_idx)                                          # [n, 1]
    greater = (sims > own + tol).sum(1).double()                           # g
    ties = ((sims - own).abs() <= tol).sum(1).double() - 1.0               # t (others equal to own)
    return greater, ties, finite.double()


def r2_standardized(pred: torch.Tensor, target: torch.Tensor, y_mean: torch.Tensor, y_std: torch.Tensor) -> float:
    """1 − SSE / SST in the standardised space ((y − y_mean) / y_std), pooled over dimensions."""
    p = (pred.double() - y_mean.double()) / y_std.double()
    t = (target.double() - y_mean.double()) / y_std.double()
    sst = ((t - t.mean(0)) ** 2).sum()
    return float(1.0 - ((p - t) ** 2).sum() / sst.clamp_min(1e-12))


def alignment_metrics(
    pred: torch.Tensor, target_idx: torch.Tensor, class_emb: torch.Tensor, y_mean: torch.Tensor, y_std: torch.Tensor,
) -> dict[str, float]:
    """All metrics of raw predictions ``pred`` [N, D] whose true classes are ``target_idx`` [N].

    ``y_mean`` / ``y_std``: the train class prompts' per-dimension mean and std (the layer's standardisation);
    ``y_mean`` is also the centre for the retrieval and centred-cosine metrics.
    """
    if pred.shape[0] == 0:
        return {k: math.nan for k in METRIC_KEYS} | {"n": 0}
    target = class_emb[target_idx.long()].double()
    center = y_mean.double()
    out = retrieval(pred, target_idx, class_emb, center)
    out["r2"] = r2_standardized(pred, target, y_mean, y_std)
    pred = pred.double()
    out["raw_cos"] = F.cosine_similarity(pred, target, dim=-1).mean().item()
    out["centred_cos"] = F.cosine_similarity(pred - center, target - center, dim=-1).mean().item()
    out["norm_ratio"] = (pred.norm(dim=-1) / target.norm(dim=-1).clamp_min(1e-12)).mean().item()
    out["n"] = int(pred.shape[0])
    return out


def knn_top1(x: torch.Tensor, labels: torch.Tensor, *, chunk: int = 2048, max_queries: int | None = 4096,
             seed: int = 0) -> float:
    """Leave-one-out 1-nearest-neighbour class accuracy by centred cosine (how well ``x`` separates classes).

    Each query's neighbours are all other rows; with more than ``max_queries`` rows the queries are a fixed random
    sample of that many (an estimate: 13k train rows cost 13k² products, a sample of 4,096 a third of that).
    Rows whose class has no other member are skipped; NaN if none is left.
    """
    if x.shape[0] < 2:
        return math.nan
    z = F.normalize(x.double() - x.double().mean(0), dim=-1).float()   # a diagnostic: float32 is plenty
    labels = labels.long()
    counts = torch.bincount(labels)
    queries = torch.arange(z.shape[0])
    if max_queries is not None and z.shape[0] > max_queries:
        queries = torch.randperm(z.shape[0], generator=torch.Generator().manual_seed(seed))[:max_queries].sort().values
    hits = total = 0
    for s in range(0, queries.numel(), chunk):
        rows = queries[s:s + chunk]
        sims = z[rows] @ z.T
        sims[torch.arange(rows.numel()), rows] = -math.inf
        nn_label = labels[sims.argmax(1)]
        valid = counts[labels[rows]] > 1
        hits += int((nn_label[valid] == labels[rows][valid]).sum())
        total += int(valid.sum())
    return hits / total if total else math.nan


def format_table(metrics: dict[str, dict[str, dict[str, float]]]) -> str:
    """``metrics[split][rung][key]`` as a fixed-width text table."""
    head = f"{'split':<6} {'rung':<11} {'n':>6} " + " ".join(f"{k:>11}" for k in METRIC_KEYS)
    lines = [head, "-" * len(head)]
    for split, rungs in metrics.items():
        for rung, m in rungs.items():
            vals = " ".join(f"{m.get(k, math.nan):>11.4f}" for k in METRIC_KEYS)
            lines.append(f"{split:<6} {rung:<11} {int(m.get('n', 0)):>6} {vals}")
    return "\n".join(lines)
