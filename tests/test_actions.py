"""Action mapping against the official golden fixture (action_mapping.json / action_mapping_tables.safetensors)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import golden_path
from safetensors.numpy import load_file

from zh_steve.actions import (
    BUTTON_IDX_TO_CAMERA_META_OFF,
    BUTTON_IDX_TO_FACTORED,
    BUTTONS,
    CAMERA_BIN_TO_DEG,
    CAMERA_IDX_TO_FACTORED,
    CAMERA_NULL_IDX,
    CAMERA_QUANTIZER,
    INVENTORY_IDX,
    MINERL_ACTION_KEYS,
    N_BUTTON_COMBINATIONS,
    N_CAMERA_JOINT,
    InvalidActionError,
    agent_to_env,
    agent_to_factored,
    combination,
    env_to_agent,
    env_to_factored,
    factored_to_agent,
    noop_action,
    to_minerl_action,
    validate_minerl_action,
)
from zh_steve.errors import ZhSteveError


def _load_cases() -> dict:
    path = golden_path() / "action_mapping.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


GOLDEN = _load_cases()
A2E = GOLDEN.get("agent_to_env", [])
E2A = GOLDEN.get("env_to_agent", [])
QUANT = GOLDEN.get("camera_quantizer", {}).get("cases", [])


def _env_dict(case_action: dict) -> dict:
    return {k: (np.asarray(v, dtype=np.float64) if k == "camera" else v) for k, v in case_action.items()}


def test_fixture_present():
    assert A2E and E2A and QUANT, "action_mapping.json missing or empty"
    assert GOLDEN["n_button_combinations"] == N_BUTTON_COMBINATIONS
    assert GOLDEN["camera_null_idx"] == CAMERA_NULL_IDX
    assert list(GOLDEN["buttons_order (Buttons.ALL, factored index order)"]) == list(BUTTONS)


# ---------------------------------------------------------------------------------------------- tables
def test_tables_match_golden(golden_dir):
    ref = load_file(str(golden_dir / "action_mapping_tables.safetensors"))
    for name, ours in [
        ("button_idx_to_factored", BUTTON_IDX_TO_FACTORED),
        ("button_idx_to_camera_meta_off", BUTTON_IDX_TO_CAMERA_META_OFF),
        ("camera_idx_to_factored", CAMERA_IDX_TO_FACTORED),
    ]:
        assert ours.dtype == ref[name].dtype and ours.shape == ref[name].shape, name
        np.testing.assert_array_equal(ours, ref[name], err_msg=name)
    assert CAMERA_BIN_TO_DEG.dtype == np.float64
    np.testing.assert_allclose(CAMERA_BIN_TO_DEG, ref["camera_bin_to_deg"], rtol=0, atol=1e-12)


def test_named_indices():
    named = GOLDEN["named_button_indices"]
    for name, idx in named.items():
        tokens = name.split("+")
        if not all(t in BUTTONS or t == "camera" for t in tokens):
            continue  # descriptive names ("null", "... (last combo)") are covered by the case tests
        pressed = np.array([b in tokens for b in BUTTONS], dtype=np.uint8)
        bins = (0, 5) if "camera" in tokens else (5, 5)
        assert factored_to_agent(pressed, bins)[0] == idx, name
    assert named["inventory"] == INVENTORY_IDX


# ------------------------------------------------------------------------------------------- quantiser
@pytest.mark.parametrize("case", QUANT, ids=[f"deg={c['deg']!r}" for c in QUANT])
def test_camera_quantizer(case):
    # near_rounding_boundary cases included: the same float64 operation order puts them in the same bin
    assert int(CAMERA_QUANTIZER.encode(case["deg"])) == case["bin"]
    assert int(CAMERA_QUANTIZER.encode(np.array([case["deg"]]))[0]) == case["bin"]
    np.testing.assert_allclose(CAMERA_QUANTIZER.decode(case["bin"]), case["undiscretized_deg"], rtol=0, atol=1e-12)


def test_camera_quantizer_float32_inputs():
    diffs = GOLDEN["camera_quantizer"]["float32_vs_float64_input_bin_differences"]
    assert diffs
    for d in diffs:
        assert int(CAMERA_QUANTIZER.encode(np.float64(d["deg"]))) == d["bin_float64"]
        assert int(CAMERA_QUANTIZER.encode(np.float32(d["deg"]))) == d["bin_float32"]


def test_bin_centers_round_trip():
    bins = np.arange(CAMERA_QUANTIZER.n_bins)
    ref = [c["deg"] for c in GOLDEN["camera_quantizer"]["bin_centers_deg"]]
    np.testing.assert_allclose(CAMERA_QUANTIZER.bin_centers(), ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(CAMERA_QUANTIZER.encode(CAMERA_QUANTIZER.bin_centers()), bins)
    np.testing.assert_array_equal(CAMERA_QUANTIZER.encode(CAMERA_QUANTIZER.bin_centers().astype(np.float32)), bins)
    with pytest.raises(InvalidActionError):
        CAMERA_QUANTIZER.decode(11)
    with pytest.raises(InvalidActionError):
        CAMERA_QUANTIZER.decode(0.5)


# ---------------------------------------------------------------------------------------- agent → env
@pytest.mark.parametrize("case", A2E, ids=[f"b{c['buttons_idx']}-c{c['camera_idx']}" for c in A2E])
def test_agent_to_env(case):
    b, c = case["buttons_idx"], case["camera_idx"]
    env = agent_to_env(np.array([[b]]), np.array([[c]]))  # the [1, 1] arrays the policy returns
    expected = case["env_action"]
    assert list(env) == list(expected)
    for key, value in expected.items():
        ref = np.asarray(value, dtype=np.float64 if key == "camera" else np.int64)
        assert env[key].shape == ref.shape, key
        np.testing.assert_array_equal(env[key], ref, err_msg=key)
    assert env["camera"].dtype == np.float64
    pressed, bins = agent_to_factored(b, c)
    assert pressed[0].tolist() == case["factored_buttons"]
    assert bins[0].tolist() == case["factored_camera_bins"]
    combo = combination(b)
    assert (combo if combo == "inventory" else list(combo)) == case["combination"]
    assert bool(BUTTON_IDX_TO_CAMERA_META_OFF[b]) == case["camera_meta_off"]


def test_agent_to_env_batched_and_torch():
    env = agent_to_env(torch.tensor([[0], [5], [8640]]), torch.tensor([[0], [0], [0]]))
    assert env["camera"].shape == (3, 2)
    np.testing.assert_array_equal(env["camera"][0], [0.0, 0.0])          # camera meta off → null
    np.testing.assert_array_equal(env["camera"][1], [-10.0, -10.0])      # meta on → bins pass
    np.testing.assert_array_equal(env["camera"][2], [-10.0, -10.0])      # inventory quirk: pass through
    assert env["attack"].tolist() == [0, 1, 0] and env["inventory"].tolist() == [0, 0, 1]


@pytest.mark.parametrize(
    "b, c", [(-1, 60), (8641, 60), (0, 121), (0, -3), (1.0, 60), (True, 60), ([], []), ([1, 2], [60])]
)
def test_agent_to_env_rejects_bad_indices(b, c):
    with pytest.raises(InvalidActionError):
        agent_to_env(b, c)


# ---------------------------------------------------------------------------------------- env → agent
@pytest.mark.parametrize("case", E2A, ids=[c["name"] for c in E2A])
def test_env_to_agent(case):
    action = _env_dict(case["env_action"])
    assert env_to_agent(action) == (case["buttons_idx"], case["camera_idx"])
    assert not case["check_if_null_returned_None"]  # the official check never returns None; neither do we
    pressed, bins = env_to_factored(action)
    assert pressed.tolist() == case["factored_buttons"]
    assert bins.tolist() == case["factored_camera_bins"]


def test_round_trip_every_button_combination():
    rng = np.random.default_rng(0)
    cams = rng.integers(0, N_CAMERA_JOINT, size=N_BUTTON_COMBINATIONS)
    env = agent_to_env(np.arange(N_BUTTON_COMBINATIONS), cams)
    for b in range(N_BUTTON_COMBINATIONS):
        single = {k: int(v[b]) for k, v in env.items() if k != "camera"}
        single["camera"] = env["camera"][b]
        got_b, got_c = env_to_agent(single)
        camera_on = not BUTTON_IDX_TO_CAMERA_META_OFF[b] and b != INVENTORY_IDX and cams[b] != CAMERA_NULL_IDX
        assert got_c == (cams[b] if camera_on else CAMERA_NULL_IDX), b
        # a meta-on combination whose camera happens to be null comes back as its meta-off twin (b - 1)
        expect_b = b - 1 if (b % 2 == 1 and b != INVENTORY_IDX and cams[b] == CAMERA_NULL_IDX) else b
        assert got_b == expect_b, b


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: a.pop("forward"),
        lambda a: a.pop("camera"),
        lambda a: a.__setitem__("fly", 1),
        lambda a: a.__setitem__("attack", 2),
        lambda a: a.__setitem__("attack", 0.5),
        lambda a: a.__setitem__("camera", np.array([np.nan, 0.0])),
        lambda a: a.__setitem__("camera", np.array([1.0, 2.0, 3.0])),
    ],
    ids=["missing-button", "missing-camera", "unknown-key", "button-2", "button-float", "camera-nan", "camera-3"],
)
def test_env_to_agent_rejects_bad_actions(mutate):
    action = noop_action()
    mutate(action)
    with pytest.raises(InvalidActionError):
        env_to_agent(action)


# ------------------------------------------------------------------------------------------ MineRL dict
def test_minerl_keys_are_the_human_survival_space():
    assert isinstance(MINERL_ACTION_KEYS, tuple) and len(MINERL_ACTION_KEYS) == 24
    expected = {"ESC", "attack", "back", "camera", "drop", "forward", "inventory", "jump", "left", "pickItem",
                "right", "sneak", "sprint", "swapHands", "use", *(f"hotbar.{i}" for i in range(1, 10))}
    assert set(MINERL_ACTION_KEYS) == expected


@pytest.mark.parametrize("case", A2E[::7], ids=[f"b{c['buttons_idx']}-c{c['camera_idx']}" for c in A2E[::7]])
def test_to_minerl_action(case):
    action = to_minerl_action(case["buttons_idx"], case["camera_idx"])
    validate_minerl_action(action, camera_limit=10.0)
    assert tuple(action) == MINERL_ACTION_KEYS
    for key in BUTTONS:
        assert type(action[key]) is int and action[key] == case["env_action"][key][0]
    assert action["ESC"] == action["pickItem"] == action["swapHands"] == 0
    cam = action["camera"]
    assert cam.dtype == np.float32 and cam.shape == (2,)
    np.testing.assert_array_equal(cam, np.asarray(case["env_action"]["camera"][0], dtype=np.float32))


def test_to_minerl_action_accepts_policy_outputs_and_rejects_batches():
    a = to_minerl_action(torch.tensor([[295]]), np.array([[115]]))  # forward+jump+attack+camera, pitch +10
    assert (a["forward"], a["jump"], a["attack"], a["back"]) == (1, 1, 1, 0)
    np.testing.assert_array_equal(a["camera"], np.array([10.0, 0.0], dtype=np.float32))
    with pytest.raises(InvalidActionError):
        to_minerl_action([1, 3], [60, 60])


def test_noop_action():
    a = noop_action()
    validate_minerl_action(a)
    assert env_to_agent(a) == (0, CAMERA_NULL_IDX)
    assert tuple(a) == MINERL_ACTION_KEYS
    assert all(a[k] == 0 for k in MINERL_ACTION_KEYS if k != "camera")
    assert a["camera"].dtype == np.float32 and a["camera"].shape == (2,) and not a["camera"].any()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: a.pop("ESC"),
        lambda a: a.__setitem__("noclip", 0),
        lambda a: a.__setitem__("jump", 2),
        lambda a: a.__setitem__("jump", 1.0),
        lambda a: a.__setitem__("jump", np.array([1])),
        lambda a: a.__setitem__("camera", np.zeros((1, 2))),
        lambda a: a.__setitem__("camera", np.array([np.inf, 0.0])),
        lambda a: a.__setitem__("camera", np.array([0.0, 200.0])),
        lambda a: a.__setitem__("camera", "up"),
    ],
    ids=["missing", "unknown", "button-2", "button-float", "button-array", "camera-batched", "camera-inf",
         "camera-range", "camera-str"],
)
def test_validate_minerl_action_rejects(mutate):
    a = noop_action()
    mutate(a)
    with pytest.raises(InvalidActionError) as err:
        validate_minerl_action(a)
    assert isinstance(err.value, ZhSteveError)


def test_validate_minerl_action_rejects_non_dict_and_limit():
    with pytest.raises(InvalidActionError):
        validate_minerl_action([0] * 24)
    a = noop_action()
    a["camera"] = np.array([12.0, 0.0], dtype=np.float32)
    validate_minerl_action(a)  # within the env's ±180
    with pytest.raises(InvalidActionError):
        validate_minerl_action(a, camera_limit=10.0)
