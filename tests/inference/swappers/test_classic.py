import cv2
import numpy as np
import pytest

from inference.errors import InputError
from inference.faces import mesh
from inference.faces.face import Face
from inference.samples import crop_face


@pytest.fixture(scope="module")
def target(astronaut_face) -> Face:
    return astronaut_face


@pytest.fixture(scope="module")
def source(group, swapper, analyser):
    image, faces = group
    selfie = crop_face(image, faces[2])
    return swapper.prepare_source(selfie, analyser.analyse(selfie)[0])


def polygon_mask(shape, points: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [points.astype(np.int32)], 1)
    return mask.astype(bool)


def test_swap_changes_the_face_and_nothing_far_from_it(swapper, source, target, astronaut):
    out = swapper.swap([astronaut], [[target]], source)[0]
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    inner = polygon_mask(astronaut.shape, target.landmarks[list(mesh.FACE_OVAL), :2])
    assert np.abs(out.astype(int) - astronaut)[inner].mean() > 8
    outside = np.ones(astronaut.shape[:2], bool)
    x0, y0, x1, y1 = target.box.astype(int)
    outside[max(0, y0 - 20):y1 + 20, max(0, x0 - 20):x1 + 20] = False
    assert np.array_equal(out[outside], astronaut[outside])
    assert swapper.swap([astronaut], [[]], source)[0] is not astronaut  # inputs are never modified


def test_no_seam_at_the_mask_edge(swapper, source, target, astronaut):
    """Across the face outline the output changes as gently as the template itself does."""
    out = swapper.swap([astronaut], [[target]], source)[0].astype(np.float32)
    oval = polygon_mask(astronaut.shape, target.landmarks[list(mesh.FACE_OVAL), :2]).astype(np.uint8)
    ring = (cv2.dilate(oval, np.ones((5, 5))) - cv2.erode(oval, np.ones((5, 5)))).astype(bool)
    def edge_strength(image):
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        return np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))[ring].mean()
    assert edge_strength(out) < 1.5 * edge_strength(astronaut.astype(np.float32))


def test_lighting_follows_the_template(swapper, source, target, astronaut):
    dark = (astronaut * 0.45).astype(np.uint8)
    out = swapper.swap([dark], [[target]], source)[0]
    inner = polygon_mask(dark.shape, target.landmarks[list(mesh.FACE_OVAL), :2])
    assert abs(out[inner].mean() - dark[inner].mean()) < 12


def test_greyscale_template_gets_a_greyscale_face(swapper, source, target, astronaut):
    grey = np.repeat(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    out = swapper.swap([grey], [[target]], source)[0].astype(int)
    assert np.abs(out - out.mean(axis=2, keepdims=True)).max() <= 2


def open_mouth(astronaut: np.ndarray, target: Face) -> tuple[np.ndarray, Face]:
    """The template face with its jaw dropped and a dark open mouth."""
    points = target.landmarks.copy()
    lower = list(mesh.LIPS_INNER_LOWER[1:-1])
    points[lower, 1] += 14
    frame = astronaut.copy()
    polygon = points[list(mesh.LIPS_INNER_UPPER) + list(reversed(lower)), :2]
    cv2.fillPoly(frame, [polygon.astype(np.int32)], (30, 10, 10))
    return frame, Face(box=target.box, score=1.0, kps=target.kps, landmarks=points)


def test_closed_mouth_selfie_keeps_the_templates_open_mouth(swapper, source, target, astronaut):
    assert source.mouth < 0.1
    frame, laughing = open_mouth(astronaut, target)
    plan = swapper.expression_plan(laughing.landmarks, source)
    assert "mouth" not in plan.regions and "mouth" in plan.keep_template
    out = swapper.swap([frame], [[laughing]], source)[0]
    polygon = laughing.landmarks[list(mesh.LIPS_INNER_UPPER) + list(reversed(mesh.LIPS_INNER_LOWER[1:-1])), :2]
    inside = cv2.erode(polygon_mask(frame.shape, polygon).astype(np.uint8), np.ones((5, 5))).astype(bool)
    assert inside.sum() > 50
    assert np.abs(out[inside].astype(int) - frame[inside]).mean() < 25  # still the dark mouth, not skin


def close_eyes(points: np.ndarray) -> np.ndarray:
    """Landmarks with both upper lids lowered onto the lower lids."""
    closed = points.copy()
    for upper, lower in ((mesh.RIGHT_EYE_UPPER, mesh.RIGHT_EYE_LOWER), (mesh.LEFT_EYE_UPPER, mesh.LEFT_EYE_LOWER)):
        closed[list(upper), :2] = closed[list(lower), :2]
    return closed


def test_closed_eyes_in_the_template_stay_closed(swapper, source, target):
    closed = close_eyes(target.landmarks)
    plan = swapper.expression_plan(closed, source)
    assert not plan.selfie_shaped  # the template's closed lids keep their shape
    moved = source.shape.apply(closed, plan.keep_template, plan.selfie_shaped)
    assert max(mesh.eye_openness(moved)) < 0.05


def test_a_blink_in_the_selfie_is_the_selfies_own(swapper, source, target):
    blinking = source.__class__(source.texture, close_eyes(source.points), (0.0, 0.0), source.mouth,
                                source.winding, source.shape.for_source(close_eyes(source.points)))
    plan = swapper.expression_plan(target.landmarks, blinking)
    assert plan.selfie_shaped == {"left_eye", "right_eye"}
    moved = blinking.shape.apply(target.landmarks, plan.keep_template, plan.selfie_shaped)
    assert max(mesh.eye_openness(moved)) < 0.05  # no open template eye left to show


def test_selfie_proportions_carry_over(swapper, source, target):
    moved = source.shape.apply(target.landmarks)
    ratio = lambda p: np.linalg.norm(p[61, :2] - p[291, :2]) / np.linalg.norm(p[468, :2] - p[473, :2])
    assert abs(ratio(moved) - ratio(source.points)) < abs(ratio(target.landmarks) - ratio(source.points))
    assert np.allclose(moved[list(mesh.FACE_OVAL)], target.landmarks[list(mesh.FACE_OVAL)])


def test_turned_selfie_is_refused_with_a_clear_message(group, swapper):
    image, faces = group
    turned = max(faces, key=lambda f: abs(mesh.head_yaw_degrees(f.landmarks)))
    with pytest.raises(InputError, match="front-facing"):
        swapper.prepare_source(image, turned)

