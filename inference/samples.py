"""Sample faces that ship inside installed packages, for the demo, the benchmark and tests."""

from pathlib import Path

import numpy as np

from inference.faces import mesh
from inference.faces.analyser import FaceAnalyser
from inference.faces.face import Face
from inference.media.decode import load_image


def group_photo_path() -> Path:
    """insightface's sample group photo `t1.jpg` (six people)."""
    import insightface

    return Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"


def face_crop_box(image: np.ndarray, face: Face, margin: float = 0.9) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the face plus `margin` of its size on each side, inside the image."""
    size = max(face.width, face.height)
    x0, y0 = (max(0, int(v - margin * size)) for v in face.box[:2])
    x1 = min(image.shape[1], int(face.box[2] + margin * size))
    y1 = min(image.shape[0], int(face.box[3] + margin * size))
    return x0, y0, x1, y1


def crop_face(image: np.ndarray, face: Face, margin: float = 0.9) -> np.ndarray:
    """A selfie-like crop around one face (the face plus `margin` of its size on each side)."""
    x0, y0, x1, y1 = face_crop_box(image, face, margin)
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def group_faces(analyser: FaceAnalyser) -> tuple[np.ndarray, list[Face]]:
    """The group photo and its faces, left to right."""
    image = load_image(group_photo_path())
    faces = sorted(analyser.analyse(image), key=lambda f: f.center[0])
    return image, faces


def _turn(face: Face) -> float:
    """How far the face is turned from the camera: the mesh's yaw in radians where there is a
    478-point mesh, else how far the nose sits from between the eyes, in eye distances."""
    if face.landmarks is not None and len(face.landmarks) == 478:
        return abs(np.radians(mesh.head_yaw_degrees(face.landmarks)))
    left_eye, right_eye, nose = face.kps[0], face.kps[1], face.kps[2]
    return float(abs(nose[0] - (left_eye[0] + right_eye[0]) / 2) / (np.linalg.norm(right_eye - left_eye) + 1e-6))


def sample_selfie(analyser: FaceAnalyser) -> tuple[np.ndarray, str]:
    """A selfie cut from the group photo: the person who faces the camera most squarely."""
    image, faces = group_faces(analyser)
    frontal = min(faces, key=lambda f: _turn(f) - 0.0001 * f.area)
    return crop_face(image, frontal), "a sample face from insightface's t1.jpg"
