"""Sample faces: the demo's and the benchmark's selfie (Grace Hopper's US Navy portrait, in
the public domain, shipped in `sample_photos/`; the built-in templates are made from a
different person, the astronaut), and for tests the group photo `t1.jpg` that ships inside
insightface (installed with the `test` extra)."""

from importlib.resources import files
from pathlib import Path

import numpy as np

from memeswap.inference.faces.analyser import FaceAnalyser
from memeswap.inference.faces.face import Face, face_crop_box
from memeswap.inference.media.decode import load_image


def group_photo_path() -> Path:
    """insightface's sample group photo `t1.jpg` (six people)."""
    import insightface

    return Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"


def crop_face(image: np.ndarray, face: Face, margin: float = 0.9) -> np.ndarray:
    """A selfie-like crop around one face (the face plus `margin` of its size on each side)."""
    x0, y0, x1, y1 = face_crop_box(image, face, margin)
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def group_faces(analyser: FaceAnalyser) -> tuple[np.ndarray, list[Face]]:
    """The group photo and its faces, left to right."""
    image = load_image(group_photo_path())
    faces = sorted(analyser.analyse(image), key=lambda f: f.center[0])
    return image, faces


def grace_hopper_path() -> Path:
    """Grace Hopper's US Navy portrait (public domain), 512 x 600."""
    return Path(str(files("memeswap.inference") / "sample_photos" / "grace_hopper.jpg"))


def sample_selfie(analyser: FaceAnalyser) -> tuple[np.ndarray, str]:
    """A selfie cut from Grace Hopper's portrait, and its credit."""
    image = load_image(grace_hopper_path())
    face = max(analyser.analyse(image), key=lambda f: f.area)
    return crop_face(image, face), "Grace Hopper's US Navy portrait (public domain)"

