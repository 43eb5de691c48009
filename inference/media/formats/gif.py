"""GIF, with our own palette and writer (`gif_writer.py`); the label is a comment extension,
and an XMP application extension (`provenance.py`) carries it again with the digital source type.

ffmpeg's palettegen builds the palette over every pixel of every frame (stats_mode=full: a
still background is on screen all the time, so it counts all the time) while frames
arrive. Faces get a quarter of the palette of their own: the encoder hands over each
frame's face boxes, and small crops of them are quantised apart (`face_palette`), so skin
keeps its shades instead of borrowing greys and blues from the rest of the frame. The
streamed pass makes both the full palette and the one that leaves that quarter free, so a
GIF without faces loses nothing. At the end the frames are mapped onto the palette with an
ordered (Bayer) dither through a 64x64x64 lookup table (nearest colour in CIELAB) and
written by the streaming GIF writer (Pillow's C LZW encoder for the pixel data; unchanged
pixels become transparent and each frame is cropped to what changed). Measured on 64 photo
frames of 480x480 this is ~4x faster than ffmpeg's paletteuse at the same PSNR.

Ladder: 256 colours at full frame rate down to half the size, then at half the frame rate
(every other frame dropped, each shown twice as long) down to the smallest size, then 32
colours. Colours come last: at the same bytes, 64 or 32 colours looked worse (posterised
hair and skin) than a smaller 256-colour GIF. A weaker dither is no knob: at 256 colours it
saved under 10% of a GIF's size.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from memeswap.inference.media import ffmpeg
from memeswap.inference.media.formats.base import FFMPEG_TIMEOUT_S, Family, FormatStream, MediaFormat, Setting
from memeswap.inference.media.gif_writer import GifWriter, PaletteMapper, distinct_colours, face_palette, read_palette
from memeswap.inference.media.provenance import xmp_packet

if TYPE_CHECKING:
    from memeswap.inference.media.encode import StreamingEncoder

FEW_COLORS = (32, 0.52)  # (colours, relative size)
HALF_FPS = 0.55  # relative size at half the frame rate
# A GIF at full frame rate is made no smaller than this; below it, half the frame rate
# at a larger size looks better (sharper, and 6 fps still reads as motion).
FULL_FPS_MIN_SCALE = 0.5
# An attempt gives up once it has written this many budgets: its size is then guessed
# from the frames so far. Early frames often change more than later ones, so a guess made
# at one budget was up to 1.6x too high and sent the search to half the frame rate.
GIVE_UP = 2.0
# Browsers play GIF delays under 2 cs at 10 cs, so faster GIFs drop frames instead.
MAX_FPS = 50.0
# Palettes come from exact colours when the first frame has no more than this.
EXACT_PALETTE_MAX_COLORS = 4096
# The share of the palette kept for face colours, and the face crops it is made from
# (each box's middle, shrunk to a small square; at most this many are kept, evenly spread).
FACE_PALETTE_SHARE = 0.25
FACE_CROP_INSET = 0.08
FACE_CROP_SIDE = 32
MAX_FACE_CROPS = 64  # crops of 32x32 spread over the clip: enough for the face palette's 64 colours
MAP_AHEAD = 4  # frames mapped onto the palette ahead of the one being written


class GifFormat(MediaFormat):
    name = "gif"
    title = "GIF"
    mime = "image/gif"
    scale_exponent = 1.7

    def base_frame_step(self, fps: float) -> int:
        return max(1, math.ceil(fps / MAX_FPS - 1e-9))

    def families(self, shrink: float, frames: int, base_step: int) -> list[Family]:
        exponent = self.scale_exponent
        min_scale = math.exp(shrink / exponent)
        half = base_step * 2 if math.ceil(frames / base_step) >= 4 else base_step
        full_fps_floor = exponent * math.log(max(min_scale, FULL_FPS_MIN_SCALE))
        families = [Family(0.0, full_fps_floor, base_step, 256, exponent=exponent)]
        fewer = 0.0
        if half != base_step:
            fewer = math.log(HALF_FPS)
            families.append(Family(fewer, fewer + shrink, half, 256, exponent=exponent))
        colors, rel = FEW_COLORS
        fewer += math.log(rel)
        families.append(Family(fewer, fewer + shrink, half, colors, exponent=exponent))
        return families

    def colors(self, setting: Setting) -> int | None:
        return round(setting.level)

    def stream(self, encoder: StreamingEncoder) -> GifStream:
        return GifStream(self, encoder)


class GifStream(FormatStream):
    def __init__(self, fmt: MediaFormat, encoder: StreamingEncoder) -> None:
        super().__init__(fmt, encoder)
        self._mappers: dict[int, PaletteMapper] = {}  # by colour count
        self._exact_palette = False
        self._face_crops: list[np.ndarray] = []
        self._faces_seen = 0
        self._face_crop_stride = 1

    def first_frame(self, frame: np.ndarray) -> None:
        # Flat graphics keep their exact colours; photos get the fast palette pass.
        sample = frame[::2, ::2].astype(np.int32)
        packed = (sample[:, :, 0] << 16) | (sample[:, :, 1] << 8) | sample[:, :, 2]
        self._exact_palette = len(np.unique(packed)) <= EXACT_PALETTE_MAX_COLORS

    def add_frame(self, frame: np.ndarray, faces: Sequence[np.ndarray | Sequence[float]]) -> None:
        """Small crops of the faces for the face palette: every `stride`th face, and when
        there are too many, every other one of those kept so far, so they span the clip."""
        height, width = frame.shape[:2]
        for x0, y0, x1, y1 in faces:
            inset_x, inset_y = (x1 - x0) * FACE_CROP_INSET, (y1 - y0) * FACE_CROP_INSET
            left, top = max(0, round(x0 + inset_x)), max(0, round(y0 + inset_y))
            right, bottom = min(width, round(x1 - inset_x)), min(height, round(y1 - inset_y))
            if right - left < 4 or bottom - top < 4:
                continue
            self._faces_seen += 1
            if (self._faces_seen - 1) % self._face_crop_stride:
                continue
            self._face_crops.append(cv2.resize(frame[top:bottom, left:right], (FACE_CROP_SIDE, FACE_CROP_SIDE),
                                               interpolation=cv2.INTER_AREA))
            if len(self._face_crops) > MAX_FACE_CROPS:
                del self._face_crops[1::2]
                self._face_crop_stride *= 2

    def streamed_args(self) -> list[str]:
        # Whether faces will come is known only at the end: make the palette for either.
        return self._palettegen_args(256, (0, round(256 * FACE_PALETTE_SHARE)))

    def streamed_output(self, attempt: int) -> int:
        return attempt  # the streamed pass made palettes, not the output

    def encode(self, setting: Setting, output: Path, streamed: bool, first: bool) -> tuple[bytes | None, int]:
        encoder = self.encoder
        colors = round(setting.level)
        palette = self._palette(colors, remake=first and not streamed)
        mapper = self._mappers.get(colors)
        if mapper is None:
            mapper = self._mappers[colors] = PaletteMapper(palette)
        width, height = encoder.size
        _, (out_w, out_h) = encoder.geometry(setting)
        kept = range(0, encoder.frame_count, setting.frame_step)
        out_fps = encoder.fps / setting.frame_step
        frames = encoder.spooled_frames()

        def mapped(k: int) -> np.ndarray:
            frame = frames[k]  # noqa: F821 (deleted only after the last call, to close the memmap)
            if (out_w, out_h) != (width, height):
                frame = cv2.resize(frame, (out_w, out_h), interpolation=cv2.INTER_AREA)
            return mapper.map(frame)

        budget = encoder.max_bytes
        try:
            with open(output, "wb") as fh, ThreadPoolExecutor(max_workers=2, thread_name_prefix="gif-map") as pool:
                writer = GifWriter(fh, out_w, out_h, palette, encoder.loop, encoder.comment,
                                   xmp_packet(encoder.comment) if encoder.comment else None)
                # frames are mapped onto the palette a few ahead, on other cores, while this
                # thread compresses and writes (the mapper's table fills the same from any thread)
                for j, indices in enumerate(_ahead(pool, mapped, kept, MAP_AHEAD)):
                    # Delays from rounded timestamps, so the total time stays right at any fps.
                    delay = round((j + 1) * 100 / out_fps) - round(j * 100 / out_fps)
                    writer.add(indices, delay)
                    written = fh.tell()
                    if j == 0:
                        first_size = written  # the first frame is whole; later ones only what changed
                    elif budget is not None and written > GIVE_UP * budget and j + 1 < len(kept):
                        return None, round(first_size + (written - first_size) * (len(kept) - 1) / j)
                writer.close()
            data = output.read_bytes()
        finally:
            del frames
            output.unlink(missing_ok=True)
        return data, len(data)

    def _palette_path(self, colors: int, face_colors: int) -> Path:
        return self.encoder.work_folder / f"palette-{colors}-{face_colors}.png"

    def _face_colors(self, colors: int) -> int:
        """How many entries of a `colors` palette go to face colours: none without faces."""
        return round(colors * FACE_PALETTE_SHARE) if self._face_crops else 0

    def _palette(self, colors: int, remake: bool) -> np.ndarray:
        """The palette of a `colors`-colour GIF: face colours first when there were faces.

        The 256-colour palettes come from the streamed pass; `remake` when that failed.
        The others are made from the spool on first use and kept.
        """
        face_colors = self._face_colors(colors)
        palette_png = self._palette_path(colors, face_colors)
        if remake or not palette_png.exists():
            encoder = self.encoder
            ffmpeg.run(encoder.raw_input(encoder.spool_url()) + self._palettegen_args(colors, (face_colors,)),
                       FFMPEG_TIMEOUT_S)
        palette = read_palette(palette_png, colors - 1 - face_colors)
        if face_colors:
            faces = face_palette(np.stack(self._face_crops), face_colors)
            palette = distinct_colours(np.concatenate([faces, palette]))[:colors - 1]
        return palette

    def _palettegen_args(self, colors: int, face_colors: Sequence[int]) -> list[str]:
        """palettegen over the frames, one palette PNG for each face share in `face_colors`
        (the rest of `colors` comes from the frames)."""
        width, height = self.encoder.size
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
