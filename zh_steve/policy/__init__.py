"""STEVE-1 policy network (VPT-2x + goal layer), classifier-free guidance, sampling and loading."""

from .config import PolicyConfig, policy_config
from .guidance import guide, sample_action
from .heads import N_BUTTONS, N_CAMERA
from .loading import load_policy_weights, policy_from_state_dict
from .model import PolicyOutput, PolicyState, PolicyStateError, StepOutput, Steve1Policy

__all__ = [
    "N_BUTTONS", "N_CAMERA", "PolicyConfig", "PolicyOutput", "PolicyState", "PolicyStateError", "StepOutput",
    "Steve1Policy", "guide", "load_policy_weights", "policy_config", "policy_from_state_dict", "sample_action",
]
