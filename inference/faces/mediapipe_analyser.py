"""The embedded default analyser: BlazeFace detection and the 478-point FaceMesh.

Both models ship inside the `mediapipe==0.10.21` wheel and run offline on the CPU.
Short-range BlazeFace sees a 128 px view of the whole image, so the small faces of a
group photo vanish; we run the full-range model on the whole image and the short-range
model on overlapping tiles of large images, merge the boxes, then fit the mesh on a crop
around each box, which also rejects detections that are not faces.
"""

import os
import threading

import cv2
import numpy as np

from inference.faces import mesh
from inference.faces.face import Face, box_iou
from inference.faces.native_logs import silenced_native_stderr

_MESH_CROP_SIDE = 384


class MediaPipeAnalyser:
    """MediaPipe's graphs must not run on two threads at once, so every call takes one lock
    (the swap and the encode, where a job's time goes, still run in parallel)."""

    name = "mediapipe"
    version = "mediapipe-0.10.21-blazeface-facemesh478-v1"

    def __init__(self, min_score: float = 0.6, tile_above: int = 640, quiet: bool = True) -> None:
        self.min_score = min_score
        self.tile_above = tile_above
        self.quiet = quiet
        self._short = self._full = self._mesh = None
        self._lock = threading.RLock()

    def prepare(self) -> None:
        with self._lock:
            self._prepare()

    def _prepare(self) -> None:
        if self._mesh is not None:
            return
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with silenced_native_stderr(self.quiet):
            from mediapipe.python.solutions import face_detection, face_mesh

            self._short = face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
            self._full = face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=0.4,
            )
            # A real face, so every native start-up message is printed (and dropped) here.
            from skimage.data import astronaut

            warmup = np.ascontiguousarray(astronaut()[:256, 96:352])
            for model in (self._short, self._full, self._mesh):
                model.process(warmup)

    def close(self) -> None:
        with self._lock:
            for model in (self._short, self._full, self._mesh):
                if model is not None:
                    model.close()
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

    def _detect(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        height, width = image.shape[:2]
        found = _boxes(self._full, image, 0, 0)
        if max(height, width) <= self.tile_above:
            found += _boxes(self._short, image, 0, 0)
        else:
            side = max(256, min(height, width) // 2)
            for x, y in _tiles(width, height, side, overlap=0.35):
                found += _boxes(self._short, image[y:y + side, x:x + side], x, y)
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
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        points = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], np.float32)
        points *= out
        points[:, 0] = (points[:, 0] - to_crop[0, 2]) / scale
        points[:, 1] = (points[:, 1] - to_crop[1, 2]) / scale
        points[:, 2] /= scale
        mesh_box = np.array([*points[:, :2].min(0), *points[:, :2].max(0)], np.float32)
        if box_iou(mesh_box, box) < 0.2:
            return None
        return Face(box=mesh_box, score=score, kps=points[list(mesh.KEYPOINTS), :2].copy(), landmarks=points)


def _boxes(detector, image: np.ndarray, x0: int, y0: int) -> list[tuple[np.ndarray, float]]:
    height, width = image.shape[:2]
    result = detector.process(image)
    boxes = []
    for detection in result.detections or []:
        rel = detection.location_data.relative_bounding_box
        x1, y1 = x0 + rel.xmin * width, y0 + rel.ymin * height
        boxes.append((np.array([x1, y1, x1 + rel.width * width, y1 + rel.height * height], np.float32),
                      float(detection.score[0])))
    return boxes


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
