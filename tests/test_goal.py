"""Goal modes (regress | snap | blend), the prompt bank, and the agent's goal_mode key."""

from __future__ import annotations

import pytest
import torch

from zh_steve.errors import ConfigError, WeightsNotFoundError, ZhSteveError
from zh_steve.goal import PromptBank, apply_goal_mode, bank_for, choose_goal


class CountingEncoder:
    identity = "count:test"
    dim = 3

    def __init__(self):
        self.calls = 0

    def encode(self, texts, batch_size=64, progress=False):
        self.calls += 1
        return torch.stack([torch.tensor([float(len(t)), 1.0, -1.0]) for t in texts])


def _bank() -> PromptBank:
    emb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, -1.0, -1.0]]) + 10.0
    return PromptBank(texts=["chop a tree", "dig dirt", "go swimming", "look at the sky"], emb=emb,
                      splits=["train", "train", "val", "test"], encoder="count:test", blend_margin=0.1)


def test_modes():
    bank = _bank()
    pred = torch.tensor([[10.9, 10.1, 10.0]])       # close to "chop a tree", clearly
    g, d = choose_goal(pred, bank, "regress")
    assert torch.equal(g, pred) and not d.snapped and d.prompt == "chop a tree"  # reported, not used
    g, d = choose_goal(pred, bank, "snap")
    assert torch.equal(g, bank.emb[:1]) and d.snapped and d.prompt == "chop a tree" and d.margin > 0.1
    g, d = choose_goal(pred, bank, "blend")
    assert d.snapped and torch.equal(g, bank.emb[:1])
    unsure = torch.tensor([[10.85, 9.4, 10.8]])     # between "chop a tree" and "go swimming"
    g, d = choose_goal(unsure, bank, "blend")
    assert not d.snapped and torch.equal(g, unsure) and d.margin < 0.1 and "kept" in d.reason
    g, d = choose_goal(unsure, bank, "blend", margin=0.0)
    assert d.snapped
    with pytest.raises(ConfigError, match="goal_mode"):
        choose_goal(pred, bank, "nearest")
    with pytest.raises(ZhSteveError, match="prompt bank"):
        choose_goal(pred, None, "snap")
    ranked = choose_goal(unsure, bank, "snap", top=4)[1].top
    assert [t for t, _ in ranked] == ["chop a tree", "go swimming", "look at the sky", "dig dirt"]
    assert len(choose_goal(unsure, bank, "snap", top=2)[1].top) == 2


def test_bank_round_trip_and_centre(tmp_path):
    bank = _bank()
    assert torch.allclose(bank.center, bank.emb[:2].mean(0))   # the train prompts' mean
    bank.save(tmp_path)
    back = PromptBank.load(tmp_path)
    assert back.texts == bank.texts and back.splits == bank.splits and back.blend_margin == 0.1
    assert torch.equal(back.emb, bank.emb) and torch.equal(back.center, bank.center)
    with pytest.raises(WeightsNotFoundError, match="prompt bank"):
        PromptBank.load(tmp_path / "nowhere")


def test_user_prompts_are_embedded_once_and_cached(tmp_path):
    bank = _bank()
    f = tmp_path / "mine.txt"
    f.write_text("# my prompts\nbuild a snow golem\n\nchop a tree\nride a pig\n", encoding="utf-8")
    enc = CountingEncoder()
    big = bank.extend_from_file(f, enc, cache_dir=tmp_path / "cache")
    assert big.texts[4:] == ["build a snow golem", "ride a pig"] and big.splits[4:] == ["user", "user"]
    assert enc.calls == 1 and torch.equal(big.center, bank.center)
    again = bank.extend_from_file(f, enc, cache_dir=tmp_path / "cache")
    assert enc.calls == 1 and torch.equal(again.emb, big.emb)   # the second time comes from the cache
    other = CountingEncoder()
    other.identity = "count:other"
    with pytest.raises(ConfigError, match="mix two spaces"):
        bank.extend(["x"], other)


def test_apply_goal_mode_loads_the_bank_beside_the_layer(tmp_path):
    _bank().save(tmp_path)
    vec = torch.tensor([[10.9, 10.1, 10.0]])
    out, info = apply_goal_mode(vec, "regress", None)
    assert out is vec and info["snapped"] is False
    out, info = apply_goal_mode(vec, "snap", tmp_path)
    assert info["prompt"] == "chop a tree" and torch.equal(out, _bank().emb[:1])
    assert bank_for(tmp_path) is bank_for(tmp_path)   # loaded once per process
    with pytest.raises(ConfigError, match="alignment"):
        apply_goal_mode(vec, "snap", None)


