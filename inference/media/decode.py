"""Decoding selfies (stills) and meme templates (GIF, WebP, video) into RGB frames.

Everything that comes from a user is checked against `MediaLimits` before it is
decoded: file size from the file system, pixel counts from the image header, frame
counts and durations from the container, and the decode work (pixels decoded over all
frames), so that a hostile file fails fast instead of eating memory or CPU. While frames
are decoded the same limits are enforced again by counting, never trusting the header,
and a `Deadline` stops the work between frames. Frames are numpy uint8 arrays of shape
(H, W, 3), RGB.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import statistics
import struct
import subprocess
import tempfile
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from memeswap.inference.errors import InputError, LimitExceededError, UnsupportedMediaError
from memeswap.inference.media import ffmpeg
from memeswap.inference.media.limits import Deadline, MediaLimits
from memeswap.inference.sizes import human_bytes

NOT_AN_IMAGE = "that file is not an image I can read (JPEG, PNG, WebP, GIF)"
NOT_A_TEMPLATE = "that file is not a GIF, WebP, PNG, JPEG or video (MP4, MOV, WebM) I can read"
DAMAGED_IMAGE = "the image file is truncated or damaged"
DAMAGED_VIDEO = "the video file is truncated or damaged"

# Pillow format names we accept for a still.
_STILL_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF"})
# Transparent pixels are shown over mid-grey: neutral for face detection and blending.
_BACKGROUND = 128
# Browsers play GIF (and WebP) delays of 0 or 10 ms at 100 ms; so do we.
_DEFAULT_DELAY_MS = 100
_MIN_DELAY_MS = 20
# Errors Pillow raises on damaged data, besides OSError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError)


@dataclass(frozen=True)
class MediaInfo:
    """What a template is, from its header (see `probe_media`).

    kind: 'image' (PNG/JPEG/BMP/TIFF still), 'gif', 'webp' (animated or not) or 'video'.
    width/height: the frame size as shown (after EXIF / display-matrix rotation).
    fps: playback rate; 1000 / median frame delay for GIF/WebP, 10 for a still.
    frame_count: exact for GIF/WebP/stills, estimated from duration * fps for video.
    duration: seconds; None for a still or when the container does not say.
    """

    kind: str
    width: int
    height: int
    fps: float
    frame_count: int | None
    duration: float | None


# --------------------------------------------------------------------------- helpers


def _too_long(limits: MediaLimits) -> LimitExceededError:
    return LimitExceededError(
        f"the template is too long: more than {limits.max_frames} frames / "
        f"{limits.max_seconds:g} s; trim it and try again"
    )


def _too_much_work(frames: int, width: int, height: int, budget: int, up_to: bool = False) -> LimitExceededError:
    return LimitExceededError(
        f"the template is too big to decode: {'up to ' if up_to else ''}{frames} frames of {width}x{height} "
        f"pixels; the limit is {budget / 1e6:g} megapixels in all, so make it smaller or shorter"
    )


def _check_dimensions(width: int, height: int, limits: MediaLimits, noun: str = "image") -> None:
    if width * height > limits.max_image_pixels:
        raise LimitExceededError(
            f"the {noun} is too large: {width}x{height} pixels; the limit is "
            f"{limits.max_image_pixels / 1e6:g} megapixels"
        )
    if min(width, height) < limits.min_side:
        raise InputError(
            f"the {noun} is too small: {width}x{height} pixels; it needs at least "
            f"{limits.min_side} pixels on each side"
        )


def _check_file(path: Path, max_bytes: int, noun: str) -> int:
    """Existence and size checks on a path; returns the size in bytes."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    if st.st_size == 0:
        raise UnsupportedMediaError(f"the {noun} file is empty")
    if st.st_size > max_bytes:
        raise LimitExceededError(
            f"the {noun} file is too large: {human_bytes(st.st_size)}; the limit is {human_bytes(max_bytes)}"
        )
    return st.st_size


