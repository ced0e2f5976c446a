"""The same random weights through the official files and through the MineStudio file give identical outputs."""

from __future__ import annotations

import pytest
import torch

from zh_steve.policy import Steve1Policy, policy_config
from zh_steve.policy.loading import load_policy_weights
from zh_steve.prior import Steve1Prior
from zh_steve.text.mineclip_text import MineClipTextConfig, MineClipTextModel
from zh_steve.weights.resolve import LAYOUT_HUB, LAYOUT_OFFICIAL, WeightsSpec, resolve_weights
from tiny_weights import TINY_FILE_TEXT, tiny_weights, write_hub_dir, write_official_dir


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    tw = tiny_weights(seed=21)
    root = tmp_path_factory.mktemp("eq")
    write_official_dir(root / "official", tw)
    write_hub_dir(root / "hub", tw)
    common = dict(expected=tw.expectations(), expected_behaviour=tw.behaviour, allow_download=False,
                  cache_dir=root / "empty-cache", notify=lambda m: None)
    official = resolve_weights(WeightsSpec(weights_dir=root / "official", **common))
    hub = resolve_weights(WeightsSpec(weights_dir=root / "hub", **common))
    assert {s.layout for s in official.sources.values()} == {LAYOUT_OFFICIAL}
    assert {s.layout for s in hub.sources.values()} == {LAYOUT_HUB}
    return official, hub


def _policy(resolved):
    policy = Steve1Policy(policy_config(resolved.policy_kwargs()))
    load_policy_weights(policy, resolved.policy_state_dict())
    return policy.eval()


def test_policy_configs_agree(both):
    official, hub = both
    assert policy_config(official.policy_kwargs()) == policy_config(hub.policy_kwargs())
    assert official.policy_kwargs().temperature_source == "2x.model"
    assert hub.policy_kwargs().temperature_source == "default-official-2.0"


def test_policy_outputs_identical(both):
    a, b = (_policy(r) for r in both)
    gen = torch.Generator().manual_seed(0)
    shape = tuple(a.config.img_shape)
    img = torch.randint(0, 256, (2, 3, *shape), generator=gen, dtype=torch.uint8)
    goal = torch.randn(2, 3, a.config.mineclip_embed_dim, generator=gen)
    first = torch.zeros(2, 3, dtype=torch.bool)
    with torch.no_grad():
        out_a, _ = a(img, goal, first, a.initial_state(2))
        out_b, _ = b(img, goal, first, b.initial_state(2))
    for name in ("buttons_logp", "camera_logp", "vpred"):
        assert torch.equal(getattr(out_a, name), getattr(out_b, name)), name
    step_a, _ = a.act(img[0, :1], goal[0, :1], a.initial_state(2), cond_scale=6.0)
    step_b, _ = b.act(img[0, :1], goal[0, :1], b.initial_state(2), cond_scale=6.0)
    assert torch.equal(step_a.buttons_logp, step_b.buttons_logp)
    assert torch.equal(step_a.buttons_logp.argmax(-1), step_b.buttons_logp.argmax(-1))


def test_prior_outputs_identical(both):
    a, b = (Steve1Prior.from_state_dict(r.prior_state_dict()) for r in both)
    text = torch.randn(4, a.config.input_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(a(text, deterministic=True), b(text, deterministic=True))
        ga, gb = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
        assert torch.equal(a(text, generator=ga), b(text, generator=gb))


def test_text_embeddings_identical(both):
    config = MineClipTextConfig(**TINY_FILE_TEXT)
    a, b = (MineClipTextModel.from_state_dict(r.mineclip_text_state_dict(), config) for r in both)
    tokens = torch.randint(1, config.vocab_size - 1, (3, config.context_length),
                           generator=torch.Generator().manual_seed(2))
    tokens[:, 10] = config.vocab_size - 1  # an EOS-like highest id, so argmax pooling picks a real position
    with torch.no_grad():
        assert torch.equal(a(tokens), b(tokens))
