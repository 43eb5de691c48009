"""Piecewise-affine warp of a texture along a triangle mesh, as one vectorised remap.

For every destination pixel inside the mesh we find its triangle and carry it to the
source texture through that triangle's affine map; `cv2.remap` then samples the texture
once for the whole face. Rasterisation is vectorised too: each triangle's bounding box
is expanded into candidate pixels with `np.repeat` and kept where its barycentric
coordinates are non-negative. Far triangles are written first, so where a turned head
folds the mesh over itself the near side wins; triangles seen from behind are culled.
"""

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class MeshWarp:
    """The warp of one face: the region it covers and the source coordinates per pixel."""

    x0: int
    y0: int
    map_x: np.ndarray
    map_y: np.ndarray
    coverage: np.ndarray  # uint8 1 inside the mesh, 0 outside

    def apply(self, texture: np.ndarray) -> np.ndarray:
        return cv2.remap(texture, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (points[triangles[:, i], :2] for i in range(3))
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))


def build_mesh_warp(
    src_points: np.ndarray,
    dst_points: np.ndarray,
    triangles: np.ndarray,
    frame_shape: tuple[int, int],
    dst_depth: np.ndarray | None = None,
    src_area_sign: np.ndarray | None = None,
) -> MeshWarp | None:
    """Map each pixel of the destination mesh to source texture coordinates.

    `src_area_sign` (+1/-1 per triangle, from the source face) culls destination triangles
    whose winding flipped, i.e. that face away from the camera in this frame.
    """
    height, width = frame_shape
    dst_area = signed_areas(dst_points, triangles)
    keep = np.abs(dst_area) > 0.05
    if src_area_sign is not None:
        keep &= np.sign(dst_area) == src_area_sign
    tris = triangles[keep]
    if len(tris) == 0:
        return None
    if dst_depth is not None:
        tris = tris[np.argsort(-dst_depth[tris].mean(axis=1), kind="stable")]

    dst = dst_points[tris, :2].astype(np.float64)  # (T, 3, 2)
    src = src_points[tris, :2].astype(np.float64)
    lo = np.floor(dst.min(axis=1)).astype(np.int64)
    hi = np.ceil(dst.max(axis=1)).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [width - 1, height - 1])
    spans = np.maximum(hi - lo + 1, 0)
    counts = spans[:, 0] * spans[:, 1]
    if counts.sum() == 0:
        return None
    x0, y0 = lo[counts > 0].min(axis=0)
    x1, y1 = hi[counts > 0].max(axis=0)

    # Barycentric coordinates from homogeneous destination vertices.
    corners = np.concatenate([dst, np.ones((len(tris), 3, 1))], axis=2).transpose(0, 2, 1)  # (T,3,3)
    invertible = np.abs(np.linalg.det(corners)) > 1e-9
    counts = np.where(invertible, counts, 0)
    inverse = np.zeros_like(corners)
    inverse[invertible] = np.linalg.inv(corners[invertible])

    owner = np.repeat(np.arange(len(tris)), counts)
    offset = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    span_x = spans[owner, 0]
    px = lo[owner, 0] + offset % span_x
    py = lo[owner, 1] + offset // span_x
    inv = inverse[owner].astype(np.float32)
    fx, fy = px.astype(np.float32), py.astype(np.float32)
    bary = inv[:, :, 0] * fx[:, None] + inv[:, :, 1] * fy[:, None] + inv[:, :, 2]
    inside = (bary >= -1e-3).all(axis=1)
    owner, px, py, bary = owner[inside], px[inside], py[inside], bary[inside]
    sx = np.einsum("ij,ij->i", bary, src[owner, :, 0].astype(np.float32))
    sy = np.einsum("ij,ij->i", bary, src[owner, :, 1].astype(np.float32))

    shape = (y1 - y0 + 1, x1 - x0 + 1)
    map_x = np.full(shape, -1.0, np.float32)
    map_y = np.full(shape, -1.0, np.float32)
    coverage = np.zeros(shape, np.uint8)
    rows, cols = py - y0, px - x0
    map_x[rows, cols] = sx  # later (nearer) triangles overwrite earlier ones
    map_y[rows, cols] = sy
    coverage[rows, cols] = 1
    return MeshWarp(int(x0), int(y0), map_x, map_y, coverage)
