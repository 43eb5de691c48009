"""Encoding RGB frames to GIF, MP4 or WebP, within a byte budget when one is given.

`StreamingEncoder` feeds ffmpeg while the caller is still producing frames, and keeps
every frame in a raw spool file on disk so that it can re-encode at lower settings
when the first result is over `max_bytes`:

* MP4 (libx264) and WebP (libwebp_anim) encode fully in ffmpeg while frames arrive.
* GIF: ffmpeg's palettegen builds the palette over every pixel of every frame
  (stats_mode=full: a still background is on screen all the time, so it counts all the
  time) while frames arrive. Faces get a quarter of the palette of their own: `write`
  takes the frame's face boxes, and small crops of them are quantised apart
  (gif_writer.face_palette), so skin keeps its shades instead of borrowing greys and
  blues from the rest of the frame. The streamed pass makes both the full palette and
  the one that leaves that quarter free, so a GIF without faces loses nothing.
  At `finish` the frames are mapped onto the palette with an ordered (Bayer) dither
  through a 64x64x64 lookup table in numpy (nearest colour in CIELAB) and written by the
  streaming GIF writer in gif_writer.py (Pillow's C LZW encoder for the pixel data;
  unchanged pixels become transparent and each frame is cropped to what changed).
  Measured on 64 photo frames of 480x480 this is ~4x faster than ffmpeg's paletteuse at
  the same PSNR, and the dither amplitude follows the palette spacing, so low colour
  counts band less than bayer_scale=4. A single split/palettegen/paletteuse graph would
  also hold every frame in memory.

Over budget, `finish` searches for the best setting that fits (`_QualityPath`,
`_fit_budget`): GIF at full frame rate down to half the size, then at half the frame
rate down to a quarter of the size, then 32 colours; MP4 CRF 20 to 32, then smaller
sizes; WebP quality 80 to 35, then smaller sizes. Quality and scale are continuous, so
the search lands within 80-100% of the budget, typically on its first or second try
and within six encodes in all (see `_fit_budget`).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Literal
from xml.sax.saxutils import escape

import cv2
import numpy as np

from memeswap.inference.errors import InputError, OutputTooLargeError
from memeswap.inference.media import ffmpeg
from memeswap.inference.media.gif_writer import GifWriter, PaletteMapper, distinct_colours, face_palette, read_palette
from memeswap.inference.media.limits import human_bytes

OutputFormat = Literal["gif", "mp4", "webp"]

MIME_TYPES = MappingProxyType({"gif": "image/gif", "mp4": "video/mp4", "webp": "image/webp"})

# Predicted size relative to full quality: (level, relative size) of MP4 CRFs and WebP
# qualities (levels in between are interpolated on the log of the size), GIF colour
# counts and half the frame rate, and size ~ scale ** exponent. Measured on photo,
# meme-like and flat synthetic clips. They only steer the search (see `_fit_budget`):
# every size it keeps is measured.
_MP4_CRFS = ((20, 1.0), (24, 0.6), (28, 0.4), (32, 0.27))
_WEBP_QUALITIES = ((80, 1.0), (65, 0.77), (50, 0.65), (35, 0.55))
_GIF_FEW_COLORS = (32, 0.52)
_GIF_HALF_FPS = 0.55
_SCALE_EXPONENT = MappingProxyType({"gif": 1.7, "mp4": 1.1, "webp": 1.2})
# A GIF at full frame rate is made no smaller than this; below it, half the frame rate
# at a larger size looks better (sharper, and 6 fps still reads as motion).
_GIF_FULL_FPS_MIN_SCALE = 0.5
_MIN_SCALE = 0.25
_MIN_SCALED_SIDE = 16
# Over budget, the search aims at this share of it and stops at the first result that
# fits and uses at least _BUDGET_USE; it makes at most _BUDGET_ATTEMPTS encodes after
# the full-quality one.
_BUDGET_AIM = 0.9
_BUDGET_USE = 0.8
_BUDGET_ATTEMPTS = 5
# A GIF attempt gives up once it has written this many budgets: its size is then guessed
# from the frames so far. Early frames often change more than later ones, so a guess made
# at one budget was up to 1.6x too high and sent the search to half the frame rate.
_GIF_GIVE_UP = 2.0
# Browsers play GIF delays under 2 cs at 10 cs, so faster GIFs drop frames instead.
_GIF_MAX_FPS = 50.0
# GIF palettes come from exact colours when the first frame has no more than this.
_EXACT_PALETTE_MAX_COLORS = 4096
# GIF: the share of the palette kept for face colours, and the face crops it is made from
# (each box's middle, shrunk to a small square; at most this many are kept, evenly spread).
_FACE_PALETTE_SHARE = 0.25
_FACE_CROP_INSET = 0.08
_FACE_CROP_SIDE = 32
_MAX_FACE_CROPS = 64  # crops of 32x32 spread over the clip: enough for the face palette's 64 colours
_FFMPEG_TIMEOUT_S = 600.0
_GIF_MAP_AHEAD = 4  # frames mapped onto the palette ahead of the one being written


@dataclass(frozen=True)
class EncodedMedia:
    """The encoded bytes and the settings that finally fit."""

    data: bytes
    mime: str
    format: str
    width: int
    height: int
    fps: float
    frame_count: int
    colors: int | None  # GIF palette size; None for MP4/WebP


@dataclass(frozen=True)
class _Setting:
    level: float  # GIF colours, MP4 CRF or WebP quality
    frame_step: int  # keep every Nth frame
    scale: float


@dataclass(frozen=True)
class _Family:
    """Settings that differ in one knob: the level (at scale 1), or the scale (at a fixed
    level). `top` and `floor` are the log predicted sizes, relative to full quality, of its
    best and smallest settings."""

    top: float
    floor: float
    frame_step: int
    level: float | None  # None: the level is the knob, read from `levels`
    levels: tuple[tuple[float, float], ...] = ()
    exponent: float = 1.0

    def setting(self, r: float) -> _Setting:
        r = min(self.top, max(self.floor, r))
        if self.level is None:
            logs, levels = zip(*((math.log(rel), level) for level, rel in reversed(self.levels)))
            return _Setting(float(np.interp(r, logs, levels)), self.frame_step, 1.0)
        return _Setting(self.level, self.frame_step, min(1.0, math.exp((r - self.top) / self.exponent)))


class _QualityPath:
    """Every setting the budget search may pick, from full quality down, indexed by r: the
    log of its predicted size relative to full quality (0 at full quality, negative below).

    Families are in order of preference; r picks the first whose floor reaches it:
    GIF: 256 colours at full frame rate down to half the size, then at half the frame rate
    (every other frame dropped, each shown twice as long) down to the smallest size, then
    32 colours. MP4: CRF 20 to 32, then smaller sizes. WebP: quality 80 to 35, then smaller
    sizes. Colours come last for a GIF: at the same bytes, 64 or 32 colours looked worse
    (posterised hair and skin) and measured worse than a smaller 256-colour GIF. A weaker
    dither is no knob: at 256 colours it saved under 10% (2-12%) of a GIF's size.
    """

    def __init__(self, fmt: str, width: int, height: int, frames: int, base_step: int) -> None:
        exponent = _SCALE_EXPONENT[fmt]
        min_scale = max(_MIN_SCALE, min(1.0, _MIN_SCALED_SIDE / min(width, height)))
        shrink = exponent * math.log(min_scale)  # log relative size from scale 1 to the smallest
        if fmt == "gif":
            half = base_step * 2 if math.ceil(frames / base_step) >= 4 else base_step
            full_fps_floor = exponent * math.log(max(min_scale, _GIF_FULL_FPS_MIN_SCALE))
            self.families = [_Family(0.0, full_fps_floor, base_step, 256, exponent=exponent)]
            fewer = 0.0
            if half != base_step:
                fewer = math.log(_GIF_HALF_FPS)
                self.families.append(_Family(fewer, fewer + shrink, half, 256, exponent=exponent))
            colors, rel = _GIF_FEW_COLORS
            fewer += math.log(rel)
            self.families.append(_Family(fewer, fewer + shrink, half, colors, exponent=exponent))
        else:
            levels = _MP4_CRFS if fmt == "mp4" else _WEBP_QUALITIES
            worst, rel = levels[-1]
            self.families = [_Family(0.0, math.log(rel), base_step, None, levels),
                             _Family(math.log(rel), math.log(rel) + shrink, base_step, worst, exponent=exponent)]
        self.lowest = self.families[-1].floor

    def at(self, r: float) -> _Setting:
        family = next((f for f in self.families if r >= f.floor), self.families[-1])
        return family.setting(r)


def _next_r(over: list[tuple[float, float]], fits: tuple[float, float] | None, aim: float, lowest: float) -> float:
    """Where to look next for log size `aim`: between the nearest (r, log size) points over
    the budget and fitting (a secant, kept off the ends), or past the last one over it
    along the slope of the last two (the model's slope, 1, at first)."""
    r_over, s_over = over[-1]
    if fits is not None:
        r_fit, s_fit = fits
        t = (s_over - aim) / (s_over - s_fit) if s_over > s_fit else 0.5
        return r_over + min(0.85, max(0.15, t)) * (r_fit - r_over)
    slope = 1.0
    if len(over) >= 2:
        (r0, s0), (r1, s1) = over[-2], over[-1]
        if r0 != r1:
            slope = min(3.0, max(0.3, (s0 - s1) / (r0 - r1)))
    return max(lowest, r_over - (s_over - aim) / slope)


def _step_size(width: int, height: int, scale: float, even: bool) -> tuple[int, int]:
    if scale != 1.0:
        width, height, even = max(2, round(width * scale)), max(2, round(height * scale)), True
    if even:
        width, height = max(2, width - width % 2), max(2, height - height % 2)
    return width, height


# --------------------------------------------------------------------------- GIF


def _xmp_packet(comment: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(comment)}</rdf:li></rdf:Alt></dc:description>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="r"?>'
    ).encode()


