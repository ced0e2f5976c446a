"""The alignment layer: raw Chinese-CLIP text embedding [N, 512] → raw MineCLIP text-space vector [N, 512].

    x_s = (x − x_mean) / x_std                     standardise the input (train-set statistics)
    y_s = 0                                        kind "mean":  the mean target (the floor)
        = linear(x_s)                              kinds "identity" | "procrustes" | "ridge": one affine map
        = linear(x_s) + mlp(x_s)                   kind "mlp":   best linear map + residual MLP (last layer at 0)
    y   = out_scale · y_s · y_std + y_mean         back to MineCLIP's raw scale; never L2-normalised

``identity`` and ``procrustes`` are raw-space maps (y = x, y = s·(x − μx)R + μy) written as the same affine layer;
``out_scale`` is the norm calibration (a scalar fitted on train so predictions sit at the targets' norms; it
stretches the deviation from the centre, so centred-cosine retrieval is unchanged).
The STEVE-1 prior was trained on raw MineCLIP ``encode_text`` vectors, so the output keeps that scale.
Saved HF-style: ``alignment.safetensors`` (weights and statistics) + ``config.json`` (this config, including
the identities of the source and target encoders it was trained for).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .checkpoint import load_state_dict_strict, read_safetensors
from .config_utils import from_dict, to_dict
from .errors import ConfigError, WeightsNotFoundError, ZhSteveError

WEIGHTS_NAME = "alignment.safetensors"
CONFIG_NAME = "config.json"
KINDS = ("mean", "identity", "procrustes", "ridge", "mlp")
LINEAR_KINDS = ("identity", "procrustes", "ridge", "mlp")
FORMAT_VERSION = 2


class InvalidEmbeddingError(ZhSteveError, ValueError):
    """The input to the alignment layer is not a finite float tensor ``[N, in_dim]``."""


@dataclass
class MLPArchitecture:
    """The residual MLP's shape: the one object that goes YAML (``mlp.architecture``) → trainer → layer config."""

    hidden_dims: list[int] = field(default_factory=lambda: [512])  # in → 512 → out
    activation: str = "gelu"           # gelu | relu
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.activation not in ("gelu", "relu"):
            raise ConfigError(f"alignment activation must be 'gelu' or 'relu', got {self.activation!r}")
        if any(h < 1 for h in self.hidden_dims):
            raise ConfigError("alignment MLP hidden dims must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"alignment dropout must be in [0, 1), got {self.dropout}")


@dataclass
class AlignmentConfig:
    """Shape and provenance of an alignment layer."""

    kind: str = "mlp"                  # mean | identity | procrustes | ridge | mlp
    in_dim: int = 512                  # Chinese-CLIP text feature size
    out_dim: int = 512                 # MineCLIP text feature size
    mlp: MLPArchitecture = field(default_factory=MLPArchitecture)  # kind "mlp" only
    source_encoder: str = ""           # identity of the encoder whose raw output goes in
    target_encoder: str = ""           # identity of the encoder whose raw space comes out
    ridge_lambda: float | None = None  # the λ the ridge map was fitted with (informational)
    prior: str | None = None           # ridge: the map it was shrunk toward (zero | identity | procrustes); mlp: its base
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"alignment kind must be one of {list(KINDS)}, got {self.kind!r}")
        if self.in_dim < 1 or self.out_dim < 1:
            raise ConfigError("alignment dims must be positive")
        if self.kind == "identity" and self.in_dim != self.out_dim:
            raise ConfigError(f"an identity alignment needs in_dim == out_dim, got {self.in_dim} and {self.out_dim}")


def _upgrade_v1(raw: dict) -> dict:
    """config.json written before format 2: the MLP shape was flat (hidden_dims, activation, dropout)."""
    if raw.get("format_version", 1) >= 2:
        return raw
    raw = dict(raw)
    raw["mlp"] = {k: raw.pop(k) for k in ("hidden_dims", "activation", "dropout") if k in raw}
    raw["format_version"] = FORMAT_VERSION
    return raw


class ResidualMLP(nn.Module):
    """in → hidden … → out with the last layer zero-initialised, so it adds nothing at step 0."""

    def __init__(self, cfg: AlignmentConfig) -> None:
        super().__init__()
        arch = cfg.mlp
        act = nn.GELU if arch.activation == "gelu" else nn.ReLU
        dims = [cfg.in_dim, *arch.hidden_dims]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), act(), nn.Dropout(arch.dropout)]
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(dims[-1], cfg.out_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x_s: torch.Tensor) -> torch.Tensor:  # [N, in] → [N, out]
        return self.out(self.hidden(x_s))


