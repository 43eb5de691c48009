"""Zones of a face drawn from MediaPipe's 478-point mesh: the whole face, its features
(eyes with brows, nostrils, lips) and its plain skin (the face less its features).

Masks are drawn in any coordinates the points are given in (a frame, a crop, a canonical
face), as uint8 0/1 arrays of the requested shape.
"""

from typing import TypeGuard

import cv2
import numpy as np

from memeswap.inference.faces import mesh

BROWS = ((46, 53, 52, 65, 55, 70, 63, 105, 66, 107), (276, 283, 282, 295, 285, 300, 293, 334, 296, 336))
_EYES = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,  # right eye
     46, 53, 52, 65, 55, 70, 63, 105, 66, 107),  # right brow
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466,  # left eye
     276, 283, 282, 295, 285, 300, 293, 334, 296, 336),  # left brow
)
_NOSTRILS = (48, 64, 98, 97, 2, 326, 327, 294, 278, 115, 344, 4)
_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
FEATURES = (*_EYES, _NOSTRILS, _LIPS)


def has_mesh(points: np.ndarray | None) -> TypeGuard[np.ndarray]:
    return points is not None and points.ndim == 2 and points.shape[0] >= 478


def face_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Inside the face oval."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [_fixed(points[list(mesh.FACE_OVAL), :2])], 1, lineType=cv2.LINE_8, shift=4)
    return mask


def feature_mask(points: np.ndarray, shape: tuple[int, int], grow: float = 0.04) -> np.ndarray:
    """Eyes with their brows, the nostrils and the lips (each a convex hull), grown by `grow`
    of the face's size."""
    mask = np.zeros(shape, np.uint8)
    for feature in FEATURES:
        hull = cv2.convexHull(_fixed(points[list(feature), :2]))
        cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
    return _grow(mask, grow * face_size(points))


def skin_mask(points: np.ndarray, shape: tuple[int, int], grow: float = 0.04) -> np.ndarray:
    """The face oval less its features, shrunk by `grow` of the face's size from the oval's
    edge (where the mesh's outline is least exact)."""
    inside = _grow(face_mask(points, shape), -grow * face_size(points))
    return inside & (1 - feature_mask(points, shape, grow))


def face_size(points: np.ndarray) -> float:
    return float(np.ptp(points[:, :2], axis=0).max())


def _fixed(points: np.ndarray) -> np.ndarray:
    """Points for cv2's fixed-point drawing (4 fractional bits)."""
    return np.round(points * 16).astype(np.int32)


def _grow(mask: np.ndarray, pixels: float) -> np.ndarray:
    radius = int(round(abs(pixels)))
    if radius == 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask, kernel) if pixels > 0 else cv2.erode(mask, kernel)
