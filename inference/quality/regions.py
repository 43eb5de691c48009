"""Face regions from MediaPipe's 478-point mesh, as pixel masks of one image.

Both the corpus (where to recolour skin, where to light a face) and the metrics (where to
measure skin tone, cheek brightness, sharpness and the seam) use these, so what a case
changes and what is measured on it are the same pixels.
"""

import cv2
import numpy as np

from memeswap.inference.faces import mesh
from memeswap.inference.faces.face import Face

# Eyebrows and the outer lip line (MediaPipe's FACEMESH_LEFT_EYEBROW / _RIGHT_EYEBROW / _LIPS).
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
# Cheek centres: the image's left cheek (the subject's right) and the image's right one.
CHEEK_LEFT = 205
CHEEK_RIGHT = 425
FOREHEAD = 151


def face_width(points: np.ndarray) -> float:
    """The face's width in pixels: the widest span of its mesh."""
    xy = points[:, :2]
    return float(max(np.ptp(xy[:, 0]), 1.0))


def face_hull_mask(points: np.ndarray, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """bool (H, W): inside the convex hull of the mesh, grown or shrunk by `scale` about its centre."""
    xy = points[:, :2].astype(np.float64)
    centre = xy.mean(axis=0)
    hull = cv2.convexHull(((xy - centre) * scale + centre).astype(np.float32))
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1, lineType=cv2.LINE_8)
    return mask.astype(bool)


def eyes_and_brows_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """bool (H, W): each eye with its brow (the convex hull of both), where a face descriptor
    looks hardest."""
    mask = np.zeros(shape[:2], np.uint8)
    for brow, upper, lower in ((RIGHT_BROW, mesh.RIGHT_EYE_UPPER, mesh.RIGHT_EYE_LOWER),
                               (LEFT_BROW, mesh.LEFT_EYE_UPPER, mesh.LEFT_EYE_LOWER)):
        hull = cv2.convexHull(np.round(points[list(brow + upper + lower), :2]).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(bool)


def _polygon(mask: np.ndarray, points: np.ndarray, indices, grow: int = 0) -> None:
    polygon = np.round(points[list(indices), :2]).astype(np.int32)
    cv2.fillPoly(mask, [polygon], 1)
    if grow:
        cv2.polylines(mask, [polygon], True, 1, thickness=2 * grow + 1)


def features_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """bool (H, W): eyes, eyebrows and lips, grown a little (what is not skin inside the face)."""
    mask = np.zeros(shape[:2], np.uint8)
    grow = max(1, int(round(0.02 * face_width(points))))
    for upper, lower in ((mesh.RIGHT_EYE_UPPER, mesh.RIGHT_EYE_LOWER), (mesh.LEFT_EYE_UPPER, mesh.LEFT_EYE_LOWER)):
        _polygon(mask, points, upper + lower[::-1], 2 * grow)
    for brow in (RIGHT_BROW, LEFT_BROW):
        _polygon(mask, points, brow, grow)
    _polygon(mask, points, LIPS_OUTER, grow)
    return mask.astype(bool)


def skin_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """bool (H, W): the face's skin (the hull, a little inside its edge, less eyes, brows and lips)."""
    return face_hull_mask(points, shape, 0.9) & ~features_mask(points, shape)


def cheek_masks(points: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """bool (H, W) discs on the image's left cheek and right cheek."""
    radius = max(2, int(round(0.1 * face_width(points))))
    masks = []
    for index in (CHEEK_LEFT, CHEEK_RIGHT):
        mask = np.zeros(shape[:2], np.uint8)
        cv2.circle(mask, tuple(int(round(v)) for v in points[index, :2]), radius, 1, -1)
        masks.append(mask.astype(bool))
    return masks[0], masks[1]


def edge_rays(points: np.ndarray, inner: float = 0.9, outer: float = 1.12, rays: int = 96,
              samples: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Sample points on rays across the face's edge, where a pasted face meets the frame: the
    ellipse fitted to the mesh's hull, from `inner` to `outer` of its size. Returns x and y,
    each (rays, samples) float32, ordered from inside the face to outside."""
    hull = cv2.convexHull(points[:, :2].astype(np.float32))
    (centre_x, centre_y), (width, height), angle = cv2.fitEllipse(hull)
    theta = np.radians(angle)
    around = np.linspace(0, 2 * np.pi, rays, endpoint=False)[:, None]
    out = np.linspace(inner, outer, samples)[None, :]
    ex, ey = np.cos(around) * width / 2 * out, np.sin(around) * height / 2 * out
    xs = centre_x + ex * np.cos(theta) - ey * np.sin(theta)
    ys = centre_y + ex * np.sin(theta) + ey * np.cos(theta)
    return xs.astype(np.float32), ys.astype(np.float32)


def face_of(points: np.ndarray) -> Face:
    """A `Face` at these landmarks (box from the mesh, the five keypoints from it)."""
    xy = points[:, :2]
    box = np.array([*xy.min(axis=0), *xy.max(axis=0)], np.float32)
    return Face(box=box, score=1.0, kps=xy[list(mesh.KEYPOINTS)].astype(np.float32).copy(),
                landmarks=points.astype(np.float32))