def test_agent_goal_mode_snaps_to_the_bank(tmp_path):
    """A tiny agent with goal_mode snap feeds the prior a bank prompt's own target embedding."""
    import yaml

    from zh_steve import ZhSteveAgent
    from zh_steve.alignment_layer import AlignmentConfig, AlignmentLayer
    from zh_steve.testing.tiny_text import tiny_chinese_clip_encoder, tiny_mineclip_text_encoder

    cfg = yaml.safe_load(open("configs/agent_tiny.yaml", encoding="utf-8"))
    cfg["tiny"]["cache_dir"] = str(tmp_path / "tiny")
    zh = tiny_chinese_clip_encoder(seed=0, cache_dir=cfg["tiny"]["cache_dir"])
    en = tiny_mineclip_text_encoder(seed=0)
    layer_dir = tmp_path / "layer"
    AlignmentLayer(AlignmentConfig(kind="ridge", source_encoder=zh.identity, target_encoder=en.identity)) \
        .save_pretrained(layer_dir)
    prompts = ["chop a tree", "dig dirt", "go swimming"]
    PromptBank(texts=prompts, emb=en.encode(prompts), splits=["train"] * 3, encoder=en.identity).save(layer_dir)
    cfg.update(alignment=str(layer_dir), goal_mode="snap")
    agent = ZhSteveAgent.from_config(cfg)
    vec, info, _ = agent.embed_instruction("砍树")
    assert info.goal["snapped"] and info.goal["prompt"] in prompts
    assert torch.allclose(vec, en.encode([info.goal["prompt"]]), atol=1e-4)
    with pytest.raises(ConfigError, match="goal_mode"):
        ZhSteveAgent.from_config({**cfg, "goal_mode": "nearest"})


def test_hubness_correction_reranks_snap_and_survives_save_load_and_extend(tmp_path):
    """scores = centred cosine − w × (mean cosine to the k nearest reference vectors); snap/blend rank by it."""
    import torch.nn.functional as F

    from zh_steve.goal import hub_penalty, hub_reference

    bank = _bank()
    pred = torch.tensor([[10.9, 10.1, 10.0]])            # plain cosine: "chop a tree" first
    # reference predictions crowding on "chop a tree" (a hub), one class each
    centred = F.normalize(bank.emb - bank.center, dim=-1)
    ref = hub_reference(torch.stack([bank.emb[0] + 0.01 * i for i in range(4)]), torch.arange(4), bank.center)
    assert ref.shape == (4, 3) and torch.allclose(ref.norm(dim=-1), torch.ones(4))
    pen = hub_penalty(centred, ref, k=2)
    assert int(pen.argmax()) == 0                        # the hub is the prompt the references sit on
    hub = PromptBank(texts=bank.texts, emb=bank.emb, splits=bank.splits, encoder=bank.encoder, blend_margin=0.0,
                     hub_ref=ref, hub_k=2, hub_weight=1.0)
    torch.testing.assert_close(hub.scores(pred), hub.similarities(pred) - pen[None, :])
    _, plain = choose_goal(pred, bank, "snap")
    g, d = choose_goal(pred, hub, "snap")
    assert plain.prompt == "chop a tree" and d.prompt != "chop a tree"      # the correction moved the snap
    assert torch.equal(g, hub.emb[hub.index(d.prompt)].reshape(1, -1))
    assert d.score == pytest.approx(float(hub.similarities(pred)[0, hub.index(d.prompt)]))  # plain cosine reported
    assert d.top[0][1] == pytest.approx(float(hub.scores(pred)[0, hub.index(d.prompt)]))
    hub.save(tmp_path)
    back = PromptBank.load(tmp_path)
    assert (back.hub_k, back.hub_weight) == (2, 1.0) and torch.equal(back.hub_ref, ref)
    torch.testing.assert_close(back.scores(pred), hub.scores(pred))
    big = hub.extend(["ride a pig"], CountingEncoder(), cache_dir=tmp_path / "cache")   # user prompts get a penalty too
    assert big.penalty.shape == (5,) and torch.equal(big.penalty[:4], hub.penalty)
    assert big.penalty[4] == pytest.approx(float(hub_penalty(F.normalize(big.emb[4:] - big.center, dim=-1), ref, 2)[0]))
    assert _bank().penalty is None and torch.equal(_bank().scores(pred), _bank().similarities(pred))
    with pytest.raises(ConfigError, match="hub_ref"):
        PromptBank(texts=bank.texts, emb=bank.emb, hub_weight=0.5)
