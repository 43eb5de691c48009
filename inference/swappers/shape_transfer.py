"""Carry the selfie's facial proportions onto the template face, keeping its pose and expression.

A texture warp alone paints the selfie's skin onto the template's geometry: eye spacing,
nose length and mouth width stay the template person's, and so does much of what makes a
face recognisable. Here each feature (each eye, each brow, the nose, the lips) of the
template face is moved and scaled to where that feature sits on the selfie, after the
selfie's mesh has been aligned to the template's in 3-D (so a turned template face gets
the selfie's proportions turned the same way). The feature keeps the template's own shape
around its centre, so an open mouth stays open. The skin between features follows through
a smooth kernel, and the face outline stays where it is so the edge blends unseen.
"""

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from memeswap.inference.faces import mesh, mesh_topology


def _points(edges) -> np.ndarray:
    return np.array(sorted({i for edge in edges for i in edge}), np.int64)


FEATURES: dict[str, tuple[np.ndarray, tuple[int, int] | None]] = {
    # name: (points, corner pair that measures its size; None = spread around the centre)
    "right_eye": (np.concatenate([_points(mesh_topology.RIGHT_EYE), [468, 469, 470, 471, 472]]), (33, 133)),
    "left_eye": (np.concatenate([_points(mesh_topology.LEFT_EYE), [473, 474, 475, 476, 477]]), (263, 362)),
    "right_brow": (_points(mesh_topology.RIGHT_EYEBROW), None),
    "left_brow": (_points(mesh_topology.LEFT_EYEBROW), None),
    "nose": (_points(mesh_topology.NOSE), None),
    "mouth": (_points(mesh_topology.LIPS), (61, 291)),
}
_OVAL = np.array(mesh.FACE_OVAL)


@dataclass
class ShapeTransfer:
    """Per-selfie data: which points each feature owns and how the rest follow them."""

    source: np.ndarray  # (478, 3) selfie landmarks
    kernel: np.ndarray  # (478, n feature points) row-normalised spreading weights
    strength: float = 1.0

    @classmethod
    def for_source(cls, source: np.ndarray, strength: float = 1.0) -> "ShapeTransfer":
        eye_distance = np.linalg.norm(source[468, :2] - source[473, :2]) + 1e-6
        gaps = np.linalg.norm(source[:, None, :2] - source[None, _FEATURE_POINTS, :2], axis=2) / eye_distance
        weights = np.exp(-0.5 * (gaps / 0.22) ** 2)
        kernel = weights / (weights.sum(axis=1, keepdims=True) + 0.15)
        kernel[_OVAL] = 0.0
        return cls(source.astype(np.float64), kernel, strength)

    def apply(self, target: np.ndarray, frozen: Collection[str] = frozenset(),
              selfie_shaped: Collection[str] = frozenset()) -> np.ndarray:
        """Target landmarks moved to the selfie's proportions.

        `frozen` features stay where they are (the template's own pixels show there);
        `selfie_shaped` ones take the selfie's shape too, not only its size and place.
        All features are worked out at once (this runs for every face in every frame).
        """
        aligned = _align(self.source, target.astype(np.float64))
        t, a = target[_FEATURE_POINTS, :2].astype(np.float64), aligned[_FEATURE_POINTS, :2]
        t_centre = np.add.reduceat(t, _STARTS) / _COUNTS[:, None]
        a_centre = np.add.reduceat(a, _STARTS) / _COUNTS[:, None]
        scale = _sizes(aligned, a, a_centre) / np.maximum(_sizes(target, t, t_centre), 1e-6)
        shift = a_centre[_SEGMENT] + np.clip(scale, 0.7, 1.4)[_SEGMENT, None] * (t - t_centre[_SEGMENT]) - t
        for name in selfie_shaped:
            rows = _ROWS[name]
            shift[rows] = a[rows] - t[rows]
        for name in frozen:
            shift[_ROWS[name]] = 0.0
        shift *= self.strength
        moved = target.astype(np.float64).copy()
        moved[:, :2] += self.kernel @ shift
        moved[_FEATURE_POINTS, :2] = t + shift  # feature points take their own shift exactly
        return moved.astype(np.float32)


# The features' points end to end, with each point's feature (segment) and each feature's rows.
_FEATURE_POINTS = np.concatenate([idx for idx, _ in FEATURES.values()])
_COUNTS = np.array([len(idx) for idx, _ in FEATURES.values()])
_STARTS = np.concatenate([[0], np.cumsum(_COUNTS)[:-1]])
_SEGMENT = np.repeat(np.arange(len(FEATURES)), _COUNTS)
_ROWS = {name: slice(start, start + count) for name, start, count in zip(FEATURES, _STARTS, _COUNTS)}
_CORNERS = np.array([corners if corners is not None else (0, 0) for _, corners in FEATURES.values()])
_HAS_CORNERS = np.array([corners is not None for _, corners in FEATURES.values()])


def _sizes(points: np.ndarray, group: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each feature's size: the distance between its two corners, or (without corners) the
    root mean square distance of its points (`group`) from their centre."""
    spread = np.sqrt(np.add.reduceat(((group - centres[_SEGMENT]) ** 2).sum(axis=1), _STARTS) / _COUNTS)
    corner = np.linalg.norm(points[_CORNERS[:, 0], :2] - points[_CORNERS[:, 1], :2], axis=1)
    return np.where(_HAS_CORNERS, corner, spread)


def _align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The source mesh moved onto the target by the best 3-D similarity transform."""
    src_centre, dst_centre = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - src_centre, target - dst_centre
    u, s, vt = np.linalg.svd(dst.T @ src / len(src))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / (src ** 2).sum(axis=1).mean()
    return scale * src @ rotation.T + dst_centre
