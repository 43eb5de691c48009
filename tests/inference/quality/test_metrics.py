"""Each measure of the quality benchmark on a constructed case whose answer is known: an
output identical to the template (or to what the goal asks for) scores perfectly, and a
deliberately bad one fails."""

import cv2
import numpy as np
import pytest

from memeswap.inference.quality import metrics
from memeswap.inference.quality.corpus import load_portraits
from memeswap.inference.quality.regions import face_hull_mask, face_width
from memeswap.inference.quality.synthetic import draw_hand, shift_skin_tone, side_light


@pytest.fixture(scope="module")
def portraits(analyser):
    return load_portraits(analyser)


@pytest.fixture(scope="module")
def astronaut_mesh(portraits):
    portrait = portraits["astronaut"]
    return portrait.image, portrait.points


def score(template, output, points, occluder=None, selfie=None, selfie_points=None, lit_side=None, describe=None):
    """One frame through `score_swap`."""
    occluders = (occluder if occluder is not None else np.zeros(template.shape[:2], bool))[None]
    return metrics.score_swap([template], [output], points[None, None], occluders,
                              template if selfie is None else selfie,
                              points if selfie_points is None else selfie_points, lit_side, describe)


def test_occluder_pixels_are_kept_only_when_the_output_shows_the_occluder(astronaut_mesh):
    image, points = astronaut_mesh
    centre = points[:, :2].mean(axis=0)
    template, mask = draw_hand(image, (float(centre[0]), float(centre[1])), face_width(points), -30.0,
                               np.random.default_rng(0))
    assert (mask & face_hull_mask(points, mask.shape)).sum() > 1000
    perfect = score(template, template.copy(), points, mask)
    assert perfect["occluder_kept"] == 1.0 and perfect["occluder_pass"] is True
    painted_over = score(template, image, points, mask)  # a clean face pasted over the hand
    assert painted_over["occluder_kept"] < 0.2 and painted_over["occluder_pass"] is False
    noisy = np.clip(template.astype(np.int16) + np.random.default_rng(1).integers(-6, 7, template.shape), 0,
                    255).astype(np.uint8)  # an encoder's error of a few levels keeps the occluder
    assert score(template, noisy, points, mask)["occluder_pass"] is True
    assert score(template, template, points)["occluder_kept"] is None  # nothing in front: nothing to measure


def test_sharpness_passes_a_face_as_sharp_as_the_templates_and_fails_a_blurred_or_a_sharp_sticker(astronaut_mesh):
    image, points = astronaut_mesh
    perfect = score(image, image.copy(), points)
    assert perfect["sharpness_min"] == pytest.approx(1.0) and perfect["sharpness_pass"] is True
    mushy = score(image, cv2.GaussianBlur(image, (0, 0), 2.0), points)
    assert mushy["sharpness_max"] < metrics.SHARPNESS_RANGE[0] and mushy["sharpness_pass"] is False
    out_of_focus = cv2.GaussianBlur(image, (0, 0), 3.0)
    inside = face_hull_mask(points, image.shape)[..., None]
    sticker = np.where(inside, image, out_of_focus)  # a sharp face pasted on a blurred one
    sharp = score(out_of_focus, sticker, points)
    assert sharp["sharpness_min"] > metrics.SHARPNESS_RANGE[1] and sharp["sharpness_pass"] is False


def test_skin_tone_passes_when_the_output_takes_the_selfies_tone(astronaut_mesh):
    image, points = astronaut_mesh
    darker = shift_skin_tone(image, points, 0.55, 6.0)  # the selfie: the same face, darker skin
    kept_template_tone = score(image, image.copy(), points, selfie=darker)
    assert kept_template_tone["tone_progress"] == pytest.approx(0.0, abs=0.02)
    assert kept_template_tone["tone_pass"] is False
    took_selfie_tone = score(image, darker, points, selfie=darker)
    assert took_selfie_tone["tone_progress"] == pytest.approx(1.0, abs=0.02) and took_selfie_tone["tone_pass"] is True
    assert score(image, image, points)["tone_pass"] is None  # same tone: nothing to measure


