"""The compositing stage after any swapper (and the face enhancer): what the template tells
about each face decides how much of the swap shows, and how it looks.

It works on the swap's change, D = swapped - template, inside each face's region, for
every swapper alike (the classic mesh warp and the learned swapper's paste-back), using
only what the template's compile stored on the face (`Face.frame_info`, a `FaceFrame`):

- pose: faces turned past `PoseRule.skip_yaw` are not given to the swapper at all
  (`Compositor.faces_to_swap`), so they stay the template's own, bit for bit; from
  `full_yaw` to `skip_yaw` the change fades out (smoothstep);
- behind occluders: the change is scaled by the face's `visible` mask, so where a hand, an
  object or the hair's fringe is in front of the face the template's pixels win, with the
  mask's soft edge;
- blur: the change is blurred by the Gaussian that takes the swapped content's own blur to
  the template face's (sigmas in quadrature), so an out-of-focus face gets an out-of-focus
  swap: out = template + G * D;
- grain: where the swap changed the face, luma grain of the std that takes the swapped
  content's own grain (after that blur) to the template face's (in quadrature) is added,
  fresh in every frame (seeded by the frame's index, so a job's output is reproducible).

The swapped content's own blur and grain are the selfie's (`SourceLook`, measured once
per job on the selfie's face), brought to the template face's scale.

Pose thresholds (PoseRule defaults) are on `inference.faces.pose`'s yaw scale (MediaPipe's
mesh, which reads a real turn at about 0.6 to 0.7 of its geometric angle). They were chosen
by looking at the classic swapper on turned faces (the real ones of insightface's t1.jpg,
and the astronaut re-rendered turned): up to a reading of about 25 degrees the swap holds;
beyond, the far cheek folds and the paste shows streaks and a doubled jaw line, and past
a reading of 35 degrees the template's own face looks better than any share of the swap.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from memeswap.inference.faces import degradation
from memeswap.inference.faces.face import Face, FaceFrame, FaceRegion

MIN_BLUR = 0.5  # px: a smaller matching blur is not worth applying
MIN_GRAIN = 0.8  # levels: less added grain is not visible


@dataclass(frozen=True)
class PoseRule:
    """How much of the swap shows by head yaw (degrees on `inference.faces.pose`'s scale):
    all of it up to `full_yaw`, fading (smoothstep) to none at `skip_yaw`, and beyond that
    the face is skipped."""

    full_yaw: float = 25.0
    skip_yaw: float = 35.0

    def weight(self, yaw: float) -> float:
        turn = abs(float(yaw))
        if turn <= self.full_yaw:
            return 1.0
        if turn >= self.skip_yaw:
            return 0.0
        t = (self.skip_yaw - turn) / (self.skip_yaw - self.full_yaw)
        return float(t * t * (3 - 2 * t))


@dataclass(frozen=True)
class SourceLook:
    """The selfie face's own blur (sigma, selfie pixels) and grain (std, levels), and its
    size (the longer side of its box, selfie pixels), measured once per job."""

    blur: float = 0.0
    noise: float = 0.0
    face_size: float = 0.0

    @classmethod
    def measure(cls, image: np.ndarray, face: Face) -> "SourceLook":
        points = degradation.face_points(face)
        return cls(degradation.blur_sigma(image, points), degradation.grain_std(image, points),
                   max(face.width, face.height))


class Compositor:
    """One job's compositing: `faces_to_swap` before the swapper, `composite` after it."""

    def __init__(self, rule: PoseRule = PoseRule(), source: SourceLook = SourceLook()) -> None:
        self.rule = rule
        self.source = source

    def faces_to_swap(self, faces: Sequence[Face]) -> list[Face]:
        """The faces the swapper should see: those not turned past the skip threshold."""
        return [f for f in faces if f.frame_info is None or self.rule.weight(f.frame_info.yaw) > 0]

    def composite(self, template: np.ndarray, swapped: np.ndarray, faces: Sequence[Face],
                  frame_index: int) -> np.ndarray:
        """The swapped frame with each face's change scaled, blurred and grained as its
        `frame_info` says; `template` is the frame before the swap. Faces without
        `frame_info` keep the swap as it is. `swapped` (the swapper's own new frame) is
        changed in place and returned."""
        out = swapped
        for number, face in enumerate(faces):
            info = face.frame_info
            if info is None:
                continue
            out = self._face(template, out, face, info, np.random.default_rng((frame_index, number)))
        return out

    def _face(self, template: np.ndarray, swapped: np.ndarray, face: Face, info: FaceFrame,
              rng: np.random.Generator) -> np.ndarray:
        height, width = template.shape[:2]
        region = info.region
        weight = self.rule.weight(info.yaw)
        visible = info.visible
        blur = self._matching_blur(face, info)
        grain = self._matching_grain(blur, info)
        left, top, right, bottom = region.x0, region.y0, region.x0 + region.side, region.y0 + region.side
        if weight == 1.0 and blur < MIN_BLUR and grain < MIN_GRAIN:
            covered = np.argwhere(visible < 255)
            if not len(covered):
                return swapped
            # only where something is in front of the face does anything change: work there
            per_cell = region.side / visible.shape[0]
            (row0, col0), (row1, col1) = covered.min(axis=0), covered.max(axis=0) + 1
            left, top = region.x0 + (col0 - 1) * per_cell, region.y0 + (row0 - 1) * per_cell
            right, bottom = region.x0 + (col1 + 1) * per_cell, region.y0 + (row1 + 1) * per_cell
        x0, y0 = max(0, int(np.floor(left))), max(0, int(np.floor(top)))
        x1, y1 = min(width, int(np.ceil(right))), min(height, int(np.ceil(bottom)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return swapped
        before = template[y0:y1, x0:x1]
        change = cv2.subtract(swapped[y0:y1, x0:x1], before, dtype=cv2.CV_32F)
        if not change.any():
            return swapped
        if blur >= MIN_BLUR:
            change = _gaussian_blur(change, blur)
        alpha = np.float32(weight / 255.0) * self._mask_in_frame(visible, region, x0, y0, (y1 - y0, x1 - x0))
        shown = change * alpha[..., None]
        if grain >= MIN_GRAIN:
            # where the swap replaced the face (its feathered edge fades the grain in)
            touched = cv2.GaussianBlur((np.abs(change).max(axis=2) > 1.0).astype(np.float32), (0, 0), 2.0)
            noise = rng.standard_normal(alpha.shape, np.float32) * np.float32(grain)
            shown += (noise * touched * alpha)[..., None]
        out = swapped if swapped is not template else swapped.copy()  # the swapper's own copy: changed in place
        out[y0:y1, x0:x1] = cv2.add(before, shown, dtype=cv2.CV_8U)  # rounded and saturated
        return out

    @staticmethod
    def _mask_in_frame(visible: np.ndarray, region: FaceRegion, x0: int, y0: int,
                       shape: tuple[int, int]) -> np.ndarray:
        """The region's mask resampled onto frame pixels [y0:, x0:] of `shape`, as float32 0..255."""
        to_mask = region.to_mask(visible.shape[0], (x0, y0))
        return cv2.warpAffine(visible.astype(np.float32), to_mask, (shape[1], shape[0]),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)

    def _scale(self, face: Face) -> float:
        """Template face size over selfie face size: how much the swap enlarged the selfie."""
        if self.source.face_size <= 0:
            return 1.0
        return max(face.width, face.height) / self.source.face_size

    def _matching_blur(self, face: Face, info: FaceFrame) -> float:
        own = self.source.blur * self._scale(face)
        return float(np.sqrt(max(0.0, info.blur * info.blur - own * own)))

    def _matching_grain(self, blur: float, info: FaceFrame) -> float:
        # white grain keeps 1 / sqrt(1 + 4 pi sigma^2) of its std through a Gaussian blur of sigma
        own = self.source.noise / np.sqrt(1.0 + 4.0 * np.pi * blur * blur)
        return float(np.sqrt(max(0.0, info.noise * info.noise - own * own)))


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of `sigma` px; from 3 px on, done at half size (the halving's and
    the scaling back's own blur taken out of the sigma): a quarter of the work for an
    out-of-focus face, within about a level of the full-size blur."""
    if sigma < 3.0:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    height, width = image.shape[:2]
    half = cv2.resize(image, (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_AREA)
    # the 2x2 averaging and the bilinear way back add a variance of about 1 px^2 (full-size pixels)
    blurred = cv2.GaussianBlur(half, (0, 0), np.sqrt(sigma * sigma - 1.0) / 2)
    return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR)

