"""Encoding frames to GIF / MP4 / WebP: round trips, metadata, byte budgets, cleanup."""

import glob
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from memeswap.inference.errors import InputError, OutputTooLargeError
from memeswap.inference.media import ffmpeg
from memeswap.inference.media.decode import probe_media, read_frames
from memeswap.inference.media.encode import (
    EncodedMedia,
    StreamingEncoder,
    encode_frames,
    write_atomically,
)
from tests.inference.media.frames import moving_frames


def photo_frames(n: int, size: int) -> list[np.ndarray]:
    """The astronaut photo, panned and zoomed a little more in each frame."""
    photo = skimage.data.astronaut()
    frames = []
    for i in range(n):
        t = i / max(1, n - 1)
        zoom = (1.0 + 0.3 * t) * size / 480
        cx, cy = 256 + 30 * np.sin(2 * np.pi * t), 256 + 20 * np.cos(2 * np.pi * t)
        m = np.float32([[zoom, 0, size / 2 - zoom * cx], [0, zoom, size / 2 - zoom * cy]])
        frames.append(cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return frames


def save(tmp_path: Path, result: EncodedMedia) -> Path:
    path = tmp_path / f"out.{result.format}"
    path.write_bytes(result.data)
    return path


def temp_folders() -> set[str]:
    return set(glob.glob(str(Path(tempfile.gettempdir()) / "memeswap-encode-*")))


@pytest.mark.parametrize("fmt, mime", [("gif", "image/gif"), ("mp4", "video/mp4"), ("webp", "image/webp")])
def test_round_trip(tmp_path, fmt, mime):
    frames = moving_frames(24, 160, 120)
    result = encode_frames(frames, fmt, fps=12)
    assert (result.mime, result.format, result.width, result.height) == (mime, fmt, 160, 120)
    assert result.frame_count == 24 and result.fps == 12
    assert result.colors == (256 if fmt == "gif" else None)
    path = save(tmp_path, result)
    info = probe_media(path)
    assert (info.width, info.height) == (160, 120)
    assert abs(info.fps - 12) < 1  # GIF delays are whole centiseconds: 8/8/9
    decoded = list(read_frames(path))
    assert len(decoded) == 24
    for i in (0, 11, 23):
        assert np.abs(decoded[i].astype(int) - frames[i]).mean() < 6


def test_gif_timing_total_is_preserved(tmp_path):
    result = encode_frames(moving_frames(24, 64, 48), "gif", fps=24)
    with Image.open(save(tmp_path, result)) as im:
        total = 0
        for i in range(im.n_frames):
            im.seek(i)
            total += im.info["duration"]
    assert total == 1000


def test_gif_loop_and_comment(tmp_path):
    frames = moving_frames(4, 48, 32)
    looped = encode_frames(frames, "gif", fps=10, comment="made with AI (memeswap)")
    with Image.open(save(tmp_path, looped)) as im:
        assert im.info["loop"] == 0
        assert im.info["comment"] == b"made with AI (memeswap)"
    once = encode_frames(frames, "gif", fps=10, loop=False)
    assert b"NETSCAPE2.0" not in once.data and b"NETSCAPE2.0" in looped.data


def test_gif_still_background_uses_transparency(tmp_path):
    """Only the moving disc should be re-sent: far smaller than full frames."""
    frames = moving_frames(20, 200, 200)
    result = encode_frames(frames, "gif", fps=10)
    single = encode_frames(frames[:1], "gif", fps=10)
    assert len(result.data) < 20 * len(single.data) / 3
    decoded = list(read_frames(save(tmp_path, result)))
    assert np.abs(decoded[-1].astype(int) - frames[-1]).mean() < 6


def test_gif_keeps_flat_colours_exact(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128), (30, 200, 120), (0, 0, 0), (255, 255, 255)]
    frame = np.zeros((32, 32 * len(colours), 3), np.uint8)
    for i, colour in enumerate(colours):
        frame[:, i * 32:(i + 1) * 32] = colour
    decoded = list(read_frames(save(tmp_path, encode_frames([frame] * 3, "gif", fps=10))))
    assert len(decoded) == 3 and np.array_equal(decoded[2], frame)


