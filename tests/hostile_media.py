"""Hostile uploads, built here byte by byte or with ffmpeg (nothing binary is committed):
what the decode budget, the deadline and the screens are tested (and benchmarked) against."""

from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from memeswap.inference.media import ffmpeg


def decode_cost_gif(canvas: int = 6000, frames: int = 300, delay_cs: int = 4) -> bytes:
    """A GIF within every per-file limit (36 MP canvas, 300 frames, 12 s, 7 KB) whose frames
    are 1x1 images on a 6000x6000 logical screen: Pillow composes each one on the full canvas,
    so decoding it all is minutes of CPU."""
    head = b"GIF89a" + struct.pack("<HHBBB", canvas, canvas, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = (
        struct.pack("<BBBBHBB", 0x21, 0xF9, 4, 0x04, delay_cs, 0, 0)  # graphic control: the delay
        + struct.pack("<BHHHHB", 0x2C, 0, 0, 1, 1, 0)  # image descriptor: 1x1 at the corner
        + b"\x02\x02\x44\x01\x00"  # LZW: clear, index 0, end
    )
    return head + frame * frames + b"\x3b"


def huge_canvas_png(side: int = 20000) -> bytes:
    """A 400-megapixel black-and-white PNG of about 50 KB."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, "PNG")
    return buffer.getvalue()


def long_video(path: Path, seconds: float = 60.0) -> Path:
    """A minute (four times the limit) of a tiny test picture, a few hundred KB."""
    subprocess.run([ffmpeg.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc=size=64x64:rate=10:duration={seconds}", "-c:v", "libx264", "-preset",
                    "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def mp4_of(frames: list[np.ndarray], path: Path, fps: int = 24, title: str | None = None) -> Path:
    """Frames (RGB, one size) as an H.264 MP4, with a `title` tag when given."""
    height, width = frames[0].shape[:2]
    tags = ["-metadata", f"title={title}"] if title is not None else []
    subprocess.run([ffmpeg.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
                    "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0", *tags,
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
                   input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames), check=True)
    return path


def declare_short(mp4: bytes, factor: int = 10) -> bytes:
    """The same MP4 with its movie and track durations (mvhd, mdhd) patched `factor` times
    shorter: ffmpeg then announces a short clip, and still decodes every frame."""
    data = bytearray(mp4)
    for atom in (b"mvhd", b"mdhd"):
        at = data.find(atom)
        assert at > 0 and data[at + 4] == 0, "version 0 boxes expected"
        duration_at = at + 4 + 4 + 4 + 4 + 4  # version+flags, created, modified, time scale
        duration = struct.unpack_from(">I", data, duration_at)[0]
        struct.pack_into(">I", data, duration_at, max(1, duration // factor))
    return bytes(data)


def still_frames(image: np.ndarray, count: int, side: int = 256) -> list[np.ndarray]:
    """`count` copies of `image` squeezed to side x side."""
    frame = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    return [frame] * count


def late_face_clip(early: np.ndarray, late: np.ndarray, path: Path, lie: str) -> bytes:
    """120 frames at 24 fps, `early` in the first 60 and `late` in the last 60, as an MP4
    that announces half a second: by a title tag that reads "Duration: 00:00:00.50" (`lie`
    "title tag"), or by the durations in its header (`lie` "patched duration"). A screen
    trusting either would look at the first 12 frames only."""
    frames = still_frames(early, 60) + still_frames(late, 60)
    if lie == "title tag":
        return mp4_of(frames, path, fps=24, title="Duration: 00:00:00.50").read_bytes()
    return declare_short(mp4_of(frames, path, fps=24).read_bytes())
