"""The decode budget (frames x pixels, checked before decoding and counted while decoding),
the deadline that stops decoding between frames, and a probe that metadata cannot fool."""

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from inference.errors import DeadlineExceededError, InputError, LimitExceededError
from inference.media import ffmpeg
from inference.media.decode import probe_media, read_frames
from inference.media.limits import Deadline, MediaLimits
from tests.hostile_media import decode_cost_gif, declare_short, mp4_of
from tests.inference.media.test_decode import make_video


def test_the_decode_cost_gif_is_refused_from_its_header(tmp_path):
    path = tmp_path / "cost.gif"
    path.write_bytes(decode_cost_gif())
    started = time.monotonic()
    with pytest.raises(LimitExceededError, match="too big to decode: 300 frames of 6000x6000 pixels"):
        probe_media(path)
    with pytest.raises(LimitExceededError, match="too big to decode"):
        next(read_frames(path))
    assert time.monotonic() - started < 2


def test_legitimate_templates_fit_the_default_budgets(tmp_path):
    """A 640x640 GIF of 300 frames and a 1080p video of 300 frames are admitted."""
    gif = tmp_path / "big.gif"
    gif.write_bytes(decode_cost_gif(canvas=640, frames=300))
    assert probe_media(gif).frame_count == 300
    video = make_video(tmp_path / "hd.mp4", 10.0, fps=30, size="1920x1080")
    info = probe_media(video)
    assert (info.width, info.height, info.frame_count) == (1920, 1080, 300)


def test_a_video_over_the_budget_is_refused_before_decoding(tmp_path):
    video = make_video(tmp_path / "clip.mp4", 2.0, fps=10)
    limits = MediaLimits(max_video_decode_pixels=96 * 64 * 10)
    with pytest.raises(LimitExceededError, match="too big to decode: up to 20 frames of 96x64 pixels"):
        probe_media(video, limits)


def test_a_video_that_declares_itself_short_stops_at_the_budget(tmp_path):
    """The header says 12 frames (inside the budget); decoding counts and stops at 30."""
    frames = [np.full((64, 96, 3), i * 2, np.uint8) for i in range(120)]
    honest = mp4_of(frames, tmp_path / "honest.mp4")
    lying = tmp_path / "lying.mp4"
    lying.write_bytes(declare_short(honest.read_bytes()))
    limits = MediaLimits(max_video_decode_pixels=96 * 64 * 30)
    assert probe_media(lying, limits).frame_count == 12
    decoded = []
    with pytest.raises(LimitExceededError, match="too big to decode: 31 frames of 96x64"):
        for frame in read_frames(lying, limits):
            decoded.append(frame)
    assert len(decoded) == 30


def test_a_video_stream_that_grows_past_its_header_is_stopped(tmp_path):
    """A stream whose first pictures are 96x64 (what the probe sees) and later ones 640x480:
    decoding stops at the first larger picture instead of decoding it at its real size."""
    parts = []
    for size in ("96x64", "640x480"):
        part = tmp_path / f"{size}.h264"
        subprocess.run([ffmpeg.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", f"testsrc=size={size}:rate=10:duration=1", "-c:v", "libx264", "-preset", "ultrafast",
                        "-pix_fmt", "yuv420p", "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(part)], check=True)
        parts.append(part.read_bytes())
    joined = tmp_path / "joined.h264"
    joined.write_bytes(b"".join(parts))
    grown = tmp_path / "grown.mkv"
    subprocess.run([ffmpeg.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-r", "10", "-f", "h264",
                    "-i", str(joined), "-c", "copy", str(grown)], check=True)
    info = probe_media(grown)
    assert (info.width, info.height) == (96, 64)
    decoded = []
    with pytest.raises(InputError, match="damaged"):
        for frame in read_frames(grown):
            decoded.append(frame)
    assert len(decoded) <= 10


@pytest.mark.parametrize("kind", ["gif", "mp4"])
def test_a_deadline_stops_decoding_between_frames(tmp_path, kind):
    if kind == "gif":
        path = tmp_path / "clip.gif"
        path.write_bytes(decode_cost_gif(canvas=64, frames=40))
    else:
        path = make_video(tmp_path / "clip.mp4", 4.0, fps=10)
    deadline = Deadline(60.0)
    stream = read_frames(path, deadline=deadline)
    for _ in range(3):
        next(stream)
    assert deadline.expire()  # the waiter gives up
    with pytest.raises(DeadlineExceededError, match="longer than 60 s and was stopped"):
        next(stream)
    with pytest.raises(DeadlineExceededError):  # past its time before it starts: nothing decoded
        next(read_frames(path, deadline=Deadline(0.0)))


def test_a_deadline_once_committed_lets_the_work_finish():
    now = [0.0]
    deadline = Deadline(5.0, clock=lambda: now[0])
    deadline.check()
    deadline.commit()
    now[0] = 10.0
    assert not deadline.expire() and not deadline.expired
    deadline.check()  # past its point of no return: it finishes
    late = Deadline(5.0, clock=lambda: now[0])
    now[0] = 20.0
    with pytest.raises(DeadlineExceededError):
        late.commit()
    assert late.expire()


def test_a_title_that_reads_like_a_duration_does_not_fool_the_probe(tmp_path):
    frames = [np.full((64, 96, 3), 100, np.uint8)] * 120
    tagged = mp4_of(frames, tmp_path / "tagged.mp4", fps=24, title="Duration: 00:00:00.50")
    info = probe_media(tagged)
    assert info.duration == pytest.approx(5.0) and info.frame_count == 120


def test_a_metadata_value_over_several_lines_does_not_fool_the_probe(tmp_path):
    clip = make_video(tmp_path / "clip.mkv", 2.0, fps=10, extra=[
        "-metadata", "title=a\n  Duration: 00:00:00.50, start: 0\n  Stream #0:0: Video: h264, 16x16, 25 fps"])
    stream, stderr = ffmpeg.probe(Path(clip), "matroska")
    assert "  Duration: 00:00:00.50" in stderr  # ffmpeg does print the tag's lines
    assert (stream.width, stream.height, stream.duration) == (96, 64, pytest.approx(2.0))