class AlignmentLayer(nn.Module):
    """Standardiser + (mean | affine map | affine + residual MLP) + calibrated de-standardiser (all in the state dict)."""

    def __init__(self, config: AlignmentConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("x_mean", torch.zeros(config.in_dim))
        self.register_buffer("x_std", torch.ones(config.in_dim))
        self.register_buffer("y_mean", torch.zeros(config.out_dim))
        self.register_buffer("y_std", torch.ones(config.out_dim))
        self.register_buffer("out_scale", torch.ones(()))  # norm calibration (1 = none)
        self.linear = nn.Linear(config.in_dim, config.out_dim) if config.kind in LINEAR_KINDS else None
        self.mlp = ResidualMLP(config) if config.kind == "mlp" else None

    # --- the three stages ---------------------------------------------------------------------------------
    def standardize_input(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.x_mean) / self.x_std

    def map_standardized(self, x_s: torch.Tensor) -> torch.Tensor:  # [N, in] → [N, out], standardised
        if self.linear is None:
            return self.y_mean.new_zeros(x_s.shape[0], self.config.out_dim)
        y_s = self.linear(x_s)
        if self.mlp is not None:
            y_s = y_s + self.mlp(x_s)
        return y_s

    def destandardize_output(self, y_s: torch.Tensor) -> torch.Tensor:
        return y_s * self.y_std + self.y_mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw Chinese-CLIP features ``[N, in_dim]`` (or ``[in_dim]``) → raw MineCLIP-space vectors."""
        if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
            raise InvalidEmbeddingError(f"expected a float tensor [N, {self.config.in_dim}], got {type(x).__name__}"
                                        + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
        squeeze = x.dim() == 1
        if squeeze:
            x = x.unsqueeze(0)
        if x.dim() != 2 or x.shape[1] != self.config.in_dim:
            raise InvalidEmbeddingError(f"expected shape [N, {self.config.in_dim}], got {list(x.shape)}")
        if not torch.isfinite(x).all():
            raise InvalidEmbeddingError("input embedding contains NaN or inf")
        x = x.to(device=self.x_mean.device, dtype=self.x_mean.dtype)
        y = self.destandardize_output(self.map_standardized(self.standardize_input(x)) * self.out_scale)
        return y.squeeze(0) if squeeze else y

    # --- provenance ---------------------------------------------------------------------------------------
    def check_encoders(self, source: str | None = None, target: str | None = None) -> None:
        """Raise :class:`ConfigError` if the layer was trained for a different source/target encoder."""
        for what, want, have in (("source", self.config.source_encoder, source),
                                 ("target", self.config.target_encoder, target)):
            if have is not None and want and have != want:
                raise ConfigError(f"this alignment layer was trained for {what} encoder {want!r}, "
                                  f"but it is being used with {have!r}; retrain it (python -m alignment.train)")

    # --- HF-style persistence -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``alignment.safetensors`` and ``config.json`` into ``directory`` (created if needed)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "zh-steve-alignment",
                                                                   "kind": self.config.kind})
        (directory / CONFIG_NAME).write_text(json.dumps(to_dict(self.config), indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> AlignmentLayer:
        """Load a layer written by :meth:`save_pretrained`; every key must match (strict)."""
        directory = Path(directory)
        hint = "train one with `python -m alignment.train` (it writes both files into --out)"
        if not directory.is_dir():
            raise WeightsNotFoundError(f"alignment layer directory not found: {directory}; {hint}")
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (directory / name).is_file():
                raise WeightsNotFoundError(f"alignment layer file missing: {directory / name}; {hint}")
        try:
            raw = json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{directory / CONFIG_NAME} is not valid JSON: {e}") from e
        version = raw.get("format_version", 1) if isinstance(raw, dict) else 1
        config = from_dict(AlignmentConfig, _upgrade_v1(raw) if isinstance(raw, dict) else raw,
                           where=str(directory / CONFIG_NAME))
        layer = cls(config)
        state = read_safetensors(directory / WEIGHTS_NAME)
        if version < 2:  # before the norm calibration existed
            state.setdefault("out_scale", torch.ones(()))
        load_state_dict_strict(layer, state, what=f"alignment weights {directory / WEIGHTS_NAME}")
        return layer.to(device).eval()
