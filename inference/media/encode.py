"""Encoding RGB frames to an output format (`formats/`: GIF, MP4, WebP), within a byte
budget when one is given.

`StreamingEncoder` feeds ffmpeg while the caller is still producing frames, and keeps
every frame in a raw spool file on disk so that it can re-encode at lower settings
when the first result is over `max_bytes`. What differs between formats (the quality
ladder, the encoder's options, the label, GIF's own palette and writer) is in the
format's module; this one holds the spool, the streamed pass and the budget search.

Over budget, `finish` searches for the best setting that fits (`_QualityPath`,
`_fit_budget`) along the format's ladder (GIF: full frame rate down to half the size, then
half the frame rate down to a quarter of the size, then 32 colours; MP4: CRF 20 to 32,
then smaller sizes; WebP: quality 80 to 35, then smaller sizes). Quality and scale are
continuous, so the search lands within 80-100% of the budget, typically on its first or
second try and within six encodes in all (see `_fit_budget`).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from memeswap.inference.errors import InputError, OutputTooLargeError
from memeswap.inference.media import ffmpeg
from memeswap.inference.media.formats.base import FFMPEG_TIMEOUT_S, Family, MediaFormat, Setting
from memeswap.inference.media.formats.registry import media_format
from memeswap.inference.sizes import human_bytes

if TYPE_CHECKING:
    from memeswap.inference.media.c2pa_manifest import ManifestSigner
    from memeswap.inference.media.sound import TemplateSound

OutputFormat = str  # a name from formats.registry.FORMATS

_MIN_SCALE = 0.25
_MIN_SCALED_SIDE = 16
# Over budget, the search aims at this share of it and stops at the first result that
# fits and uses at least _BUDGET_USE; it makes at most _BUDGET_ATTEMPTS encodes after
# the full-quality one.
_BUDGET_AIM = 0.9
_BUDGET_USE = 0.8
_BUDGET_ATTEMPTS = 5


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


class _QualityPath:
    """Every setting the budget search may pick, from full quality down, indexed by r: the
    log of its predicted size relative to full quality (0 at full quality, negative below).
    The format's families are in order of preference; r picks the first whose floor reaches it."""

    def __init__(self, fmt: MediaFormat, width: int, height: int, frames: int, base_step: int) -> None:
        min_scale = max(_MIN_SCALE, min(1.0, _MIN_SCALED_SIDE / min(width, height)))
        shrink = fmt.scale_exponent * math.log(min_scale)  # log relative size from scale 1 to the smallest
        self.families: list[Family] = fmt.families(shrink, frames, base_step)
        self.lowest = self.families[-1].floor

    def at(self, r: float) -> Setting:
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


# --------------------------------------------------------------------------- encoder


