"""A preview sheet: numbered thumbnails of templates in a grid, each with its number, title
and name under it, and on a template with several faces each face's number
(`face_order.numbered_faces`) drawn on the face.

Rendering needs the templates' media and, for the face numbers, their compiled tracks when
they exist; it never runs a face model. Text is Pillow's built-in font, so no font file ships.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from memeswap.inference.errors import InputError
from memeswap.inference.media.decode import probe_media, read_frames
from memeswap.inference.media.limits import Deadline, MediaLimits
from memeswap.inference.media.overlay import caption_layer, composite, read_overlay
from memeswap.inference.templates.compile import TemplateTracks
from memeswap.inference.templates.face_order import numbered_faces

log = logging.getLogger("memeswap.preview")

SheetFormat = Literal["png", "jpeg"]
SHEET_VERSION = "sheet-v2"  # part of a cached sheet's key: bump when the drawing (or the face numbering) changes
BACKGROUND = (24, 24, 28)
TILE_BACKGROUND = (44, 44, 52)
TEXT = (240, 240, 240)
MUTED = (160, 160, 170)
BADGE = (255, 204, 0)
BADGE_TEXT = (0, 0, 0)


@dataclass(frozen=True)
class SheetTile:
    number: int
    name: str
    title: str
    media: Path | None  # None: its files are gone (an empty tile)
    tracks: TemplateTracks | None  # None: the template has not been analysed yet, so no face numbers
    overlay: Path | None = None  # drawn over the frame as a meme shows it
    caption: str | None = None
    caption_position: str = "bottom"


@dataclass(frozen=True)
class SheetLayout:
    """`tile`: the thumbnails' long side, in pixels; `columns`: at most this many per row."""

    tile: int = 160
    columns: int = 5
    gap: int = 10
    label_size: int = 15

    @property
    def label_height(self) -> int:
        return 2 * self.label_size + 12

    def grid(self, count: int) -> tuple[int, int]:
        """(columns, rows) for `count` tiles."""
        columns = max(1, min(self.columns, count))
        return columns, max(1, math.ceil(count / columns))

    def size(self, count: int, footer: bool) -> tuple[int, int]:
        """The sheet's (width, height) for `count` tiles."""
        columns, rows = self.grid(count)
        width = self.gap + columns * (self.tile + self.gap)
        height = self.gap + rows * (self.tile + self.label_height + self.gap)
        return width, height + (self.label_size + self.gap if footer else 0)


def render_sheet(tiles: Sequence[SheetTile], layout: SheetLayout = SheetLayout(),
                 limits: MediaLimits = MediaLimits(), fmt: SheetFormat = "png", footer: str | None = None,
                 deadline: Deadline | None = None) -> bytes:
    """The sheet as PNG or JPEG bytes. A template whose media cannot be read gets an empty
    tile (still numbered), not a failed sheet; `deadline` is checked between tiles."""
    deadline = deadline or Deadline()
    width, height = layout.size(len(tiles), footer is not None)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    title_font = ImageFont.load_default(size=layout.label_size)
    name_font = ImageFont.load_default(size=layout.label_size - 3)
    columns, _ = layout.grid(len(tiles))
    for index, tile in enumerate(tiles):
        deadline.check()
        x = layout.gap + (index % columns) * (layout.tile + layout.gap)
        y = layout.gap + (index // columns) * (layout.tile + layout.label_height + layout.gap)
        draw.rectangle((x, y, x + layout.tile - 1, y + layout.tile - 1), fill=TILE_BACKGROUND)
        thumbnail = _thumbnail(tile, layout.tile, limits, deadline)
        if thumbnail is not None:
            left, top = (layout.tile - thumbnail.width) // 2, (layout.tile - thumbnail.height) // 2
            sheet.paste(thumbnail, (x + left, y + top))
        label_y = y + layout.tile + 4
        draw.text((x, label_y), _fitted(f"{tile.number}  {tile.title}", title_font, layout.tile), font=title_font,
                  fill=TEXT)
        draw.text((x, label_y + layout.label_size + 3), _fitted(tile.name, name_font, layout.tile), font=name_font,
                  fill=MUTED)
    if footer is not None:
        draw.text((layout.gap, height - layout.label_size - layout.gap // 2), _fitted(footer, name_font, width),
                  font=name_font, fill=MUTED)
    buffer = io.BytesIO()
    if fmt == "jpeg":
        sheet.save(buffer, "JPEG", quality=85, optimize=True)
    else:
        sheet.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def thumbnail_frame(tracks: TemplateTracks | None, frame_count: int) -> int:
    """The frame a thumbnail shows: where the most faces are in view (the middle one of
    those frames), else the middle frame."""
    if tracks is None or not tracks.tracks:
        return frame_count // 2
    in_view = np.zeros(tracks.frame_count, int)
    for track in tracks.tracks:
        in_view[track.first:track.last + 1] += 1
    best = np.flatnonzero(in_view == in_view.max())
    return int(best[len(best) // 2])


def _thumbnail(tile: SheetTile, side: int, limits: MediaLimits, deadline: Deadline) -> Image.Image | None:
    """The chosen frame, its long side `side`, as a meme shows it (overlay, caption), with
    the face numbers of a template of several faces."""
    if tile.media is None:
        return None
    try:
        count = tile.tracks.frame_count if tile.tracks is not None else probe_media(tile.media, limits).frame_count
        wanted = thumbnail_frame(tile.tracks, count or 0)
        frame = _nth(read_frames(tile.media, limits, max_side=side, deadline=deadline), wanted)
    except InputError as error:  # a damaged file among someone's templates: an empty tile, not a failed sheet
        log.warning("no thumbnail for template %s: %s", tile.name, error)
        return None
    if frame is None:
        return None
    if tile.overlay is not None and (layer := _nth(read_overlay(tile.overlay), wanted)) is not None:
        frame = composite(frame, layer)
    if tile.caption:
        frame = composite(frame, caption_layer(frame.shape[1], frame.shape[0], tile.caption, tile.caption_position))
    image = Image.fromarray(frame)
    if tile.tracks is not None and len(tile.tracks.tracks) > 1 and tile.tracks.width:
        _number_faces(image, tile.tracks, wanted, image.width / tile.tracks.width)
    return image


def _nth(frames: Iterator[np.ndarray], index: int) -> np.ndarray | None:
    """Frame `index` (or the last one, for fewer frames); the rest is not decoded."""
    found = None
    with contextlib.closing(frames):  # type: ignore[type-var]  # generators, which have close()
        for at, frame in enumerate(frames):
            found = frame
            if at >= index:
                break
    return found


def _number_faces(image: Image.Image, tracks: TemplateTracks, frame_index: int, scale: float) -> None:
    draw = ImageDraw.Draw(image)
    radius = max(8, image.width // 14)
    font = ImageFont.load_default(size=int(radius * 1.4))
    for number, track in enumerate(numbered_faces(tracks), start=1):
        face = track.face_at(frame_index)
        if face is None:
            continue
        x0, y0, x1, y1 = (float(v) * scale for v in face.box)
        draw.rectangle((x0, y0, x1, y1), outline=BADGE, width=2)
        cx = min(max(x0, radius), image.width - radius)
        cy = min(max(y0, radius), image.height - radius)
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=BADGE, outline=BADGE_TEXT)
        draw.text((cx, cy), str(number), font=font, fill=BADGE_TEXT, anchor="mm")


def _fitted(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> str:
    """`text`, cut with "…" to fit `width` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"
