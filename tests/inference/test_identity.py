"""Identity check by a recogniser the swap does not use: dlib's ResNet face descriptor.

Each of the six people of insightface's t1.jpg is swapped into four built-in templates.
In every fourth frame (the frames between move little; every frame took two minutes of the
suite, every other frame one) the output face must be closer to the selfie than to the template's original face, and the median distance to the selfie must be below 0.6, dlib's
same-person threshold. A selfie turned too far to swap well may be refused instead,
with a message asking for a front-facing photo.
"""

import dlib
import numpy as np
import pytest

from memeswap.inference.errors import InputError
from memeswap.inference.faces.dlib_models import dlib_model_path
from memeswap.inference.media.decode import read_frames
from memeswap.inference.samples import crop_face

TEMPLATES = ("dramatic-zoom", "bounce", "shake", "deal-with-it")


@pytest.fixture(scope="module")
def describe():
    shapes = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))
    encoder = dlib.face_recognition_model_v1(str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat")))
    detector = dlib.get_frontal_face_detector()

    def descriptor(image: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
        """128-d descriptor of the face dlib finds (near `box` when given)."""
        found = list(detector(image, 1))
        if box is not None:
            centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
            found = [r for r in found if np.hypot(r.center().x - centre[0], r.center().y - centre[1]) < 0.5 * (box[2] - box[0])]
            if not found:  # dlib's detector misses tilted faces; fall back to our box
                x0, y0, x1, y1 = (int(v) for v in box)
                found = [dlib.rectangle(x0, y0 + (y1 - y0) // 8, x1, y1)]
        assert found, "dlib found no face"
        rect = max(found, key=lambda r: r.area())
        return np.array(encoder.compute_face_descriptor(image, shapes(image, rect), 1))

    return descriptor


@pytest.fixture(scope="module")
def original_descriptors(describe, compiled_builtins):
    """Descriptors of each template frame's own face, computed once for all six people."""
    cache = {}

    def get(name: str, index: int, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        if (name, index) not in cache:
            cache[name, index] = describe(frame, box)
        return cache[name, index]

    return get


@pytest.mark.parametrize("person", range(6))
def test_swapped_face_is_the_selfies_person(person, group, analyser, swapper, compiled_builtins, describe,
                                            original_descriptors):
    image, faces = group
    selfie = crop_face(image, faces[person])
    selfie_face = max(analyser.analyse(selfie), key=lambda f: f.area)
    try:
        source = swapper.prepare_source(selfie, selfie_face)
    except InputError as refusal:
        assert refusal.code == "face_not_frontal" and "front-facing" in str(refusal)
        return
    selfie_descriptor = describe(selfie, selfie_face.box)
    for name in TEMPLATES:
        compiled = compiled_builtins(name)
        track = compiled.tracks.tracks[0]
        distances = []
        for index, frame in enumerate(read_frames(compiled.template.media_path)):
            targets = compiled.tracks.faces_at(index)
            if index % 4 or not targets:
                continue
            out = swapper.swap([frame], [targets], source)[0]
            box = track.face_at(index).box if track.face_at(index) else targets[0].box
            swapped = describe(out, box)
            original = original_descriptors(name, index, frame, box)
            to_selfie = np.linalg.norm(swapped - selfie_descriptor)
            to_original = np.linalg.norm(swapped - original)
            assert to_selfie < to_original, f"{name} frame {index}: {to_selfie:.3f} vs original {to_original:.3f}"
            distances.append(to_selfie)
        assert np.median(distances) < 0.6, f"{name}: median distance {np.median(distances):.3f}"
