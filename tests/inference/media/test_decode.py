"""Decoding stills and templates: formats, modes, limits and hostile files.

Every input is built here (numpy / Pillow / ffmpeg), nothing binary is committed.
"""

import io
import os
import struct
import subprocess
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from memeswap.inference.errors import InputError, LimitExceededError, UnsupportedMediaError
from memeswap.inference.media import ffmpeg
from memeswap.inference.media.decode import MediaInfo, load_image, probe_media, read_frames
from memeswap.inference.media.limits import MediaLimits
from tests.inference.media.frames import moving_frames


def encode_still(array_or_image, fmt: str, **save_args) -> bytes:
    im = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buf = io.BytesIO()
    im.save(buf, fmt, **save_args)
    return buf.getvalue()


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gif_of_pixels(frame_count: int, canvas: int = 16, delay_cs: int = 10) -> bytes:
    """A GIF whose frames are single 1x1 pixels: ~23 bytes a frame, made without encoding."""
    head = b"GIF89a" + struct.pack("<HHBBB", canvas, canvas, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = (
        struct.pack("<BBBBHBB", 0x21, 0xF9, 4, 0x04, delay_cs, 0, 0)
        + struct.pack("<BHHHHB", 0x2C, 0, 0, 1, 1, 0)
        + b"\x02\x02\x44\x01\x00"  # LZW: clear, index 0, end
    )
    return head + frame * frame_count + b"\x3b"


def make_video(path: Path, seconds: float, fps: int = 30, size: str = "96x64", extra: list[str] | None = None) -> Path:
    subprocess.run(
        [ffmpeg.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}:duration={seconds}",
         *(extra or []), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )
    return path


def child_processes() -> list[tuple[int, str]]:
    """(pid, state) of this process's ffmpeg children, from /proc (other children, such as
    the session's redis-server, are not the decoder's business)."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == me and "ffmpeg" in name:
            found.append((int(entry), fields[0]))
    return found


# --------------------------------------------------------------------------- load_image


def test_exif_orientation_6_is_applied():
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)  # left half red
    stored[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    data = encode_still(stored, "JPEG", exif=exif, quality=95)
    out = load_image(data)
    assert out.shape == (40, 20, 3)
    top, bottom = out[:18].reshape(-1, 3).mean(0), out[22:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60  # the stored left edge is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_cmyk_jpeg():
    im = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # red
    out = load_image(encode_still(im, "JPEG", quality=95))
    assert out.dtype == np.uint8 and out.shape == (32, 32, 3)
    r, g, b = out.reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60


def test_greyscale_l_png():
    grey = np.tile(np.arange(64, dtype=np.uint8) * 4, (32, 1))
    out = load_image(encode_still(grey, "PNG"))
    assert out.shape == (32, 64, 3)
    assert np.array_equal(out[:, :, 0], grey) and np.array_equal(out[:, :, 1], grey)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    values = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (32, 1))
    path = tmp_path / "g16.png"
    cv2.imwrite(str(path), values)
    assert Image.open(path).mode.startswith("I")
    out = load_image(path)
    assert out.shape == (32, 64, 3)
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255
    assert abs(int(out[0, 32, 0]) - 132) <= 2  # middle of the ramp, not white
    assert np.all(np.diff(out[0, :, 0].astype(int)) >= 0)


def test_sixteen_bit_rgb_png(tmp_path):
    values = np.zeros((32, 32, 3), np.uint16)
    values[..., 2] = 65535  # cv2 is BGR: red
    values[..., 1] = 32768
    path = tmp_path / "rgb16.png"
    cv2.imwrite(str(path), values)
    out = load_image(path)
    assert tuple(out[5, 5]) == (255, 128, 0)


def test_rgba_is_composited_over_grey():
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[:, :10] = (255, 0, 0, 255)  # opaque red
    rgba[:, 10:20] = (255, 0, 0, 0)  # transparent
    rgba[:, 20:] = (255, 255, 255, 128)  # half-transparent white
    out = load_image(encode_still(rgba, "PNG"))
    assert tuple(out[5, 5]) == (255, 0, 0)
    assert tuple(out[5, 15]) == (128, 128, 128)
    assert all(190 <= c <= 193 for c in out[5, 25])


@pytest.mark.parametrize("mode", ["LA", "P"])
def test_other_transparent_modes(mode):
    im = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    im.paste((250, 250, 250, 255), (0, 0, 12, 24))
    im = im.convert(mode) if mode == "LA" else im.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    if mode == "P":
        im.info["transparency"] = im.getpixel((20, 5))
    out = load_image(encode_still(im, "PNG"))
    assert out[5, 3].min() > 200
    assert tuple(out[5, 20]) == (128, 128, 128)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_formats(fmt):
    photo = skimage.data.astronaut()[::4, ::4]
    out = load_image(encode_still(photo, fmt))
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - photo).mean() < 20


def test_path_source_and_missing_path(tmp_path):
    path = tmp_path / "selfie.jpg"
    path.write_bytes(encode_still(skimage.data.astronaut(), "JPEG"))
    assert load_image(path).shape == (512, 512, 3)
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "missing.jpg")


def test_empty_input(tmp_path):
    with pytest.raises(UnsupportedMediaError, match="empty"):
        load_image(b"")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UnsupportedMediaError, match="empty"):
        load_image(tmp_path / "empty.png")


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is a text file pretending to be a photo\n" * 20)
    with pytest.raises(UnsupportedMediaError) as err:
        load_image(path)
    assert str(err.value) == "that file is not an image I can read (JPEG, PNG, WebP, GIF)"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated(fmt):
    data = encode_still(skimage.data.astronaut(), fmt)
    with pytest.raises(InputError) as err:
        load_image(data[: len(data) * 2 // 3])
    assert "truncated or damaged" in str(err.value)
    assert "\n" not in str(err.value)


def test_decompression_bomb_is_rejected_before_decoding():
    row = b"\x00" + b"\x00" * 1250  # filter byte + 10,000 one-bit pixels
    idat = zlib.compress(row * 10_000, 9)
    bomb = png_bytes(10_000, 10_000, 1, 0, idat)
    assert len(bomb) < 20_000
    start = time.perf_counter()
    with pytest.raises(LimitExceededError, match="too large"):
        load_image(bomb)
    assert time.perf_counter() - start < 0.5


def test_bomb_under_pillows_limit_but_over_ours():
    # 7000 x 7000 = 49 Mpx: below Pillow's own warning level, above our 40 Mpx.
    bomb = png_bytes(7000, 7000, 1, 0, b"not even valid data")
    with pytest.raises(LimitExceededError, match="7000x7000"):
        load_image(bomb)


def test_pillow_bomb_error_becomes_limit_error():
    bomb = png_bytes(20_000, 20_000, 1, 0, b"xx")
    with pytest.raises(LimitExceededError):
        load_image(bomb, MediaLimits(max_image_pixels=10**10))


def test_upload_size_and_min_side():
    data = encode_still(skimage.data.astronaut(), "JPEG")
    with pytest.raises(LimitExceededError, match="too large"):
        load_image(data, MediaLimits(max_upload_bytes=1000))
    with pytest.raises(InputError, match="too small"):
        load_image(encode_still(np.zeros((8, 8, 3), np.uint8), "PNG"))


# --------------------------------------------------------------------------- probe / read_frames


def test_probe_sniffs_content_not_extension(tmp_path):
    frames = [Image.fromarray(f) for f in moving_frames(6, 64, 48)]
    path = tmp_path / "actually_a_gif.mp4"
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    info = probe_media(path)
    assert info == MediaInfo("gif", 64, 48, 20.0, 6, 0.3)


def test_probe_still_and_read_one_frame(tmp_path):
    path = tmp_path / "still.bin"
    path.write_bytes(encode_still(skimage.data.astronaut(), "PNG"))
    info = probe_media(path)
    assert (info.kind, info.width, info.height, info.frame_count) == ("image", 512, 512, 1)
    frames = list(read_frames(path, max_side=101))
    assert len(frames) == 1 and frames[0].shape == (100, 100, 3)


def test_probe_rejects(tmp_path):
    empty = tmp_path / "empty.gif"
    empty.write_bytes(b"")
    with pytest.raises(UnsupportedMediaError):
        probe_media(empty)
    text = tmp_path / "text.gif"
    text.write_text("GIF? no.")
    with pytest.raises(UnsupportedMediaError):
        probe_media(text)
    big = tmp_path / "big.gif"
    big.write_bytes(gif_of_pixels(10))
    with pytest.raises(LimitExceededError, match="too large"):
        probe_media(big, MediaLimits(max_template_bytes=100))
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_bytes(9000, 9000, 1, 0, b"xx"))
    with pytest.raises(LimitExceededError):
        probe_media(huge)


def test_gif_with_100k_frames_fails_fast(tmp_path):
    path = tmp_path / "long.gif"
    path.write_bytes(gif_of_pixels(100_000))
    start = time.perf_counter()
    with pytest.raises(LimitExceededError) as err:
        probe_media(path)
    assert str(err.value) == "the template is too long: more than 300 frames / 15 s; trim it and try again"
    with pytest.raises(LimitExceededError):
        next(read_frames(path))
    # and with generous limits, the streaming cap still stops it
    limits = MediaLimits(min_side=1, max_frames=300, max_seconds=10_000)
    with pytest.raises(LimitExceededError):
        for _ in read_frames(path, limits):
            pass
    assert time.perf_counter() - start < 2.0


def test_gif_over_the_time_cap(tmp_path):
    path = tmp_path / "slow.gif"
    path.write_bytes(gif_of_pixels(40, delay_cs=50))  # 20 s
    with pytest.raises(LimitExceededError, match="15 s"):
        probe_media(path)
    info = probe_media(path, MediaLimits(max_seconds=20))
    assert info.frame_count == 40 and info.fps == 2.0 and info.duration == 20.0


def test_gif_with_tiny_frames(tmp_path):
    path = tmp_path / "tiny.gif"
    path.write_bytes(gif_of_pixels(5, canvas=8))
    with pytest.raises(InputError, match="too small"):
        probe_media(path)
    frames = list(read_frames(path, MediaLimits(min_side=1)))
    assert len(frames) == 5 and frames[0].shape == (8, 8, 3)


def test_gif_zero_delays_default_to_10_fps(tmp_path):
    path = tmp_path / "fast.gif"
    path.write_bytes(gif_of_pixels(5, delay_cs=0))
    assert probe_media(path).fps == 10.0


def test_gif_disposal_and_transparency_are_composited(tmp_path):
    base = np.full((32, 32, 3), (0, 0, 200), np.uint8)
    second = base.copy()
    second[8:16, 8:16] = (250, 250, 0)
    first_im = Image.fromarray(base).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    # second frame: only a small opaque patch, the rest transparent
    patch = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    patch.paste((250, 250, 0, 255), (8, 8, 16, 16))
    path = tmp_path / "patch.gif"
    first_im.save(path, "GIF", save_all=True, append_images=[patch], duration=100, disposal=1, loop=0)
    frames = list(read_frames(path))
    assert len(frames) == 2
    assert np.abs(frames[1].astype(int) - second).max() < 10


def test_max_side_downscales_to_even(tmp_path):
    frames = [Image.fromarray(f) for f in moving_frames(3, 101, 75)]
    path = tmp_path / "odd.gif"
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = list(read_frames(path, max_side=50))
    assert out[0].shape == (36, 50, 3)
    assert list(read_frames(path, max_side=1000))[0].shape == (74, 100, 3)  # odd -> even by cropping
    assert list(read_frames(path))[0].shape == (75, 101, 3)


def test_animated_webp(tmp_path):
    frames = [Image.fromarray(f) for f in moving_frames(8, 80, 60)]
    path = tmp_path / "anim.webp"
    frames[0].save(path, "WEBP", save_all=True, append_images=frames[1:], duration=40, loop=0, quality=90)
    info = probe_media(path)
    assert (info.kind, info.width, info.height, info.frame_count, info.fps) == ("webp", 80, 60, 8, 25.0)
    out = list(read_frames(path))
    assert len(out) == 8
    assert np.abs(out[5].astype(int) - np.asarray(frames[5])).mean() < 8


def test_video_probe_and_read(tmp_path):
    path = make_video(tmp_path / "clip.mp4", 1.0, fps=25)
    info = probe_media(path)
    assert (info.kind, info.width, info.height, info.fps) == ("video", 96, 64, 25.0)
    assert info.frame_count == 25 and abs(info.duration - 1.0) < 0.05
    frames = list(read_frames(path, max_side=48))
    assert len(frames) == 25 and frames[0].shape == (32, 48, 3)
    mkv = make_video(tmp_path / "clip.bin", 0.4, fps=10, extra=["-f", "matroska"])
    assert probe_media(mkv).kind == "video"
    assert len(list(read_frames(mkv))) == 4


def test_rotated_video_is_read_upright(tmp_path):
    plain = make_video(tmp_path / "plain.mp4", 0.5, fps=10)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run([ffmpeg.ffmpeg_exe(), "-loglevel", "error", "-y", "-display_rotation", "90",
                    "-i", str(plain), "-c", "copy", str(rotated)], check=True)
    info = probe_media(rotated)
    assert (info.width, info.height) == (64, 96)
    frames = list(read_frames(rotated))
    assert len(frames) == 5 and frames[0].shape == (96, 64, 3)


def test_long_video_is_rejected_fast(tmp_path):
    path = make_video(tmp_path / "long.mp4", 40.0, fps=10, size="32x32")
    start = time.perf_counter()
    with pytest.raises(LimitExceededError, match="too long"):
        next(read_frames(path))
    assert time.perf_counter() - start < 2.0


def test_video_stream_stops_at_the_frame_cap(tmp_path):
    # 32 frames: within the probe's tolerance for a 30-frame cap, so the stream has to stop it.
    path = make_video(tmp_path / "edge.mp4", 3.2, fps=10, size="32x32")
    limits = MediaLimits(max_frames=30)
    count = 0
    with pytest.raises(LimitExceededError, match="more than 30 frames"):
        for _ in read_frames(path, limits):
            count += 1
    assert count == 30
    assert child_processes() == []


def test_closing_the_stream_stops_ffmpeg(tmp_path):
    path = make_video(tmp_path / "clip.mp4", 2.0, fps=25)
    stream = read_frames(path)
    next(stream)
    next(stream)
    assert len(child_processes()) == 1
    stream.close()
    assert child_processes() == []


def test_parse_probe_output_with_rotation_and_audio():
    stderr = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/x.mov':
  Metadata:
    major_brand     : qt
    comment         : hello, world
  Duration: 00:00:04.50, start: 0.000000, bitrate: 1000 kb/s
  Stream #0:0[0x1](und): Video: hevc (Main) (hvc1 / 0x31637668), yuv420p(tv, bt709), 1920x1080, 900 kb/s, 29.97 fps, 29.97 tbr, 600 tbn (default)
      Metadata:
        handler_name    : Core Media Video
      Side data:
        displaymatrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 96 kb/s (default)
"""
    info = ffmpeg.parse_probe_output(stderr)
    assert (info.width, info.height, info.rotation) == (1080, 1920, 270)
    assert info.fps == 29.97 and info.duration == 4.5 and info.audio_streams == 1
    assert info.codec == "hevc" and info.pix_fmt == "yuv420p"
    assert info.metadata["comment"] == "hello, world"
