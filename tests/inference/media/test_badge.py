"""The visible "AI" badge: where it goes, how big it is, that it reads, and that blending
only its box gives the same pixels as compositing the whole layer."""

import time

import numpy as np
import pytest

from memeswap.inference.media.badge import BADGE_CORNERS, BadgeStamp, BadgeStyle, badge_layer
from memeswap.inference.media.overlay import composite
from tests.inference.media.frames import moving_frames


def plate_box(layer: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the layer's visible pixels, bottom/right exclusive."""
    ys, xs = np.nonzero(layer[..., 3])
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


@pytest.mark.parametrize("corner", BADGE_CORNERS)
@pytest.mark.parametrize("width, height", [(480, 480), (240, 240), (480, 360), (64, 48)])
def test_the_plate_is_in_the_chosen_corner_only(corner, width, height):
    layer = badge_layer(width, height, BadgeStyle(corner=corner))
    assert layer.shape == (height, width, 4) and layer.dtype == np.uint8
    top, left, bottom, right = plate_box(layer)
    plate_h = bottom - top
    near_bottom, near_right = corner.startswith("bottom"), corner.endswith("right")
    gap_y = height - bottom if near_bottom else top
    gap_x = width - right if near_right else left
    # the margin is about a quarter of the badge's height, from both edges of its corner
    assert 1 <= gap_y <= plate_h / 4 + 1 and 1 <= gap_x <= plate_h / 4 + 1
    # the plate is solid in the middle; the opposite corner and the other half are untouched
    assert layer[(top + bottom) // 2, left + 2, 3] > 0
    opposite_y = slice(0, height // 2) if near_bottom else slice(height // 2, height)
    opposite_x = slice(0, width // 2) if near_right else slice(width // 2, width)
    assert not layer[opposite_y, :, 3].any() and not layer[:, opposite_x, 3].any()
    assert not layer[opposite_y, opposite_x].any()


def test_size_scales_with_the_frame_and_has_a_floor():
    heights = {}
    for side in (120, 240, 480, 960):
        top, left, bottom, right = plate_box(badge_layer(side, side, BadgeStyle()))
        heights[side] = bottom - top
    assert heights[120] == 12  # 0.06 * 120 is under the 12 px floor
    assert heights[240] == round(0.06 * 240)
    assert heights[480] == round(0.06 * 480)
    assert heights[960] == round(0.06 * 960)
    top, _, bottom, _ = plate_box(badge_layer(960, 960, BadgeStyle(scale=0.1)))
    assert bottom - top == 96
    # the shorter side decides
    top, _, bottom, _ = plate_box(badge_layer(960, 480, BadgeStyle()))
    assert bottom - top == round(0.06 * 480)


@pytest.mark.parametrize("text", ["AI", "AI-generated"])
@pytest.mark.parametrize("width, height", [(64, 48), (48, 64), (16, 16)])
def test_tiny_frames_still_get_a_badge_that_fits(text, width, height):
    layer = badge_layer(width, height, BadgeStyle(text=text))
    top, left, bottom, right = plate_box(layer)
    assert top >= 0 and left >= 0 and bottom <= height and right <= width
    assert (top, left) != (0, 0) or (bottom, right) != (height, width)  # not the whole frame
    assert bottom - top >= min(12, height * 2 // 3)
    assert (layer[..., 3] > 0).sum() > 0.5 * (bottom - top) * (right - left)
    if min(width, height) >= 48:  # 16 px frames get a plate; its 6 px text is a smudge
        text_pixels = layer[..., :3].min(axis=2) > 150
        assert text_pixels.sum() >= 4


def test_longer_text_makes_a_wider_plate():
    _, left, _, right = plate_box(badge_layer(480, 480, BadgeStyle()))
    _, wide_left, _, wide_right = plate_box(badge_layer(480, 480, BadgeStyle(text="AI-generated")))
    assert wide_right - wide_left > 2 * (right - left)


@pytest.mark.parametrize("text", ["AI", "AI-generated"])
@pytest.mark.parametrize("background", [0, 128, 255])
def test_text_is_light_on_a_dark_plate_at_240_px(text, background):
    """Contrast where it matters most: a small frame, on black, grey and white backgrounds."""
    frame = np.full((240, 240, 3), background, np.uint8)
    layer = badge_layer(240, 240, BadgeStyle(text=text))
    out = composite(frame, layer)
    top, left, bottom, right = plate_box(layer)
    box = out[top:bottom, left:right].astype(float).mean(axis=2)
    alpha = layer[top:bottom, left:right, 3]
    ink = layer[top:bottom, left:right, :3].min(axis=2)
    text_mask = ink > 200
    plate_mask = (ink < 40) & (alpha > 150)
    assert text_mask.sum() >= 15 and plate_mask.sum() > text_mask.sum()
    text_level, plate_level = box[text_mask].mean(), box[plate_mask].mean()
    assert text_level > 200
    assert plate_level < 90
    # WCAG-style contrast ratio of the text's core against the plate
    def luminance(v: float) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    ratio = (luminance(np.percentile(box[text_mask], 75)) + 0.05) / (luminance(plate_level) + 0.05)
    assert ratio > 4.5
    # the plate darkens a white background enough to see where it is
    if background == 255:
        assert plate_level < 100


def test_the_layer_is_a_pure_function_of_its_arguments():
    a = badge_layer(300, 200, BadgeStyle(text="AI-generated", corner="top-left"))
    b = badge_layer(300, 200, BadgeStyle(text="AI-generated", corner="top-left"))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, badge_layer(300, 200, BadgeStyle(text="AI", corner="top-left")))


def test_bad_styles_are_refused():
    with pytest.raises(ValueError, match="corner"):
        BadgeStyle(corner="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        BadgeStyle(text="  ")
    with pytest.raises(ValueError, match="scale"):
        BadgeStyle(scale=0)
    with pytest.raises(ValueError, match="positive"):
        badge_layer(0, 10, BadgeStyle())


@pytest.mark.parametrize("corner", BADGE_CORNERS)
def test_the_stamp_blends_like_composite_and_only_in_its_box(corner):
    frame = moving_frames(1, 320, 240)[0]
    style = BadgeStyle(text="AI-generated", corner=corner)
    layer = badge_layer(320, 240, style)
    expected = composite(frame, layer)
    original = frame.copy()
    stamp = BadgeStamp.for_frame(320, 240, style)
    out = stamp.apply(frame)
    assert out is frame  # writable frames are changed in place
    assert np.abs(out.astype(int) - expected).max() <= 1  # composite truncates, the stamp rounds
    top, left, bottom, right = plate_box(layer)
    outside = np.ones((240, 320), bool)
    outside[top:bottom, left:right] = False
    assert np.array_equal(out[outside], original[outside])
    assert np.abs(out[top:bottom, left:right].astype(int) - original[top:bottom, left:right]).mean() > 20


def test_the_stamp_copies_read_only_frames_and_checks_the_size():
    frame = moving_frames(1, 160, 120)[0]
    frame.flags.writeable = False
    stamp = BadgeStamp.for_frame(160, 120, BadgeStyle())
    out = stamp.apply(frame)
    assert out is not frame and not np.array_equal(out, frame)
    with pytest.raises(ValueError, match="160x120 frames, not 120x160"):
        stamp.apply(np.zeros((160, 120, 3), np.uint8))


def test_the_stamp_costs_well_under_a_millisecond_per_480_frame():
    frame = moving_frames(1, 480, 480)[0]
    stamp = BadgeStamp.for_frame(480, 480, BadgeStyle(text="AI-generated"))
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(50):
            stamp.apply(frame)
        best = min(best, (time.perf_counter() - t0) / 50)
    assert best < 0.5e-3
