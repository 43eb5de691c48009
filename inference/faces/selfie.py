"""Which face of a selfie a swap uses: the largest human one."""

from __future__ import annotations

import numpy as np

from memeswap.inference.errors import NoFaceError
from memeswap.inference.faces.analyser import FaceAnalyser
from memeswap.inference.faces.face import Face
from memeswap.inference.faces.human_check import HumanFaceCheck

NO_FACE = "no face found in the photo; send a clear, front-facing photo of one face"
NO_HUMAN_FACE = "no human face found in the photo; send a clear, front-facing photo of your face"


def pick_selfie_face(selfie: np.ndarray, analyser: FaceAnalyser,
                     human_check: HumanFaceCheck) -> tuple[Face, list[str]]:
    """The selfie's largest human face, with a notice when the photo showed several faces.
    Faces are checked largest first, so a group photo costs one check."""
    faces = sorted(analyser.analyse(selfie), key=lambda f: -f.area)
    if not faces:
        raise NoFaceError(NO_FACE)
    face = next((f for f in faces if human_check.is_human(selfie, f)), None)
    if face is None:
        raise NoFaceError(NO_HUMAN_FACE)
    notices = [f"found {len(faces)} faces in the photo; used the largest one"] if len(faces) > 1 else []
    return face, notices
