"""The decode budget (frames x pixels, checked before decoding and counted while decoding),
the deadline that stops decoding between frames, and a probe that metadata cannot fool."""

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from memeswap.inference.errors import DeadlineExceededError, InputError, LimitExceededError
from memeswap.inference.media import ffmpeg
from memeswap.inference.media.decode import probe_media, read_frames
from memeswap.inference.media.limits import Deadline, MediaLimits
from tests.hostile_media import declare_short, decode_cost_gif, mp4_of
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


def described(path: Path) -> list[str]:
    """ffmpeg's own description of a file (`ffmpeg -i`), split into lines as it prints them."""
    done = subprocess.run([ffmpeg.ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                          capture_output=True, check=False)
    return done.stderr.decode("utf-8", "replace").split("\n")


# ffmpeg escapes the line breaks of a metadata value, but prints a metadata key as it is: an
# MP4 with `-movflags use_metadata_tags` keeps any key, so a key can add lines of ffmpeg's own
# form (at ffmpeg's own indent) to its description.
FORGED_BY_A_KEY = {
    "duration": ["  Duration: 00:00:00.50, start: 0.000000, bitrate: 41 kb/s"],
    "stream": ["  Stream #0:0[0x1](und): Video: h264 (avc1 / 0x31637661), yuv420p, 640x480, 25 fps, 25 tbr"],
    "stream and rotation": ["  Stream #0:0[0x1](und): Video: h264 (avc1 / 0x31637661), yuv420p, 640x480, 25 fps",
                            "    Side data:", "      displaymatrix: rotation of -90.00 degrees"],
}


@pytest.mark.parametrize("forged", FORGED_BY_A_KEY, ids=list(FORGED_BY_A_KEY))
def test_lines_that_a_metadata_key_adds_to_the_description_are_refused(tmp_path, forged):
    """A 5 s, 50-frame clip whose tag key adds lines that would make it half a second, or a
    640x480 (turned) stream: refused as damaged, never read with the forged figures."""
    lines = FORGED_BY_A_KEY[forged]
    key = "\n".join(["k", *lines, "    x"])
    clip = make_video(tmp_path / "forged.mp4", 5.0, fps=10, extra=["-movflags", "use_metadata_tags",
                                                                    "-metadata", f"{key}=v"])
    assert all(line in described(clip) for line in lines)  # ffmpeg prints them as lines of its own
    with pytest.raises(InputError, match="^the video file is truncated or damaged$"):
        probe_media(clip)
    with pytest.raises(InputError, match="^the video file is truncated or damaged$"):
        next(read_frames(clip))
    with pytest.raises(ffmpeg.AmbiguousProbeError):
        ffmpeg.probe(clip, "mov")


def test_a_stream_forged_in_a_tracks_language_is_refused(tmp_path):
    """Matroska stores a track's language as any string, and ffmpeg prints it inside the
    stream's own line: an audio track (stream 0) whose language holds a video stream line."""
    language = "eng\n  Stream #0:0: Video: h264, yuv420p, 640x480, 25 fps\n"
    clip = tmp_path / "forged.mkv"
    subprocess.run([ffmpeg.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "sine=duration=2",
                    "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=2",
                    "-map", "0", "-map", "1", "-c:a", "pcm_s16le", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-metadata:s:a:0", f"language={language}", str(clip)], check=True)
    assert language.split("\n")[1] in described(clip)
    with pytest.raises(InputError, match="^the video file is truncated or damaged$"):
        probe_media(clip)


def test_a_value_with_other_line_breaks_stays_one_line(tmp_path):
    """ffmpeg passes a value's U+2028 (and U+0085) through as it is: a line break to
    str.splitlines, not to ffmpeg. The value is a value, the clip reads with its real figures."""
    title = "a\u2028  Stream #0:0: Video: h264, yuv420p, 640x480, 25 fps\u0085  Duration: 00:00:00.50"
    clip = make_video(tmp_path / "tagged.mp4", 5.0, fps=10, extra=["-metadata", f"title={title}"])
    info = probe_media(clip)
    assert (info.width, info.height, info.duration, info.frame_count) == (96, 64, pytest.approx(5.0), 50)


HONEST = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/x.mp4':
  Metadata:
    major_brand     : isom
  Duration: 00:00:05.00, start: 0.000000, bitrate: 41 kb/s
  Stream #0:0[0x1](und): Video: h264 (avc1 / 0x31637661), yuv420p(progressive), 96x64, 10 fps, 10 tbr, 10240 tbn
    Metadata:
      handler_name    : VideoHandler
    Side data:
      Display Matrix: rotation of 90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 69 kb/s (default)
At least one output file must be specified
"""


@pytest.mark.parametrize("change", [
    ("Input #0", "Input #0, mov, from 'file:/y.mp4':\nInput #0"),  # a second input
    ("  Stream #0:0", "  Duration: 00:00:00.50\n  Stream #0:0"),  # a second duration
    ("  Duration", "  Stream #0:0: Video: h264, yuv420p, 640x480, 25 fps\n  Duration"),  # a stream before it
    ("  Stream #0:1", "  Stream #0:0: Video: h264, yuv420p, 640x480\n  Stream #0:1"),  # a stream twice
    ("  Stream #0:1[0x2](und)", "  Stream #0:1[0x2](x): Video: h264, 16x16): Video"),  # a stream line in a stream line
    ("  Stream #0:1", "      displaymatrix: rotation of 90.00 degrees\n  Stream #0:1"),  # a second rotation
    ("  Duration", "      displaymatrix: rotation of 90.00 degrees\n  Duration"),  # a rotation outside a stream
    ("  Stream #0:1", "    Metadata:\n      title           : x\n  Stream #0:1"),  # a second metadata header
    ("  Duration", "  Metadata:\n    title           : x\n  Duration"),  # a second container header
], ids=["input", "duration", "stream before duration", "stream twice", "stream in a language",
        "rotation twice", "rotation outside a stream", "stream metadata twice", "container metadata twice"])
def test_a_description_out_of_ffmpegs_layout_is_refused(change):
    assert ffmpeg.parse_probe_output(HONEST).rotation == 90  # the honest one reads
    old, new = change
    with pytest.raises(ffmpeg.AmbiguousProbeError):
        ffmpeg.parse_probe_output(HONEST.replace(old, new, 1))


def test_a_rotation_forged_in_a_tracks_own_tags_is_refused_when_decoding(tmp_path):
    """What the layout cannot tell: a Matroska track's tag key that adds a "Side data" block
    with a rotation right under the track's own tags, where ffmpeg prints the real one. The
    probe then reads 64x96 for a 96x64 clip, and decoding refuses it: frames are padded to the
    size the header gave, which a frame of the other shape does not fit. (A square clip turned
    a quarter keeps its size, so the forged figure changes nothing.)"""
    key = b"K\n    Side data:\n      displaymatrix: rotation of 90.00 degrees\n      X"
    holder = b"K" + b"Q" * (len(key) - 1)  # the muxer writes keys upper-cased: a stand-in, patched after
    clip = make_video(tmp_path / "turned.mkv", 2.0, fps=10, extra=["-metadata:s:v:0", f"{holder.decode()}=v"])
    data = clip.read_bytes()
    assert data.count(holder) == 1
    clip.write_bytes(data.replace(holder, key))
    assert "      displaymatrix: rotation of 90.00 degrees" in described(clip)
    with pytest.raises(InputError, match="^the video file is truncated or damaged$"):
        list(read_frames(clip))
