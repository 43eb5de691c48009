"""The light and the skin of a template face in one frame, as the classic swapper uses them.

All of it depends on the template alone, so a compile measures it once per face and frame
and caches it with the tracks (`FaceTrack.skin_tone`, `eye_white`, `greyscale`,
`shading`), and a swap job only reads it: the skin's tone (on skin pixels only, see
`inference.faces.skin`), the lightness of the whites of the eyes (the scene's exposure),
whether the clip is black and white, and the shading field, kept as a small grid over the
face's `FaceRegion` (the field is smooth at `skin.SHADING_SCALE` of the face, so a grid of
`SHADING_GRID` across the region resamples it within a fraction of a level).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from inference.faces import mesh
from inference.faces.face import FaceRegion, face_region
from inference.faces.skin import SkinTone, face_size, shading, skin_mask, to_lab, white_level

SHADING_GRID = 32  # samples across a face region of the cached shading field
WHITES_OPEN = 0.2  # lid gap over eye width from which the whites of the eyes are measured


def is_greyscale(image: np.ndarray) -> bool:
    """True when the colour channels barely differ (a black-and-white template)."""
    sample = image[:: max(1, image.shape[0] // 64), :: max(1, image.shape[1] // 64)].astype(np.int16)
    return float(np.abs(sample - sample.mean(axis=2, keepdims=True)).mean()) < 2.0


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
    def measure(cls, frame: np.ndarray, landmarks: np.ndarray, region: FaceRegion | None = None) -> FaceLight:
        """Measure a face (`landmarks`: its dense mesh in frame pixels) on an RGB uint8 frame."""
        points = landmarks[:, :2]
        region = region or face_region(np.array([*points.min(axis=0), *points.max(axis=0)], np.float32))
        height, width = frame.shape[:2]
        x0, y0 = max(0, math.floor(region.x0)), max(0, math.floor(region.y0))
        x1 = min(width, math.ceil(region.x0 + region.side))
        y1 = min(height, math.ceil(region.y0 + region.side))
        if x1 - x0 < 2 or y1 - y0 < 2:
            x0, y0, x1, y1 = 0, 0, width, height
        crop = frame[y0:y1, x0:x1]
        lab = to_lab(crop)
        skin = skin_mask(landmarks, crop.shape[:2], (x0, y0))
        tone = SkinTone.of(lab, skin)
        white = white_level(lab, landmarks, (x0, y0)) if min(mesh.eye_openness(landmarks)) >= WHITES_OPEN else None
        field = shading(lab, skin, face_size(landmarks))
        to_grid = region.to_mask(SHADING_GRID)
        to_grid[:, 2] += to_grid[:, :2] @ np.array([x0, y0], np.float64)  # crop pixels, not frame pixels
        grid = cv2.warpAffine(field, to_grid, (SHADING_GRID, SHADING_GRID), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        return cls(tone, white, is_greyscale(crop), grid, region)

    def shading_over(self, x0: int, y0: int, width: int, height: int) -> np.ndarray:
        """The shading field (float32 Lab offset) over the frame's box at (`x0`, `y0`) of
        `width` x `height` pixels."""
        to_grid = self.region.to_mask(SHADING_GRID)
        to_grid[:, 2] += to_grid[:, :2] @ np.array([x0, y0], np.float64)
        return cv2.warpAffine(np.asarray(self.shading, np.float32), to_grid, (width, height),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
