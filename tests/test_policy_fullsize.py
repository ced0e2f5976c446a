"""Full-size policy with random weights: real compute (slow; CI runs it with ``-m slow``)."""

from __future__ import annotations

import pytest
import torch

from zh_steve.policy import N_BUTTONS, N_CAMERA, PolicyConfig, Steve1Policy, guide, sample_action

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def policy() -> Steve1Policy:
    torch.manual_seed(0)
    return Steve1Policy(PolicyConfig.full_size()).eval()


def test_full_size_guided_steps_match_naive_batch2(policy):
    config = policy.config
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, *config.img_shape), dtype=torch.uint8, generator=gen)
    goal = torch.randn(1, config.mineclip_embed_dim, generator=gen)
    scale = 6.0
    shared_state, naive_state = policy.initial_state(2), policy.initial_state(2)
    for t in range(frames.shape[0]):
        step, shared_state = policy.act(frames[t][None], goal, shared_state, cond_scale=scale)
        assert step.buttons_logp.shape == (1, N_BUTTONS) and step.camera_logp.shape == (1, N_CAMERA)
        assert torch.isfinite(step.buttons_logp).all() and step.vpred.shape == (1,)
        with torch.no_grad():
            naive, naive_state = policy(frames[t][None, None].expand(2, -1, -1, -1, -1),
                                        torch.cat([goal, torch.zeros_like(goal)])[:, None],
                                        torch.zeros(2, 1, dtype=torch.bool), naive_state)
        want = guide(naive.buttons_logp[0:1, 0], naive.buttons_logp[1:2, 0], scale)
        assert torch.allclose(step.buttons_logp, want, atol=1e-3)
        assert torch.equal(step.buttons_logp.argmax(-1), want.argmax(-1))
        b, c = sample_action(step.buttons_logp, step.camera_logp, torch.Generator().manual_seed(t))
        assert 0 <= b < N_BUTTONS and 0 <= c < N_CAMERA
    assert shared_state.layers[0].k.shape == (2, config.maxlen, config.hidsize)
    assert int(shared_state.layers[0].mask.sum()) == 2 * frames.shape[0]
