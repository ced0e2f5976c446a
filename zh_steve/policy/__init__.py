"""STEVE-1 policy network (VPT-2x + goal layer), classifier-free guidance, sampling and loading."""

from .config import PolicyConfig, load_policy_kwargs
from .guidance import guide, sample_action
from .heads import N_BUTTONS, N_CAMERA
from .loading import build_policy, load_policy_state_dict, load_policy_weights
from .model import PolicyOutput, PolicyState, PolicyStateError, StepOutput, Steve1Policy

__all__ = [
    "N_BUTTONS", "N_CAMERA", "PolicyConfig", "PolicyOutput", "PolicyState", "PolicyStateError", "StepOutput",
    "Steve1Policy", "build_policy", "guide", "load_policy_kwargs", "load_policy_state_dict",
    "load_policy_weights", "sample_action",
]
