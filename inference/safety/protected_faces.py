"""Protected faces: people whose faces must never be swapped in or out.

A deployment (and each guild, on top of it) may keep a list of protected people. The
list never holds photos: each entry is a label for operators and dlib's 128-number face
descriptor, computed once from a photo that is then thrown away. Comparing descriptors
also finds the person in a new photo taken at another scale, angle or light, which
comparing pictures could not.

The descriptor is dlib's ResNet face recognition model (`dlib_face_recognition_resnet_model_v1`),
fed by dlib's 5-point shape predictor (`shape_predictor_5_face_landmarks`). Both model files
are Davis King's CC0 (public domain) releases and ship inside the `face-recognition-models`
wheel; they are loaded from the installed package folder, nothing is downloaded. The
68-point predictor of the same wheel is not used: it was trained on iBUG 300-W, whose
licence excludes commercial use.

dlib documents a Euclidean distance below 0.6 between two descriptors as "the same
person" (99.38% on LFW); `SAME_PERSON_DISTANCE` is that threshold, and a deployment can
lower it to turn fewer look-alikes away or raise it to catch more photos of a protected
person.

The check runs on both sides of a swap: the selfie (`check_selfie`), so a protected face
is never pasted into a meme, and every face track of the template (`check_template_faces`,
on the descriptors of `inference.safety.template_faces`), so a protected face is never
replaced. Users only ever see a neutral one-line message;
which entry matched is logged for operators.
"""

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memeswap.inference.errors import InputError
from memeswap.inference.faces.dlib_models import dlib_model_path
from memeswap.inference.faces.face import Face
from memeswap.inference.safety.images import as_rgb

log = logging.getLogger("memeswap.safety")

SAME_PERSON_DISTANCE = 0.6
DESCRIPTOR_SIZE = 128
DESCRIPTOR_BYTES = DESCRIPTOR_SIZE * 4  # float32, little-endian

SHAPE_MODEL_FILE = "shape_predictor_5_face_landmarks.dat"
RECOGNITION_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"

SELFIE_MESSAGE = "this face can't be used in swaps here."
TEMPLATE_MESSAGE = "this template shows a face that can't be used in swaps here."


def face_square(face: Face) -> tuple[int, int, int, int]:
    """The square (left, top, right, bottom) that dlib's shape predictor starts from.

    dlib's detectors give square boxes centred between the eyes and the mouth, and its shape
    predictors were trained on those. The square here has the mean side of the analyser's
    box and is centred on the mean of the five keypoints (on the box's centre when the
    keypoints are missing), which aligns swapped and turned faces a little better than the
    box itself.
    """
    x0, y0, x1, y1 = (float(v) for v in face.box)
    side = ((x1 - x0) + (y1 - y0)) / 2
    kps = None if face.kps is None else np.asarray(face.kps, dtype=np.float64)
    if kps is not None and kps.shape == (5, 2) and np.isfinite(kps).all():
        cx, cy = kps.mean(axis=0)
    else:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (int(round(cx - side / 2)), int(round(cy - side / 2)),
            int(round(cx + side / 2)), int(round(cy + side / 2)))


class DlibFaceDescriptor:
    """128-d face descriptor of dlib's ResNet (CC0 weights from face-recognition-models).

    The face is located by the analyser's box and keypoints (see `face_square`); dlib's
    5-point shape predictor finds the eye corners and the nose in that square, and the
    recognition model aligns a 150x150 chip on them (dlib's default padding of 0.25) and
    describes it once, without jittering.

    Safe to share between threads: the shape predictor is read-only once loaded, and the
    recognition network, which keeps its activations in the model object, runs under a lock.
    """

    name = "dlib-resnet-v1"
    num_jitters = 0  # 0 and 1 both mean a single pass in dlib
    padding = 0.25

    def __init__(self) -> None:
        self.shape_predictor: Any | None = None  # dlib.shape_predictor once prepared (dlib has no type information)
        self.model: Any | None = None  # dlib.face_recognition_model_v1 once prepared
        self._lock = threading.Lock()

    def prepare(self) -> None:
        if self.model is not None:
            return
        with self._lock:
            if self.model is not None:
                return
            import dlib

            self.shape_predictor = dlib.shape_predictor(str(dlib_model_path(SHAPE_MODEL_FILE)))
            self.model = dlib.face_recognition_model_v1(str(dlib_model_path(RECOGNITION_MODEL_FILE)))

    def describe(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The descriptor of `face` in `image` (RGB uint8), shape (128,), float32."""
        import dlib

        box = np.asarray(face.box, dtype=np.float64)
        if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"the face has no usable box: {face.box}")
        rgb = as_rgb(image)
        self.prepare()
        assert self.shape_predictor is not None and self.model is not None, "prepare() loaded them"
        shape = self.shape_predictor(rgb, dlib.rectangle(*face_square(face)))
        with self._lock:
            vector = self.model.compute_face_descriptor(rgb, shape, self.num_jitters, self.padding)
        return np.asarray(vector, dtype=np.float32)


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors; below `SAME_PERSON_DISTANCE` is the same person."""
    return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))