def _webp_with_comment(data: bytes, comment: str, width: int, height: int) -> bytes:
    """Append an XMP chunk carrying `comment` (dc:description) and flag it in VP8X."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ffmpeg.FFmpegError("ffmpeg wrote something that is not a WebP")
    body = bytearray(data[12:8 + int.from_bytes(data[4:8], "little")])
    if body[:4] != b"VP8X":  # a simple (single-image) file: add the extended header
        alpha = 0x10 if body[:4] == b"VP8L" else 0
        vp8x = bytes([alpha, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        body[:0] = b"VP8X" + len(vp8x).to_bytes(4, "little") + vp8x
    body[8] |= 0x04  # XMP present
    xmp = _xmp_packet(comment)
    body += b"XMP " + len(xmp).to_bytes(4, "little") + xmp + (b"\x00" if len(xmp) % 2 else b"")
    return b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WEBP" + bytes(body)


# --------------------------------------------------------------------------- encoder


class _Resources:
    """What an encoder holds outside Python: released by close() or, at the latest, at GC."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.spool: IO[bytes] | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def work_folder(self) -> Path:
        """The folder, once the first frame made it (nothing asks before)."""
        assert self.folder is not None, "made with the first frame"
        return self.folder

    @property
    def open_spool(self) -> IO[bytes]:
        assert self.spool is not None, "opened with the first frame"
        return self.spool

    def stop_process(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        assert proc.stdin is not None, "ffmpeg runs with stdin=PIPE"
        try:
            proc.stdin.close()
        except OSError:
            pass
        proc.wait()

    def release(self) -> None:
        self.stop_process()
        if self.spool is not None:
            self.spool.close()
            self.spool = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class StreamingEncoder:
    """Encode frames as they come; see the module docstring.

    `write` may be called from a worker thread while ffmpeg encodes in its own
    process; `finish` returns the result and cleans up; use as a context manager
    (or call `close`) so temp files and ffmpeg go away on errors too.
    """

    def __init__(
        self,
        fmt: OutputFormat,
        fps: float,
        max_bytes: int | None = None,
        loop: bool = True,
        comment: str | None = None,
    ) -> None:
        if fmt not in MIME_TYPES:
            raise ValueError(f"unknown output format {fmt!r}; use one of {', '.join(MIME_TYPES)}")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, not {fps!r}")
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.fmt = fmt
        self.fps = float(fps)
        self.max_bytes = max_bytes
        self.loop = loop
        self.comment = comment or None
        self._lock = threading.Lock()
        self._state = "open"  # open -> finishing -> closed
        self._size: tuple[int, int] | None = None
        self._count = 0
        self._stream_failed = False
        self._mappers: dict[int, PaletteMapper] = {}  # by GIF colour count
        self._exact_palette = False
        self._face_crops: list[np.ndarray] = []
        self._faces_seen = 0
        self._face_crop_stride = 1
        self._attempts = 0
        self._res = _Resources()
        self._finalizer = weakref.finalize(self, self._res.release)

    # -- context manager / cleanup

    def __enter__(self) -> StreamingEncoder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Kill ffmpeg if it still runs and delete the spool and temp files.

        Deliberately not under the lock: a write blocked on a stuck ffmpeg must not
        keep close() from killing it.
        """
        self._state = "closed"
        self._finalizer()

    # -- writing

    @property
    def frame_count(self) -> int:
        return self._count

    def write(self, frame: np.ndarray, faces: Sequence[Sequence[float] | np.ndarray] = ()) -> None:
        """Add one RGB uint8 (H, W, 3) frame; the first frame fixes the size.

        `faces`: boxes (x0, y0, x1, y1) in frame pixels of the faces in this frame; a GIF
        gives their colours a share of its palette. MP4 and WebP ignore them.
        """
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be uint8 arrays of shape (H, W, 3), not {frame.dtype} {frame.shape}")
        with self._lock:
            if self._state != "open":
                raise RuntimeError("the encoder is already finished or closed")
            size = (frame.shape[1], frame.shape[0])
            if self._size is None:
                self._start(frame)
            elif size != self._size:
                raise ValueError(f"frame size changed from {self._size[0]}x{self._size[1]} to {size[0]}x{size[1]}")
            data = np.ascontiguousarray(frame).data.cast("B")
            self._res.open_spool.write(data)
            proc = self._res.proc
            if proc is not None and not self._stream_failed:
                assert proc.stdin is not None, "ffmpeg runs with stdin=PIPE"
                try:
                    proc.stdin.write(data)
                except OSError:  # ffmpeg died; finish() re-encodes from the spool
                    self._stream_failed = True
            self._count += 1
            if self.fmt == "gif":
                self._keep_face_crops(frame, faces)

    def _keep_face_crops(self, frame: np.ndarray, faces: Sequence[Sequence[float] | np.ndarray]) -> None:
        """Small crops of the faces for the face palette: every `stride`th face, and when
        there are too many, every other one of those kept so far, so they span the clip."""
        height, width = frame.shape[:2]
        for x0, y0, x1, y1 in faces:
            inset_x, inset_y = (x1 - x0) * _FACE_CROP_INSET, (y1 - y0) * _FACE_CROP_INSET
            left, top = max(0, round(x0 + inset_x)), max(0, round(y0 + inset_y))
            right, bottom = min(width, round(x1 - inset_x)), min(height, round(y1 - inset_y))
            if right - left < 4 or bottom - top < 4:
                continue
            self._faces_seen += 1
            if (self._faces_seen - 1) % self._face_crop_stride:
                continue
            self._face_crops.append(cv2.resize(frame[top:bottom, left:right], (_FACE_CROP_SIDE, _FACE_CROP_SIDE),
                                               interpolation=cv2.INTER_AREA))
            if len(self._face_crops) > _MAX_FACE_CROPS:
                del self._face_crops[1::2]
                self._face_crop_stride *= 2

    def _start(self, first: np.ndarray) -> None:
        self._size = (first.shape[1], first.shape[0])
        if self.fmt == "gif":
            # Flat graphics keep their exact colours; photos get the fast palette pass.
            sample = first[::2, ::2].astype(np.int32)
            packed = (sample[:, :, 0] << 16) | (sample[:, :, 1] << 8) | sample[:, :, 2]
            self._exact_palette = len(np.unique(packed)) <= _EXACT_PALETTE_MAX_COLORS
        res = self._res
        res.folder = Path(tempfile.mkdtemp(prefix="memeswap-encode-"))
        res.spool = open(res.folder / "frames.rgb", "wb")
        if self.fmt == "gif":
            # Whether faces will come is known only at the end: make the palette for either.
            args = self._raw_input("pipe:0") + self._palettegen_args(256, (0, round(256 * _FACE_PALETTE_SHARE)))
        else:
            args = self._raw_input("pipe:0") + self._encode_args(self._first_setting(), self._output(0))
        try:
            res.proc = subprocess.Popen(
                ffmpeg.base_command() + args,
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        except OSError:
            self._stream_failed = True

    # -- finishing

    def finish(self) -> EncodedMedia:
        """Encode and return the result: at full quality, or, when that is over `max_bytes`,
        at the best setting `_fit_budget` finds.

        Raises OutputTooLargeError when even the smallest setting is over budget.
        The encoder is closed afterwards, whatever happens.
        """
        with self._lock:
            if self._state != "open":
                raise RuntimeError("the encoder is already finished or closed")
            self._state = "finishing"
        try:
            if self._count == 0 or self._size is None:
                raise ValueError("no frames were written")
            self._res.open_spool.close()
            streamed = self._end_stream()
            width, height = self._frame_size
            path = _QualityPath(self.fmt, width, height, self._count, self._base_frame_step())
            media, size = self._encode(path.at(0.0), streamed=streamed, first=True)
            if media is not None:
                return media
            return self._fit_budget(path, size)
        finally:
            self.close()

    def _fit_budget(self, path: _QualityPath, full_size: int) -> EncodedMedia:
        """The best setting found whose output fits `max_bytes`, given that full quality
        (`full_size` bytes, or an estimate) does not.

        A search along the quality path in the log of the size: aimed at 90% of the budget,
        it stops at the first result between 80% and 100%; at most _BUDGET_ATTEMPTS encodes,
        the last at the smallest setting when nothing has fitted yet. It returns the largest
        result that fitted (below 80% only when the sizes jump over that window, or the
        attempts run out).
        """
        budget = self.max_bytes
        assert budget is not None, "only a result over max_bytes is fitted to it"
        aim = math.log(_BUDGET_AIM * budget)
        over = [(0.0, math.log(full_size))]
        fits: tuple[float, float] | None = None
        best: EncodedMedia | None = None
        tried = {self._setting_key(path.at(0.0))}
        for attempt in range(_BUDGET_ATTEMPTS):
            r = _next_r(over, fits, aim, path.lowest)
            if best is None and (attempt == _BUDGET_ATTEMPTS - 1 or self._setting_key(path.at(r)) in tried):
                r = path.lowest
            setting = path.at(r)
            if self._setting_key(setting) in tried:
                break
            tried.add(self._setting_key(setting))
            media, size = self._encode(setting, streamed=False)
            if media is None:
                over.append((r, math.log(size)))
                continue
            if best is None or len(media.data) > len(best.data):
                best = media
            if len(media.data) >= _BUDGET_USE * budget:
                break
            fits = (r, math.log(len(media.data)))
        if best is None:
            raise OutputTooLargeError(
                f"the result does not fit in {human_bytes(budget)}, even at the smallest size and quality"
            )
        return best

    def _setting_key(self, setting: _Setting) -> tuple[float, int, tuple[int, int]]:
        """What tells two settings' outputs apart: the level, the frame step and the size."""
        return round(setting.level, 1), setting.frame_step, self._geometry(setting)[1]

    def _end_stream(self) -> bool:
        """Close ffmpeg's stdin and wait; True when the streamed pass succeeded."""
        proc = self._res.proc
        if proc is None:
            return False
        assert proc.stdin is not None, "ffmpeg runs with stdin=PIPE"
        try:
            proc.stdin.close()
        except OSError:
            self._stream_failed = True
        rc = ffmpeg.wait_for_exit(proc, _FFMPEG_TIMEOUT_S)
        self._res.stop_process()
        return rc == 0 and not self._stream_failed

    @property
    def _frame_size(self) -> tuple[int, int]:
        """(width, height), fixed by the first frame (nothing asks before)."""
        assert self._size is not None, "set by the first frame"
        return self._size

    def _base_frame_step(self) -> int:
        return max(1, math.ceil(self.fps / _GIF_MAX_FPS - 1e-9)) if self.fmt == "gif" else 1

    def _first_setting(self) -> _Setting:
        width, height = self._frame_size
        return _QualityPath(self.fmt, width, height, 1, self._base_frame_step()).at(0.0)

    def _output(self, attempt: int) -> Path:
        return self._res.work_folder / f"out-{attempt}.{self.fmt}"

    def _raw_input(self, source: str) -> list[str]:
        width, height = self._frame_size
        return ["-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", f"{width}x{height}",
                "-framerate", ffmpeg.rate_arg(self.fps), "-i", source]

    def _spool_url(self) -> str:
        return ffmpeg.file_url(self._res.work_folder / "frames.rgb")

    def _palette_path(self, colors: int, face_colors: int) -> Path:
        return self._res.work_folder / f"palette-{colors}-{face_colors}.png"

    def _face_colors(self, colors: int) -> int:
        """How many entries of a `colors` palette go to face colours: none without faces."""
        return round(colors * _FACE_PALETTE_SHARE) if self._face_crops else 0

    def _palettegen_args(self, colors: int, face_colors: Sequence[int]) -> list[str]:
        """palettegen over the frames, one palette PNG for each face share in `face_colors`
        (the rest of `colors` comes from the frames)."""
        width, height = self._frame_size
        # palettegen hashes every distinct colour, which is slow on photos (~7 s for 64
        # frames of 480x480). Every other pixel and 64 levels per channel (0 and 255 kept
        # exact) give the same palette within ~0.1 dB PSNR in ~0.2 s; its colours are
        # averages, so they are not limited to those levels.
        shrink = "scale=trunc(iw/2):trunc(ih/2):flags=neighbor," if width * height >= 200_000 else ""
        level = "round(round(val*63/255)*255/63)"
        six_bits = "" if self._exact_palette else f"lutrgb=r={level}:g={level}:b={level},"
        # colors - 1 real colours: the last index is our transparent one (see GifWriter).
        gens = [f"palettegen=max_colors={colors - 1 - faces}:stats_mode=full:reserve_transparent=0"
                for faces in face_colors]
        outputs = [["-frames:v", "1", "-update", "1", "-f", "image2",
                    ffmpeg.file_url(self._palette_path(colors, faces))] for faces in face_colors]
        if len(gens) == 1:
            return ["-vf", shrink + six_bits + gens[0], *outputs[0]]
        labels = [f"p{i}" for i in range(len(gens))]
        graph = (f"[0:v]{shrink}{six_bits}split={len(gens)}{''.join(f'[s{i}]' for i in range(len(gens)))};"
                 + ";".join(f"[s{i}]{gen}[{label}]" for i, (gen, label) in enumerate(zip(gens, labels))))
        args = ["-filter_complex", graph]
        for label, output in zip(labels, outputs):
            args += ["-map", f"[{label}]", *output]
        return args

    def _geometry(self, setting: _Setting) -> tuple[list[str], tuple[int, int]]:
        width, height = self._frame_size
        out = _step_size(width, height, setting.scale, even=self.fmt == "mp4")
        filters = [f"framestep={setting.frame_step}"] if setting.frame_step > 1 else []
        if out != (width, height):
            if setting.scale == 1.0:
                filters.append(f"crop={out[0]}:{out[1]}:0:0")  # odd -> even: crop a line, don't resample
            else:
                filters.append(f"scale={out[0]}:{out[1]}:flags=area")
        return filters, out

    def _encode_args(self, setting: _Setting, output: Path) -> list[str]:
        """Output options for MP4 / WebP (GIF has its own path)."""
        filters, _ = self._geometry(setting)
        level = format(round(setting.level, 2), "g")
        if self.fmt == "mp4":
            filters.append("scale=out_color_matrix=bt709:out_range=tv,format=yuv420p")
            args = ["-an", "-sn", "-dn", "-vf", ",".join(filters),
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", level,
                    "-profile:v", "high", "-pix_fmt", "yuv420p",
                    "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv",
                    "-movflags", "+faststart"]
            if self.comment:
                args += ["-metadata", f"comment={self.comment}"]
            return args + ["-f", "mp4", ffmpeg.file_url(output)]
        args = ["-vf", ",".join(filters)] if filters else []
        return args + ["-c:v", "libwebp_anim", "-quality", level, "-compression_level", "2",
                       "-loop", "0" if self.loop else "1", "-f", "webp", ffmpeg.file_url(output)]

    def _encode(self, setting: _Setting, streamed: bool, first: bool = False) -> tuple[EncodedMedia | None, int]:
        """One attempt: the result when it fits the budget (or there is none), else None;
        and its size in bytes, estimated when a GIF attempt gave up part way.

        `streamed`: use what the streamed pass made (MP4 / WebP: the output; GIF: the
        palettes); `first`: the first attempt, which makes them again when that failed.
        """
        self._attempts += 1
        output = self._output(0 if streamed and self.fmt != "gif" else self._attempts)
        _, (out_w, out_h) = self._geometry(setting)
        if self.fmt == "gif":
            data, size = self._encode_gif(setting, output, remake_palette=first and not streamed)
        else:
            if not streamed:
                ffmpeg.run(self._raw_input(self._spool_url()) + self._encode_args(setting, output), _FFMPEG_TIMEOUT_S)
            data = output.read_bytes()
            output.unlink()
            if self.fmt == "webp" and self.comment:
                data = _webp_with_comment(data, self.comment, out_w, out_h)
            size = len(data)
        if data is None or (self.max_bytes is not None and size > self.max_bytes):
            return None, size
        media = EncodedMedia(
            data=data,
            mime=MIME_TYPES[self.fmt],
            format=self.fmt,
            width=out_w,
            height=out_h,
            fps=self.fps / setting.frame_step,
            frame_count=math.ceil(self._count / setting.frame_step),
            colors=round(setting.level) if self.fmt == "gif" else None,
        )
        return media, size

    def _gif_palette(self, colors: int, remake: bool) -> np.ndarray:
        """The palette of a `colors`-colour GIF: face colours first when there were faces.

        The 256-colour palettes come from the streamed pass; `remake` when that failed.
        The others are made from the spool on first use and kept.
        """
        face_colors = self._face_colors(colors)
        palette_png = self._palette_path(colors, face_colors)
        if remake or not palette_png.exists():
            ffmpeg.run(self._raw_input(self._spool_url()) + self._palettegen_args(colors, (face_colors,)),
                       _FFMPEG_TIMEOUT_S)
        palette = read_palette(palette_png, colors - 1 - face_colors)
        if face_colors:
            faces = face_palette(np.stack(self._face_crops), face_colors)
            palette = distinct_colours(np.concatenate([faces, palette]))[:colors - 1]
        return palette

    def _encode_gif(self, setting: _Setting, output: Path, remake_palette: bool) -> tuple[bytes | None, int]:
        colors = round(setting.level)
        palette = self._gif_palette(colors, remake_palette)
        mapper = self._mappers.get(colors)
        if mapper is None:
            mapper = self._mappers[colors] = PaletteMapper(palette)
        width, height = self._frame_size
        _, (out_w, out_h) = self._geometry(setting)
        kept = range(0, self._count, setting.frame_step)
        out_fps = self.fps / setting.frame_step
        frames = np.memmap(self._res.work_folder / "frames.rgb", dtype=np.uint8, mode="r",
                           shape=(self._count, height, width, 3))
        def mapped(k: int) -> np.ndarray:
            frame = frames[k]  # noqa: F821 (deleted only after the last call, to close the memmap)
            if (out_w, out_h) != (width, height):
                frame = cv2.resize(frame, (out_w, out_h), interpolation=cv2.INTER_AREA)
            return mapper.map(frame)

        try:
            with open(output, "wb") as fh, ThreadPoolExecutor(max_workers=2, thread_name_prefix="gif-map") as pool:
                writer = GifWriter(fh, out_w, out_h, palette, self.loop, self.comment)
                # frames are mapped onto the palette a few ahead, on other cores, while this
                # thread compresses and writes (the mapper's table fills the same from any thread)
                for j, indices in enumerate(_ahead(pool, mapped, kept, _GIF_MAP_AHEAD)):
                    # Delays from rounded timestamps, so the total time stays right at any fps.
                    delay = round((j + 1) * 100 / out_fps) - round(j * 100 / out_fps)
                    writer.add(indices, delay)
                    written = fh.tell()
                    if j == 0:
                        first = written  # the first frame is whole; later ones only what changed
                    elif self.max_bytes is not None and written > _GIF_GIVE_UP * self.max_bytes and j + 1 < len(kept):
                        return None, round(first + (written - first) * (len(kept) - 1) / j)
                writer.close()
            data = output.read_bytes()
        finally:
            del frames
            output.unlink(missing_ok=True)
        return data, len(data)


def _ahead(pool: ThreadPoolExecutor, work: Callable[[int], np.ndarray], items: Sequence[int],
           depth: int) -> Iterator[np.ndarray]:
    """`work(item)` for each item, in order, with up to `depth` of them running ahead on `pool`;
    what is still running when the caller stops early is cancelled or waited for on the way out."""
    pending: deque[Future] = deque()
    try:
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def encode_frames(
    frames: Iterable[np.ndarray],
    fmt: OutputFormat,
    fps: float,
    max_bytes: int | None = None,
    loop: bool = True,
    comment: str | None = None,
) -> EncodedMedia:
    """Encode all `frames` (see StreamingEncoder)."""
    with StreamingEncoder(fmt, fps, max_bytes=max_bytes, loop=loop, comment=comment) as encoder:
        for frame in frames:
            encoder.write(frame)
        return encoder.finish()


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers never see a half-written file."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"the output folder does not exist: {folder}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
