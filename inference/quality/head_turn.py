"""Head turns rendered from a portrait's face mesh: the mesh is rotated in 3D around the
vertical axis of the head, and the image is warped so each visible mesh point lands where the
rotated one projects (orthographic projection).

The warp is one dense backward map, interpolated linearly between the visible mesh points, a
ring around the head that stays put (the head's outline moves little); outside the ring nothing moves.
Points hidden behind the nose or on the far side (found with a depth buffer of the mesh's
triangles) are left out, so the far side is squeezed away rather than drawn: crude, but a
face detector and a swapper see a turned head with the yaw we asked for, and we know where
every landmark went.
"""

import cv2
import numpy as np
from scipy.interpolate import griddata

from memeswap.inference.faces import mesh
from memeswap.inference.quality.regions import face_width

_TRIANGLES = np.concatenate([mesh.skin_triangles(), np.array(mesh.RIGHT_EYE_FILL + mesh.LEFT_EYE_FILL
                                                             + mesh.MOUTH_FILL, np.int32)])
PIVOT_DEPTH = 0.3  # the turning axis lies this many face widths behind the face's mean depth
RING_SCALE = 1.6  # the fixed ring around the head, in face sizes from the face's centre


def rotate_points(points: np.ndarray, yaw_degrees: float) -> np.ndarray:
    """The mesh turned by `yaw_degrees` around the head's vertical axis (MediaPipe's z grows away
    from the camera; a positive yaw brings the image's right cheek forward)."""
    width = face_width(points)
    centre_x = float(points[:, 0].mean())
    pivot_z = float(points[:, 2].mean()) + PIVOT_DEPTH * width
    theta = np.radians(yaw_degrees)
    x, z = points[:, 0] - centre_x, points[:, 2] - pivot_z
    turned = points.astype(np.float32).copy()
    turned[:, 0] = centre_x + x * np.cos(theta) + z * np.sin(theta)
    turned[:, 2] = pivot_z - x * np.sin(theta) + z * np.cos(theta)
    return turned


def visible_points(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """bool (478,): mesh points not hidden behind the mesh's own triangles (a painter's depth buffer)."""
    depth = np.full(shape[:2], np.inf, np.float32)
    triangle_depth = points[_TRIANGLES, 2].mean(axis=1)
    for index in np.argsort(-triangle_depth):  # far to near: the nearest triangle is drawn last
        corners = np.round(points[_TRIANGLES[index], :2]).astype(np.int32)
        cv2.fillConvexPoly(depth, corners, float(triangle_depth[index]))
    xs = np.clip(np.round(points[:, 0]).astype(int), 0, shape[1] - 1)
    ys = np.clip(np.round(points[:, 1]).astype(int), 0, shape[0] - 1)
    tolerance = 0.05 * face_width(points)
    return points[:, 2] <= depth[ys, xs] + tolerance


def _ring(points: np.ndarray, count: int = 32) -> np.ndarray:
    """Points on an ellipse around the head, `RING_SCALE` face sizes out: they stay put."""
    xy = points[:, :2]
    centre = xy.mean(axis=0)
    half = np.ptp(xy, axis=0) / 2 * RING_SCALE
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return centre + np.stack([np.cos(angles) * half[0], np.sin(angles) * half[1]], axis=1)


def turn_head(image: np.ndarray, points: np.ndarray, yaw_degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The image with its face turned by `yaw_degrees`, and where the mesh went (478, 3)."""
    if abs(yaw_degrees) < 1e-3:
        return image.copy(), points.astype(np.float32).copy()
    turned = rotate_points(points, yaw_degrees)
    shown = visible_points(turned, image.shape)
    ring = _ring(points)
    targets = np.concatenate([turned[shown, :2], ring])
    sources = np.concatenate([points[shown, :2], ring])
    height, width = image.shape[:2]
    x0, y0 = np.clip(np.floor(ring.min(axis=0)).astype(int), 0, [width - 1, height - 1])
    x1, y1 = np.clip(np.ceil(ring.max(axis=0)).astype(int), 0, [width - 1, height - 1])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x, map_y = xs.copy(), ys.copy()
    grid_y, grid_x = ys[y0:y1 + 1, x0:x1 + 1], xs[y0:y1 + 1, x0:x1 + 1]
    mapped = griddata(targets, sources, (grid_x, grid_y), method="linear")
    inside = np.isfinite(mapped[..., 0])
    map_x[y0:y1 + 1, x0:x1 + 1] = np.where(inside, mapped[..., 0], grid_x)
    map_y[y0:y1 + 1, x0:x1 + 1] = np.where(inside, mapped[..., 1], grid_y)
    warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return warped, turned
