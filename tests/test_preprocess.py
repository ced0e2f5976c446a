"""Observation preprocessing: exact bytes against the official resize (preprocess.safetensors) and input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from zh_steve.errors import InvalidObservationError, ZhSteveError
from zh_steve.preprocess import AGENT_RESOLUTION, preprocess_obs, preprocess_pov


@pytest.fixture(scope="module")
def golden(golden_dir):
    return load_file(str(golden_dir / "preprocess.safetensors")), json.loads((golden_dir / "preprocess.json").read_text())


def test_agent_resolution():
    assert AGENT_RESOLUTION == (128, 128)


def test_resize_matches_official_bytes(golden):
    tensors, _ = golden
    frames, expected = tensors["frames_360x640"], tensors["resized_128x128"]
    assert frames.shape[0] == expected.shape[0] > 0
    for frame, ref in zip(frames, expected):
        out = preprocess_pov(frame)
        assert out.dtype == np.uint8 and out.shape == (*AGENT_RESOLUTION, 3) and out.flags.c_contiguous
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_array_equal(preprocess_obs({"pov": frame, "inventory": {}}), ref)


def test_non_contiguous_input(golden):
    tensors, _ = golden
    frame, ref = tensors["frames_360x640"][2], tensors["resized_128x128"][2]
    flipped = frame[:, ::-1]  # negative stride view
    np.testing.assert_array_equal(preprocess_pov(flipped), preprocess_pov(flipped.copy()))
    padded = np.zeros((360, 640, 4), np.uint8)
    padded[..., :3] = frame
    np.testing.assert_array_equal(preprocess_pov(padded[..., :3]), ref)  # strided channel view


def test_already_agent_size_is_untouched_copy():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, size=(128, 128, 3), dtype=np.uint8)
    out = preprocess_pov(frame)
    np.testing.assert_array_equal(out, frame)
    assert out is not frame and not np.shares_memory(out, frame)


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 300, 3), (480, 854, 3)])
def test_any_size_squashes(shape):
    out = preprocess_pov(np.full(shape, 200, np.uint8))
    assert out.shape == (128, 128, 3) and (out == 200).all()


@pytest.mark.parametrize(
    "pov, needle",
    [
        (np.zeros((360, 640, 3), np.float32), "float32"),
        (np.zeros((3, 360, 640), np.uint8), "transpose"),
        (np.zeros((360, 640, 4), np.uint8), "RGBA"),
        (np.zeros((360, 640), np.uint8), "grayscale"),
        (np.zeros((360, 640, 1), np.uint8), "grayscale"),
        (np.zeros((2, 360, 640, 3), np.uint8), "batch"),
        (np.zeros((0, 640, 3), np.uint8), "H, W >= 1"),
        (np.zeros((360, 640, 3), np.int64), "int64"),
        ([[[0, 0, 0]]], "list"),
    ],
    ids=["float", "chw", "rgba", "gray2d", "gray1", "batched", "empty", "int64", "list"],
)
def test_bad_pov_is_explained(pov, needle):
    with pytest.raises(InvalidObservationError) as err:
        preprocess_pov(pov)
    msg = str(err.value)
    assert needle in msg and "expected" in msg and isinstance(err.value, ZhSteveError)


def test_torch_tensor_hint():
    torch = pytest.importorskip("torch")
    with pytest.raises(InvalidObservationError, match=r"\.cpu\(\)\.numpy\(\)"):
        preprocess_pov(torch.zeros(128, 128, 3, dtype=torch.uint8))


def test_obs_without_pov():
    with pytest.raises(InvalidObservationError, match="'pov'"):
        preprocess_obs({"inventory": {}})
    with pytest.raises(InvalidObservationError, match="MineDojo"):
        preprocess_obs({"rgb": np.zeros((3, 160, 256), np.uint8)})
    with pytest.raises(InvalidObservationError):
        preprocess_obs(np.zeros((128, 128, 3), np.uint8))
