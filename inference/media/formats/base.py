"""What every output format provides to `encode.StreamingEncoder`, and the ffmpeg path the
formats ffmpeg encodes whole (MP4, WebP) share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from memeswap.inference.media import ffmpeg

if TYPE_CHECKING:
    from memeswap.inference.media.encode import StreamingEncoder

FFMPEG_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Setting:
    level: float  # GIF colours, MP4 CRF or WebP quality
    frame_step: int  # keep every Nth frame
    scale: float


@dataclass(frozen=True)
class Family:
    """Settings that differ in one knob: the level (at scale 1), or the scale (at a fixed
    level). `top` and `floor` are the log predicted sizes, relative to full quality, of its
    best and smallest settings."""

    top: float
    floor: float
    frame_step: int
    level: float | None  # None: the level is the knob, read from `levels`
    levels: tuple[tuple[float, float], ...] = ()
    exponent: float = 1.0

    def setting(self, r: float) -> Setting:
        r = min(self.top, max(self.floor, r))
        if self.level is None:
            logs, levels = zip(*((math.log(rel), level) for level, rel in reversed(self.levels)))
            return Setting(float(np.interp(r, logs, levels)), self.frame_step, 1.0)
        return Setting(self.level, self.frame_step, min(1.0, math.exp((r - self.top) / self.exponent)))


class FormatStream:
    """One output's format-specific work for one encoder. This default is the ffmpeg path:
    the streamed pass encodes the whole output while frames arrive, and a retry at another
    setting re-encodes from the encoder's spool."""

    def __init__(self, fmt: MediaFormat, encoder: StreamingEncoder) -> None:
        self.format = fmt
        self.encoder = encoder

    def first_frame(self, frame: np.ndarray) -> None:
        """Called with the first frame, before the streamed pass starts."""

    def add_frame(self, frame: np.ndarray, faces: Sequence[np.ndarray | Sequence[float]]) -> None:
        """Called with every frame and its face boxes."""

    def streamed_args(self) -> list[str]:
        """ffmpeg's output options for the pass that runs while frames arrive."""
        return self.format.encode_args(self.encoder, self.encoder.first_setting(), self.encoder.output_path(0))

    def streamed_output(self, attempt: int) -> int:
        """Which attempt's file a streamed encode finds its output in."""
        return 0

    def encode(self, setting: Setting, output: Path, streamed: bool, first: bool) -> tuple[bytes | None, int]:
        """The bytes at `setting` (None when an attempt gave up) and their size in bytes."""
        encoder = self.encoder
        if not streamed:
            try:
                ffmpeg.run(encoder.raw_input(encoder.spool_url()) + self.format.encode_args(encoder, setting, output),
                           FFMPEG_TIMEOUT_S)
            except ffmpeg.FFmpegError:
                if not encoder.drop_sound():  # a sound ffmpeg cannot decode is left out, not the output
                    raise
                ffmpeg.run(encoder.raw_input(encoder.spool_url()) + self.format.encode_args(encoder, setting, output),
                           FFMPEG_TIMEOUT_S)
        data = output.read_bytes()
        output.unlink()
        _, (width, height) = encoder.geometry(setting)
        data = self.format.labelled(data, encoder.comment, width, height)
        return data, len(data)


class MediaFormat:
    """An output format: its name and MIME type, and the quality ladder the budget search
    walks. Predicted sizes relative to full quality only steer the search: every size it
    keeps is measured."""

    name: str
    title: str  # as people read it: "GIF", "MP4", "WebP"
    mime: str
    scale_exponent: float  # size ~ scale ** exponent
    even_size: bool = False  # the codec needs even width and height
    carries_sound: bool = False  # keeps a video template's sound (`sound.py`)
    # (level, relative size) from full quality down; levels in between are interpolated on
    # the log of the size. Formats with another ladder override `families`.
    levels: tuple[tuple[float, float], ...] = ()

    def base_frame_step(self, fps: float) -> int:
        return 1

    def families(self, shrink: float, frames: int, base_step: int) -> list[Family]:
        """The ladder, best first: the quality levels, then smaller sizes at the lowest one.
        `shrink`: the log relative size from scale 1 to the smallest scale allowed."""
        exponent = self.scale_exponent
        worst, rel = self.levels[-1]
        return [Family(0.0, math.log(rel), base_step, None, self.levels),
                Family(math.log(rel), math.log(rel) + shrink, base_step, worst, exponent=exponent)]

    def colors(self, setting: Setting) -> int | None:
        return None

    def stream(self, encoder: StreamingEncoder) -> FormatStream:
        return FormatStream(self, encoder)

    def encode_args(self, encoder: StreamingEncoder, setting: Setting, output: Path) -> list[str]:
        """ffmpeg's output options for one encode at `setting` into `output`."""
        raise NotImplementedError

    def labelled(self, data: bytes, comment: str | None, width: int, height: int) -> bytes:
        """The file with the "AI-generated" comment in its metadata, where ffmpeg could not
        write it itself, and the XMP packet of `provenance.py` (`comment` is its label)."""
        return data