def test_gif_over_50_fps_drops_frames():
    result = encode_frames(moving_frames(12, 64, 48), "gif", fps=60)
    assert result.fps == 30 and result.frame_count == 6


def test_mp4_is_compatible(tmp_path):
    frames = moving_frames(10, 161, 121)  # odd size
    result = encode_frames(frames, "mp4", fps=10, comment="AI-generated")
    assert (result.width, result.height) == (160, 120)
    stream, stderr = ffmpeg.probe(save(tmp_path, result))
    assert stream.codec == "h264" and stream.pix_fmt == "yuv420p"
    assert (stream.width, stream.height) == (160, 120)
    assert stream.audio_streams == 0 and "Audio:" not in stderr
    assert stream.metadata["comment"] == "AI-generated"
    assert result.data.index(b"moov") < result.data.index(b"mdat")  # faststart


def test_webp_loop_and_comment(tmp_path):
    result = encode_frames(moving_frames(6, 64, 48), "webp", fps=10, comment="AI & <friends>")
    with Image.open(save(tmp_path, result)) as im:
        assert im.n_frames == 6 and im.info["loop"] == 0
        assert b"AI &amp; &lt;friends&gt;" in im.info["xmp"]
    once = encode_frames(moving_frames(6, 64, 48), "webp", fps=10, loop=False)
    with Image.open(save(tmp_path, once)) as im:
        assert im.info["loop"] == 1


@pytest.mark.parametrize("fmt", ["gif", "mp4", "webp"])
def test_single_frame(tmp_path, fmt):
    result = encode_frames(moving_frames(1, 40, 30), fmt, fps=10, comment="one")
    frames = list(read_frames(save(tmp_path, result)))
    assert len(frames) == 1 and frames[0].shape == (30, 40, 3)


@pytest.fixture(scope="module")
def photo48() -> list[np.ndarray]:
    return photo_frames(48, 480)


def test_gif_budget_steps_down(tmp_path, photo48):
    budget = 1_200_000  # the 256-colour full-size GIF is ~6 MB
    result = encode_frames(photo48, "gif", fps=16, max_bytes=budget)
    assert 0.8 * budget <= len(result.data) <= budget
    assert result.colors == 256 and result.width < 480
    frames = list(read_frames(save(tmp_path, result)))
    assert len(frames) == result.frame_count and frames[0].shape == (result.height, result.width, 3)


def test_gif_budget_keeps_colours_and_frame_rate_first(photo48):
    """A little over budget: a slightly smaller GIF, not fewer colours (which posterise skin)."""
    full = encode_frames(photo48[:12], "gif", fps=16)
    budget = int(len(full.data) * 0.9)
    result = encode_frames(photo48[:12], "gif", fps=16, max_bytes=budget)
    assert 0.8 * budget <= len(result.data) <= budget
    assert result.colors == 256 and result.frame_count == 12 and 400 <= result.width < 480


@pytest.mark.parametrize("fmt", ["mp4", "webp"])
def test_video_budgets_step_down(tmp_path, photo48, fmt):
    frames = photo48[:24]
    full = encode_frames(frames, fmt, fps=16)
    budget = len(full.data) // 3
    result = encode_frames(frames, fmt, fps=16, max_bytes=budget)
    assert 0.8 * budget <= len(result.data) <= budget
    assert len(list(read_frames(save(tmp_path, result)))) == 24


@pytest.mark.parametrize("fmt", ["gif", "mp4", "webp"])
@pytest.mark.parametrize("share", [0.95, 0.45, 0.2, 0.12])
def test_budgets_are_used_closely_in_few_encodes(photo48, fmt, share, monkeypatch):
    """Over budget, the result fits and uses at least 80% of the budget, within six encodes
    (the full-quality one and at most five more)."""
    frames = photo48[:24]
    full = encode_frames(frames, fmt, fps=16)
    budget = int(len(full.data) * share)
    encodes = []
    encode = StreamingEncoder._encode

    def counted(self, *args, **kwargs):
        encodes.append(args[0])
        return encode(self, *args, **kwargs)

    monkeypatch.setattr(StreamingEncoder, "_encode", counted)
    result = encode_frames(frames, fmt, fps=16, max_bytes=budget)
    assert 0.8 * budget <= len(result.data) <= budget, (len(result.data) / budget, encodes)
    assert len(encodes) <= 6, encodes


