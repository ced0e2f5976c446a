"""Wilson intervals against hand-computed values; Newcombe's paired difference; latency percentiles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.stats import paired_difference, percentiles, wilson_interval

# Hand computation with z = 1.96: denom = 1 + z²/n = 1.384146 for n = 10.
#  0/10: centre = (z²/20)/denom = 0.138772, half = z·sqrt(z²/400)/denom = 0.138772 → [0, 0.277545]
#  5/10: centre = 0.5, half = z·sqrt(0.025 + z²/400)/denom = 0.263413     → [0.236587, 0.763413]
# 10/10: mirror image of 0/10                                             → [0.722455, 1]
@pytest.mark.parametrize(
    "k,n,lo,hi",
    [(0, 10, 0.0, 0.277545), (5, 10, 0.236587, 0.763413), (10, 10, 0.722455, 1.0), (1, 1, 0.206549, 1.0)],
)
def test_wilson_known_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=2e-5)


def test_wilson_edge_cases():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_paired_difference_counts_and_bounds():
    a = [True] * 6 + [False] * 4
    b = [True] * 3 + [False] * 3 + [True] + [False] * 3
    d = paired_difference(a, b)
    assert (d.both, d.only_a, d.only_b, d.neither, d.n_pairs) == (3, 3, 1, 3, 10)
    assert d.mean == pytest.approx(0.2)
    assert -1 <= d.low < d.mean < d.high <= 1


def test_paired_difference_identical_outcomes_is_zero_centred():
    d = paired_difference([True, False] * 5, [True, False] * 5)
    assert d.mean == 0 and d.low < 0 < d.high


def test_paired_interval_narrows_with_positive_correlation():
    # same marginals (6/10 vs 4/10); concordant pairs make the paired interval narrower
    corr = paired_difference([True] * 6 + [False] * 4, [True] * 4 + [False] * 6)
    anti = paired_difference([True] * 6 + [False] * 4, [False] * 6 + [True] * 4)
    assert corr.mean == anti.mean == pytest.approx(0.2)
    assert (corr.high - corr.low) < (anti.high - anti.low)


def test_paired_interval_covers_like_a_95_percent_interval():
    rng = np.random.default_rng(0)
    hits, trials = 0, 400
    for _ in range(trials):
        u = rng.random(30)
        a, b = u < 0.6, (u + rng.normal(0, 0.2, 30)) < 0.45  # correlated pairs
        # true difference from a large sample of the same process
        d = paired_difference(list(a), list(b))
        hits += d.low <= 0.6 - _p_b() <= d.high
    assert 0.90 <= hits / trials <= 0.995


def _p_b(cache={}):  # noqa: B006 - P(u + e < 0.45) by simulation, once
    if "p" not in cache:
        rng = np.random.default_rng(1)
        u = rng.random(2_000_000)
        cache["p"] = float(np.mean(u + rng.normal(0, 0.2, u.size) < 0.45))
    return cache["p"]


def test_paired_difference_rejects_unequal_lengths():
    with pytest.raises(ValueError):
        paired_difference([True], [True, False])


def test_percentiles():
    p = percentiles(list(range(1, 101)))
    assert p["p50"] == pytest.approx(50.5) and p["p95"] == pytest.approx(95.05) and p["n"] == 100
    assert math.isnan(percentiles([])["p50"])


def test_mean_interval_matches_the_t_formula():
    from eval.stats import mean_interval, paired_mean_difference, t975

    r = mean_interval([1.0, 2.0, 3.0, 4.0])
    half = 3.182 * np.std([1, 2, 3, 4], ddof=1) / 2
    assert r.n == 4 and r.mean == 2.5 and r.low == pytest.approx(2.5 - half) and r.high == pytest.approx(2.5 + half)
    assert np.isnan(mean_interval([3.0]).low) and mean_interval([]).n == 0
    assert t975(30) == 2.042 and abs(t975(60) - 2.0003) < 0.002 and abs(t975(120) - 1.9799) < 0.002
    d = paired_mean_difference([5.0, 6.0, 7.0], [1.0, 2.0, 3.0])
    assert (d.n, d.mean, d.low, d.high) == (3, 4.0, 4.0, 4.0)  # a constant difference has no spread
    with pytest.raises(ValueError):
        paired_mean_difference([1.0], [])
