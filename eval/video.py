"""Videos with text overlaid (Chinese when a CJK font is available): H.264 MP4 that browsers play, written
with PyAV (``pip install "zh-steve[video]"``; its wheels bundle libx264), else OpenCV's MPEG-4 Part 2
(``mp4v``: plays in VLC, not in most browsers) with a warning. Text is drawn with Pillow."""

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


_warned_fallback = False


def _have_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


class VideoWriter:
    """RGB frames → MP4: H.264 (yuv420p, even size) via PyAV when installed, else OpenCV mp4v with a warning."""

    def __init__(self, path: str | Path, fps: int = 20, prefer: str = "h264") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self.codec = "h264" if prefer == "h264" and _have_pyav() else "mp4v"
        if self.codec == "mp4v" and prefer == "h264":
            global _warned_fallback
            if not _warned_fallback:
                warnings.warn("PyAV is not installed: writing MPEG-4 Part 2 (mp4v) with OpenCV, which most browsers "
                              'cannot play. pip install "zh-steve[video]" for H.264.', stacklevel=2)
                _warned_fallback = True
        self._av: tuple | None = None
        self._cv: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, frame_rgb: np.ndarray) -> None:
        h, w = frame_rgb.shape[:2]
        if self.size is None:
            self.size = (w + w % 2, h + h % 2) if self.codec == "h264" else (w, h)
            if self.codec == "h264":
                import av

                container = av.open(str(self.path), mode="w")
                stream = container.add_stream("libx264", rate=self.fps)
                stream.width, stream.height = self.size
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": "20", "preset": "veryfast"}
                self._av = (av, container, stream)
            else:
                self._cv = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self.size)
        if self._av is not None:
            av, container, stream = self._av
            if (w, h) != self.size:  # yuv420p needs even sides: repeat the last row/column
                frame_rgb = np.pad(frame_rgb, ((0, self.size[1] - h), (0, self.size[0] - w), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format="rgb24")):
                container.mux(packet)
        else:
            self._cv.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))  # type: ignore[union-attr]
        self.frames += 1

    def close(self) -> None:
        if self._av is not None:
            _, container, stream = self._av
            for packet in stream.encode():
                container.mux(packet)
            container.close()
            self._av = None
        if self._cv is not None:
            self._cv.release()
            self._cv = None


class TextOverlay:
    """Blends a dark strip with text lines over the top of frames; re-renders only when the text changes."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._strip: tuple[np.ndarray, np.ndarray] | None = None

    def apply(self, frame_rgb: np.ndarray, lines: list[str]) -> np.ndarray:
        h, w = frame_rgb.shape[:2]
        key = (tuple(lines), w, h)
        if key != self._key:
            self._strip, self._key = _overlay_strip(list(lines), w, max(12, h // 24)), key
        rgb, alpha = self._strip  # type: ignore[misc]
        sh = min(rgb.shape[0], h)
        out = frame_rgb.copy()
        top = out[:sh].astype(np.float32)
        out[:sh] = (top * (1 - alpha[:sh]) + rgb[:sh] * alpha[:sh]).astype(np.uint8)
        return out


class EpisodeVideo:
    """Write RGB frames to ``path`` (MP4) with a fixed text overlay at the top."""

    def __init__(self, path: str | Path, lines: list[str], fps: int = 20) -> None:
        self.path = Path(path)
        self.lines = lines
        self.writer = VideoWriter(path, fps)
        self.overlay = TextOverlay()

    def add(self, frame_rgb: np.ndarray) -> None:
        self.writer.write(self.overlay.apply(frame_rgb, self.lines))

    def close(self) -> None:
        self.writer.close()
