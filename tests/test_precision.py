"""Low precision keeps the action distribution: sampling frequencies, half-precision models, int8, autocast."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zh_steve.agent import AgentConfig
from zh_steve.errors import ConfigError
from zh_steve.policy import PolicyConfig, Steve1Policy, guide
from zh_steve.policy.guidance import gumbel_argmax
from zh_steve import precision
from zh_steve.precision import compute_context, quantize_int8_dynamic, storage_dtype

N_DRAWS = 20000


def _frequencies(logp: torch.Tensor, n: int = N_DRAWS, seed: int = 0) -> np.ndarray:
    """Empirical distribution of n Gumbel-max draws from one row of log-scores (any dtype)."""
    gen = torch.Generator().manual_seed(seed)
    counts = np.zeros(logp.shape[-1])
    for chunk in range(0, n, 2000):
        m = min(2000, n - chunk)
        idx = gumbel_argmax(logp.expand(m, -1), generator=gen)
        counts += np.bincount(idx.numpy(), minlength=logp.shape[-1])
    return counts / n


def _chi_square_p(freq: np.ndarray, p: np.ndarray, n: int = N_DRAWS) -> float:
    """p-value of Pearson's chi-square test of n draws with frequencies ``freq`` against probabilities ``p``
    (categories with expected count < 5 pooled; Wilson–Hilferty approximation of the chi-square tail)."""
    expected, observed = p * n, freq * n
    small = expected < 5
    e = np.append(expected[~small], expected[small].sum())
    o = np.append(observed[~small], observed[small].sum())
    keep = e > 0
    stat = float(((o[keep] - e[keep]) ** 2 / e[keep]).sum())
    k = int(keep.sum()) - 1
    z = ((stat / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return 0.5 * math.erfc(z / math.sqrt(2))


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_half_precision_log_probs_sample_the_float32_distribution(half):
    """Before the fix, bf16 Gumbel noise was capped near 5.5: p=0.5 was chosen 99.9 % of the time."""
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(121, generator=gen) * 2.0
    logp32 = torch.log_softmax(logits, -1)
    p = logp32.exp().double().numpy()
    f32 = _frequencies(logp32, seed=1)
    fh = _frequencies(logp32.to(half), seed=2)
    p_half = torch.log_softmax(logp32.to(half).float(), -1).exp().double().numpy()  # what the rounded scores mean
    assert _chi_square_p(f32, p) > 1e-3
    assert _chi_square_p(fh, p_half) > 1e-3
    assert 0.5 * np.abs(fh - p).sum() < 0.03  # total variation to the float32 probabilities


def test_half_precision_two_actions_and_uniform_choice():
    two = torch.log(torch.tensor([0.5, 0.5])).to(torch.bfloat16)
    assert abs(_frequencies(two)[0] - 0.5) < 4 * math.sqrt(0.25 / N_DRAWS)
    uniform = torch.zeros(8641, dtype=torch.bfloat16)
    first_tenth = _frequencies(uniform, n=4000)[:864].sum()
    assert abs(first_tenth - 864 / 8641) < 4 * math.sqrt(0.1 * 0.9 / 4000)


def make_tiny_policy() -> Steve1Policy:
    """A seeded tiny policy of the real architecture, temperature 2 (tests/test_cuda.py uses it too)."""
    kwargs, _ = PolicyConfig.full_size().to_kwargs()
    kwargs.update(hidsize=64, attention_heads=4, n_recurrence_layers=2, impala_width=1, attention_memory_size=16,
                  timesteps=8)
    torch.manual_seed(0)
    return Steve1Policy(PolicyConfig.from_kwargs(kwargs, {"temperature": 2.0})).eval()


@pytest.fixture(scope="module")
def tiny_policy() -> Steve1Policy:
    return make_tiny_policy()


def _guided_steps(policy, frames, goal, dtype_name="float32"):
    state = policy.initial_state(2)
    out = []
    with torch.inference_mode(), compute_context(dtype_name, torch.device("cpu")):
        for f in frames:
            step, state = policy.act(f[None], goal, state, cond_scale=6.0)
            out.append((step.buttons_logp[0].float(), step.camera_logp[0].float()))
    return out


def _copy(policy):
    twin = Steve1Policy(policy.config).eval()
    twin.load_state_dict(policy.state_dict())
    return twin


def _frames_and_goal(seed):
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (4, 128, 128, 3), generator=gen, dtype=torch.uint8)
    return frames, torch.randn(1, 512, generator=gen)


def test_bfloat16_policy_samples_like_float32(tiny_policy):
    """A bf16 policy's guided camera distribution, sampled, is within statistical tolerance of float32's."""
    frames, goal = _frames_and_goal(0)
    bf16 = _copy(tiny_policy).to(torch.bfloat16)
    ref = _guided_steps(tiny_policy, frames, goal)
    got = _guided_steps(bf16, frames, goal.to(torch.bfloat16))
    for (b32, c32), (bh, ch) in zip(ref, got):
        assert bh.dtype == torch.float32  # logits cast before temperature / log-softmax, guidance in float32
        p32 = torch.softmax(c32.double(), -1).numpy()
        ph = torch.softmax(ch.double(), -1).numpy()
        model_tv = 0.5 * np.abs(ph - p32).sum()
        assert model_tv < 0.05
        fh = _frequencies(ch)
        assert 0.5 * np.abs(fh - p32).sum() < model_tv + 0.04
        assert _chi_square_p(fh, ph) > 1e-3


def test_int8_dynamic_policy_stays_close_and_autocast_runs(tiny_policy):
    frames, goal = _frames_and_goal(1)
    q = _copy(tiny_policy)
    quantize_int8_dynamic(q)
    assert not any(type(m).__name__ == "Linear" and m.__module__.startswith("zh_steve") for m in q.modules())
    ref = _guided_steps(tiny_policy, frames, goal)
    for name, policy in (("int8", q), ("autocast", tiny_policy)):
        got = _guided_steps(policy, frames, goal, "autocast" if name == "autocast" else "float32")
        for (b32, _), (bq, _) in zip(ref, got):
            p = torch.softmax(b32.double(), -1)
            kl = float((p * (torch.log_softmax(b32.double(), -1) - torch.log_softmax(bq.double(), -1))).sum())
            assert 0 <= kl < 0.05, (name, kl)


def test_dtype_settings():
    assert storage_dtype("autocast") == torch.float32 and storage_dtype("int8-dynamic") == torch.float32
    with pytest.raises(ConfigError, match="int8-dynamic"):
        AgentConfig(dtype="int8")


@pytest.mark.parametrize("dtype", ["autocast", "int8-dynamic"])
def test_agent_with_dtype_setting_acts(repo_root, tmp_path, dtype):
    from zh_steve import ZhSteveAgent
    from zh_steve.actions import MINERL_ACTION_KEYS
    from zh_steve.config_utils import load_config

    cfg = load_config(repo_root / "configs/agent_tiny.yaml")
    cfg["dtype"] = dtype
    cfg["tiny"]["cache_dir"] = str(tmp_path)
    agent = ZhSteveAgent.from_config(cfg)
    quantised = [type(m).__module__ for m in agent.parts.policy.modules() if "quantized" in type(m).__module__]
    assert bool(quantised) == (dtype == "int8-dynamic")
    for text in ("砍树", "chop a tree"):
        agent.reset(text)
        rng = np.random.default_rng(0)
        for _ in range(2):
            action = agent.act({"pov": rng.integers(0, 256, size=(72, 128, 3), dtype=np.uint8)})
            assert set(action) == set(MINERL_ACTION_KEYS)


# ---------------------------------------------------------------------------------------------------------------
# the Chinese-CLIP tower's run-time dtype (chinese_clip_dtype)
# ---------------------------------------------------------------------------------------------------------------

def test_chinese_clip_dtype_choice(monkeypatch):
    import zh_steve.precision as precision

    assert precision.chinese_clip_dtype("float32", "float32", "cpu") == torch.float32
    assert precision.chinese_clip_dtype("bfloat16", "float32", "cpu") == torch.bfloat16
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    assert precision.chinese_clip_dtype("auto", "float32", "cpu") == torch.bfloat16
    assert precision.chinese_clip_dtype("auto", "float16", "cpu") is None      # a low-precision agent: follow dtype
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    assert precision.chinese_clip_dtype("auto", "float32", "cpu") is None       # no native bf16: stay float32
    with pytest.raises(ConfigError, match="chinese_clip_dtype"):
        precision.chinese_clip_dtype("int8", "float32", "cpu")
    with pytest.raises(ConfigError, match="chinese_clip_dtype"):
        AgentConfig(chinese_clip_dtype="half")


def test_agent_chinese_clip_tower_in_bf16_stays_close_and_returns_float32(tmp_path):
    from zh_steve.assembly import build_tiny_parts

    texts = ["砍树", "去挖泥土吧", "請幫我找到一些鑽石", "chop a tree 砍"]
    out = {}
    for name in ("float32", "bfloat16"):
        config = AgentConfig(tiny={"cache_dir": str(tmp_path)}, alignment=None, chinese_clip_dtype=name)
        parts = build_tiny_parts(config)
        tower = parts.chinese_encoder.tower
        assert {p.dtype for p in tower.parameters()} == {getattr(torch, name)}
        assert parts.sources["chinese_clip_dtype"] == name
        assert {p.dtype for p in parts.policy.parameters()} == {torch.float32}   # the policy is not affected
        out[name] = parts.chinese_encoder.encode(texts)
        assert out[name].dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity(out["bfloat16"], out["float32"])
    assert cos.min() > 0.99 and not torch.equal(out["bfloat16"], out["float32"])


@pytest.mark.skipif(not precision.native_bf16("cpu"), reason="packing needs a CPU with native bfloat16")
def test_bfloat16_agent_packs_the_policy_and_acts_as_before(tiny_policy):
    """dtype: bfloat16 packs the policy's linear weights for oneDNN; the guided log-probs stay those of the plain
    bf16 policy, bit for bit (the same products)."""
    from types import SimpleNamespace

    from zh_steve.linear import PackedLinear

    frames, goal = _frames_and_goal(2)
    plain = _copy(tiny_policy).to(torch.bfloat16)
    packed = _copy(tiny_policy).to(torch.bfloat16)
    precision.prepare_parts(SimpleNamespace(policy=packed), "bfloat16")
    precision.prepare_parts(SimpleNamespace(policy=packed), "bfloat16")  # idempotent
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in plain.modules())
    assert sum(isinstance(m, PackedLinear) for m in packed.modules()) == n_linear > 0
    assert packed.num_parameters() == plain.num_parameters()
    for (b0, c0), (b1, c1) in zip(_guided_steps(plain, frames, goal.to(torch.bfloat16)),
                                  _guided_steps(packed, frames, goal.to(torch.bfloat16))):
        assert torch.equal(b1, b0) and torch.equal(c1, c0)
