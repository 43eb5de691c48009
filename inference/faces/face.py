from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from memeswap.inference.faces.light import FaceLight

REGION_GROWTH = 0.2  # `face_region` grows the face box by this share of its longer side on each side
VISIBLE_SIDE = 128  # side of the square `FaceFrame.visible` masks, in mask pixels


@dataclass(frozen=True)
class FaceRegion:
    """A square of a frame around one face: top-left corner and side, in frame pixels (it may
    reach past the frame's edges). `FaceFrame.visible` masks cover it."""

    x0: float
    y0: float
    side: float

    def to_mask(self, size: int, origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """The 2x3 affine that takes the pixels of an image whose top-left pixel is frame
        pixel `origin` (the frame itself by default) to the pixels of a `size` x `size` mask of
        this region (pixel centres line up, as `cv2.warpAffine` expects)."""
        scale = size / self.side
        return np.array([[scale, 0, 0.5 * scale - 0.5 + (origin[0] - self.x0) * scale],
                         [0, scale, 0.5 * scale - 0.5 + (origin[1] - self.y0) * scale]], np.float64)


def face_region(box: np.ndarray, growth: float = REGION_GROWTH) -> FaceRegion:
    """The square around a face box (x1, y1, x2, y2): as wide as the box's longer side plus
    `growth` of it on each side, centred on the box. It covers every pixel a swapper or the
    face enhancer changes for that face (both stay inside the face box)."""
    side = float(max(box[2] - box[0], box[3] - box[1])) * (1 + 2 * growth)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return FaceRegion(float(cx - side / 2), float(cy - side / 2), max(side, 1.0))


@dataclass
class FaceFrame:
    """What the compiled template says about one of its faces in one frame (computed once, when
    the template is compiled, and cached with its tracks; see `inference.templates.face_frames`).

    `pose`: yaw, pitch, roll in degrees (`inference.faces.pose.head_pose`). `blur`: the
    face's Gaussian blur sigma in frame pixels (`inference.faces.degradation.blur_sigma`).
    `noise`: its grain, a std in 0..255 levels (`grain_std`). `visible`: a VISIBLE_SIDE square
    uint8 mask over `region`, 255 where the template's own face is what we see and 0 where
    something is in front of it (a hand, an object, the hair's fringe), soft in between.
    `light`: the face's skin tone, exposure and shading (`inference.faces.light.FaceLight`),
    None for a track without a dense mesh.
    """

    pose: np.ndarray
    blur: float
    noise: float
    visible: np.ndarray
    region: FaceRegion
    light: FaceLight | None = None

    @property
    def yaw(self) -> float:
        return float(self.pose[0])


@dataclass
class Face:
    """One detected face in pixel coordinates of the image it was found in.

    `kps` holds five keypoints in insightface order (left eye, right eye, nose tip, left
    mouth corner, right mouth corner; "left" is the image's left). `landmarks` holds the
    dense mesh (478 x 3 for MediaPipe, z in the same scale as x) when the analyser has one,
    and `embedding` an identity vector when it has one. A template face from a compiled track
    carries `frame_info` (None for a selfie's face, and for tracks compiled without it).
    """

    box: np.ndarray
    score: float
    kps: np.ndarray
    landmarks: np.ndarray | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)
    frame_info: FaceFrame | None = field(default=None, repr=False)

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


def face_crop_box(image: np.ndarray, face: Face, margin: float = 0.9) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the face plus `margin` of its size on each side, inside the image."""
    size = max(face.width, face.height)
    x0, y0 = (max(0, int(v - margin * size)) for v in face.box[:2])
    x1 = min(image.shape[1], int(face.box[2] + margin * size))
    y1 = min(image.shape[0], int(face.box[3] + margin * size))
    return x0, y0, x1, y1
