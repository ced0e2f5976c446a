"""build_parts: the real-weights assembly path, run on tiny weight files in the official layout (offline).

The files are written by ``tests/tiny_weights.py`` with the real key names; the manifest check is pointed at
the tiny shapes. The MineCLIP text tower is resolved and loaded only when it is first needed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zh_steve import ZhSteveAgent
from zh_steve.actions import MINERL_ACTION_KEYS
from zh_steve.alignment_layer import AlignmentConfig, AlignmentLayer
from zh_steve.assembly import AgentConfig, build
from zh_steve.errors import WeightsNotFoundError
from zh_steve.testing.tiny_text import tiny_chinese_clip_dir
from tiny_weights import tiny_weights, write_official_dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("assembly")
    tw = tiny_weights(seed=3)
    write_official_dir(root / "weights", tw)
    AlignmentLayer(AlignmentConfig(kind="mlp", in_dim=512, out_dim=512)).save_pretrained(root / "alignment")
    cc = tiny_chinese_clip_dir(root / "chinese_clip", seed=0)
    config = AgentConfig(weights=str(root / "weights"), chinese_clip=str(cc), alignment=str(root / "alignment"),
                         device="cpu", seed=0, allow_download=False)
    return tw, config, root


@pytest.fixture
def tiny_manifests(setup, monkeypatch, tmp_path):
    tw = setup[0]
    monkeypatch.setattr("zh_steve.weights.resolve.Expectations", tw.expectations)
    monkeypatch.setenv("ZS_WEIGHTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_real_build_loads_the_files_and_defers_mineclip(setup, tiny_manifests):
    tw, config, root = setup
    agent = ZhSteveAgent.from_config(config)
    parts = agent.parts
    assert not parts.random_weights and parts.dtype == torch.float32
    assert all(torch.equal(parts.policy.state_dict()[k], v) for k, v in tw.policy.items())
    assert all(torch.equal(parts.prior.state_dict()[k], v) for k, v in tw.prior.items())
    assert parts.sources["temperature"] == tw.temperature and parts.sources["temperature_source"] == "2x.model"
    assert not any(p.requires_grad for m in (parts.policy, parts.prior, parts.alignment) for p in m.parameters())
    assert not parts.policy.training and not parts.prior.training

    agent.reset("砍树")
    action = agent.act({"pov": np.zeros((90, 160, 3), np.uint8)})
    assert set(action) == set(MINERL_ACTION_KEYS)
    assert not parts.mineclip_loaded and agent.describe()["sources"]["mineclip_text"].startswith("not loaded")

    encoder = parts.mineclip_encoder  # first use: resolved and loaded now
    assert parts.mineclip_loaded and parts.sources["mineclip_text"]["path"].endswith("attn.pth")
    assert all(torch.equal(encoder.model.state_dict()[k], v) for k, v in tw.mineclip_text.items())


def test_missing_mineclip_surfaces_at_first_use(setup, tiny_manifests):
    tw, config, root = setup
    (root / "weights" / "mineclip" / "attn.pth").rename(root / "attn.pth.away")
    try:
        parts = build(config)  # policy, prior, Chinese tower and alignment do not need it
        with pytest.raises(WeightsNotFoundError, match="mineclip_text"):
            parts.mineclip_encoder
    finally:
        (root / "attn.pth.away").rename(root / "weights" / "mineclip" / "attn.pth")
