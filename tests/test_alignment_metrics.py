"""Metrics on hand-computable cases."""

from __future__ import annotations

import math

import pytest
import torch

from alignment.metrics import alignment_metrics, format_table, knn_top1, r2_standardized, retrieval


def _classes(c: int = 6, d: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(c, d, generator=torch.Generator().manual_seed(seed)) + 10.0  # crowded: big shared offset


def test_perfect_predictor():
    emb = _classes()
    idx = torch.tensor([0, 1, 2, 3, 4, 5, 2, 2])
    m = alignment_metrics(emb[idx], idx, emb, emb.mean(0), emb.std(0))
    assert m["top1"] == pytest.approx(1.0) and m["top5"] == pytest.approx(1.0) and m["mrr"] == pytest.approx(1.0)
    assert m["r2"] == pytest.approx(1.0)
    assert m["raw_cos"] == pytest.approx(1.0) and m["centred_cos"] == pytest.approx(1.0)
    assert m["norm_ratio"] == pytest.approx(1.0)
    assert m["n"] == 8


def test_constant_predictor_at_the_centre_is_chance():
    c = 6
    emb = _classes(c)
    idx = torch.arange(c)
    pred = emb.mean(0, keepdim=True).expand(c, -1)
    m = retrieval(pred, idx, emb)
    harmonic = sum(1.0 / k for k in range(1, c + 1))
    assert m["top1"] == pytest.approx(1.0 / c)
    assert m["top5"] == pytest.approx(5.0 / c)
    assert m["mrr"] == pytest.approx(harmonic / c)
    # …while raw cosine to the targets is high: why raw cosine is no quality measure
    full = alignment_metrics(pred, idx, emb, emb.mean(0), emb.std(0))
    assert full["raw_cos"] > 0.9
    assert full["r2"] == pytest.approx(0.0, abs=1e-9)


def test_rank_by_centred_cosine_hand_case():
    # three classes on the axes around the origin-centred mean; a query between class 1 and 2, nearer 2
    emb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) * 3
    center = emb.mean(0)
    pred = center + torch.tensor([[-1.0, 1.0, 2.0]])   # nearest class 2, then 1, then 0
    for true, rank in ((2, 1), (1, 2), (0, 3)):
        m = retrieval(pred, torch.tensor([true]), emb)
        assert m["mrr"] == pytest.approx(1.0 / rank)
        assert m["top1"] == (1.0 if rank == 1 else 0.0)
        assert m["top5"] == 1.0


def test_r2_norm_ratio_and_cosines():
    emb = _classes()
    idx = torch.arange(6)
    y_mean, y_std = emb.mean(0), emb.std(0)
    target = emb[idx]
    # predicting the evaluated set's mean scores R² = 0; twice the target has norm ratio 2 and raw cosine 1
    assert r2_standardized(target.mean(0, keepdim=True).expand_as(target), target, y_mean, y_std) == pytest.approx(0.0)
    m = alignment_metrics(2 * target, idx, emb, y_mean, y_std)
    assert m["norm_ratio"] == pytest.approx(2.0)
    assert m["raw_cos"] == pytest.approx(1.0)
    assert m["r2"] < 0


def test_empty_split_gives_nan():
    emb = _classes()
    m = alignment_metrics(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long), emb, emb.mean(0), emb.std(0))
    assert m["n"] == 0 and math.isnan(m["top1"])


