"""What both chat adapters' tests use: selfies from the packaged images, the session's models
as the bot's components, and the check that a meme carries the selfie's face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.meme_maker import MemeMaker
from memeswap.inference.safety.protected_faces import DlibFaceDescriptor
from memeswap.inference.samples import crop_face


def jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def read_rgb(encoded: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1].copy()


@pytest.fixture(scope="session")
def selfie_jpeg(group) -> bytes:
    """One person of insightface's group photo, cropped like a selfie."""
    image, faces = group
    return jpeg(crop_face(image, faces[2]))


@pytest.fixture(scope="session")
def second_selfie_jpeg(astronaut) -> bytes:
    """scikit-image's astronaut: a second person."""
    return jpeg(astronaut)


@pytest.fixture(scope="session")
def friend_selfie_jpeg(group) -> bytes:
    """Another person of the group photo, saved as a second named face."""
    image, faces = group
    return jpeg(crop_face(image, faces[3]))


@pytest.fixture(scope="session")
def turned_selfie_jpeg(group) -> bytes:
    """A person of the group photo whose head is turned too far for the classic swap."""
    image, faces = group
    return jpeg(crop_face(image, faces[4]))


@pytest.fixture(scope="session")
def faceless_jpeg() -> bytes:
    """scikit-image's cup of coffee: a real photo with no face in it."""
    return jpeg(skimage_data.coffee())


@pytest.fixture
def maker(analyser, swapper, library) -> MemeMaker:
    return MemeMaker(analyser, swapper, library, MediaLimits())


@pytest.fixture(scope="session")
def carries_face(analyser):
    """`carries_face(frames, selfie, originals)`: in a few frames of the meme, the face found
    is closer (dlib's descriptor, which the swap does not use) to the selfie's than to the
    template's own face in the same frame."""
    descriptor = DlibFaceDescriptor()

    def largest(image: np.ndarray):
        faces = analyser.analyse(image)
        assert faces, "no face found"
        return max(faces, key=lambda f: f.area)

    def check(frames: list[np.ndarray], selfie: bytes, originals: list[np.ndarray]) -> None:
        selfie_image = read_rgb(selfie)
        selfie_vector = descriptor.describe(selfie_image, largest(selfie_image))
        assert len(frames) == len(originals)
        for index in (len(frames) // 4, len(frames) // 2):
            swapped = descriptor.describe(frames[index], largest(frames[index]))
            original = descriptor.describe(originals[index], largest(originals[index]))
            assert np.linalg.norm(swapped - selfie_vector) < np.linalg.norm(swapped - original), index

    return check


@pytest.fixture(scope="session")
def wears_faces(analyser):
    """`wears_faces(frames, compiled, selfies)`: in a few frames of a meme made from the
    compiled template, the face at each of the template's numbered faces is closer (dlib's
    descriptor, which the swap does not use) to the selfie given for it than to the other
    selfies and to the template's own face there."""
    from memeswap.inference.templates.face_order import numbered_faces

    descriptor = DlibFaceDescriptor()

    def vector(image: np.ndarray, face) -> np.ndarray:
        return descriptor.describe(image, face)

    def check(frames: list[np.ndarray], compiled, selfies: list[bytes]) -> None:
        references = [vector(image, max(analyser.analyse(image), key=lambda f: f.area))
                      for image in map(read_rgb, selfies)]
        originals = list(read_frames(compiled.template.media_path))
        assert len(frames) == len(originals)
        tracks = numbered_faces(compiled.tracks)[:len(selfies)]
        for index in (len(frames) // 4, len(frames) // 2):
            found = analyser.analyse(frames[index])
            for number, track in enumerate(tracks):
                centre = track.face_on(index).center
                face = min(found, key=lambda f: float(np.linalg.norm(f.center - centre)))
                seen = vector(frames[index], face)
                own = vector(originals[index], track.face_on(index))
                distances = [float(np.linalg.norm(seen - r)) for r in references]
                assert int(np.argmin(distances)) == number, (index, number, distances)
                assert distances[number] < float(np.linalg.norm(seen - own)), (index, number)

    return check


def template_frames(library, name: str) -> list[np.ndarray]:
    return list(read_frames(library.get(name).media_path))


class JobGate:
    """Holds every swap job of an in-process engine at its start until `open()`, so a test
    can act while a swap runs or waits, however fast the machine swaps. The real swap runs
    once the gate opens; a job cancelled meanwhile stops at the gate, as a real one stops at
    its next progress check."""

    def __init__(self, engine) -> None:
        import threading

        self._gate = threading.Event()
        run_job = engine._run_job

        def held(job, progress, token):
            while not self._gate.wait(0.02):
                token.raise_if_cancelled()
            return run_job(job, progress, token)

        engine._run_job = held

    def open(self) -> None:
        self._gate.set()


class FaceCheckGate:
    """Holds every selfie check and face save (the face analysis `SavedFaces` runs in the
    heavy-work pool) until `open()`: a check that takes as long as the test needs. `held`
    is set once one is waiting at the gate."""

    def __init__(self, faces) -> None:
        import threading

        self._gate = threading.Event()
        self.held = threading.Event()
        extract = faces._extract

        def held(photo, protected):
            self.held.set()
            self._gate.wait(30)
            return extract(photo, protected)

        faces._extract = held

    def open(self) -> None:
        self._gate.set()


@pytest.fixture
def searchable_gif(library) -> bytes:
    """What the GIF search fake serves: the first 8 frames of the built-in "shake", as a GIF."""
    from memeswap.inference.media.encode import encode_frames

    return encode_frames(template_frames(library, "shake")[:8], "gif", fps=12).data
