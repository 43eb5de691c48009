from dataclasses import dataclass, field

import numpy as np


@dataclass
class Face:
    """One detected face in pixel coordinates of the image it was found in.

    `kps` holds five keypoints in insightface order (left eye, right eye, nose tip, left
    mouth corner, right mouth corner; "left" is the image's left). `landmarks` holds the
    dense mesh (478 x 3 for MediaPipe, z in the same scale as x) when the analyser has one,
    and `embedding` an identity vector when it has one.
    """

    box: np.ndarray
    score: float
    kps: np.ndarray
    landmarks: np.ndarray | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def largest(faces: list[Face]) -> Face:
    return max(faces, key=lambda f: f.area)
