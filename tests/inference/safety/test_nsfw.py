"""NSFW screening with the real NudeNet detector (no mocks). The images are ordinary
photos that ship inside installed packages and the built-in templates; the rejection path
is exercised by blocking the FACE_FEMALE class, which those photos really contain."""

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import onnxruntime
import pytest
import skimage.color
import skimage.data

from memeswap.inference.errors import InputError
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.safety.nsfw import (
    DEFAULT_BLOCKED,
    NUDENET_LABELS,
    Detection,
    NsfwContentError,
    NsfwScreen,
)
from memeswap.inference.samples import group_photo_path
from memeswap.inference.templates.catalog import builtin_templates_dir

ASTRONAUT_FACE = (175, 70, 270, 178)  # x0, y0, x1, y1; MediaPipe finds 179, 69, 271, 177


@pytest.fixture(scope="module")
def screen() -> NsfwScreen:
    s = NsfwScreen()
    s.prepare()
    return s


@pytest.fixture(scope="module")
def face_screen() -> NsfwScreen:
    """Blocks female faces: the photos here then take the rejection path."""
    s = NsfwScreen(blocked={"FACE_FEMALE"})
    s.prepare()
    return s


@pytest.fixture(scope="module")
def astronaut_rgb() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def group_rgb() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(group_photo_path())), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def photos(astronaut_rgb, group_rgb) -> dict[str, np.ndarray]:
    return {"astronaut": astronaut_rgb, "group": group_rgb,
            "coffee": skimage.data.coffee(), "chelsea": skimage.data.chelsea()}


@pytest.fixture(scope="module")
def found(screen, photos) -> dict[str, list[Detection]]:
    """Each photo's detections, found once for the module."""
    return {name: screen.detect(image) for name, image in photos.items()}


def template_frames(name: str) -> list[np.ndarray]:
    return list(read_frames(builtin_templates_dir() / name / "template.mp4", MediaLimits()))


def template_stream(name: str):
    return read_frames(builtin_templates_dir() / name / "template.mp4", MediaLimits())


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def corners(d: Detection) -> tuple[int, int, int, int]:
    x, y, w, h = d.box
    return x, y, x + w, y + h


def assert_inside(detections: list[Detection], image: np.ndarray) -> None:
    height, width = image.shape[:2]
    for d in detections:
        x, y, w, h = d.box
        assert all(isinstance(v, int) for v in d.box)
        assert 0 <= x and 0 <= y and w >= 0 and h >= 0, d
        assert x + w <= width and y + h <= height, d


def test_labels_and_default_policy():
    assert len(NUDENET_LABELS) == 18 and len(set(NUDENET_LABELS)) == 18
    assert NUDENET_LABELS[1] == "FACE_FEMALE" and NUDENET_LABELS[12] == "FACE_MALE"
    assert DEFAULT_BLOCKED <= set(NUDENET_LABELS)
    assert not any(label.endswith("_COVERED") or label.startswith(("FACE", "FEET", "BELLY", "ARMPITS"))
                   for label in DEFAULT_BLOCKED)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "group"])
def test_ordinary_photos_are_accepted(screen, photos, found, name):
    image = photos[name]
    assert [d for d in found[name] if d.label in DEFAULT_BLOCKED and d.score >= screen.threshold] == []
    assert_inside(found[name], image)
    screen.check_image(image)


def test_builtin_templates_are_accepted(screen):
    frames = template_frames("dramatic-zoom")
    assert len(frames) >= 2
    for frame in (frames[0], frames[-1]):
        assert screen.blocking(frame) == []
    screen.check_frames(frames)
    screen.check_frames(template_stream("duo"))  # a generator, read once


def test_finds_the_astronauts_face(found):
    faces = [d for d in found["astronaut"] if d.label == "FACE_FEMALE"]
    assert faces and faces[0].score > 0.5
    assert iou(corners(faces[0]), ASTRONAUT_FACE) > 0.6, faces[0]


