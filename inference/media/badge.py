"""A small visible "AI" badge in a corner of every output frame.

The metadata label (GIF comment, MP4 comment, WebP XMP) is lost as soon as a chat app
re-encodes the file; the badge is drawn into the pixels, so the result stays
recognisably synthetic. `badge_layer` draws it once per output size; `BadgeStamp`
cuts that layer to the badge's bounding box so that each frame only blends those
few thousand pixels instead of the whole frame (15-40 us instead of ~20 ms at 480x480).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BadgeCorner = Literal["bottom-right", "bottom-left", "top-right", "top-left"]

BADGE_CORNERS: tuple[BadgeCorner, ...] = ("bottom-right", "bottom-left", "top-right", "top-left")

_MIN_HEIGHT = 12  # px; below this the text stops being readable
_MIN_FONT = 6  # px; the smallest font tried before the text is clipped
# px; smaller text gets cramped when thickened (short words such as "AI" stand it longer)
_MIN_BOLD_FONT = 10
_MIN_BOLD_FONT_SHORT = 8
_PLATE_RGB = (16, 16, 16)
_PLATE_ALPHA = 190  # semi-opaque: the frame shows through a little
_TEXT_RGB = (255, 255, 255)
_SUPERSAMPLE = 4  # the plate's rounded corners are drawn this much larger, then shrunk


@dataclass(frozen=True)
class BadgeStyle:
    """What the badge says and where it goes.

    `scale` is the badge's height as a fraction of the frame's shorter side; the
    height is at least 12 px (less only when the frame itself is too small for that).
    """

    text: str = "AI"
    corner: BadgeCorner = "bottom-right"
    scale: float = 0.06

    def __post_init__(self) -> None:
        if self.corner not in BADGE_CORNERS:
            raise ValueError(f"unknown badge corner {self.corner!r}; use one of {', '.join(BADGE_CORNERS)}")
        if not self.text.strip():
            raise ValueError("the badge text must not be empty")
        if not 0 < self.scale <= 0.5:
            raise ValueError(f"badge scale must be in (0, 0.5], not {self.scale!r}")


def badge_layer(width: int, height: int, style: BadgeStyle) -> np.ndarray:
    """The badge as an RGBA uint8 layer of shape (height, width, 4), transparent elsewhere.

    A rounded, semi-opaque dark plate with white text, a quarter of the badge's height
    away from the two edges of its corner. A pure function of its arguments, so a job
    draws it once and reuses it for every frame.
    """
    if width < 1 or height < 1:
        raise ValueError(f"frame size must be positive, not {width}x{height}")
    plate_h = max(_MIN_HEIGHT, round(style.scale * min(width, height)))
    margin = max(1, round(plate_h / 4))
    if plate_h + 2 * margin > min(width, height):  # a frame too small for a 12 px badge
        plate_h = max(1, int(min(width, height) / 1.5))
        margin = min(round(plate_h / 4), (min(width, height) - plate_h) // 2)
    text = style.text.strip()
    font, text_box, pad = _fit_text(text, plate_h, width - 2 * margin)
    bold = font.size >= (_MIN_BOLD_FONT_SHORT if len(text) <= 4 else _MIN_BOLD_FONT)
    text_w = text_box[2] - text_box[0] + bold
    plate_w = max(plate_h, min(width - 2 * margin, text_w + 2 * pad))

    badge = Image.new("RGBA", (plate_w, plate_h), _PLATE_RGB + (0,))
    badge.putalpha(_plate_alpha(plate_w, plate_h))
    draw = ImageDraw.Draw(badge)
    text_h = text_box[3] - text_box[1]
    x = round((plate_w - text_w) / 2 - text_box[0])
    y = round((plate_h - text_h) / 2 - text_box[1])
    for dx in range(1 + bold):  # the default font has no bold: a second pass 1 px right thickens it
        draw.text((x + dx, y), text, font=font, fill=_TEXT_RGB + (255,))

    left = width - margin - plate_w if style.corner.endswith("right") else margin
    top = height - margin - plate_h if style.corner.startswith("bottom") else margin
    layer = np.zeros((height, width, 4), np.uint8)
    layer[top:top + plate_h, left:left + plate_w] = np.asarray(badge)
    return layer


def _fit_text(text: str, plate_h: int, max_w: int) -> tuple[ImageFont.FreeTypeFont, tuple[int, int, int, int], int]:
    """The largest font (about 2/3 of the plate's height) whose text fits in `max_w`,
    its ink box, and the horizontal padding either side of the text."""
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    pad = max(2, round(plate_h * 0.3))
    size = max(_MIN_FONT, round(plate_h * 0.68))
    while True:
        font = ImageFont.load_default(size=size)
        assert isinstance(font, ImageFont.FreeTypeFont), "Pillow's wheels come with FreeType"
        left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
        box = (int(left), int(top), int(right), int(bottom))  # FreeType's boxes are in whole pixels
        if box[2] - box[0] + 1 + 2 * pad <= max_w or size <= _MIN_FONT:
            return font, box, pad
        size -= 1


def _plate_alpha(plate_w: int, plate_h: int) -> Image.Image:
    """The plate's alpha: a rounded rectangle, antialiased by drawing it larger and shrinking."""
    big = Image.new("L", (plate_w * _SUPERSAMPLE, plate_h * _SUPERSAMPLE), 0)
    radius = plate_h * _SUPERSAMPLE // 4
    ImageDraw.Draw(big).rounded_rectangle((0, 0, big.width - 1, big.height - 1), radius=radius, fill=_PLATE_ALPHA)
    return big.resize((plate_w, plate_h), Image.Resampling.BOX)


@dataclass(frozen=True)
class BadgeStamp:
    """A badge layer cut to its bounding box, precomputed for fast blending onto frames.

    `apply` blends only the box (integer arithmetic), so its cost grows with the badge,
    not the frame: a few tens of microseconds for the default badge on a 480x480 frame.
    """

    width: int  # of the frames it is for
    height: int
    top: int
    left: int
    weighted_rgb: np.ndarray  # uint16 (h, w, 3): layer RGB * alpha + 127 (for rounding)
    inverse_alpha: np.ndarray  # uint16 (h, w, 3): 255 - alpha

    @classmethod
    def from_layer(cls, layer: np.ndarray) -> BadgeStamp:
        """The stamp of an RGBA layer such as `badge_layer`'s output."""
        height, width = layer.shape[:2]
        rows = np.flatnonzero(layer[..., 3].any(axis=1))
        cols = np.flatnonzero(layer[..., 3].any(axis=0))
        if rows.size == 0:
            empty = np.zeros((0, 0, 3), np.uint16)
            return cls(width, height, 0, 0, empty, empty)
        box = layer[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.uint16)
        alpha = np.repeat(box[..., 3:4], 3, axis=2)
        return cls(width, height, int(rows[0]), int(cols[0]), box[..., :3] * alpha + 127, 255 - alpha)

    @classmethod
    def for_frame(cls, width: int, height: int, style: BadgeStyle) -> BadgeStamp:
        """The stamp of `badge_layer(width, height, style)`."""
        return cls.from_layer(badge_layer(width, height, style))

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """The RGB uint8 frame with the badge blended in. A writable `frame` is changed in
        place and returned; a read-only one is copied first."""
        if frame.shape[:2] != (self.height, self.width):
            raise ValueError(f"the badge is for {self.width}x{self.height} frames, "
                             f"not {frame.shape[1]}x{frame.shape[0]}")
        h, w = self.inverse_alpha.shape[:2]
        if h == 0:
            return frame
        if not frame.flags.writeable:
            frame = frame.copy()
        region = frame[self.top:self.top + h, self.left:self.left + w]
        mixed = region * self.inverse_alpha  # uint16; with weighted_rgb at most 255 * 255 + 127
        mixed += self.weighted_rgb
        mixed //= 255
        region[...] = mixed
        return frame
