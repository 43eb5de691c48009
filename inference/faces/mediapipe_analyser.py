"""The embedded default analyser: MediaPipe's BlazeFace detectors and 478-point FaceMesh.

The .tflite models of the mediapipe==0.10.21 wheel (Apache-2.0), converted once to ONNX by
`tools/mediapipe_to_onnx.py`, ship in `mediapipe_models/` and run on onnxruntime like every
other model here; the pre- and post-processing of MediaPipe's graphs is re-implemented
(landmarks agree with MediaPipe's own to a median 0.001 px, worst 0.9 px, on the test
images), following the graph configs:
  - ImageToTensorCalculator: rotated-rect crop with cv2.warpPerspective (rect corners onto
    the tensor's corners, INTER_LINEAR, uint8 result), then scaled to the float range;
  - SsdAnchorsCalculator + TensorsToDetectionsCalculator + weighted NonMaxSuppression;
  - FaceDetectionFrontDetectionToRoi (eye-line rotation, square_long, x1.5) for the mesh;
  - TensorsToFaceLandmarksWithAttention (LandmarksRefinementCalculator) + projection.

Short-range BlazeFace sees a 128 px view of the whole image, so the small faces of a group
photo vanish; the full-range model runs on the whole image and the short-range model on
overlapping tiles of large images, the boxes are merged, then the mesh is fitted on a crop
around each box, which also rejects detections that are not faces.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import onnxruntime as ort

from memeswap.inference.faces import mesh
from memeswap.inference.faces.blaze import BlazeDetector, model_path, warp_rect
from memeswap.inference.faces.face import Face, box_iou
from memeswap.inference.onnx_providers import create_small_session

_MESH_CROP_SIDE = 384
_MESH_DETECTION_SCORE = 0.4  # FaceMesh(min_detection_confidence=0.4)
_MESH_PRESENCE = 0.5  # FaceMesh's min_tracking_confidence, the face-flag threshold

# LandmarksRefinementCalculator of tensors_to_face_landmarks_with_attention.pbtxt
_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
         78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
         76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306, 184, 74, 73, 72, 11, 302, 303, 304, 408,
         62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 183, 42, 41, 38, 12, 268, 271, 272, 407)
_LEFT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
             130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
             226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
             35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245,
             156, 70, 63, 105, 66, 107, 55, 193)
_RIGHT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
              359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
              446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
              265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465,
              383, 300, 293, 334, 296, 336, 285, 417)
_EYE_CONTOUR = 16  # the first 16 eye indices (lid contours) give the iris its depth


class MediaPipeAnalyser:
    """One call at a time (the sessions are thread-safe, but one call at a time keeps the
    analyser to one core while swaps and encodes use the others)."""

    name = "mediapipe"
    version = "mediapipe-0.10.21-blazeface-facemesh478-v1"

    def __init__(self, min_score: float = 0.6, tile_above: int = 640) -> None:
        self.min_score = min_score
        self.tile_above = tile_above
        self._short: BlazeDetector | None = None
        self._full: BlazeDetector | None = None
        self._mesh: ort.InferenceSession | None = None
        self._lock = threading.RLock()

    def prepare(self) -> None:
        with self._lock:
            self._prepare()

    def _prepare(self) -> None:
        if self._mesh is not None:
            return
        self._short = BlazeDetector(model_path("face_detection_short_range"), 128, [8, 16, 16, 16], True)
        self._full = BlazeDetector(model_path("face_detection_full_range_sparse"), 192, [4], False)
        self._mesh = create_small_session(model_path("face_landmark_with_attention"))

    def close(self) -> None:
        with self._lock:
            self._short = self._full = self._mesh = None

    def analyse(self, image: np.ndarray) -> list[Face]:
        with self._lock:
            return self._analyse(image)

    def _analyse(self, image: np.ndarray) -> list[Face]:
        self._prepare()
        image = np.ascontiguousarray(image)
        faces: list[Face] = []
        for box, score in self._detect(image):
            face = self._fit_mesh(image, box, score)
            if face is not None and all(box_iou(face.box, f.box) < 0.4 for f in faces):
                faces.append(face)
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def _boxes(self, detector: BlazeDetector, image: np.ndarray, x0: int, y0: int) -> list[tuple[np.ndarray, float]]:
        shift = np.array([x0, y0, x0, y0], np.float32)
        return [(box.astype(np.float32) + shift, score) for box, _, score in detector.detect(image, 0.5)]

    def _detect(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        height, width = image.shape[:2]
        assert self._full is not None and self._short is not None, "called under the lock, after _prepare"
        found = self._boxes(self._full, image, 0, 0)
        if max(height, width) <= self.tile_above:
            found += self._boxes(self._short, image, 0, 0)
        else:
            side = max(256, min(height, width) // 2)
            for x, y in _tiles(width, height, side, overlap=0.35):
                found += self._boxes(self._short, np.ascontiguousarray(image[y:y + side, x:x + side]), x, y)
        found = [(b, s) for b, s in found if s >= self.min_score]
        kept: list[tuple[np.ndarray, float]] = []
        for box, score in sorted(found, key=lambda bs: -bs[1]):
            if all(box_iou(box, k) < 0.3 for k, _ in kept):
                kept.append((box, score))
        return kept

    def _fit_mesh(self, image: np.ndarray, box: np.ndarray, score: float) -> Face | None:
        side = 2.2 * max(box[2] - box[0], box[3] - box[1])
        scale = min(1.0, _MESH_CROP_SIDE / side)
        out = int(round(side * scale))
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        to_crop = np.array([[scale, 0, out / 2 - scale * cx], [0, scale, out / 2 - scale * cy]])
        crop = cv2.warpAffine(image, to_crop, (out, out), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        points = self._mesh_of(crop)
        if points is None:
            return None
        points[:, 0] = (points[:, 0] - to_crop[0, 2]) / scale
        points[:, 1] = (points[:, 1] - to_crop[1, 2]) / scale
        points[:, 2] /= scale
        mesh_box = np.array([*points[:, :2].min(0), *points[:, :2].max(0)], np.float32)
        if box_iou(mesh_box, box) < 0.2:
            return None
        return Face(box=mesh_box, score=score, kps=points[list(mesh.KEYPOINTS), :2].copy(), landmarks=points)

    def face_mesh(self, image: np.ndarray) -> np.ndarray | None:
        """FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True).process
        on the whole image: 478 x 3 points in pixels of `image` (z in the same scale), or None."""
        with self._lock:
            self._prepare()
            return self._mesh_of(image)

    def _mesh_of(self, image: np.ndarray) -> np.ndarray | None:
        height, width = image.shape[:2]
        assert self._short is not None and self._mesh is not None, "called under the lock, after _prepare"
        detections = self._short.detect(image, _MESH_DETECTION_SCORE)
        if not detections:
            return None
        box, kps, _ = detections[0]
        # FaceDetectionFrontDetectionToRoi: level the eye line, square on the long side, x1.5
        (x0, y0), (x1, y1) = kps[0], kps[1]
        angle = -np.arctan2(-(y1 - y0), x1 - x0)
        angle = (angle + np.pi) % (2 * np.pi) - np.pi
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        side = 1.5 * max(box[2] - box[0], box[3] - box[1])
        crop = warp_rect(image, centre, (side, side), angle, (192, 192), cv2.BORDER_REPLICATE)
        outputs = self._mesh.run(None, {"input_1": crop.astype(np.float32)[None] * np.float32(1 / 255)})
        named = dict(zip([o.name for o in self._mesh.get_outputs()], outputs))
        if 1 / (1 + np.exp(-float(named["conv_faceflag"].ravel()[0]))) <= _MESH_PRESENCE:
            return None
        points = np.zeros((478, 3), np.float32)
        points[:468] = named["output_mesh_identity"].reshape(468, 3)
        for indices, output in ((_LIPS, "output_lips"), (_LEFT_EYE, "output_left_eye"),
                                (_RIGHT_EYE, "output_right_eye")):
            points[list(indices), :2] = named[output].reshape(-1, 2)
        for first, eye, output in ((468, _LEFT_EYE, "output_left_iris"), (473, _RIGHT_EYE, "output_right_iris")):
            points[first:first + 5, :2] = named[output].reshape(5, 2)
            points[first:first + 5, 2] = points[list(eye[:_EYE_CONTOUR]), 2].mean()
        # LandmarkProjectionCalculator: tensor pixels -> rotated ROI -> image pixels
        rel = points[:, :2] / 192 - 0.5
        cos, sin = np.cos(angle), np.sin(angle)
        projected = np.empty_like(points)
        projected[:, 0] = (cos * rel[:, 0] - sin * rel[:, 1]) * side + centre[0]
        projected[:, 1] = (sin * rel[:, 0] + cos * rel[:, 1]) * side + centre[1]
        projected[:, 2] = points[:, 2] / 192 * side
        return projected


def _tiles(width: int, height: int, side: int, overlap: float) -> list[tuple[int, int]]:
    step = max(1, int(side * (1 - overlap)))

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        values = list(range(0, length - side + 1, step))
        if values[-1] + side < length:
            values.append(length - side)
        return values

    return [(x, y) for y in starts(height) for x in starts(width)]
