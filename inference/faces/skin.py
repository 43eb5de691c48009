"""Where a face's skin is, what on it is not skin, and what of its brightness is light.

Colour and lighting are measured on skin only: statistics taken over the whole face mix in
eyebrows, lips and eyes (and in a selfie hair strands or glasses), and carry them into the
paste as blue-grey or dark blotches. The skin is the face oval of the 478-point mesh less
its features (eyes, brows, lips, each grown a little); on a selfie, what is left that is
much darker or brighter than the skin around it (a hair strand, a glasses frame, a shine
spot) is masked out too and painted over from its surroundings.

A face's brightness is its skin (its albedo, the person's tone and detail) times the light
on it. `shading` estimates the light as the skin's brightness at a coarse scale, relative
to its median, so that subtracting it leaves the face as if evenly lit, and adding another
face's shading lights it that way instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from memeswap.inference.faces import mesh

RIGHT_BROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
LEFT_BROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
NOSTRILS = (48, 64, 98, 97, 2, 326, 327, 294, 278, 102, 331, 49, 279)
SHADING_SCALE = 0.12  # of the face's size: the Gaussian scale at which light is told from skin


def white_level(lab: np.ndarray, points: np.ndarray, offset: tuple[float, float] = (0.0, 0.0)) -> float | None:
    """The lightness of the whites of the eyes: a reference that is the same for every skin
    tone, so comparing it between two photos tells their exposure apart from their people's
    skin. The bright end (90th percentile) of the open eyes less the irises; None when the
    eyes are shut or too small to tell."""
    xy = points[:, :2] - np.asarray(offset, np.float32)
    mask = np.zeros(lab.shape[:2], np.uint8)
    for upper, lower in ((mesh.RIGHT_EYE_UPPER, mesh.RIGHT_EYE_LOWER), (mesh.LEFT_EYE_UPPER, mesh.LEFT_EYE_LOWER)):
        cv2.fillPoly(mask, [np.round(xy[list(upper) + list(lower[::-1])]).astype(np.int32)], 1)
    for centre, rim in ((468, 469), (473, 474)):
        radius = float(np.linalg.norm(xy[centre] - xy[rim]))
        cv2.circle(mask, tuple(int(v) for v in np.round(xy[centre])), int(np.ceil(radius * 1.1)), 0, -1)
    values = lab[..., 0][mask.astype(bool)]
    if len(values) < 24:
        return None
    return float(np.percentile(values, 90))


REFERENCE_WHITE = 78.0  # L* of the whites of the eyes in a normally exposed photo
EXPOSURE_BAND = (0.6, 1.4)  # luminance factors of eye whites that count as a normal exposure




def exposure(white: float | None, skin_lightness: float) -> float:
    """How much light a photo's face gets relative to a normally exposed one, from the
    lightness of its eye whites (1 when they cannot tell), as a factor on luminance.

    Eye whites are at least as light as the skin around them in any light and for any skin
    tone (the astronaut's, the lightest skin we have, read 80 against 75, and 38 against 35
    with the light at 45%); a darker reading (tinted glasses, a squint, heavy lashes: Grace
    Hopper's portrait reads 43 against skin of 65) tells nothing, and taking it as a dim
    scene would darken the swapped face below both people's skin."""
    if white is None or white < skin_lightness:
        return 1.0
    factor = _luminance(white) / _luminance(REFERENCE_WHITE)
    # Eye whites are a few dozen pixels: their reading wobbles from frame to frame, so only a
    # clearly dim or bright scene counts (beyond a band that normal exposures stay within).
    low, high = EXPOSURE_BAND
    if low <= factor <= high:
        return 1.0
    return float(np.clip(factor / low if factor < low else factor / high, 0.15, 1.25))


def exposed(lightness: float, factor: float) -> float:
    """The L* a skin of `lightness` L* has with `factor` times the light."""
    y = _luminance(lightness) * factor
    return float(116.0 * np.cbrt(y) - 16.0) if y > 0.008856 else float(903.3 * y)


def _luminance(lightness: float) -> float:
    return ((lightness + 16.0) / 116.0) ** 3 if lightness > 8.0 else lightness / 903.3


def face_size(points: np.ndarray) -> float:
    return float(np.ptp(points[:, :2], axis=0).max())


def skin_mask(points: np.ndarray, shape: tuple[int, int], offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """uint8 1 on the face's skin (the mesh's oval less eyes, brows, nostrils and lips), in an image of
    `shape` whose origin is at `offset` in the points' coordinates."""
    xy = points[:, :2] - np.asarray(offset, np.float32)
    rim = max(1, int(round(0.03 * face_size(points))))
    # Growing a filled polygon by a disc is filling it and drawing its outline that thick
    # (OpenCV's thick lines have round ends); shrinking is taking that outline away. Far
    # cheaper than a dilation or erosion with a kernel of this size, on every frame.
    oval = np.round(xy[list(mesh.FACE_OVAL)]).astype(np.int32)
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [oval], 1)
    # The oval's own rim (hairline, jaw) often holds hair or background: keep off it too.
    cv2.polylines(mask, [oval], True, 0, 2 * rim - 1)
    mask[feature_mask(points, shape, offset) > 0] = 0
    return mask


def feature_mask(points: np.ndarray, shape: tuple[int, int], offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """uint8 1 on the face's eyes, brows, nostrils and lips, each grown a little (see `skin_mask`)."""
    xy = points[:, :2] - np.asarray(offset, np.float32)
    grow = max(1, int(round(0.035 * face_size(points))))
    holes: list[np.ndarray] = []
    for upper, lower in ((mesh.RIGHT_EYE_UPPER, mesh.RIGHT_EYE_LOWER), (mesh.LEFT_EYE_UPPER, mesh.LEFT_EYE_LOWER)):
        holes.append(np.round(xy[list(upper) + list(lower[::-1])]).astype(np.int32))
    for group in (RIGHT_BROW, LEFT_BROW, LIPS_OUTER, NOSTRILS):
        holes.append(cv2.convexHull(np.round(xy[list(group)]).astype(np.int32)))
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, holes, 1)
    cv2.polylines(mask, holes, True, 1, 2 * grow - 1)
    return mask


def masked_lowpass(image: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of `image` (H, W) or (H, W, C) float32 using only pixels where `mask` is
    set (a normalised convolution, so it also fills the gaps between them), computed on a
    reduced copy so the cost stays small for large faces."""
    height, width = mask.shape
    factor = max(1, int(sigma // 4))
    small_size = (max(1, width // factor), max(1, height // factor))
    small_image = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask.astype(np.float32), small_size, interpolation=cv2.INTER_AREA)
    s = max(0.5, sigma / factor)
    small_image = small_image.reshape(*small_mask.shape, -1)
    weighted = cv2.GaussianBlur(small_image * small_mask[..., None], (0, 0), s)
    weight = cv2.GaussianBlur(small_mask, (0, 0), s)[..., None]
    low = weighted.reshape(*weighted.shape[:2], -1) / np.maximum(weight, 1e-4)
    return cv2.resize(low, (width, height), interpolation=cv2.INTER_LINEAR).reshape(image.shape)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def to_rgb(lab: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB) * 255.0


@dataclass
class SkinTone:
    """A skin's median colour (L*, a*, b*) and its spread (per channel, robust)."""

    median: np.ndarray
    spread: np.ndarray

    @classmethod
    def of(cls, lab: np.ndarray, mask: np.ndarray) -> SkinTone:
        step = max(1, int(np.sqrt(mask.size / 16000)))  # a robust statistic needs no more than a few thousand
        pixels = lab[::step, ::step][mask[::step, ::step].astype(bool)]
        if len(pixels) < 16:
            pixels = lab[mask.astype(bool)] if mask.any() else lab.reshape(-1, 3)
        if len(pixels) < 16:
            pixels = lab.reshape(-1, 3)
        pixels = pixels[:: max(1, len(pixels) // 4000)]
        median = np.median(pixels, axis=0)
        spread = 1.4826 * np.median(np.abs(pixels - median), axis=0)
        return cls(median.astype(np.float32), np.maximum(spread, (2.0, 1.0, 1.0)).astype(np.float32))

    def exposed(self, factor: float) -> SkinTone:
        """This skin with `factor` times the light (its colour kept)."""
        if factor == 1.0:
            return self
        median = self.median.copy()
        median[0] = exposed(float(median[0]), factor)
        return SkinTone(median, self.spread)


def shading(lab: np.ndarray, mask: np.ndarray, size: float) -> np.ndarray:
    """The light on the skin as an (H, W, 3) Lab offset: its coarse brightness (and colour
    cast), filled in over the features, less its own median over the skin, so that light
    moves brightness about on the face without moving the face's tone (taken from the skin's
    median instead, a wrinkled face, whose dark marks pull its coarse level below the median
    of its pixels, took a swapped face 1-2 L* darker than the tone it was given)."""
    low = masked_lowpass(lab, mask, SHADING_SCALE * size)
    inside = mask.astype(bool)
    return low - np.median(low[inside] if inside.any() else low.reshape(-1, 3), axis=0)


def clean_selfie(lab: np.ndarray, points: np.ndarray, mask: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """The selfie's skin without hair strands, glasses frames and shine: returns the cleaned
    Lab image and the skin mask without the marks.

    A strand or a frame is a thin line far darker than the skin on either side of it (a
    black-hat of a few pixels' width), stretching over a noticeable length; moles, freckles,
    stubble and shadows are wider or shorter, belong to the person, and stay. Above the eyes
    (a hat's brim, a fringe), whole patches of another colour are blended to the skin's
    colour around them. A shine spot is skin far brighter and paler than the skin's coarse
    level there; it is blended back to that level (softly: a shine has no edge)."""
    inside = mask.astype(bool)
    if not inside.any():
        return lab, mask
    dark = dark_strands(lab[..., 0], inside, size)
    cleaned = _paint_over(lab, cv2.dilate(dark.astype(np.uint8), np.ones((3, 3), np.uint8)), size)
    tone = SkinTone.of(cleaned, mask & (1 - dark.astype(np.uint8)))
    colour_gap = np.sqrt((((cleaned[..., 1:] - tone.median[1:]) / np.maximum(tone.spread[1:], 3.0)) ** 2).sum(axis=2))
    brow_line = float(points[[70, 300], 1].mean())  # the tops of the brows
    rows = np.arange(lab.shape[0], dtype=np.float32)[:, None]
    other = np.clip((colour_gap - 3.5) / 2.0, 0.0, 1.0) * inside * (rows < brow_line)
    if other.any():
        skin_only = mask & (1 - dark.astype(np.uint8)) & (other < 0.5).astype(np.uint8)
        skin_colour = masked_lowpass(cleaned, skin_only, SHADING_SCALE * size)
        other = cv2.GaussianBlur(other.astype(np.float32), (0, 0), max(1.0, 0.015 * size))[..., None]
        cleaned = cleaned + (skin_colour - cleaned) * other
        dark = dark | (other[..., 0] > 0.5)
    shine = np.zeros(mask.shape, np.float32)
    for _ in range(2):  # the second look measures the skin's level without the shine found by the first
        coarse = masked_lowpass(cleaned, mask & (shine < 0.5).astype(np.uint8), SHADING_SCALE * size)
        excess = cleaned[..., 0] - coarse[..., 0]
        paler = np.hypot(cleaned[..., 1], cleaned[..., 2]) < 0.8 * np.hypot(coarse[..., 1], coarse[..., 2])
        shine = np.clip((excess - 6.0) / 10.0, 0.0, 1.0) * paler * inside
        shine = cv2.GaussianBlur(shine.astype(np.float32), (0, 0), max(1.0, 0.01 * size))
    return cleaned + (coarse - cleaned) * shine[..., None], mask & (1 - dark.astype(np.uint8))


def dark_strands(lightness: np.ndarray, inside: np.ndarray, size: float) -> np.ndarray:
    """Hair strands and glasses frames inside the bool mask `inside`: thin lines far darker
    than the skin on either side of them (a black-hat about a twentieth of the face wide,
    deeper than 15 L* and than 35% of the skin's L*: wrinkles, smile lines and stubble are
    shallower), stretching at least an eighth of the face's `size`. `lightness`: L* (0..100)."""
    width = max(5, int(round(0.05 * size)) | 1)
    closed = cv2.morphologyEx(lightness, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                                                     (width, width)))
    thin_dark = _far_darker(lightness, closed)
    return _long_marks((thin_dark & inside).astype(np.uint8), 0.12 * size)


def _far_darker(lightness: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Where L* `lightness` is below the skin's L* `skin` by more than 15 and than 35% of it:
    hair or a glasses frame; wrinkles, folds and stubble are shallower."""
    return skin - lightness > np.maximum(15.0, 0.35 * skin)


def dark_over_skin(lightness: np.ndarray, inside: np.ndarray, size: float) -> np.ndarray:
    """Hair in front of skin inside the bool mask `inside`: pixels far darker than the skin's
    coarse level around them (deeper than 15 L* and than 35% of that level, as for
    `dark_strands`). The level is the skin's own at `SHADING_SCALE` of the face's `size`,
    taken twice, the second time without what the first found dark, and never below 0.7 of
    the median skin's, so a fringe that covers the top of the forehead does not darken the
    level it is measured against; a side light or a shadow is as coarse as the level and
    follows it. `lightness`: L* (0..100)."""
    dark = np.zeros(inside.shape, bool)
    if not inside.any():
        return dark
    floor = 0.7 * float(np.median(lightness[inside]))
    for _ in range(2):
        level = np.maximum(masked_lowpass(lightness, (inside & ~dark).astype(np.float32), SHADING_SCALE * size),
                           floor)
        dark = inside & _far_darker(lightness, level)
    return dark


def _paint_over(lab: np.ndarray, marks: np.ndarray, size: float) -> np.ndarray:
    """`lab` with the `marks` (uint8 mask) filled in from their surroundings."""
    if not marks.any():
        return lab
    radius = max(2, int(round(0.02 * size)))
    filled = lab.copy()
    for channel, (lo, hi) in enumerate(((0.0, 100.0), (-128.0, 128.0), (-128.0, 128.0))):
        scaled = np.clip((lab[..., channel] - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)  # inpaint: 8 bits
        painted = cv2.inpaint(scaled, marks, radius, cv2.INPAINT_TELEA).astype(np.float32) / 255.0 * (hi - lo) + lo
        filled[..., channel] = np.where(marks.astype(bool), painted, lab[..., channel])
    return filled


def _long_marks(marks: np.ndarray, min_length: float) -> np.ndarray:
    """The connected marks that stretch at least `min_length` pixels (strands, frames)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(marks, connectivity=8)
    keep = np.zeros(count, bool)
    for index in range(1, count):
        width, height = stats[index, cv2.CC_STAT_WIDTH], stats[index, cv2.CC_STAT_HEIGHT]
        keep[index] = max(width, height) >= min_length
    return keep[labels]