def test_finds_faces_in_the_group_photo(found):
    faces = [d for d in found["group"] if d.label.startswith("FACE_")]
    assert len(faces) >= 4
    assert sum(d.score > 0.5 for d in faces) >= 3


def test_detections_are_sorted_and_above_the_floor(found):
    for detections in found.values():
        scores = [d.score for d in detections]
        assert scores == sorted(scores, reverse=True)
        assert all(0.2 <= s <= 1 for s in scores)


def test_a_blocked_label_rejects_the_picture(face_screen, astronaut_rgb):
    assert [d.label for d in face_screen.blocking(astronaut_rgb)] == ["FACE_FEMALE"]
    with pytest.raises(NsfwContentError) as caught:
        face_screen.check_image(astronaut_rgb)
    error = caught.value
    assert isinstance(error, InputError) and error.code == "nsfw"
    message = str(error)
    assert "\n" not in message and "picture" in message and "template" not in message
    assert not any(label in message for label in NUDENET_LABELS) and "FACE" not in message
    assert not any(ch.isdigit() for ch in message)


def test_a_blocked_label_rejects_a_template(face_screen):
    with pytest.raises(NsfwContentError) as caught:
        face_screen.check_frames(template_frames("dramatic-zoom"))
    message = str(caught.value)
    assert caught.value.code == "nsfw" and "template" in message and "\n" not in message
    assert not any(label in message for label in NUDENET_LABELS)
    with pytest.raises(NsfwContentError, match="template"):
        face_screen.check_frames(template_stream("duo"))


def test_the_subject_is_named_in_the_message(face_screen, astronaut_rgb):
    with pytest.raises(NsfwContentError, match="this template can't be used here"):
        face_screen.check_image(astronaut_rgb, subject="template")
    with pytest.raises(NsfwContentError, match="this selfie can't be used"):
        face_screen.check_image(astronaut_rgb, subject="selfie")
    with pytest.raises(NsfwContentError, match="this picture can't be used"):
        face_screen.check_frames([astronaut_rgb], subject="picture")


def test_a_high_threshold_accepts_again(astronaut_rgb):
    strict = NsfwScreen(threshold=0.99, blocked={"FACE_FEMALE"})
    assert strict.blocking(astronaut_rgb) == []
    strict.check_image(astronaut_rgb)
    strict.check_frames(template_frames("dramatic-zoom"), samples=2)


def test_unknown_labels_and_bad_settings_are_refused():
    with pytest.raises(ValueError, match="FACE_CAT") as caught:
        NsfwScreen(blocked={"FACE_CAT", "FACE_FEMALE"})
    assert "FEMALE_BREAST_EXPOSED" in str(caught.value)  # lists the valid ones
    with pytest.raises(ValueError):
        NsfwScreen(threshold=1.5)
    with pytest.raises(ValueError):
        NsfwScreen().check_frames([], samples=0)


def test_greyscale_and_rgba_images(screen, astronaut_rgb, found):
    grey = (skimage.color.rgb2gray(astronaut_rgb) * 255).round().astype(np.uint8)
    as_rgb = screen.detect(np.dstack([grey] * 3))
    assert [d.label for d in as_rgb] == ["FACE_FEMALE"]
    assert screen.detect(grey) == as_rgb  # (H, W) works the same
    rgba = np.dstack([astronaut_rgb, np.full(astronaut_rgb.shape[:2], 255, np.uint8)])
    assert screen.detect(rgba) == found["astronaut"]