def _open_pillow(fp, limits: MediaLimits, message: str = NOT_AN_IMAGE) -> Image.Image:
    """Image.open with Pillow's bomb warning/error turned into our limit error.

    Pillow only reads the header here; the caller checks the size against
    `limits` itself (we never change Image.MAX_IMAGE_PIXELS).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = min(limits.max_image_pixels, Image.MAX_IMAGE_PIXELS or limits.max_image_pixels)
        raise LimitExceededError(f"the image is too large; the limit is {limit / 1e6:.0f} megapixels") from None
    except UnidentifiedImageError:
        raise UnsupportedMediaError(message) from None
    except _DECODE_ERRORS:
        raise UnsupportedMediaError(message) from None


def _exif_orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block must not make the picture unreadable
        return 1


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> a writable uint8 (H, W, 3) RGB array."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(im)
        if mode == "F":
            values = np.nan_to_num(values.astype(np.float64))
            grey = values * 255.0 if values.size and values.max() <= 1.0 else values
            grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        else:
            values = values.astype(np.int64)
            if mode == "I" and (values.size == 0 or values.max() <= 255):
                grey = np.clip(values, 0, 255).astype(np.uint8)
            else:  # 16-bit range: scale, don't clip (65535 -> 255, 32768 -> 128)
                grey = ((np.clip(values, 0, 65535) + 128) // 257).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        alpha = rgba[:, :, 3:4].astype(np.uint16)
        if np.min(alpha) == 255:
            return np.array(rgba[:, :, :3])
        rgb = rgba[:, :, :3].astype(np.uint16)
        out = (rgb * alpha + _BACKGROUND * (255 - alpha) + 127) // 255
        return out.astype(np.uint8)
    if mode != "RGB":
        im = im.convert("RGB")
    return np.array(im)


def _target_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Size after the `max_side` rule: long side <= max_side, both sides even."""
    if max_side is None:
        return width, height
    if max_side < 2:
        raise ValueError("max_side must be at least 2")
    scale = min(1.0, max_side / max(width, height))
    if scale < 1.0:
        w, h = round(width * scale), round(height * scale)
    else:
        w, h = width, height
    return max(2, w - w % 2), max(2, h - h % 2)