@pytest.mark.parametrize("fmt", ["gif", "mp4", "webp"])
def test_impossible_budget(photo48, fmt):
    with pytest.raises(OutputTooLargeError) as err:
        encode_frames(photo48[:8], fmt, fps=16, max_bytes=1000)
    assert "1000 bytes" in str(err.value) and "\n" not in str(err.value)


def test_streaming_from_a_thread_and_cleanup():
    before = temp_folders()
    frames = moving_frames(16, 96, 64)
    encoder = StreamingEncoder("mp4", fps=8)

    def produce():
        for f in frames:
            encoder.write(f)

    worker = threading.Thread(target=produce)
    worker.start()
    worker.join()
    assert encoder.frame_count == 16
    assert len(temp_folders() - before) == 1
    result = encoder.finish()
    assert result.frame_count == 16 and result.data[4:8] == b"ftyp"
    assert temp_folders() == before
    with pytest.raises(RuntimeError):
        encoder.write(frames[0])


@pytest.mark.parametrize("fmt", ["gif", "mp4"])
def test_dead_ffmpeg_stream_is_recovered_from_the_spool(tmp_path, fmt):
    frames = moving_frames(10, 64, 48)
    with StreamingEncoder(fmt, fps=10) as encoder:
        for i, frame in enumerate(frames):
            if i == 3:
                encoder._res.proc.kill()  # simulate ffmpeg crashing mid-stream
            encoder.write(frame)
        result = encoder.finish()
    assert len(list(read_frames(save(tmp_path, result)))) == 10


def test_errors_close_everything():
    before = temp_folders()
    with pytest.raises(ValueError, match="size changed"):
        with StreamingEncoder("gif", fps=10) as encoder:
            encoder.write(np.zeros((20, 20, 3), np.uint8))
            encoder.write(np.zeros((20, 22, 3), np.uint8))
    assert temp_folders() == before
    with pytest.raises(ValueError):
        StreamingEncoder("avi", fps=10)
    with pytest.raises(ValueError):
        StreamingEncoder("gif", fps=0)
    with pytest.raises(ValueError):
        StreamingEncoder("gif", fps=10).write(np.zeros((20, 20), np.uint8))
    with pytest.raises(ValueError, match="no frames"):
        StreamingEncoder("gif", fps=10).finish()


def test_write_atomically(tmp_path):
    target = tmp_path / "result.gif"
    write_atomically(target, b"GIF89a...")
    write_atomically(target, b"GIF89a replaced")
    assert target.read_bytes() == b"GIF89a replaced"
    assert [p.name for p in tmp_path.iterdir()] == ["result.gif"]
    with pytest.raises(InputError, match="the output folder does not exist"):
        write_atomically(tmp_path / "missing" / "result.gif", b"x")


def test_the_gif_writer_keeps_every_index_it_is_given(tmp_path):
    """Our writer takes LZW data out of Pillow's one-frame GIFs: whatever Pillow puts around it,
    every palette index of every frame reads back unchanged (all 256, and a cropped frame)."""
    from PIL import Image

    from memeswap.inference.media.gif_writer import GifWriter

    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (255, 3), dtype=np.uint8)
    first = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) % 255
    second = first.copy()
    second[10:20, 30:50] = rng.integers(0, 255, (10, 20))
    path = tmp_path / "indices.gif"
    with open(path, "wb") as fh:
        writer = GifWriter(fh, 64, 48, palette, loop=True, comment="AI-generated")
        writer.add(first.astype(np.uint8), 10)
        writer.add(second.astype(np.uint8), 10)
        writer.close()
    with Image.open(path) as gif:
        gif.seek(0)
        assert np.array_equal(np.asarray(gif.convert("RGB")), palette[first])
        gif.seek(1)
        assert np.array_equal(np.asarray(gif.convert("RGB")), palette[second])
