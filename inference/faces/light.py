"""The light and the skin of a template face in one frame, as the classic swapper uses them.

All of it depends on the template alone, so a compile measures it once per face and frame
and caches it with the tracks (`FaceTrack.skin_tone`, `eye_white`, `greyscale`,
`shading`), and a swap job only reads it: the skin's tone (on skin pixels only, see
`inference.faces.skin`, and never on what is in front of the face: a dark microphone over
the chin would darken the light the swapped face is given), the lightness of the whites of
the eyes (the scene's exposure), whether the clip is black and white, and the shading field.

The tone and the shading are low-frequency, so they are measured on the face's region
(`FaceRegion`) brought down to `LIGHT_SIDE` pixels, and the shading is kept as a grid of
`SHADING_GRID` across the region (the field is smooth at `skin.SHADING_SCALE` of the face,
so a grid of that size resamples it within a fraction of a level). The eye whites are a few
dozen pixels: they are read at full size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from memeswap.inference.faces import mesh
from memeswap.inference.faces.face import FaceRegion, face_region
from memeswap.inference.faces.skin import SkinTone, face_size, shading, skin_mask, to_lab, white_level

LIGHT_SIDE = 128  # px across a face region at which its tone and shading are measured
SHADING_GRID = 32  # samples across a face region of the cached shading field
COVERED = 0.25  # the hidden share from which a pixel of the face is not measured as skin
WHITES_OPEN = 0.2  # lid gap over eye width from which the whites of the eyes are measured
_EYES = sorted(set(mesh.RIGHT_EYE_UPPER + mesh.RIGHT_EYE_LOWER + mesh.LEFT_EYE_UPPER + mesh.LEFT_EYE_LOWER
                   + (468, 469, 473, 474)))


def is_greyscale(image: np.ndarray) -> bool:
    """True when the colour channels barely differ (a black-and-white template)."""
    sample = image[:: max(1, image.shape[0] // 64), :: max(1, image.shape[1] // 64)].astype(np.int16)
    return float(np.abs(sample - sample.mean(axis=2, keepdims=True)).mean()) < 2.0


def region_pixels(frame: np.ndarray, region: FaceRegion, side: int = LIGHT_SIDE) -> np.ndarray:
    """The region of an RGB uint8 frame as a `side` square, pixel centres as
    `FaceRegion.to_mask` places them: sampled at a whole multiple of `side`, then averaged
    down (where the region reaches past the frame, its edge pixels are repeated)."""
    factor = max(1, int(region.side // side))
    sampled = cv2.warpAffine(np.ascontiguousarray(frame), region.to_mask(side * factor), (side * factor,) * 2,
                             flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(sampled, (side, side), interpolation=cv2.INTER_AREA) if factor > 1 else sampled


def eye_white(frame: np.ndarray, landmarks: np.ndarray) -> float | None:
    """The L* of the whites of the eyes (`skin.white_level`), read at full size; None when
    the eyes are shut or too small to tell."""
    if min(mesh.eye_openness(landmarks)) < WHITES_OPEN:
        return None
    height, width = frame.shape[:2]
    eyes = landmarks[_EYES, :2]
    x0, y0 = (max(0, int(v) - 2) for v in eyes.min(axis=0))
    x1, y1 = min(width, int(eyes[:, 0].max()) + 3), min(height, int(eyes[:, 1].max()) + 3)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return white_level(to_lab(frame[y0:y1, x0:x1]), landmarks, (x0, y0))


@dataclass
class FaceLight:
    """A template face's skin tone, eye-white lightness (None when the eyes are shut or too
    small to tell), black-and-white flag, and shading: an (SHADING_GRID, SHADING_GRID, 3)
    Lab offset over `region`."""

    tone: SkinTone
    white: float | None
    greyscale: bool
    shading: np.ndarray
    region: FaceRegion

    @classmethod
    def measure(cls, frame: np.ndarray, landmarks: np.ndarray, region: FaceRegion | None = None,
                covered: np.ndarray | None = None) -> FaceLight:
        """Measure a face (`landmarks`: its dense mesh in frame pixels) on an RGB uint8 frame;
        see `from_pixels` for `covered`."""
        points = landmarks[:, :2]
        region = region or face_region(np.array([*points.min(axis=0), *points.max(axis=0)], np.float32))
        return cls.from_pixels(region_pixels(frame, region), landmarks, region, eye_white(frame, landmarks), covered)

    @classmethod
    def from_pixels(cls, pixels: np.ndarray, landmarks: np.ndarray, region: FaceRegion, white: float | None,
                    covered: np.ndarray | None = None) -> FaceLight:
        """The light from the face's `region_pixels` and its `eye_white`. `covered`: a square
        mask over the region (any size), the share (0..1) of each pixel that something in
        front of the face hides; a pixel a quarter hidden or more is no skin."""
        side = pixels.shape[0]
        points = landmarks[:, :2].astype(np.float64) @ region.to_mask(side)[:, :2].T + region.to_mask(side)[:, 2]
        skin = skin_mask(points, (side, side))
        if covered is not None and covered.max() > 0:
            hidden = cv2.resize(covered.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)
            skin &= (hidden < COVERED).astype(np.uint8)
        lab = to_lab(pixels)
        field = shading(lab, skin, face_size(points))
        grid = cv2.resize(field, (SHADING_GRID, SHADING_GRID), interpolation=cv2.INTER_AREA)
        return cls(SkinTone.of(lab, skin), white, is_greyscale(pixels), grid, region)

    def shading_over(self, x0: int, y0: int, width: int, height: int) -> np.ndarray:
        """The shading field (float32 Lab offset) over the frame's box at (`x0`, `y0`) of
        `width` x `height` pixels."""
        to_grid = self.region.to_mask(SHADING_GRID, (x0, y0))
        return cv2.warpAffine(np.asarray(self.shading, np.float32), to_grid, (width, height),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