def test_lighting_passes_when_the_output_follows_the_templates_light_not_the_selfies(astronaut_mesh):
    image, points = astronaut_mesh
    stage_lit = side_light(image, points, "left")
    followed = score(stage_lit, stage_lit.copy(), points, selfie=image, lit_side="left")
    assert followed["lighting_progress"] == pytest.approx(0.0, abs=0.02) and followed["lighting_pass"] is True
    flattened = score(stage_lit, image, points, selfie=image, lit_side="left")
    assert flattened["lighting_progress"] > 0.9 and flattened["lighting_pass"] is False

    selfie_lit = side_light(image, points, "right")
    carried = score(image, selfie_lit, points, selfie=selfie_lit)
    assert carried["lighting_progress"] > 0.9 and carried["lighting_pass"] is False
    assert score(image, image.copy(), points, selfie=selfie_lit)["lighting_pass"] is True


def test_a_template_lit_from_the_left_must_stay_brighter_on_the_left(astronaut_mesh):
    image, points = astronaut_mesh
    stage_lit = side_light(image, points, "left")
    mirrored = side_light(image, points, "right")  # as far from the selfie, but lit from the wrong side
    result = score(stage_lit, mirrored, points, selfie=image, lit_side="left")
    assert result["cheek_balance"]["output"] < 0 < result["cheek_balance"]["template"]
    assert result["lighting_pass"] is False


def test_seam_passes_a_blended_face_and_fails_a_hard_edged_one(astronaut_mesh):
    image, points = astronaut_mesh
    assert score(image, image.copy(), points)["seam"] == pytest.approx(0.0, abs=0.01)
    inside = face_hull_mask(points, image.shape, 0.97).astype(np.float32)
    hard = np.clip(image + 20 * inside[..., None], 0, 255).astype(np.uint8)
    hard_edged = score(image, hard, points)
    assert hard_edged["seam"] > metrics.SEAM_GOAL and hard_edged["seam_pass"] is False
    feather = cv2.GaussianBlur(inside, (0, 0), 0.06 * face_width(points))
    blended = np.clip(image + 20 * feather[..., None], 0, 255).astype(np.uint8)
    assert score(image, blended, points)["seam_pass"] is True


def test_identity_passes_the_selfies_person_and_fails_the_templates(portraits):
    describe = metrics.dlib_describer()
    astronaut, hopper = portraits["astronaut"], portraits["grace_hopper"]
    same = score(hopper.image, hopper.image.copy(), hopper.points, selfie=hopper.image,
                 selfie_points=hopper.points, describe=describe)
    assert same["identity"] == pytest.approx(0.0, abs=1e-4) and same["identity_pass"] is True
    unswapped = score(astronaut.image, astronaut.image.copy(), astronaut.points, selfie=hopper.image,
                      selfie_points=hopper.points, describe=describe)
    assert unswapped["identity"] > metrics.IDENTITY_GOAL and unswapped["identity_pass"] is False


def test_identity_is_not_judged_behind_hair_over_the_brows(portraits):
    """Strands over the eyes and brows move a face descriptor far from the same person: identity
    is measured without those frames (and reported with them apart), tone still is."""
    describe = metrics.dlib_describer()
    hopper = portraits["grace_hopper"]
    image, points = hopper.image.copy(), hopper.points
    for x in np.linspace(points[70, 0], points[300, 0], 9):  # strands from above the brows down past them
        cv2.line(image, (int(x), int(points[10, 1])), (int(x + 6), int(points[159, 1] + 4)), (40, 30, 25), 4)
    strands = np.any(image != hopper.image, axis=2)
    scored = score(image, image.copy(), points, strands, selfie=hopper.image, selfie_points=points,
                   describe=describe)
    assert scored["identity"] is None and scored["identity_frames"] == 0 and scored["identity_pass"] is None
    assert scored["identity_eyes_covered_too"] > 0.1  # the same person, moved by the strands
    assert scored["full_view_frames"] == 1 and scored["tone_L"]["output"] is not None


def test_progress_says_nothing_when_selfie_and_template_agree():
    assert metrics.progress(5.0, 0.0, 10.0, 4.0) == pytest.approx(0.5)
    assert metrics.progress(5.0, 0.0, 3.0, 4.0) is None
    assert metrics.progress(float("nan"), 0.0, 10.0, 4.0) is None
