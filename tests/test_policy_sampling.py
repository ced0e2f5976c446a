"""Classifier-free guidance formula and Gumbel-max sampling."""

from __future__ import annotations

import pytest
import torch

from zh_steve.errors import ZhSteveError
from zh_steve.policy import guide, sample_action


def test_guide_formula():
    cond = torch.log_softmax(torch.tensor([[1.0, 2.0, 0.5]]), -1)
    uncond = torch.log_softmax(torch.tensor([[0.0, 3.0, 0.0]]), -1)
    assert torch.equal(guide(cond, uncond, 0.0), cond)
    s = 6.0
    assert torch.allclose(guide(cond, uncond, s), 7 * cond - 6 * uncond)
    # guidance pushes away from what the unconditional stream prefers
    assert guide(cond, uncond, s).argmax() != uncond.argmax()


def test_deterministic_is_argmax():
    b = torch.log_softmax(torch.randn(1, 8641, generator=torch.Generator().manual_seed(0)), -1)
    c = torch.log_softmax(torch.randn(121, generator=torch.Generator().manual_seed(1)), -1)
    assert sample_action(b, c, deterministic=True) == (int(b.argmax()), int(c.argmax()))


def test_seeded_generator_is_reproducible():
    b = torch.zeros(1, 50)
    c = torch.zeros(1, 121)
    draws1 = [sample_action(b, c, torch.Generator().manual_seed(s)) for s in range(20)]
    draws2 = [sample_action(b, c, torch.Generator().manual_seed(s)) for s in range(20)]
    assert draws1 == draws2 and len(set(draws1)) > 5


def test_gumbel_frequencies_follow_probabilities():
    probs = torch.tensor([0.6, 0.25, 0.1, 0.05])
    logp = probs.log()[None]
    gen = torch.Generator().manual_seed(1234)
    n = 4000
    counts = torch.zeros(4)
    for _ in range(n):
        bi, ci = sample_action(logp, logp, gen)
        counts[bi] += 1
    freq = counts / n
    # 4 standard errors of a binomial proportion
    assert torch.all((freq - probs).abs() <= 4 * (probs * (1 - probs) / n).sqrt())


def test_bad_shapes():
    with pytest.raises(ZhSteveError):
        sample_action(torch.zeros(2, 5), torch.zeros(1, 5))
    with pytest.raises(ZhSteveError):
        sample_action(torch.zeros(1, 5), torch.zeros(1, 0))