def test_knn_top1():
    x = torch.tensor([[1.0, 0.0], [1.1, 0.1], [-1.0, 0.0], [-1.1, -0.1], [0.0, 5.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])   # class 2 has a single member: skipped
    assert knn_top1(x, labels) == pytest.approx(1.0)
    assert knn_top1(x, torch.tensor([0, 1, 0, 1, 2])) == pytest.approx(0.0)


def test_format_table_lists_every_rung():
    emb = _classes()
    m = alignment_metrics(emb, torch.arange(6), emb, emb.mean(0), emb.std(0))
    text = format_table({"val": {"mean": m, "ridge": m}})
    assert "val" in text and "ridge" in text and "top1" in text


def test_non_finite_predictions_retrieve_nothing():
    # NaN compares false with everything, so a NaN row used to count as "nothing ranked above it": top-1 = 1,
    # and a ridge λ that produced NaN weights would win the λ search
    emb = _classes()
    idx = torch.arange(6)
    pred = emb.clone()
    pred[0, 0] = math.nan
    pred[1, 2] = math.inf
    m = retrieval(pred, idx, emb)
    assert m["top1"] == pytest.approx(4 / 6) and m["top5"] == pytest.approx(4 / 6) and m["mrr"] == pytest.approx(4 / 6)
    assert retrieval(torch.full((3, 8), math.nan), idx[:3], emb) == {"top1": 0.0, "top5": 0.0, "mrr": 0.0}


def test_mean_floor_is_chance_on_held_out_classes():
    # held-out classes sit away from the train prompts (unseen verbs/objects); the floor predicts the train
    # prompts' mean. Centred on the mean of *all* prompts, that constant pointed away from the held-out classes
    # and scored below chance; centred on the train mean (the training losses' centre) it is exactly chance.
    g = torch.Generator().manual_seed(0)
    c, d = 40, 16
    emb = torch.randn(c, d, generator=g) + 10.0
    train, held = torch.arange(30), torch.arange(30, 40)
    emb[held] += 2.0 * torch.randn(d, generator=g)
    y_mean, y_std = emb[train].mean(0), emb[train].std(0)
    pred = y_mean.expand(len(held), -1)
    m = alignment_metrics(pred, held, emb, y_mean, y_std)
    harmonic = sum(1.0 / k for k in range(1, c + 1))
    assert m["top1"] == pytest.approx(1 / c) and m["top5"] == pytest.approx(5 / c)
    assert m["mrr"] == pytest.approx(harmonic / c)


def test_retrieval_with_a_penalty_ranks_by_cosine_minus_penalty():
    class_emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    pred = torch.tensor([[1.0, 0.8], [1.0, 0.8]])        # nearer class 0 than class 1
    cls = torch.tensor([1, 0])
    center = torch.zeros(2)
    plain = retrieval(pred, cls, class_emb, center)
    assert plain["top1"] == 0.5                           # row 1 right, row 0 wrong
    hub = retrieval(pred, cls, class_emb, center, penalty=torch.tensor([0.5, 0.0, 0.0, 0.0]))
    assert hub["top1"] == 0.5 and hub["top5"] == 1.0      # now row 0 right (class 1), row 1 ranks class 0 second
    cos = torch.nn.functional.normalize(pred, dim=-1) @ class_emb.T
    assert int((cos - torch.tensor([0.5, 0, 0, 0]))[0].argmax()) == 1


def test_retrieval_float32_screen_counts_exactly_like_float64():
    """Near-ties closer than float32 can resolve are recomputed in float64: the counts match a float64 reference."""
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(300, 64, generator=g, dtype=torch.float64)
    idx = torch.randint(0, 300, (900,), generator=g)
    pred = emb[idx] + 0.8 * torch.randn(900, 64, generator=g, dtype=torch.float64)
    # rivals 1e-8 (closer than float32 resolves) and 2e-4 away in cosine from the own class, on both sides
    c = emb.mean(0)
    for k, (row, delta) in enumerate([(0, 1e-8), (1, -1e-8), (2, 2e-4), (3, -2e-4)]):
        own = torch.nn.functional.normalize(emb[idx[row]] - c, dim=0)
        q = torch.nn.functional.normalize(pred[row] - c, dim=0)
        rival = 10 + k
        # a rival whose centred direction has cosine cos(q, own) + delta with q
        target_cos = float(q @ own) + delta
        perp = torch.nn.functional.normalize(own - (own @ q) * q, dim=0)
        d = target_cos * q + (1 - target_cos ** 2) ** 0.5 * perp
        emb[rival] = c + d * (emb[rival] - c).norm()
    got = retrieval(pred, idx, emb, c)
    cand = torch.nn.functional.normalize(emb - c, dim=-1)
    sims = torch.nn.functional.normalize(pred - c, dim=-1) @ cand.T
    own = sims.gather(1, idx[:, None])
    greater = (sims > own + 1e-9).sum(1).double()
    ties = ((sims - own).abs() <= 1e-9).sum(1).double() - 1
    want_top1 = float((((1 - greater) / (ties + 1)).clamp(0, 1)).mean())
    want_top5 = float((((5 - greater) / (ties + 1)).clamp(0, 1)).mean())
    assert got["top1"] == pytest.approx(want_top1, abs=1e-12) and got["top5"] == pytest.approx(want_top5, abs=1e-12)


def _retrieval_float64(pred, idx, emb, center, penalty=None, tol=1e-9):
    """The definition, written plainly in float64: expected rank under random tie-breaking."""
    cand = torch.nn.functional.normalize(emb.double() - center.double(), dim=-1)
    q = torch.nn.functional.normalize(pred.double() - center.double(), dim=-1)
    sims = q @ cand.T - (0 if penalty is None else penalty.double()[None, :])
    top1 = top5 = rr = 0.0
    for row, own_i in zip(sims, idx.tolist()):
        if not torch.isfinite(row).all():
            continue
        own = row[own_i]
        g = int((row > own + tol).sum())
        t = int(((row - own).abs() <= tol).sum()) - 1
        ranks = range(g + 1, g + t + 2)
        top1 += sum(r <= 1 for r in ranks) / (t + 1)
        top5 += sum(r <= 5 for r in ranks) / (t + 1)
        rr += sum(1.0 / r for r in ranks) / (t + 1)
    n = pred.shape[0]
    return {"top1": top1 / n, "top5": top5 / n, "mrr": rr / n}


@pytest.mark.parametrize("case", ["random", "exact_ties", "near_ties", "penalty", "nonfinite"])
def test_fast_retrieval_equals_the_float64_definition(case):
    """retrieval ranks in float32 and re-ranks only near ties in float64: the result must be the float64 one,
    including classes 1e-7 apart (float32 cannot tell them apart) and exact duplicates (ties)."""
    g = torch.Generator().manual_seed(1)
    c, d, n = 40, 32, 300
    emb = torch.randn(c, d, generator=g, dtype=torch.float64) + 3.0
    idx = torch.randint(0, c, (n,), generator=g)
    pred = emb[idx] + 0.8 * torch.randn(n, d, generator=g, dtype=torch.float64)
    center = emb.mean(0)
    penalty = None
    if case == "exact_ties":
        emb[1::2] = emb[0::2]                        # every odd class duplicates an even one
        pred[: n // 3] = emb[idx[: n // 3]]          # some predictions sit exactly on a prompt
    elif case == "near_ties":
        emb[1::2] = emb[0::2] + 1e-7 * torch.randn(c // 2, d, generator=g, dtype=torch.float64)
    elif case == "penalty":
        penalty = 0.1 * torch.rand(c, generator=g, dtype=torch.float64)
    elif case == "nonfinite":
        pred[::7, 3] = math.nan
        pred[1::11, 0] = math.inf
    got = retrieval(pred, idx, emb, center, penalty=penalty, chunk=64)
    want = _retrieval_float64(pred, idx, emb, center, penalty)
    for k in ("top1", "top5", "mrr"):
        assert got[k] == pytest.approx(want[k], abs=1e-12), k


def test_knn_top1_on_a_query_sample_estimates_the_full_value():
    g = torch.Generator().manual_seed(0)
    centres = 3.0 * torch.randn(20, 16, generator=g)
    labels = torch.randint(0, 20, (600,), generator=g)
    x = centres[labels] + 6.0 * torch.randn(600, 16, generator=g)   # overlapping classes: accuracy well below 1
    full = knn_top1(x, labels, max_queries=None)
    assert knn_top1(x, labels, max_queries=600) == full              # no sample when every row fits
    sampled = knn_top1(x, labels, max_queries=200)
    assert 0.2 < full < 0.95
    assert sampled == knn_top1(x, labels, max_queries=200)           # a fixed sample: reproducible
    assert sampled == pytest.approx(full, abs=0.1)
