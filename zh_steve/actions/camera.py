"""Mu-law camera quantiser of VPT / STEVE-1: degrees <-> one of 11 bins per axis.

Settings (VPT ``ACTION_TRANSFORMER_KWARGS``): maxval 10°, binsize 2, mu 10, so the bins are 0..10 and bin 5 is
"no movement". Encoding clips to ±maxval, warps with mu-law, and rounds half to even (``np.round``); the
operation order follows the official transformer so boundary inputs fall in the same bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .errors import InvalidActionError


@dataclass(frozen=True)
class CameraQuantizer:
    maxval: float = 10
    binsize: float = 2
    mu: float = 10

    @property
    def n_bins(self) -> int:
        return int(round(2 * self.maxval / self.binsize)) + 1  # 11

    @property
    def null_bin(self) -> int:
        return self.n_bins // 2  # 5 = zero movement

    def encode(self, degrees: ArrayLike) -> np.ndarray:
        """Degrees (any shape, float dtype kept) → int64 bins in [0, n_bins)."""
        x = np.asarray(degrees)
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
        x = np.clip(x, -self.maxval, self.maxval) / self.maxval        # [-1, 1]
        warped = np.sign(x) * (np.log(1.0 + self.mu * np.abs(x)) / np.log(1.0 + self.mu))
        warped = warped * self.maxval                                   # back to [-maxval, maxval]
        return np.round((warped + self.maxval) / self.binsize).astype(np.int64)

    def decode(self, bins: ArrayLike) -> np.ndarray:
        """Bins (ints in [0, n_bins)) → float64 degrees at the bin centres."""
        b = np.asarray(bins)
        if not np.issubdtype(b.dtype, np.integer) or b.size and (b.min() < 0 or b.max() >= self.n_bins):
            raise InvalidActionError(f"camera bins must be integers in [0, {self.n_bins - 1}], got {b!r}")
        v = (b * self.binsize - self.maxval) / self.maxval               # [-1, 1], linear in the bin
        unwarped = np.sign(v) * (1.0 / self.mu) * ((1.0 + self.mu) ** np.abs(v) - 1.0)
        return unwarped * self.maxval

    def bin_centers(self) -> np.ndarray:
        """float64 [n_bins]: the degrees each bin decodes to."""
        return self.decode(np.arange(self.n_bins))


CAMERA_QUANTIZER = CameraQuantizer()
