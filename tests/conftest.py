"""Shared test fixtures: where the golden fixtures live, seeded RNGs, and the small-thread CPU setup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GOLDEN = ROOT / "tests" / "fixtures" / "golden"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def golden_path() -> Path:
    """``$ZS_GOLDEN_DIR`` if set, else ``tests/fixtures/golden`` (same file names as shared/reference/golden)."""
    return Path(os.environ.get("ZS_GOLDEN_DIR", DEFAULT_GOLDEN))


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    path = golden_path()
    if not path.is_dir():
        pytest.fail(f"golden fixture directory not found: {path}")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def restore_threads():
    """Put torch's thread count back after a test that runs code which sets it (the training CLI's num_threads)."""
    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)
