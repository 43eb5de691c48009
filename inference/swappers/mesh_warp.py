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
    d0, d1, d2 = (dst_points[tris[:, i], :2].astype(np.float64) for i in range(3))
    # Each triangle's box spans the pixel centres it may hold: on the coarse grid most
    # triangles are a few pixels across, and a box rounded outwards would hold several
    # times as many candidates as the triangle does.
    lo = np.maximum(np.ceil(np.minimum(np.minimum(d0, d1), d2) - 0.01), 0).astype(np.int32)
    hi = np.minimum(np.floor(np.maximum(np.maximum(d0, d1), d2) + 0.01), [width - 1, height - 1]).astype(np.int32)
    spans = np.maximum(hi - lo + 1, 0)
    counts = spans[:, 0] * spans[:, 1]
    drawn = counts > 0
    if not drawn.any():
        return None
    x0, y0 = lo[drawn].min(axis=0)
    x1, y1 = hi[drawn].max(axis=0)
    # Per triangle, four affine functions of the pixel's offset from its box's corner: the
    # barycentric coordinates l1, l2 (for the inside test) and the source x, y.
    v0, v1 = d1 - d0, d2 - d0
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    corner = lo - d0  # the box corner relative to the first vertex
    l1 = np.stack([v1[:, 1], -v1[:, 0], v1[:, 1] * corner[:, 0] - v1[:, 0] * corner[:, 1]], axis=1) / den[:, None]
    l2 = np.stack([-v0[:, 1], v0[:, 0], v0[:, 0] * corner[:, 1] - v0[:, 1] * corner[:, 0]], axis=1) / den[:, None]
    s0, s1, s2 = (src_points[tris[:, i], :2].astype(np.float64) for i in range(3))
    e1, e2 = s1 - s0, s2 - s0
    base = np.zeros_like(l1)
    base[:, 2] = 1.0
    sx = base * s0[:, 0, None] + l1 * e1[:, 0, None] + l2 * e2[:, 0, None]
    sy = base * s0[:, 1, None] + l1 * e1[:, 1, None] + l2 * e2[:, 1, None]
    table = np.stack([l1, l2, sx, sy]).astype(np.float32).transpose(0, 2, 1).copy()  # (4, 3, T)

    # Candidate pixels: each triangle's box, as flat arrays. The candidates of a triangle
    # are consecutive, so its coefficients reach them by `np.repeat` (far cheaper than a
    # gather); the barycentric test keeps those inside.
    def per_candidate(values: np.ndarray) -> np.ndarray:
        return np.repeat(values, counts)

    start = (np.cumsum(counts) - counts).astype(np.int32)
    offset = np.arange(int(counts.sum()), dtype=np.int32) - per_candidate(start)
    row, col = np.divmod(offset, per_candidate(spans[:, 0].astype(np.int32)))
    fr, fc = row.astype(np.float32), col.astype(np.float32)

    def evaluate(function: int) -> np.ndarray:
        t = table[function]
        return per_candidate(t[0]) * fc + per_candidate(t[1]) * fr + per_candidate(t[2])

    eps = 1e-3
    b1, b2 = evaluate(0), evaluate(1)
    inside = (b1 >= -eps) & (b2 >= -eps) & (b1 + b2 <= 1 + eps)
    mx, my = evaluate(2)[inside], evaluate(3)[inside]
    rows = (row + per_candidate(lo[:, 1] - y0))[inside]
    cols = (col + per_candidate(lo[:, 0] - x0))[inside]
    shape = (y1 - y0 + 1, x1 - x0 + 1)
    map_x = np.full(shape, -1.0, np.float32)
    map_y = np.full(shape, -1.0, np.float32)
    coverage = np.zeros(shape, np.uint8)
    map_x[rows, cols] = mx  # later (nearer) triangles overwrite earlier ones
    map_y[rows, cols] = my
    coverage[rows, cols] = 1
    return MeshWarp(int(x0), int(y0), map_x, map_y, coverage)