def test_bad_images_are_refused(screen):
    with pytest.raises(ValueError):
        screen.detect(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(ValueError):
        screen.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        screen.detect(np.zeros((10, 10, 2), np.uint8))


def test_a_tiny_image_gives_nothing(screen, astronaut_rgb):
    assert screen.detect(np.ascontiguousarray(astronaut_rgb[200:208, 200:208])) == []
    screen.check_image(np.zeros((8, 8, 3), np.uint8))


@pytest.mark.parametrize("crop", [(slice(None), slice(0, 300)), (slice(0, 300), slice(None))])
def test_non_square_images_give_boxes_inside_them(screen, astronaut_rgb, crop):
    """(The group photo, coffee and chelsea are not square either: see the first test.)"""
    image = np.ascontiguousarray(astronaut_rgb[crop])
    found = screen.detect(image)
    assert_inside(found, image)
    face = [d for d in found if d.label == "FACE_FEMALE"][0]
    assert iou(corners(face), ASTRONAUT_FACE) > 0.6, face


def test_matches_nudenets_own_postprocessing(screen, group_rgb):
    """nudenet 3.4.2 feeds the network BGR (see the module docstring); given the same
    blob, its post-processing and ours agree box for box."""
    from nudenet import NudeDetector

    theirs = NudeDetector(providers=["CPUExecutionProvider"]).detect(cv2.cvtColor(group_rgb, cv2.COLOR_RGB2BGR))
    ours = screen.detect(np.ascontiguousarray(group_rgb[:, :, ::-1]))
    assert [d.label for d in ours] == [t["class"] for t in theirs]
    for d, t in zip(ours, theirs):
        assert d.score == pytest.approx(t["score"], abs=1e-4)
        assert np.abs(np.subtract(d.box, t["box"])).max() <= 1


class ScreenedFrames(NsfwScreen):
    """Records which frames `check_frames` hands to `check_image` (frame i is filled with i)."""

    def __init__(self) -> None:
        super().__init__()
        self.screened: list[int] = []

    def check_image(self, image: np.ndarray, subject: str = "picture") -> None:
        self.screened.append(int(image[0, 0, 0]))


@pytest.mark.parametrize("kind", ["list", "array", "stream"])
def test_check_frames_screens_one_random_frame_of_each_part(kind):
    """48 frames, 3 samples: one frame from each sixteen, never the same ones every time,
    so a clip's maker cannot know which frames to leave clean."""
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(48)]
    clip = {"list": lambda: frames, "array": lambda: np.stack(frames), "stream": lambda: iter(frames)}[kind]
    seen = set()
    for _ in range(200):
        screen = ScreenedFrames()
        screen.check_frames(clip(), samples=3)
        assert [index // 16 for index in screen.screened] == [0, 1, 2]
        seen.update(screen.screened)
    assert seen == set(range(48))


@pytest.mark.parametrize("kind", ["list", "array", "stream"])
@pytest.mark.parametrize("part", [0, 1, 2], ids=["first", "middle", "last"])
def test_check_frames_blocks_a_part_full_of_the_picture(face_screen, astronaut_rgb, kind, part):
    frames = [np.zeros_like(astronaut_rgb)] * 48
    frames[16 * part:16 * (part + 1)] = [astronaut_rgb] * 16
    clip = {"list": frames, "array": np.stack(frames), "stream": iter(frames)}[kind]
    with pytest.raises(NsfwContentError):
        face_screen.check_frames(clip, samples=3)


def test_check_frames_screens_a_short_clip_whole():
    screen = ScreenedFrames()
    screen.check_frames([np.full((4, 4, 3), i, np.uint8) for i in range(5)], samples=8)
    assert screen.screened == [0, 1, 2, 3, 4]
    screen.check_frames([])
    assert screen.screened == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        screen.check_frames(np.zeros((4, 4, 3), np.uint8))


def test_prepare_loads_once(monkeypatch):
    made = []
    real = onnxruntime.InferenceSession

    def counting(*args, **kwargs):
        made.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", counting)
    s = NsfwScreen()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: s.prepare(), range(4)))
    session = s.session
    s.prepare()
    assert len(made) == 1 and made[0].endswith("320n.onnx") and s.session is session
    assert s.session.get_providers() == ["CPUExecutionProvider"]


def test_usable_from_several_threads(screen, photos, found):
    names = list(photos) * 2
    serial = [found[name] for name in names]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(screen.detect, [photos[name] for name in names]))
    assert [[(d.label, d.box) for d in found] for found in parallel] == \
        [[(d.label, d.box) for d in found] for found in serial]
    for p, s in zip(parallel, serial):
        assert [d.score for d in p] == pytest.approx([d.score for d in s], abs=1e-5)
