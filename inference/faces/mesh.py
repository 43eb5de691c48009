"""Topology of MediaPipe's 478-point face mesh: triangles, contours and the five keypoints.

MediaPipe publishes the mesh as a set of directed edges (`FACEMESH_TESSELATION`), not as
triangles. We recover the 852 triangles as the 3-cycles of that edge graph, dropping the
cycles that are not faces (a 3-cycle whose every edge is already used by more faces
than the edge can border). The canonical mesh leaves holes at the eyes and the mouth;
`EYE_*_FILL` and `MOUTH_FILL` close them with strips between the upper and lower lids and
lips, so a swapper can decide per region whether to bring the selfie's eye or mouth.
"""

from collections import Counter, defaultdict
from functools import lru_cache
from itertools import combinations

import numpy as np

from memeswap.inference.errors import InputError
from memeswap.inference.faces import mesh_topology

# Contours, each ordered from one corner to the other (subject's right eye is on the image left).
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)

# insightface order: left eye, right eye, nose tip, left mouth corner, right mouth corner,
# where "left" is the image's left (the subject's right).
KEYPOINTS = (468, 473, 1, 61, 291)
IRIS_RIGHT = 468
IRIS_LEFT = 473


def _strip(upper: tuple[int, ...], lower: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Triangulate the band between two contours that share their end points."""
    tris: list[tuple[int, int, int]] = []
    for i in range(len(upper) - 1):
        a, b, c, d = upper[i], upper[i + 1], lower[i], lower[i + 1]
        for tri in ((a, b, d), (a, d, c)):
            if len(set(tri)) == 3:
                tris.append(tri)
    return tris


RIGHT_EYE_FILL = tuple(_strip(RIGHT_EYE_UPPER, RIGHT_EYE_LOWER))
LEFT_EYE_FILL = tuple(_strip(LEFT_EYE_UPPER, LEFT_EYE_LOWER))
MOUTH_FILL = tuple(_strip(LIPS_INNER_UPPER, LIPS_INNER_LOWER))


@lru_cache(maxsize=1)
def skin_triangles() -> np.ndarray:
    """The 852 triangles of the canonical mesh (eyes and mouth open), shape (852, 3)."""
    directed = set(mesh_topology.TESSELATION)
    borders = Counter(tuple(sorted(e)) for e in directed)  # 2 for inner edges, 1 on a rim
    neighbours: dict[int, set[int]] = defaultdict(set)
    for a, b in directed:
        neighbours[a].add(b)
        neighbours[b].add(a)
    cycles = {tuple(sorted((a, b, c))) for a, b in directed for c in neighbours[a] & neighbours[b]}
    used = Counter(e for t in cycles for e in combinations(t, 2))
    faces = [
        t for t in cycles if not all(used[e] > borders[e] for e in combinations(t, 2))
    ]
    return np.array(sorted(faces), dtype=np.int32)


def eye_openness(points: np.ndarray) -> tuple[float, float]:
    """Lid gap over eye width for the (image-left, image-right) eye; about 0.25 open, < 0.1 shut."""
    def ratio(upper: tuple[int, ...], lower: tuple[int, ...]) -> float:
        width = np.linalg.norm(points[upper[0], :2] - points[upper[-1], :2]) + 1e-6
        gap = np.linalg.norm(points[list(upper[2:-2]), :2] - points[list(lower[2:-2]), :2], axis=1)
        return float(gap.mean() / width)

    return ratio(RIGHT_EYE_UPPER, RIGHT_EYE_LOWER), ratio(LEFT_EYE_UPPER, LEFT_EYE_LOWER)


def mouth_openness(points: np.ndarray) -> float:
    """Inner-lip gap over mouth width; about 0 closed, > 0.15 clearly open."""
    width = np.linalg.norm(points[61, :2] - points[291, :2]) + 1e-6
    gap = np.linalg.norm(
        points[list(LIPS_INNER_UPPER[3:-3]), :2] - points[list(LIPS_INNER_LOWER[3:-3]), :2], axis=1
    )
    return float(gap.mean() / width)


def head_yaw_degrees(points: np.ndarray) -> float:
    """Left/right head turn from the depth difference between the two cheeks (0 = frontal)."""
    across = points[454] - points[234]
    return float(np.degrees(np.arcsin(np.clip(across[2] / (np.linalg.norm(across) + 1e-6), -1, 1))))


def require_frontal(points: np.ndarray, max_yaw_degrees: float) -> None:
    """Refuse a selfie turned further than `max_yaw_degrees` (the mesh-based swap would smear it)."""
    if abs(head_yaw_degrees(points)) > max_yaw_degrees:
        raise InputError("the face in the photo is turned too far to the side; please send a front-facing photo",
                         code="face_not_frontal")