class _Resources:
    """What an encoder holds outside Python: released by close() or, at the latest, at GC."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.spool: IO[bytes] | None = None
        self.proc: subprocess.Popen | None = None

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
        signer: ManifestSigner | None = None,
        sound: TemplateSound | None = None,
    ) -> None:
        self.format = media_format(fmt)  # ValueError for an unknown name
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, not {fps!r}")
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.fmt = fmt
        self.fps = float(fps)
        self.max_bytes = max_bytes
        self.loop = loop
        self.comment = comment or None
        self.signer = signer  # a C2PA manifest in every attempt's file, so that it counts in the budget
        self.sound = sound if self.format.carries_sound else None  # GIF and WebP have none
        self._lock = threading.Lock()
        self._state = "open"  # open -> finishing -> closed
        self._size: tuple[int, int] | None = None
        self._count = 0
        self._stream_failed = False
        self._stream = self.format.stream(self)
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

    def write(self, frame: np.ndarray, faces: Sequence[np.ndarray | Sequence[float]] = ()) -> None:
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
            self._stream.add_frame(frame, faces)

    def _start(self, first: np.ndarray) -> None:
        self._size = (first.shape[1], first.shape[0])
        self._stream.first_frame(first)
        res = self._res
        res.folder = Path(tempfile.mkdtemp(prefix="memeswap-encode-"))
        res.spool = open(res.folder / "frames.rgb", "wb")
        args = self.raw_input("pipe:0") + self._stream.streamed_args()
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
            width, height = self._size
            path = _QualityPath(self.format, width, height, self._count, self.format.base_frame_step(self.fps))
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

    def _setting_key(self, setting: Setting) -> tuple[float, int, tuple[int, int]]:
        """What tells two settings' outputs apart: the level, the frame step and the size."""
        return round(setting.level, 1), setting.frame_step, self.geometry(setting)[1]

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
        rc = ffmpeg.wait_for_exit(proc, FFMPEG_TIMEOUT_S)
        self._res.stop_process()
        return rc == 0 and not self._stream_failed

    def _encode(self, setting: Setting, streamed: bool, first: bool = False) -> tuple[EncodedMedia | None, int]:
        """One attempt: the result when it fits the budget (or there is none), else None;
        and its size in bytes, estimated when an attempt gave up part way.

        `streamed`: use what the streamed pass made (MP4 / WebP: the output; GIF: the
        palettes); `first`: the first attempt, which makes them again when that failed.
        """
        self._attempts += 1
        output = self.output_path(self._stream.streamed_output(self._attempts) if streamed else self._attempts)
        data, size = self._stream.encode(setting, output, streamed, first)
        if data is not None and self.signer is not None and (self.max_bytes is None or size <= self.max_bytes):
            data = self.signer.sign(data, self.format.mime)
            size = len(data)
        if data is None or (self.max_bytes is not None and size > self.max_bytes):
            return None, size
        _, (out_w, out_h) = self.geometry(setting)
        return EncodedMedia(
            data=data,
            mime=self.format.mime,
            format=self.fmt,
            width=out_w,
            height=out_h,
            fps=self.fps / setting.frame_step,
            frame_count=math.ceil(self._count / setting.frame_step),
            colors=self.format.colors(setting),
        ), size

    # -- what the formats' streams use

    @property
    def size(self) -> tuple[int, int]:
        assert self._size is not None, "no frame written yet"
        return self._size

    @property
    def work_folder(self) -> Path:
        assert self._res.folder is not None, "no frame written yet"
        return self._res.folder

    def first_setting(self) -> Setting:
        width, height = self.size
        return _QualityPath(self.format, width, height, 1, self.format.base_frame_step(self.fps)).at(0.0)

    def output_path(self, attempt: int) -> Path:
        return self.work_folder / f"out-{attempt}.{self.fmt}"

    def raw_input(self, source: str) -> list[str]:
        """ffmpeg's input options for the raw frames at `source` (a pipe or the spool), and
        for the sound when there is one."""
        width, height = self.size
        frames = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", f"{width}x{height}",
                  "-framerate", ffmpeg.rate_arg(self.fps), "-i", source]
        return frames + (self.sound.input_args() if self.sound is not None else [])

    def drop_sound(self) -> bool:
        """Go on without the sound (ffmpeg could not decode it); False when there was none."""
        had, self.sound = self.sound is not None, None
        return had

    def spool_url(self) -> str:
        return ffmpeg.file_url(self.work_folder / "frames.rgb")

    def spooled_frames(self) -> np.ndarray:
        """Every frame written, read back from the spool (a memory map; delete it when done)."""
        width, height = self.size
        return np.memmap(self.work_folder / "frames.rgb", dtype=np.uint8, mode="r",
                         shape=(self._count, height, width, 3))

    def geometry(self, setting: Setting) -> tuple[list[str], tuple[int, int]]:
        """ffmpeg filters that take the frames to `setting`'s frame rate and size, and that size."""
        width, height = self.size
        out = _step_size(width, height, setting.scale, even=self.format.even_size)
        filters = [f"framestep={setting.frame_step}"] if setting.frame_step > 1 else []
        if out != (width, height):
            if setting.scale == 1.0:
                filters.append(f"crop={out[0]}:{out[1]}:0:0")  # odd -> even: crop a line, don't resample
            else:
                filters.append(f"scale={out[0]}:{out[1]}:flags=area")
        return filters, out


def encode_frames(
    frames: Iterable[np.ndarray],
    fmt: OutputFormat,
    fps: float,
    max_bytes: int | None = None,
    loop: bool = True,
    comment: str | None = None,
    signer: ManifestSigner | None = None,
    sound: TemplateSound | None = None,
) -> EncodedMedia:
    """Encode all `frames` (see StreamingEncoder)."""
    with StreamingEncoder(fmt, fps, max_bytes=max_bytes, loop=loop, comment=comment, signer=signer,
                          sound=sound) as encoder:
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