def _fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = frame.shape[:2]
    tw, th = size
    if (tw, th) == (w, h):
        return frame
    if tw <= w and th <= h and w - tw <= 1 and h - th <= 1:
        return np.ascontiguousarray(frame[:th, :tw])  # odd -> even: crop, don't resample
    return cv2.resize(frame, (tw, th), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- stills


def load_image(source: bytes | Path, limits: MediaLimits = MediaLimits()) -> np.ndarray:
    """Decode a selfie/still to an RGB uint8 array, honouring EXIF orientation.

    Transparent pixels are composited over mid-grey; 16-bit images are scaled to
    8 bits. The pixel count is checked from the header before anything is decoded.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise UnsupportedMediaError("the image file is empty")
        if len(data) > limits.max_upload_bytes:
            raise LimitExceededError(
                f"the image file is too large: {human_bytes(len(data))}; "
                f"the limit is {human_bytes(limits.max_upload_bytes)}"
            )
    else:
        path = Path(os.fspath(source))
        _check_file(path, limits.max_upload_bytes, "image")
        data = path.read_bytes()
    return _decode_still(data, limits)


def _decode_still(data: bytes, limits: MediaLimits) -> np.ndarray:
    im = _open_pillow(io.BytesIO(data), limits)
    with im:
        if im.format not in _STILL_FORMATS:
            raise UnsupportedMediaError(NOT_AN_IMAGE)
        _check_dimensions(im.width, im.height, limits)
        try:
            im.load()
            orientation = _exif_orientation(im)
            if orientation != 1:
                try:
                    im = ImageOps.exif_transpose(im)
                except Exception:  # broken EXIF: keep the pixels as stored
                    pass
            return _to_rgb(im)
        except _DECODE_ERRORS:
            raise InputError(DAMAGED_IMAGE) from None


# --------------------------------------------------------------------------- sniffing


def _sniff(head: bytes) -> str | None:
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM":
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"):
            return None  # HEIF/AVIF stills: not supported
        return "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "mp4"  # old QuickTime files without ftyp
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"  # MKV and WebM
    return None


def video_demuxer(path: Path) -> str | None:
    """ffmpeg's demuxer for a video file ("mov" or "matroska"), by its content; None when it
    is not a video (or cannot be read)."""
    try:
        with open(path, "rb") as fh:
            sniffed = _sniff(fh.read(32))
    except OSError:
        return None
    return {"mp4": "mov", "matroska": "matroska"}.get(sniffed or "")


def _frame_delay_ms(raw: int | float | None) -> int:
    if raw is None:
        return _DEFAULT_DELAY_MS
    raw = int(raw)
    return _DEFAULT_DELAY_MS if raw < _MIN_DELAY_MS else raw


def _fps_from_delays(delays_ms: list[int]) -> float:
    if not delays_ms:
        return 1000.0 / _DEFAULT_DELAY_MS
    return 1000.0 / statistics.median(delays_ms)


def _scan_gif(data: bytes, max_frames: int) -> tuple[int, int, list[int]]:
    """Canvas size and raw per-frame delays (ms) of a GIF, by walking its blocks.

    Stops after `max_frames` frames, so a GIF with 100,000 frames costs
    nothing more than one with max_frames. Raises InputError when damaged.
    """
    if len(data) < 13:
        raise InputError(DAMAGED_IMAGE)
    width, height, packed = struct.unpack_from("<HHB", data, 6)
    pos = 13
    if packed & 0x80:
        pos += 3 * (2 ** ((packed & 7) + 1))
    delays: list[int] = []
    pending_delay: int | None = None
    n = len(data)
    try:
        while pos < n and len(delays) < max_frames:
            block = data[pos]
            if block == 0x3B:  # trailer
                break
            if block == 0x21:  # extension
                label = data[pos + 1]
                pos += 2
                if label == 0xF9 and data[pos] >= 4:
                    pending_delay = struct.unpack_from("<H", data, pos + 2)[0] * 10
                while True:
                    size = data[pos]
                    pos += 1 + size
                    if size == 0:
                        break
            elif block == 0x2C:  # image descriptor
                flags = data[pos + 9]
                pos += 10
                if flags & 0x80:
                    pos += 3 * (2 ** ((flags & 7) + 1))
                pos += 1  # LZW minimum code size
                while True:
                    size = data[pos]
                    pos += 1 + size
                    if size == 0:
                        break
                delays.append(pending_delay if pending_delay is not None else 0)
                pending_delay = None
            else:
                break  # junk after the last frame: decoders stop here too
    except IndexError:
        pass  # truncated: count what is complete; Pillow reports the damage when decoding
    if not delays:
        raise InputError(DAMAGED_IMAGE)
    return width, height, delays


def _scan_webp(data: bytes) -> tuple[int, int, list[int] | None]:
    """Canvas size and per-frame delays (ms) of an animated WebP; delays None if still."""
    if len(data) < 30:
        raise InputError(DAMAGED_IMAGE)
    pos = 12
    width = height = None
    delays: list[int] = []
    animated = False
    n = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    while pos + 8 <= n:
        fourcc = data[pos:pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if fourcc == b"VP8X" and size >= 10:
            animated = bool(data[body] & 0x02)
            width = 1 + int.from_bytes(data[body + 4:body + 7], "little")
            height = 1 + int.from_bytes(data[body + 7:body + 10], "little")
        elif fourcc == b"ANMF" and size >= 16:
            delays.append(int.from_bytes(data[body + 12:body + 15], "little"))
        pos = body + size + (size & 1)
    if not animated:
        return 0, 0, None
    if width is None or height is None or not delays:  # VP8X gives both sizes at once
        raise InputError(DAMAGED_IMAGE)
    return width, height, delays


# --------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class _Probe:
    info: MediaInfo
    sniffed: str
    delays_ms: tuple[int, ...] | None = None  # normalised, GIF / animated WebP
    stream: ffmpeg.StreamInfo | None = None


def probe_media(path: Path, limits: MediaLimits = MediaLimits()) -> MediaInfo:
    """Identify a template by its content (not its name) and check it against `limits`.

    Rejects empty, unknown, oversized (bytes or pixels), too small, and too long
    media (frame count / duration; exact for GIF/WebP, from the header for video).
    """
    return _probe(Path(path), limits).info


def _probe(path: Path, limits: MediaLimits) -> _Probe:
    _check_file(path, limits.max_template_bytes, "template")
    with open(path, "rb") as fh:
        head = fh.read(32)
    sniffed = _sniff(head)
    if sniffed is None:
        raise UnsupportedMediaError(NOT_A_TEMPLATE)
    if sniffed in ("mp4", "matroska"):
        return _probe_video(path, sniffed, limits)
    if sniffed == "gif":
        data = path.read_bytes()
        width, height, raw = _scan_gif(data, limits.max_frames + 1)
        return _probe_animation("gif", width, height, raw, limits)
    if sniffed == "webp":
        data = path.read_bytes()
        width, height, delays = _scan_webp(data)
        if delays is not None:
            return _probe_animation("webp", width, height, delays, limits)
        with _open_pillow(io.BytesIO(data), limits, NOT_A_TEMPLATE) as im:
            width, height = im.size
        _check_dimensions(width, height, limits, "template")
        return _Probe(MediaInfo("webp", width, height, 1000.0 / _DEFAULT_DELAY_MS, 1, None), sniffed)
    with _open_pillow(path, limits, NOT_A_TEMPLATE) as im:
        if im.format not in _STILL_FORMATS:
            raise UnsupportedMediaError(NOT_A_TEMPLATE)
        width, height = im.size
        if _exif_orientation(im) in (5, 6, 7, 8):
            width, height = height, width
    _check_dimensions(width, height, limits, "template")
    return _Probe(MediaInfo("image", width, height, 1000.0 / _DEFAULT_DELAY_MS, 1, None), sniffed)


def _probe_animation(kind: str, width: int, height: int, raw_delays: list[int], limits: MediaLimits) -> _Probe:
    _check_dimensions(width, height, limits, "template")
    if len(raw_delays) > limits.max_frames:
        raise _too_long(limits)
    # Pillow composes every frame on the full canvas, however small the frame's own image.
    if width * height * len(raw_delays) > limits.max_animation_decode_pixels:
        raise _too_much_work(len(raw_delays), width, height, limits.max_animation_decode_pixels)
    delays = tuple(_frame_delay_ms(d) for d in raw_delays)
    duration = sum(delays) / 1000.0
    if duration > limits.max_seconds + 1e-6:
        raise _too_long(limits)
    info = MediaInfo(kind, width, height, _fps_from_delays(list(delays)), len(delays), duration)
    return _Probe(info, kind, delays)


def _probe_video(path: Path, sniffed: str, limits: MediaLimits) -> _Probe:
    demuxer = "mov" if sniffed == "mp4" else "matroska"
    try:
        stream, stderr = ffmpeg.probe(path, demuxer)
    except ffmpeg.AmbiguousProbeError:  # the file forged lines of ffmpeg's description: refused, not guessed at
        raise InputError(DAMAGED_VIDEO) from None
    if stream is None:
        if "Stream #" in stderr and "Video:" not in stderr:
            raise UnsupportedMediaError("that file has no video track")
        raise InputError(DAMAGED_VIDEO)
    _check_dimensions(stream.width, stream.height, limits, "video")
    fps = stream.fps or 25.0
    frames = None
    if stream.duration is not None:
        frames = max(1, round(stream.duration * fps))
        # The container duration can include a longer audio track or an edit list:
        # reject here only what is clearly too long; read_frames enforces the exact cap.
        if stream.duration > limits.max_seconds + 0.5 or frames > limits.max_frames + 2:
            raise _too_long(limits)
    # ffmpeg decodes at the stored size, before scaling. The frame count here is the
    # container's word (a lie only lets the file get this far: `_read_video` counts).
    planned = min(_video_frame_cap(limits, fps), frames or limits.max_frames)
    if stream.width * stream.height * planned > limits.max_video_decode_pixels:
        raise _too_much_work(planned, stream.width, stream.height, limits.max_video_decode_pixels, up_to=True)
    info = MediaInfo("video", stream.width, stream.height, fps, frames, stream.duration)
    return _Probe(info, sniffed, None, stream)


def _video_frame_cap(limits: MediaLimits, fps: float) -> int:
    """The most frames a video may have at `fps`: the frame cap or the time cap, the lower."""
    return min(limits.max_frames, math.floor(limits.max_seconds * fps + 1e-6))


# --------------------------------------------------------------------------- frames


def read_frames(path: Path, limits: MediaLimits = MediaLimits(), max_side: int | None = None,
                deadline: Deadline | None = None) -> Generator[np.ndarray, None, None]:
    """Stream a template's frames as RGB uint8 arrays (a generator; memory stays bounded).

    With `max_side`, frames are shrunk (INTER_AREA) so the long side is <= max_side,
    and both sides are made even. Raises LimitExceededError as soon as more than
    `limits.max_frames` frames or `limits.max_seconds` seconds have been seen, or the
    decode budget is spent; the rest is never decoded. `deadline` is checked before each
    frame. Closing the generator early stops ffmpeg.
    """
    path = Path(path)
    deadline = deadline or Deadline()
    probe = _probe(path, limits)
    info = probe.info
    size = _target_size(info.width, info.height, max_side)
    if info.kind == "image":
        still_limits = dataclasses.replace(limits, max_upload_bytes=limits.max_template_bytes)
        deadline.check()
        yield _fit(load_image(path, still_limits), size)
    elif info.kind == "video":
        yield from _read_video(path, probe, limits, size, deadline)
    else:
        yield from _read_animation(path, probe, limits, size, deadline)


def _read_animation(path: Path, probe: _Probe, limits: MediaLimits, size: tuple[int, int],
                    deadline: Deadline) -> Iterator[np.ndarray]:
    delays = probe.delays_ms or ()
    elapsed_ms = 0
    count = 0
    width, height = probe.info.width, probe.info.height
    budget_frames = limits.max_animation_decode_pixels // (width * height)
    with _open_pillow(path, limits, NOT_A_TEMPLATE) as im:
        if (im.width, im.height) != (width, height):
            raise InputError(DAMAGED_IMAGE)
        frames = ImageSequence.Iterator(im)
        while True:
            deadline.check()
            try:
                frame = next(frames)
                if count >= limits.max_frames:
                    raise _too_long(limits)
                if count >= budget_frames:  # Pillow found more frames than the header scan did
                    raise _too_much_work(count + 1, width, height, limits.max_animation_decode_pixels)
                delay = delays[count] if count < len(delays) else _frame_delay_ms(frame.info.get("duration"))
                elapsed_ms += delay
                if elapsed_ms > limits.max_seconds * 1000 + 1e-3:
                    raise _too_long(limits)
                rgb = _to_rgb(frame)
            except StopIteration:
                break
            except _DECODE_ERRORS:
                raise InputError(DAMAGED_IMAGE) from None
            count += 1
            yield _fit(rgb, size)
    if count == 0:
        raise InputError(DAMAGED_IMAGE)


def _read_video(path: Path, probe: _Probe, limits: MediaLimits, size: tuple[int, int],
                deadline: Deadline) -> Iterator[np.ndarray]:
    stream = probe.stream
    assert stream is not None
    fps = probe.info.fps
    width, height = size
    budget_frames = limits.max_video_decode_pixels // (stream.width * stream.height)
    frame_cap = _video_frame_cap(limits, fps)
    # Decode at most one frame past any cap, so going over is detected but nothing more is decoded.
    decode_cap = min(frame_cap, budget_frames) + 1
    # `pad` to the size the header announced fails on a larger frame, so a stream that grows
    # past its header (and past the budget worked out from it) stops at its first such frame.
    filters = [f"pad={stream.width}:{stream.height}", f"fps={ffmpeg.rate_arg(fps)}"]
    odd_crop = 0 <= stream.width - width <= 1 and 0 <= stream.height - height <= 1
    if odd_crop and (width, height) != (stream.width, stream.height):
        filters.append(f"crop={width}:{height}:0:0")  # odd -> even: crop, don't resample
    filters.append(f"scale={width}:{height}:flags=area,format=rgb24")
    cmd = ffmpeg.base_command() + [
        "-protocol_whitelist", "file",
        "-f", "mov" if probe.sniffed == "mp4" else "matroska",
        "-i", ffmpeg.file_url(path),
        "-map", f"0:v:{stream.video_index}",
        "-an", "-sn", "-dn",
        "-vf", ",".join(filters),
        "-frames:v", str(decode_cap),
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]
    frame_bytes = width * height * 3
    count = 0
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, bufsize=0)
        stdout = proc.stdout
        assert isinstance(stdout, io.FileIO), "stdout=PIPE with bufsize=0: an unbuffered pipe, with readinto"
        try:
            while True:
                buf = bytearray(frame_bytes)
                view = memoryview(buf)
                got = 0
                while got < frame_bytes:
                    n = stdout.readinto(view[got:])
                    if not n:
                        break
                    got += n
                if got < frame_bytes:
                    break  # end of stream (a partial frame means ffmpeg stopped mid-write)
                if count >= limits.max_frames or (count + 1) / fps > limits.max_seconds + 1e-3:
                    raise _too_long(limits)
                if count >= budget_frames:
                    raise _too_much_work(count + 1, stream.width, stream.height, limits.max_video_decode_pixels)
                deadline.check()
                count += 1
                yield np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3)
            rc = ffmpeg.wait_for_exit(proc, 60)
            if rc != 0 or count == 0:
                raise InputError(DAMAGED_VIDEO)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            stdout.close()
