"""How soft and how grainy a face is in its image: a Gaussian blur sigma and a grain std.

Blur (`blur_sigma`): re-blur the face by a known Gaussian (sigma R = 2 px) and compare the
gradient magnitude at its strongest edges (the top 10% inside the face: eyes, brows,
lips, the jaw) before and after. A step edge blurred by sigma has a peak gradient in
proportion to 1 / sigma, so the ratio r = after / before is sigma / sqrt(sigma^2 + R^2),
and sigma = R r / sqrt(1 - r^2). The derivative filter and the pixel grid make a perfectly
sharp edge read SHARP_READING, which is taken off in quadrature, so the figure is the
Gaussian blur beyond a sharp image. Validated (tests/inference/faces/test_degradation.py)
against known Gaussian blur added to the faces of the astronaut, Grace Hopper and
insightface's t1.jpg, at full and half size (faces of 46 to 190 px): the photos read 0 to
0.85 px of their own, and added blur of 2, 3 and 4 px reads within 20% of the total (the
photo's own softness and the added blur in quadrature). It reads the contrast of edges
relative to themselves, so a face's brightness or contrast does not move it.

Grain (`grain_std`): Immerkaer's noise estimator (the 3x3 difference of Laplacians, which
cancels any image structure up to a plane's curvature) over the plain skin of the face
(cheeks, forehead, nose: the mesh's face less its features), on the flatter half of those
pixels (by the slope of a broad blur, which the grain itself barely moves), as a robust
std: 1.4826 times the median absolute response, over the kernel's gain of 6. Validated
against Gaussian noise of known std added to the same faces: added std 4, 8 and 12 reads
within 10% (plus 0.6 levels) of the total (the photo's own grain and the added grain in
quadrature), and a clean H.264 frame of a built-in template reads under 1.

Both measure the grey (luma) image at the scale it is given in, so a template face's
figures are in template pixels.
"""

import cv2
import numpy as np

from memeswap.inference.faces import zones
from memeswap.inference.faces.face import Face

REBLUR_SIGMA = 2.0
SHARP_READING = 0.77  # what an ideally sharp step edge reads (the Sobel filter and the pixel grid)
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def blur_sigma(image: np.ndarray, points: np.ndarray) -> float:
    """The face's Gaussian blur sigma in pixels of `image` (0 for a sharp face). `points`:
    the face's landmarks (the mesh, or any points spanning the face) in `image` pixels."""
    crop, local = _face_crop(image, points, margin=0.1)
    if crop is None:
        return 0.0
    inside = _face_area(local, crop.shape)
    inside = cv2.erode(inside, np.ones((3, 3), np.uint8))
    before = _gradient(crop)
    after = _gradient(cv2.GaussianBlur(crop, (0, 0), REBLUR_SIGMA))
    values = before[inside > 0]
    if values.size < 64:
        return 0.0
    edges = (inside > 0) & (before >= np.percentile(values, 90))
    total = float(before[edges].sum())
    if total <= 1e-3:  # a flat patch: nothing to read a blur from
        return 0.0
    ratio = min(float(after[edges].sum()) / total, 0.995)
    reading = REBLUR_SIGMA * ratio / np.sqrt(1 - ratio * ratio)
    return float(np.sqrt(max(0.0, reading * reading - SHARP_READING * SHARP_READING)))


def grain_std(image: np.ndarray, points: np.ndarray) -> float:
    """The std of the face's grain in 0..255 levels of luma."""
    crop, local = _face_crop(image, points, margin=0.05)
    if crop is None:
        return 0.0
    if zones.has_mesh(local):
        skin = zones.skin_mask(local, crop.shape)
    else:
        skin = _face_area(local, crop.shape)
    response = np.abs(cv2.filter2D(crop, cv2.CV_32F, _IMMERKAER, borderType=cv2.BORDER_REFLECT))
    skin = cv2.erode(skin, np.ones((3, 3), np.uint8)) > 0
    if skin.sum() < 64:
        return 0.0
    slope = _gradient(cv2.GaussianBlur(crop, (0, 0), 3.0))  # broad enough that the grain itself barely moves it
    flat = skin & (slope <= np.median(slope[skin]))
    return float(1.4826 * np.median(response[flat]) / 6.0)


def face_points(face: Face) -> np.ndarray:
    """What the measures read a face's extent from: its mesh, else its box's corners."""
    if zones.has_mesh(face.landmarks):
        return face.landmarks
    x0, y0, x1, y1 = (float(v) for v in face.box)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def _face_crop(image: np.ndarray, points: np.ndarray, margin: float) -> tuple[np.ndarray | None, np.ndarray]:
    """The grey (luma) crop around the points, float32, and the points in its pixels."""
    height, width = image.shape[:2]
    low, high = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    pad = margin * float((high - low).max())
    x0, y0 = (max(0, int(v - pad)) for v in low)
    x1, y1 = min(width, int(high[0] + pad) + 1), min(height, int(high[1] + pad) + 1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None, points
    region = image[y0:y1, x0:x1]
    grey = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY) if region.ndim == 3 else region
    local = points.astype(np.float32).copy()
    local[:, 0] -= x0
    local[:, 1] -= y0
    return grey.astype(np.float32), local


def _face_area(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The face oval of a mesh, else the ellipse inside the points' bounding box."""
    if zones.has_mesh(points):
        return zones.face_mask(points, shape)
    mask = np.zeros(shape, np.uint8)
    low, high = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    centre = tuple(int(v) for v in (low + high) / 2)
    axes = tuple(max(1, int(v)) for v in (high - low) / 2)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
    return mask


def _gradient(grey: np.ndarray) -> np.ndarray:
    dx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8
    dy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8
    return cv2.magnitude(dx, dy)
