"""``python -m zh_steve.play`` on the test double: headless, scripted instructions, recorded video + JSON."""

from __future__ import annotations

import io
import json

import cv2
import pytest

from zh_steve import play
from zh_steve.errors import ConfigError

LABEL = "TEST DOUBLE — not Minecraft results"


def test_scripted_headless_play_records_video_and_instructions(tmp_path, repo_root):
    script = tmp_path / "cmds.txt"
    script.write_text("# instructions by step\n0: 砍树\n5: look at the sky\n8: :reset\n12: 去游泳  # swim\n",
                      encoding="utf-8")
    out = tmp_path / "out.mp4"
    code = play.main(["--env", "fake", "--agent-config", str(repo_root / "configs" / "agent_tiny.yaml"),
                      "--headless", "--script", str(script), "--record", str(out), "--frames-dir",
                      str(tmp_path / "frames"), "--max-steps", "15", "--env-option", "height=72",
                      "--env-option", "width=128"])
    assert code == 0
    log = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    frames = log["frames"]
    assert log["label"] == LABEL and log["steps"] == 15
    assert len(frames) == 15 + 2  # reset frame, 15 steps, the :reset frame
    by_step = {f["step"]: f["instruction"] for f in frames}
    assert by_step[1] == "砍树" and by_step[5] == "砍树" and by_step[6] == "look at the sky"
    assert by_step[13] == "去游泳" and frames[0]["instruction"] is None
    assert [f["step"] for f in frames].count(8) == 2  # the frame after step 8 and the reset frame
    assert [e["command"] for e in log["events"]] == ["砍树", "look at the sky", ":reset", "去游泳"]
    assert all(f["agent_ms"] > 0 for f in frames[1:3])
    cap = cv2.VideoCapture(str(out))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert ok and n == len(frames) and frame.shape[:2] == (72, 128)
    pngs = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert len(pngs) == len(frames)
    first, later = cv2.imread(str(pngs[0])), cv2.imread(str(pngs[3]))
    assert (first[:20] != later[:20]).any()  # the overlay shows the instruction once there is one


def test_terminal_instructions_are_read_until_quit(tmp_path):
    stdin = io.StringIO("look at the sky\n:quit\n")
    code = play.main(["--env", "fake", "--agent-config", "random", "--headless", "--frames-dir",
                      str(tmp_path / "f"), "--record", str(tmp_path / "t.mp4"), "--max-steps", "50",
                      "--env-option", "height=36", "--env-option", "width=64"], stdin=stdin)
    assert code == 0
    log = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert [e["command"] for e in log["events"]] == ["look at the sky", ":quit"]
    assert log["steps"] < 50


def test_bad_script_line_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("0 砍树\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="STEP: instruction"):
        play.parse_script(bad)
    assert play.main(["--env", "fake", "--agent-config", "random", "--headless", "--script", str(bad)]) == 2


def test_play_can_run_the_env_in_another_interpreter(tmp_path):
    import sys

    code = play.main(["--env", "fake", "--agent-config", "random", "--headless", "--frames-dir", str(tmp_path / "f"),
                      "--instruction", "dig", "--max-steps", "3", "--env-python", sys.executable,
                      "--record", str(tmp_path / "r.mp4"), "--env-option", "height=36", "--env-option", "width=64"])
    assert code == 0
    log = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert log["steps"] == 3 and log["label"] == LABEL and log["instructions"] == ["dig"]


def test_end_of_terminal_input_without_an_instruction_stops(tmp_path):
    code = play.main(["--env", "fake", "--agent-config", "random", "--headless", "--frames-dir", str(tmp_path / "f"),
                      "--record", str(tmp_path / "e.mp4"), "--env-option", "height=36", "--env-option", "width=64"],
                     stdin=io.StringIO(""))
    log = json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))
    assert code == 0 and log["steps"] == 0 and len(log["frames"]) == 1
