import dataclasses

import cv2
import numpy as np
import pytest

from memeswap.inference.errors import InputError
from memeswap.inference.faces import mesh
from memeswap.inference.faces.face import Face
from memeswap.inference.samples import crop_face


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
    size = int(np.ptp(target.landmarks[:, :2], axis=0).max())  # the neck and ears may take the new tone
    outside[max(0, y0 - 20):y1 + int(0.7 * size), max(0, x0 - int(0.35 * size)):x1 + int(0.35 * size)] = False
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
    """A dim template dims the face as much as it dims the template's own (its eye whites
    tell the exposure), whatever the two people's skin tones."""
    dim = (astronaut * 0.45).astype(np.uint8)
    bright, dark = (swapper.swap([frame], [[target]], source)[0] for frame in (astronaut, dim))
    inner = polygon_mask(dim.shape, target.landmarks[list(mesh.FACE_OVAL), :2])
    assert dark[inner].mean() / bright[inner].mean() == pytest.approx(0.45, abs=0.08)


def test_eyes_behind_tinted_glasses_do_not_make_a_dim_scene(swapper, source, target, astronaut):
    """Eye whites that read darker than the skin (tinted lenses, a squint) tell nothing about
    the light: the face keeps the tone it gets with clear eyes (Grace Hopper's portrait read
    as a scene at 40% light and took a face darker than both people)."""
    tinted = astronaut.copy()
    eyes = np.zeros(astronaut.shape[:2], np.uint8)
    for upper, lower in ((mesh.RIGHT_EYE_UPPER, mesh.RIGHT_EYE_LOWER), (mesh.LEFT_EYE_UPPER, mesh.LEFT_EYE_LOWER)):
        cv2.fillPoly(eyes, [np.round(target.landmarks[list(upper) + list(lower[::-1]), :2]).astype(np.int32)], 1)
    eyes = cv2.dilate(eyes, np.ones((5, 5), np.uint8)).astype(bool)
    tinted[eyes] = (tinted[eyes] * 0.45).astype(np.uint8)
    clear, behind = (swapper.swap([frame], [[target]], source)[0] for frame in (astronaut, tinted))
    cheeks = polygon_mask(astronaut.shape, target.landmarks[list(mesh.FACE_OVAL), :2]) & ~cv2.dilate(
        eyes.astype(np.uint8), np.ones((31, 31), np.uint8)).astype(bool)
    assert behind[cheeks].mean() == pytest.approx(clear[cheeks].mean(), abs=2.0)


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
    blinking = dataclasses.replace(source, points=close_eyes(source.points), eyes=(0.0, 0.0),
                                   shape=source.shape.for_source(close_eyes(source.points)))
    plan = swapper.expression_plan(target.landmarks, blinking)
    assert plan.selfie_shaped == {"left_eye", "right_eye"}
    moved = blinking.shape.apply(target.landmarks, plan.keep_template, plan.selfie_shaped)
    assert max(mesh.eye_openness(moved)) < 0.05  # no open template eye left to show


def test_the_templates_mouth_drives_whatever_the_selfies_does(swapper, source, target, astronaut):
    """A laughing selfie cannot open a closed template mouth, and a closed-mouth selfie
    cannot close an open one: the decision follows the template frame alone."""
    laughing = dataclasses.replace(source, mouth=0.3)
    open_frame, open_face = open_mouth(astronaut, target)
    closed = target.landmarks.copy()
    closed[list(mesh.LIPS_INNER_LOWER), :2] = closed[list(mesh.LIPS_INNER_UPPER), :2]
    for selfie in (source, laughing):
        assert "mouth" in swapper.expression_plan(open_face.landmarks, selfie).keep_template
        assert "mouth" in swapper.expression_plan(closed, selfie).regions


def test_selfie_proportions_carry_over(swapper, source, target):
    moved = source.shape.apply(target.landmarks)
    def ratio(p):
        return np.linalg.norm(p[61, :2] - p[291, :2]) / np.linalg.norm(p[468, :2] - p[473, :2])
    assert abs(ratio(moved) - ratio(source.points)) < abs(ratio(target.landmarks) - ratio(source.points))
    assert np.allclose(moved[list(mesh.FACE_OVAL)], target.landmarks[list(mesh.FACE_OVAL)])


