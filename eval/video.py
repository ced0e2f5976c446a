"""Episode videos (MP4, mp4v) with the instruction overlaid, in Chinese when a CJK font is available."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

KNOWN_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """A font file that covers Chinese: ``fc-list :lang=zh`` first, then well-known paths; None if none."""
    if shutil.which("fc-list"):
        try:
            out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for line in out.splitlines():
            path = line.split(":")[0].strip()
            if path and Path(path).is_file():
                return path
    for path in KNOWN_CJK_FONTS:
        if Path(path).is_file():
            return path
    return None


def _overlay_strip(lines: list[str], width: int, font_px: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB pixels and alpha (H×W) of a dark strip carrying ``lines`` of text."""
    from PIL import Image, ImageDraw, ImageFont

    font_path = find_cjk_font()
    if font_path is None:
        warnings.warn(
            "no CJK font found (tried fc-list :lang=zh and common paths); the video overlay shows ASCII only. "
            "Install one, e.g. `apt-get install fonts-noto-cjk` or `fonts-wqy-microhei`.",
            stacklevel=3,
        )
        lines = [ln.encode("ascii", "replace").decode() for ln in lines]
        font = ImageFont.load_default()
    else:
        font = ImageFont.truetype(font_path, font_px)
    height = (font_px + 6) * len(lines) + 6
    img = Image.new("RGBA", (width, height), (0, 0, 0, 150))
    draw = ImageDraw.Draw(img)
    for i, ln in enumerate(lines):
        draw.text((8, 4 + i * (font_px + 6)), ln, font=font, fill=(255, 255, 255, 255))
    arr = np.asarray(img)
    return arr[..., :3].astype(np.float32), arr[..., 3:].astype(np.float32) / 255.0


class EpisodeVideo:
    """Write RGB frames to ``path`` (MP4, mp4v) with a text overlay at the top."""

    def __init__(self, path: str | Path, lines: list[str], fps: int = 20) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lines, self.fps = lines, fps
        self.writer: cv2.VideoWriter | None = None
        self.strip: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, frame_rgb: np.ndarray) -> None:
        h, w = frame_rgb.shape[:2]
        if self.writer is None:
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            self.strip = _overlay_strip(self.lines, w, max(12, h // 24))
        rgb, alpha = self.strip  # type: ignore[misc]
        sh = min(rgb.shape[0], h)
        out = frame_rgb.copy()
        top = out[:sh].astype(np.float32)
        out[:sh] = (top * (1 - alpha[:sh]) + rgb[:sh] * alpha[:sh]).astype(np.uint8)
        self.writer.write(cv2.cvtColor(out, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
