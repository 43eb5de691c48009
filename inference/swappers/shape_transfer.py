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

from dataclasses import dataclass

import numpy as np
from mediapipe.python.solutions import face_mesh_connections as connections

from inference.faces import mesh


def _points(edges) -> np.ndarray:
    return np.array(sorted({i for edge in edges for i in edge}), np.int64)


FEATURES: dict[str, tuple[np.ndarray, tuple[int, int] | None]] = {
    # name: (points, corner pair that measures its size; None = spread around the centre)
    "right_eye": (np.concatenate([_points(connections.FACEMESH_RIGHT_EYE), [468, 469, 470, 471, 472]]), (33, 133)),
    "left_eye": (np.concatenate([_points(connections.FACEMESH_LEFT_EYE), [473, 474, 475, 476, 477]]), (263, 362)),
    "right_brow": (_points(connections.FACEMESH_RIGHT_EYEBROW), None),
    "left_brow": (_points(connections.FACEMESH_LEFT_EYEBROW), None),
    "nose": (_points(connections.FACEMESH_NOSE), None),
    "mouth": (_points(connections.FACEMESH_LIPS), (61, 291)),
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
        feature_points = np.concatenate([idx for idx, _ in FEATURES.values()])
        eye_distance = np.linalg.norm(source[468, :2] - source[473, :2]) + 1e-6
        gaps = np.linalg.norm(source[:, None, :2] - source[None, feature_points, :2], axis=2) / eye_distance
        weights = np.exp(-0.5 * (gaps / 0.22) ** 2)
        kernel = weights / (weights.sum(axis=1, keepdims=True) + 0.15)
        kernel[_OVAL] = 0.0
        return cls(source.astype(np.float64), kernel, strength)

    def apply(self, target: np.ndarray, frozen: set[str] = frozenset(),
              selfie_shaped: set[str] = frozenset()) -> np.ndarray:
        """Target landmarks moved to the selfie's proportions.

        `frozen` features stay where they are (the template's own pixels show there);
        `selfie_shaped` ones take the selfie's shape too, not only its size and place.
        """
        aligned = _align(self.source, target.astype(np.float64))
        shifts = []
        for name, (idx, corners) in FEATURES.items():
            if name in frozen:
                shifts.append(np.zeros((len(idx), 2)))
                continue
            t, a = target[idx, :2].astype(np.float64), aligned[idx, :2]
            if name in selfie_shaped:
                shifts.append(a - t)
                continue
            t_centre, a_centre = t.mean(axis=0), a.mean(axis=0)
            scale = _size(aligned, a, corners) / max(_size(target, t, corners), 1e-6)
            shifts.append(a_centre + np.clip(scale, 0.7, 1.4) * (t - t_centre) - t)
        shift = np.concatenate(shifts) * self.strength
        moved = target.astype(np.float64).copy()
        moved[:, :2] += self.kernel @ shift
        start = 0
        for idx, _ in FEATURES.values():  # feature points take their own shift exactly
            moved[idx, :2] = target[idx, :2] + shift[start:start + len(idx)]
            start += len(idx)
        return moved.astype(np.float32)


def _size(points: np.ndarray, group: np.ndarray, corners: tuple[int, int] | None) -> float:
    if corners is not None:
        return float(np.linalg.norm(points[corners[0], :2] - points[corners[1], :2]))
    return float(np.sqrt(((group - group.mean(axis=0)) ** 2).sum(axis=1).mean()))


def _align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The source mesh moved onto the target by the best 3-D similarity transform."""
    src_centre, dst_centre = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - src_centre, target - dst_centre
    u, s, vt = np.linalg.svd(dst.T @ src / len(src))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / (src ** 2).sum(axis=1).mean()
    return scale * src @ rotation.T + dst_centre