def _checked_descriptor(descriptor: np.ndarray) -> np.ndarray:
    vector = np.asarray(descriptor, dtype=np.float32)
    if vector.shape != (DESCRIPTOR_SIZE,):
        raise ValueError(f"a face descriptor has {DESCRIPTOR_SIZE} numbers, got shape {vector.shape}")
    if not np.isfinite(vector).all():
        raise ValueError("a face descriptor must hold finite numbers")
    return vector


def descriptor_to_bytes(descriptor: np.ndarray) -> bytes:
    """The descriptor as 512 bytes: 128 little-endian float32 numbers."""
    return _checked_descriptor(descriptor).astype("<f4").tobytes()


def descriptor_from_bytes(data: bytes) -> np.ndarray:
    """The descriptor that `descriptor_to_bytes` wrote, as a float32 (128,) array."""
    if len(data) != DESCRIPTOR_BYTES:
        raise ValueError(f"a stored face descriptor is {DESCRIPTOR_BYTES} bytes, got {len(data)}")
    return _checked_descriptor(np.frombuffer(data, dtype="<f4").astype(np.float32))


@dataclass(frozen=True, eq=False)
class ProtectedFace:
    """One protected person. `label` is for operators ("our CEO", "guild 42: Alice") and is
    never shown to users. Entries compare by identity (the descriptor is an array); the
    descriptor is stored as a read-only float32 copy."""

    label: str
    descriptor: np.ndarray

    def __post_init__(self) -> None:
        vector = _checked_descriptor(self.descriptor).copy()
        vector.flags.writeable = False
        object.__setattr__(self, "descriptor", vector)


class ProtectedFaceError(InputError):
    """A face of the selfie or the template is on the protected list. The message never
    names the entry."""

    code = "protected_face"

    def __init__(self, message: str = SELFIE_MESSAGE) -> None:
        super().__init__(message)


class ProtectedFaces:
    """A list of protected faces and the checks against it.

    Immutable: `with_entries` returns a new list (a deployment's entries plus a guild's own),
    so one deployment-wide object can be shared between threads and guilds.
    """

    def __init__(self, descriptor: DlibFaceDescriptor, entries: Iterable[ProtectedFace] = (),
                 threshold: float = SAME_PERSON_DISTANCE) -> None:
        self.descriptor = descriptor
        self.entries: tuple[ProtectedFace, ...] = tuple(entries)
        self.threshold = float(threshold)
        if not self.threshold > 0:
            raise ValueError(f"threshold must be above 0, got {threshold}")
        self._matrix = (np.stack([entry.descriptor for entry in self.entries])
                        if self.entries else np.zeros((0, DESCRIPTOR_SIZE), np.float32))

    def with_entries(self, extra: Iterable[ProtectedFace]) -> "ProtectedFaces":
        """This list plus `extra`, as a new object; this one is left as it is."""
        return ProtectedFaces(self.descriptor, (*self.entries, *extra), self.threshold)

    def match(self, image: np.ndarray, faces: Sequence[Face]) -> ProtectedFace | None:
        """The protected entry closest to any of `faces` in `image`, when that distance is
        under the threshold; else None. With no entries, nothing is computed."""
        if not self.entries or not faces:
            return None
        best_entry: ProtectedFace | None = None
        best_distance = float("inf")
        for face in faces:
            vector = self.descriptor.describe(image, face)
            distances = np.linalg.norm(self._matrix - vector, axis=1)
            index = int(np.argmin(distances))
            if distances[index] < best_distance:
                best_entry, best_distance = self.entries[index], float(distances[index])
        if best_distance < self.threshold:
            assert best_entry is not None, "a distance under the threshold came with its entry"
            log.info("protected face matched: %r at distance %.3f", best_entry.label, best_distance)
            return best_entry
        return None

    def check_selfie(self, image: np.ndarray, faces: Sequence[Face]) -> None:
        """Raises ProtectedFaceError when a face of the selfie is protected."""
        if self.match(image, faces) is not None:
            raise ProtectedFaceError(SELFIE_MESSAGE)

    def check_template_faces(self, descriptors: np.ndarray) -> None:
        """Raises ProtectedFaceError when any of a template's face descriptors (an (n, 128)
        array, see `inference.safety.template_faces`) is a protected person's."""
        if not self.entries or not len(descriptors):
            return
        distances = np.linalg.norm(descriptors[:, None, :] - self._matrix[None, :, :], axis=2)
        face, entry = np.unravel_index(int(np.argmin(distances)), distances.shape)
        if distances[face, entry] < self.threshold:
            log.info("protected face matched in a template: %r at distance %.3f", self.entries[entry].label,
                     float(distances[face, entry]))
            raise ProtectedFaceError(TEMPLATE_MESSAGE)
