"""MediaPipe Hands (static images, model_complexity=1) on onnxruntime: palm detection, then
21 landmarks in a turned crop around each palm.

The models of the mediapipe==0.10.21 wheel (Apache-2.0), converted to ONNX by
`tools/mediapipe_to_onnx.py`, ship in `mediapipe_models/`; the graph's calculators are
re-implemented (landmarks agree with MediaPipe's own to a median 0.002 px on the test
images): ImageToTensor with letterboxing, SsdAnchors and weighted NMS (`blaze`),
DetectionsToRects turned from the wrist to the middle finger, RectTransformation (shift,
square, x2.6), AssociationNormRect, the hand-presence threshold and the projection back.
"""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np
import onnxruntime as ort

from memeswap.inference.faces.blaze import model_path, ssd_anchors, warp_rect, weighted_nms
from memeswap.inference.faces.face import box_iou
from memeswap.inference.onnx_providers import create_small_session

Rect = tuple[float, float, float, float, float]  # centre x, centre y, width, height (pixels), rotation (rad)


def _to_tensor(image: np.ndarray, rect: Rect, size: tuple[int, int], border: int) -> tuple[np.ndarray, np.ndarray]:
    """ImageToTensorCalculator (OpenCV path, keeping the aspect ratio): the rotated rect
    letterboxed into `size` (w, h), 0..1 float32 NHWC, and the letterbox padding (left, top,
    right, bottom; fractions)."""
    cx, cy, w, h, rotation = rect
    padding = np.zeros(4, np.float32)
    tensor_aspect, rect_aspect = size[1] / size[0], h / w
    if tensor_aspect > rect_aspect:
        new_h = w * tensor_aspect
        padding[[1, 3]] = (1 - h / new_h) / 2
        h = new_h
    else:
        new_w = h / tensor_aspect
        padding[[0, 2]] = (1 - w / new_w) / 2
        w = new_w
    warped = warp_rect(image, (cx, cy), (w, h), rotation, size, border)
    return (warped.astype(np.float32) * np.float32(1 / 255))[None], padding


class HandLandmarker:
    """Up to `max_hands` hands' 21 landmarks, as MediaPipe Hands in static image mode
    (model_complexity=1) gives them. One lock per instance; sessions open on first use."""

    def __init__(self, min_detection_confidence: float = 0.5, min_presence: float = 0.5, max_hands: int = 2) -> None:
        self.min_detection_confidence = min_detection_confidence
        self.min_presence = min_presence
        self.max_hands = max_hands
        self._anchors = ssd_anchors(192, [8, 16, 16, 16], True)
        self._palm: ort.InferenceSession | None = None
        self._landmark: ort.InferenceSession | None = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        with self._lock:
            self._prepare()

    def _prepare(self) -> None:
        if self._palm is None:
            self._palm = create_small_session(model_path("palm_detection_full"))
            self._landmark = create_small_session(model_path("hand_landmark_full"))

    def close(self) -> None:
        with self._lock:
            self._palm = self._landmark = None

    def find(self, image: np.ndarray) -> list[np.ndarray]:
        """Each hand: (21, 2) float32 x, y in `image` pixels (`image`: RGB uint8, H x W x 3)."""
        image = np.ascontiguousarray(image)
        with self._lock:
            self._prepare()
            hands = []
            for rect in self._hand_rects(image):
                points = self._landmarks(image, rect)
                if points is not None:
                    hands.append(points)
            return hands

    def _palms(self, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Palm detections: box (xmin, ymin, xmax, ymax) and 7 keypoints, normalized to `image`."""
        height, width = image.shape[:2]
        tensor, pad = _to_tensor(image, (width / 2, height / 2, width, height, 0.0), (192, 192),
                                 cv2.BORDER_CONSTANT)
        assert self._palm is not None, "called under the lock, after _prepare"
        raw_boxes, raw_scores = self._palm.run(None, {"input_1": tensor})
        scores = 1 / (1 + np.exp(-np.clip(raw_scores[0, :, 0], -100, 100)))
        keep = scores >= self.min_detection_confidence
        if not keep.any():
            return []
        raw, anchors, scores = raw_boxes[0, keep] / 192, self._anchors[keep], scores[keep]
        centre = raw[:, 0:2] + anchors
        boxes = np.concatenate([centre - raw[:, 2:4] / 2, centre + raw[:, 2:4] / 2], 1)
        keypoints = raw[:, 4:18].reshape(-1, 7, 2) + anchors[:, None]
        palms = []
        for box, points, score in weighted_nms(boxes, keypoints, scores):
            scale = 1 - pad[0] - pad[2], 1 - pad[1] - pad[3]  # DetectionLetterboxRemoval
            box = (box - np.tile(pad[:2], 2)) / np.tile(scale, 2)
            points = (points - pad[:2]) / scale
            palms.append((box, points, score))
        return palms

    def _hand_rects(self, image: np.ndarray) -> list[Rect]:
        height, width = image.shape[:2]
        rects: list[Rect] = []
        for box, points, _ in self._palms(image)[: self.max_hands]:
            # DetectionsToRects: the box, turned so that wrist (0) -> middle finger base (2) points up.
            w, h = (box[2] - box[0]) * width, (box[3] - box[1]) * height
            cx, cy = (box[0] + box[2]) / 2 * width, (box[1] + box[3]) / 2 * height
            x0, y0 = points[0] * (width, height)
            x1, y1 = points[2] * (width, height)
            rotation = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
            rotation = rotation - 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
            # RectTransformation: shift_y -0.5 (along the turned rect), square long side, x2.6.
            cx += -h * -0.5 * math.sin(rotation)
            cy += h * -0.5 * math.cos(rotation)
            side = max(w, h) * 2.6
            rect = (cx, cy, side, side, rotation)
            # AssociationNormRect: a later rect replaces earlier ones it overlaps (IoU > 0.5,
            # axis-aligned, rotation ignored).
            rects = [r for r in rects if _rect_iou(r, rect, width, height) <= 0.5] + [rect]
        return rects

    def _landmarks(self, image: np.ndarray, rect: Rect) -> np.ndarray | None:
        tensor, pad = _to_tensor(image, rect, (224, 224), cv2.BORDER_REPLICATE)
        assert self._landmark is not None, "called under the lock, after _prepare"
        landmarks, presence, _, _ = self._landmark.run(None, {"input_1": tensor})
        if float(presence.reshape(-1)[0]) < self.min_presence:
            return None
        points = landmarks.reshape(21, 3)[:, :2] / 224
        points = (points - pad[:2]) / (1 - pad[:2] - pad[2:])  # LandmarkLetterboxRemoval
        cx, cy, w, h, rotation = rect
        cos, sin = math.cos(rotation), math.sin(rotation)
        x, y = points[:, 0] - 0.5, points[:, 1] - 0.5
        return np.stack([(cos * x - sin * y) * w + cx, (sin * x + cos * y) * h + cy], 1).astype(np.float32)


def _rect_iou(a: Rect, b: Rect, width: int, height: int) -> float:
    boxes = np.array([[r[0] - r[2] / 2, r[1] - r[3] / 2, r[0] + r[2] / 2, r[1] + r[3] / 2]
                      for r in (a, b)]) / (width, height, width, height)
    return float(box_iou(boxes[0], boxes[1]))


