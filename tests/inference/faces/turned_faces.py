"""A face turned by a known yaw, rendered from its own mesh (no other image needed): the
mesh is rotated about its centre's vertical axis and the photo's face is warped onto it,
over the photo with its face painted out."""

import cv2
import numpy as np

from memeswap.inference.faces import mesh
from memeswap.inference.faces.face import Face
from memeswap.inference.swappers.mesh_warp import build_mesh_warp, signed_areas

_TRIANGLES = np.concatenate([mesh.skin_triangles(),
                             np.array(mesh.RIGHT_EYE_FILL + mesh.LEFT_EYE_FILL + mesh.MOUTH_FILL, np.int32)])


def turned(image: np.ndarray, face: Face, degrees: float) -> np.ndarray:
    """`image` with `face` turned by `degrees` (> 0: its nose goes towards the image's left)."""
    points = face.landmarks.astype(np.float64)
    outline = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(outline, [np.round(points[list(mesh.FACE_OVAL), :2]).astype(np.int32)], 255)
    background = cv2.inpaint(image, cv2.dilate(outline, np.ones((9, 9), np.uint8)), 9, cv2.INPAINT_TELEA)
    angle = np.radians(degrees)
    centre = points.mean(axis=0)
    local = points - centre
    rotated = points.copy()
    rotated[:, 0] = local[:, 0] * np.cos(angle) + local[:, 2] * np.sin(angle) + centre[0]
    rotated[:, 2] = -local[:, 0] * np.sin(angle) + local[:, 2] * np.cos(angle) + centre[2]
    warp = build_mesh_warp(points, rotated, _TRIANGLES, image.shape[:2], rotated[:, 2],
                           np.sign(signed_areas(points, _TRIANGLES)))
    out = background.copy()
    h, w = warp.coverage.shape
    region = out[warp.y0:warp.y0 + h, warp.x0:warp.x0 + w]
    alpha = cv2.GaussianBlur(warp.coverage.astype(np.float32), (5, 5), 0)[..., None]
    region[:] = np.clip(region * (1 - alpha) + warp.apply(image) * alpha, 0, 255).astype(np.uint8)
    return out