def test_turned_selfie_is_refused_with_a_clear_message(group, swapper):
    image, faces = group
    turned = max(faces, key=lambda f: abs(mesh.head_yaw_degrees(f.landmarks)))
    with pytest.raises(InputError, match="front-facing"):
        swapper.prepare_source(image, turned)



# --- tone follows the selfie, lighting follows the template ----------------------------------

def lab_of(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


CHEEKS = ((50, 101, 118, 117, 123, 187, 205), (280, 330, 347, 346, 352, 411, 425))  # image-left, image-right


def skin_lightness(image: np.ndarray, face: Face) -> float:
    """The median L* over the face's oval: its skin tone, whatever the light's direction."""
    return float(np.median(lab_of(image)[..., 0][polygon_mask(image.shape, face.landmarks[list(mesh.FACE_OVAL), :2])]))


def cheek_lightness(image: np.ndarray, face: Face) -> tuple[float, float]:
    lightness = lab_of(image)[..., 0]
    return tuple(float(lightness[polygon_mask(image.shape, face.landmarks[list(c), :2])].mean()) for c in CHEEKS)


def recoloured(image: np.ndarray, face: Face, lightness: float) -> np.ndarray:
    """The face's skin (its oval, not the whites of its eyes) moved by `lightness` L*, as a
    synthetic darker or lighter skin tone."""
    skin = cv2.GaussianBlur(polygon_mask(image.shape, face.landmarks[list(mesh.FACE_OVAL), :2]).astype(np.float32),
                            (0, 0), 0.03 * face.width)
    for upper, lower in ((mesh.RIGHT_EYE_UPPER, mesh.RIGHT_EYE_LOWER), (mesh.LEFT_EYE_UPPER, mesh.LEFT_EYE_LOWER)):
        skin[polygon_mask(image.shape, face.landmarks[list(upper) + list(lower[::-1]), :2])] = 0
    lab = lab_of(image)
    lab[..., 0] += lightness * skin
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255, 0, 255).astype(np.uint8)


