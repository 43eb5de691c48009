"""Shared fixtures: faces come from images that ship inside installed packages, templates
from the built-in library. Expensive objects (the analyser, compiled tracks) are built
once per test session."""

from pathlib import Path

import numpy as np
import pytest
import skimage.data

from memeswap.inference.faces.human_check import HumanFaceCheck
from memeswap.inference.faces.mediapipe_analyser import MediaPipeAnalyser
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.samples import group_faces
from memeswap.inference.swappers.classic import ClassicSwapper
from memeswap.inference.templates.compile import TrackCache
from memeswap.inference.templates.library import TemplateLibrary


@pytest.fixture(scope="session")
def analyser() -> MediaPipeAnalyser:
    a = MediaPipeAnalyser()
    a.prepare()
    yield a
    a.close()


@pytest.fixture(scope="session")
def swapper() -> ClassicSwapper:
    return ClassicSwapper()


@pytest.fixture(scope="session")
def group(analyser):
    """insightface's t1.jpg and its six faces, left to right."""
    return group_faces(analyser)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def astronaut_face(analyser, astronaut):
    """The one face of the astronaut photo, as the MediaPipe analyser sees it."""
    return analyser.analyse(astronaut)[0]


@pytest.fixture(scope="session")
def cat_face(analyser) -> np.ndarray:
    """scikit-image's photo of Chelsea the cat, turned 25 degrees and cropped to her face:
    MediaPipe's detector takes it for a face (score 0.66, also as a JPEG)."""
    import cv2

    turn = cv2.getRotationMatrix2D((225, 150), 25, 1.0)
    photo = cv2.warpAffine(skimage.data.chelsea(), turn, (451, 300), borderMode=cv2.BORDER_REFLECT)
    face = np.ascontiguousarray(photo[60:300, 10:250])
    assert analyser.analyse(face), "the detector no longer mistakes the cat for a face; pick another crop"
    return face


@pytest.fixture(scope="session")
def human_check() -> HumanFaceCheck:
    """One for the session, as a process has one: dlib's detectors load once."""
    return HumanFaceCheck()


@pytest.fixture(scope="session")
def drawn_face() -> np.ndarray:
    """A drawn, dark-skinned person (shapes only): dlib's HOG detector at its default
    threshold misses it, as it misses many drawn faces; MediaPipe finds it (score 0.87)."""
    import cv2

    skin, hair = (140, 95, 70), (60, 40, 20)
    image = np.full((400, 400, 3), (90, 160, 220), np.uint8)
    cv2.ellipse(image, (200, 215), (120, 150), 0, 0, 360, (30, 30, 30), -1)  # long hair behind
    cv2.rectangle(image, (60, 330), (340, 400), (200, 60, 60), -1)  # a red shirt
    cv2.rectangle(image, (170, 280), (230, 340), skin, -1)  # the neck
    cv2.ellipse(image, (200, 190), (100, 125), 0, 0, 360, skin, -1)
    cv2.ellipse(image, (200, 110), (110, 70), 0, 180, 360, hair, -1)  # a fringe
    for x in (160, 240):
        cv2.ellipse(image, (x, 180), (22, 14), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(image, (x, 182), 9, (40, 30, 20), -1)
        cv2.line(image, (x - 22, 150), (x + 22, 146), hair, 6)  # brows
    cv2.line(image, (200, 190), (192, 235), (170, 120, 100), 4)
    cv2.line(image, (192, 235), (208, 235), (170, 120, 100), 4)
    cv2.ellipse(image, (200, 262), (38, 18), 0, 0, 180, (160, 40, 40), 6)  # a smile
    for x in (100, 300):
        cv2.ellipse(image, (x, 195), (12, 25), 0, 0, 360, skin, -1)  # ears
    return image


@pytest.fixture(scope="session")
def track_cache(tmp_path_factory) -> TrackCache:
    return TrackCache(tmp_path_factory.mktemp("tracks"))


@pytest.fixture()
def library(tmp_path: Path, analyser, track_cache, human_check) -> TemplateLibrary:
    """A library with the built-in templates and an empty custom folder of its own."""
    return TemplateLibrary(tmp_path / "templates", track_cache, analyser, MediaLimits(), human_check=human_check)


@pytest.fixture(scope="session")
def compiled_builtins(analyser, track_cache, tmp_path_factory, human_check):
    """Compile each built-in template once per session; returns a getter by name."""
    library = TemplateLibrary(tmp_path_factory.mktemp("custom"), track_cache, analyser, human_check=human_check)
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = library.compile(library.get(name))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A real `redis-server` on a free loopback port for the whole session.

    The README's test command installs redis-server; its absence is a failure, not a skip,
    so a machine without it cannot pass the suite by leaving the Redis tests out.
    """
    from memeswap.inference.jobs.local_redis import LocalRedisServer, RedisServerMissing

    try:
        server = LocalRedisServer().start()
    except RedisServerMissing as missing:
        pytest.fail(str(missing))
    yield server.url
    server.stop()


@pytest.fixture
def redis_prefix(request) -> str:
    """A key prefix of the test's own, so tests sharing the server never see each other's keys."""
    import uuid

    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL on a free loopback port for the whole session (run as the `postgres`
    system user when the suite runs as root); `create_database(name)` gives a module its own
    clean database.

    The README's test command installs the `postgresql` package; its absence is a failure, not
    a skip, so a machine without it cannot pass the suite by leaving the PostgreSQL tests out.
    """
    from tests.postgres_server import LocalPostgresServer, PostgresMissing

    try:
        server = LocalPostgresServer().start()
    except PostgresMissing as missing:
        pytest.fail(f"{missing}; the README's test command installs the `postgresql` package")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    """`postgresql+asyncpg://memeswap:<password>@127.0.0.1:<port>/memeswap` on the session's server."""
    return postgres_server.url
