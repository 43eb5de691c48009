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
    max_raster_side: int = 160,
) -> MeshWarp | None:
    """Map each pixel of the destination mesh to source texture coordinates.

    `src_area_sign` (+1/-1 per triangle, from the source face) culls destination triangles
    whose winding flipped, i.e. that face away from the camera in this frame.

    A piecewise-affine map is linear inside each triangle, so for a large face the map is
    rasterised on a coarser grid (at most `max_raster_side` px across the face) and
    upsampled bilinearly; only the pixels right on a triangle edge differ, by a fraction
    of a pixel, and the cost stays flat however large the face is.
    """
    span = float(np.ptp(dst_points[:, :2], axis=0).max())
    step = max(1, int(np.ceil(span / max_raster_side)))
    if step == 1:
        return _rasterise(src_points, dst_points, triangles, frame_shape, dst_depth, src_area_sign)
    height, width = frame_shape
    coarse = dst_points.astype(np.float64).copy()
    coarse[:, :2] = (coarse[:, :2] + 0.5) / step - 0.5  # pixel centres line up with cv2.resize
    small = _rasterise(src_points, coarse, triangles, (-(-height // step), -(-width // step)),
                       dst_depth, src_area_sign)
    if small is None:
        return None
    x0, y0 = small.x0 * step, small.y0 * step
    w = min(small.coverage.shape[1] * step, width - x0)
    h = min(small.coverage.shape[0] * step, height - y0)
    full = (small.coverage.shape[1] * step, small.coverage.shape[0] * step)
    map_x, map_y = _extend_past_edges(small.map_x, small.map_y, small.coverage)
    map_x = cv2.resize(map_x, full, interpolation=cv2.INTER_LINEAR)[:h, :w]
    map_y = cv2.resize(map_y, full, interpolation=cv2.INTER_LINEAR)[:h, :w]
    coverage = cv2.resize(small.coverage.astype(np.float32), full, interpolation=cv2.INTER_LINEAR)[:h, :w]
    return MeshWarp(x0, y0, map_x, map_y, (coverage >= 0.5).astype(np.uint8))


def _extend_past_edges(map_x: np.ndarray, map_y: np.ndarray, coverage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill the pixels just outside the mesh (and inside its eye and mouth holes) with
    their neighbours' source coordinates, so bilinear upsampling never mixes a real
    coordinate with the -1 that marks "outside"."""
    weight = cv2.blur(coverage.astype(np.float32), (5, 5))
    filled = []
    for values in (map_x, map_y):
        spread = cv2.blur(values * coverage, (5, 5)) / np.maximum(weight, 1e-6)
        filled.append(np.where(coverage > 0, values, np.where(weight > 0, spread, -1)).astype(np.float32))
    return filled[0], filled[1]


def _rasterise(
    src_points: np.ndarray,
    dst_points: np.ndarray,
    triangles: np.ndarray,
    frame_shape: tuple[int, int],
    dst_depth: np.ndarray | None,
    src_area_sign: np.ndarray | None,
) -> MeshWarp | None:
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

    # Per triangle, four affine functions of the pixel position: the barycentric
    # coordinates l1, l2 (for the inside test) and the source x, y.
    a, v0, v1 = dst[:, 0], dst[:, 1] - dst[:, 0], dst[:, 2] - dst[:, 0]
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    l1 = np.stack([v1[:, 1], -v1[:, 0], v1[:, 0] * a[:, 1] - v1[:, 1] * a[:, 0]], axis=1) / den[:, None]
    l2 = np.stack([-v0[:, 1], v0[:, 0], v0[:, 1] * a[:, 0] - v0[:, 0] * a[:, 1]], axis=1) / den[:, None]
    s0, s1, s2 = src[:, 0], src[:, 1], src[:, 2]
    base = np.zeros((len(tris), 3))
    base[:, 2] = 1.0
    coefficients = [l1, l2]
    for axis in (0, 1):
        coefficients.append(base * s0[:, axis, None] + l1 * (s1 - s0)[:, axis, None] + l2 * (s2 - s0)[:, axis, None])
    table = np.ascontiguousarray(np.stack(coefficients, axis=0).astype(np.float32).transpose(0, 2, 1))  # (4, 3, T)

    # Candidate pixels: each triangle's bounding box, as flat int32 arrays (far cheaper to
    # divide and gather than int64); the barycentric test first, the source position then
    # only for the pixels inside.
    owner = np.repeat(np.arange(len(tris), dtype=np.int32), counts)
    offset = np.arange(owner.size, dtype=np.int32) - np.repeat((np.cumsum(counts) - counts).astype(np.int32), counts)
    row_in_box, col_in_box = np.divmod(offset, spans[:, 0].astype(np.int32)[owner])
    px = lo[:, 0].astype(np.int32)[owner] + col_in_box
    py = lo[:, 1].astype(np.int32)[owner] + row_in_box
    fx, fy = px.astype(np.float32), py.astype(np.float32)

    def evaluate(function: int, who: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return table[function, 0][who] * x + table[function, 1][who] * y + table[function, 2][who]

    eps = 1e-3
    b1, b2 = evaluate(0, owner, fx, fy), evaluate(1, owner, fx, fy)
    inside = (b1 >= -eps) & (b2 >= -eps) & (b1 + b2 <= 1 + eps)
    owner, px, py, fx, fy = owner[inside], px[inside], py[inside], fx[inside], fy[inside]
    sx, sy = evaluate(2, owner, fx, fy), evaluate(3, owner, fx, fy)

    shape = (y1 - y0 + 1, x1 - x0 + 1)
    map_x = np.full(shape, -1.0, np.float32)
    map_y = np.full(shape, -1.0, np.float32)
    coverage = np.zeros(shape, np.uint8)
    rows, cols = py - y0, px - x0
    map_x[rows, cols] = sx  # later (nearer) triangles overwrite earlier ones
    map_y[rows, cols] = sy
    coverage[rows, cols] = 1
    return MeshWarp(int(x0), int(y0), map_x, map_y, coverage)
