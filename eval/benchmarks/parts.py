"""Full-size agent parts with RANDOM weights, for benchmarks (architecture cost, never behaviour)."""

from __future__ import annotations

import torch

from zh_steve.agent import AgentParts

from .bench_text import chinese_clip_full_random, mineclip_full_random


def full_size_random_parts(seed: int = 0) -> AgentParts:
    """STEVE-1 policy (2x) + prior + both text towers + alignment MLP, full size, random, float32 (the MineCLIP
    text tower is built on first access, as the agent's assembly does)."""
    from zh_steve.alignment_layer import AlignmentConfig, AlignmentLayer
    from zh_steve.policy import PolicyConfig, Steve1Policy
    from zh_steve.prior import PriorConfig, Steve1Prior

    zh = chinese_clip_full_random()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = Steve1Policy(PolicyConfig.full_size()).eval().requires_grad_(False)
        torch.manual_seed(seed + 1)
        prior = Steve1Prior(PriorConfig()).eval().requires_grad_(False)
        torch.manual_seed(seed + 2)
        alignment = AlignmentLayer(AlignmentConfig(kind="mlp", source_encoder=zh.identity,
                                                   target_encoder="mineclip-text:full-size-random")
                                   ).eval().requires_grad_(False)
    return AgentParts(chinese_encoder=zh, alignment=alignment, prior=prior, policy=policy,
                      mineclip_loader=mineclip_full_random,  # built on first English instruction device=torch.device("cpu"), dtype=torch.float32,
                      random_weights=True, sources={"all": "full-size architectures, RANDOM weights"})


def free_form_chinese(path: str = "configs/eval_tasks.yaml") -> tuple[list[str], list[str]]:
    """Free-form-like instructions: every Chinese phrasing (simplified/traditional, plain/colloquial) of the eval
    suite, and its English prompts."""
    import yaml

    tasks = yaml.safe_load(open(path, encoding="utf-8"))["tasks"]
    zh = [p["text"] for t in tasks for p in t.get("zh", [])]
    en = [t["prompt_en"] for t in tasks if t.get("prompt_en")]
    return zh, en
