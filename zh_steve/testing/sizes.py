"""Sizes of the tiny random models (tests, CI, ``configs/*_tiny.yaml``): the one place they are written.

Outputs keep the real sizes (512-d goal / MineCLIP space, the real vocabularies and contexts) so the alignment
layer, the prior and the policy's goal layer have their real shapes.
"""

from __future__ import annotations

from typing import Any

# policy trunk (official policy_kwargs keys) — shared by the tiny agent and the tiny weight files of the tests
TINY_POLICY: dict[str, Any] = {"hidsize": 64, "attention_heads": 4, "n_recurrence_layers": 2, "impala_width": 1,
                               "attention_memory_size": 16, "timesteps": 8}
# the tiny agent: policy trunk + prior
TINY_AGENT: dict[str, Any] = {**TINY_POLICY, "prior_hidden_dim": 64, "prior_latent_dim": 16}
# tiny text towers of the tiny agent / tiny alignment run (real vocabularies and contexts)
TINY_MINECLIP_TEXT: dict[str, int] = {"embed_dim": 512, "width": 64, "layers": 2, "heads": 4, "context_length": 77,
                                      "vocab_size": 49408}
TINY_CHINESE_CLIP_TEXT: dict[str, int] = {"vocab_size": 21128, "hidden_size": 64, "num_hidden_layers": 2,
                                          "num_attention_heads": 4, "intermediate_size": 128,
                                          "max_position_embeddings": 64}
TINY_CHINESE_CLIP_VISION: dict[str, int] = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                            "num_attention_heads": 2, "image_size": 32, "patch_size": 16}