def side_lit(image: np.ndarray, face: Face, strength: float = 0.5) -> np.ndarray:
    """A hard light from the image's right: darker to the left of the face, brighter to the right."""
    ramp = np.clip((np.arange(image.shape[1]) - face.center[0]) / face.width + 0.5, 0, 1)
    return np.clip(image * ((1 - strength) + 2 * strength * ramp)[None, :, None], 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def selfie_image(group) -> np.ndarray:
    image, faces = group
    return crop_face(image, faces[2])


def source_of(swapper, analyser, image: np.ndarray):
    return swapper.prepare_source(image, max(analyser.analyse(image), key=lambda f: f.area))


def test_a_dark_skinned_selfie_keeps_its_tone(swapper, analyser, selfie_image, target, astronaut):
    face = max(analyser.analyse(selfie_image), key=lambda f: f.area)
    dark = recoloured(selfie_image, face, -30)
    out = swapper.swap([astronaut], [[target]], source_of(swapper, analyser, dark))[0]
    selfie_l = skin_lightness(dark, max(analyser.analyse(dark), key=lambda f: f.area))
    template_l, out_l = skin_lightness(astronaut, target), skin_lightness(out, target)
    assert selfie_l < template_l - 20
    assert out_l <= template_l - 0.5 * (template_l - selfie_l)  # at least half-way to the selfie's tone


def test_a_light_skinned_selfie_into_a_dark_skinned_template_stays_light(swapper, analyser, selfie_image, target,
                                                                        astronaut):
    dark_template = recoloured(astronaut, target, -35)
    out = swapper.swap([dark_template], [[target]], source_of(swapper, analyser, selfie_image))[0]
    face = max(analyser.analyse(selfie_image), key=lambda f: f.area)
    selfie_l = skin_lightness(selfie_image, face)
    template_l, out_l = skin_lightness(dark_template, target), skin_lightness(out, target)
    assert selfie_l > template_l + 20
    assert out_l >= template_l + 0.5 * (selfie_l - template_l)


def test_the_selfies_own_side_light_stays_behind(swapper, analyser, selfie_image, target, astronaut):
    face = max(analyser.analyse(selfie_image), key=lambda f: f.area)
    lit = side_lit(selfie_image, face)
    lit_face = max(analyser.analyse(lit), key=lambda f: f.area)
    out = swapper.swap([astronaut], [[target]], source_of(swapper, analyser, lit))[0]
    def left_right(pair):
        return pair[0] - pair[1]
    selfie_lr = left_right(cheek_lightness(lit, lit_face))
    template_lr, out_lr = left_right(cheek_lightness(astronaut, target)), left_right(cheek_lightness(out, target))
    assert abs(selfie_lr - template_lr) > 15
    assert abs(out_lr - template_lr) < 0.35 * abs(selfie_lr - template_lr)


def test_a_stage_light_on_the_template_lights_the_face(swapper, source, target, astronaut):
    lit = side_lit(astronaut, target, strength=0.6)
    out = swapper.swap([lit], [[target]], source)[0]
    template_left, template_right = cheek_lightness(lit, target)
    out_left, out_right = cheek_lightness(out, target)
    assert template_right - template_left > 20
    assert out_right - out_left > 0.7 * (template_right - template_left)


def test_a_hair_strand_across_the_selfie_is_not_carried(swapper, analyser, selfie_image, target, astronaut):
    """Dark strands drawn across the selfie's cheek and forehead are painted over before the
    swap: the output's cheek is as even as with the clean selfie."""
    face = max(analyser.analyse(selfie_image), key=lambda f: f.area)
    strands = selfie_image.copy()
    points = face.landmarks[:, :2]
    for a, b, c in ((234, 50, 4), (127, 101, 197), (54, 9, 284)):
        curve = np.array([points[a], (points[b] + points[c]) / 2, points[c]], np.int32)
        cv2.polylines(strands, [curve], False, (40, 28, 20), 3, cv2.LINE_AA)
    clean_out = swapper.swap([astronaut], [[target]], source_of(swapper, analyser, selfie_image))[0]
    strand_out = swapper.swap([astronaut], [[target]], source_of(swapper, analyser, strands))[0]
    oval = polygon_mask(astronaut.shape, target.landmarks[list(mesh.FACE_OVAL), :2])
    def darkest(image):
        return float(np.percentile(lab_of(image)[..., 0][oval], 2))
    assert darkest(strand_out) > darkest(clean_out) - 6  # no dark streaks beyond the face's own darks


def test_an_out_of_focus_face_is_swapped_at_half_size_to_the_same_look(swapper, source, target, astronaut,
                                                                        monkeypatch):
    """A template face the compile found blurred (sigma 3 px) is swapped in a half-size copy
    of its surroundings: seen at its own focus it looks as the full-size swap does, and the
    swap still lands on the face (not beside it)."""
    from memeswap.inference.faces.face import FaceFrame, face_region
    from memeswap.inference.faces.light import FaceLight
    from memeswap.inference.swappers import classic

    warped_on = []
    build = classic.build_mesh_warp
    monkeypatch.setattr(classic, "build_mesh_warp", lambda *args, **kwargs: warped_on.append(args[3])
                        or build(*args, **kwargs))

    blurred = cv2.GaussianBlur(astronaut, (0, 0), 3.0)
    region = face_region(target.box)
    info = FaceFrame(np.zeros(3, np.float32), 3.0, 0.0, np.full((128, 128), 255, np.uint8), region,
                     FaceLight.measure(blurred, target.landmarks, region))
    sharp_info = dataclasses.replace(info, blur=0.0)
    half = swapper.swap([blurred], [[dataclasses.replace(target, frame_info=info)]], source)[0]
    full = swapper.swap([blurred], [[dataclasses.replace(target, frame_info=sharp_info)]], source)[0]
    inner = polygon_mask(astronaut.shape, target.landmarks[list(mesh.FACE_OVAL), :2])
    assert np.abs(half.astype(int) - blurred)[inner].mean() > 8  # swapped
    seen_half, seen_full = (cv2.GaussianBlur(o, (0, 0), 3.0).astype(int) for o in (half, full))
    assert np.abs(seen_half - seen_full)[inner].mean() < 2.0
    face_height = int(np.ptp(target.landmarks[:, 1]))
    assert warped_on[0][0] < face_height and warped_on[1] == astronaut.shape[:2]  # half size, then full
