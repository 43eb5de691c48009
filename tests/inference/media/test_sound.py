"""A template's sound in MP4 output: cut to the output's length, counted in the byte
budget; formats without sound ignore it."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from memeswap.inference.media import ffmpeg
from memeswap.inference.media.encode import encode_frames
from memeswap.inference.media.sound import template_sound
from tests.inference.media.frames import moving_frames


@pytest.fixture(scope="module")
def toned(tmp_path_factory) -> Path:
    """A 5 s video with a 5 s tone: longer than the 2 s outputs below."""
    path = tmp_path_factory.mktemp("sound") / "toned.mp4"
    subprocess.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=12:duration=5",
                    "-f", "lavfi", "-i", "sine=frequency=330:duration=5", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(path)], check=True, timeout=120)
    return path


def described(data: bytes, tmp_path: Path) -> tuple[str, float | None]:
    path = tmp_path / "out.mp4"
    path.write_bytes(data)
    info, stderr = ffmpeg.probe(path)
    assert info is not None
    return stderr, info.duration


def test_the_sound_is_cut_to_the_output_and_counts_in_the_budget(toned, tmp_path):
    rng = np.random.default_rng(7)  # noise: a video large enough to make room for the sound by shrinking
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(24)]  # 2 s at 12 fps
    silent = encode_frames(frames, "mp4", fps=12)
    sound = template_sound(toned, 2.0)
    assert sound is not None
    full = encode_frames(frames, "mp4", fps=12, sound=sound)
    stderr, duration = described(full.data, tmp_path)
    assert "Audio: aac" in stderr and duration is not None and abs(duration - 2.0) < 0.1
    budget = len(silent.data) + 2_000  # the sound (~24 KB for 2 s) does not fit beside full-quality video
    assert len(full.data) > budget
    fitted = encode_frames(frames, "mp4", fps=12, max_bytes=budget, sound=sound)
    assert len(fitted.data) <= budget
    assert "Audio: aac" in described(fitted.data, tmp_path)[0]


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_formats_without_sound_ignore_it(toned, fmt):
    media = encode_frames(moving_frames(6, 64, 48), fmt, fps=12, sound=template_sound(toned, 0.5))
    assert media.mime == f"image/{fmt}"


def test_a_file_without_sound_or_not_a_video_has_none(tmp_path):
    silent = tmp_path / "silent.mp4"
    silent.write_bytes(encode_frames(moving_frames(6, 64, 48), "mp4", fps=12).data)
    gif = tmp_path / "clip.gif"
    gif.write_bytes(encode_frames(moving_frames(6, 64, 48), "gif", fps=12).data)
    assert template_sound(silent, 1.0) is None and template_sound(gif, 1.0) is None


def test_a_sound_ffmpeg_cannot_read_is_left_out_not_the_meme(toned, tmp_path):
    """The sound's file is gone by the time the encoder reads it: the MP4 comes without it."""
    copy = tmp_path / "gone.mp4"
    copy.write_bytes(toned.read_bytes())
    sound = template_sound(copy, 1.0)
    assert sound is not None
    copy.unlink()
    media = encode_frames(moving_frames(12, 64, 48), "mp4", fps=12, sound=sound)
    stderr, _ = described(media.data, tmp_path)
    assert "Video: h264" in stderr and "Audio:" not in stderr
