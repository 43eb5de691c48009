"""A template face's light as the compile caches it: measured on the face region brought
down to `LIGHT_SIDE`, it gives back the full-size tone and shading field; what is in front
of the face is no skin; and the black-and-white and eye-white readings."""

import cv2
import numpy as np

from memeswap.inference.faces.light import SHADING_GRID, FaceLight
from memeswap.inference.faces.skin import SkinTone, face_size, shading, skin_mask, to_lab


def test_the_shading_grid_gives_back_the_full_size_field(astronaut, astronaut_face):
    """Side light on the astronaut: the field read back from the grid over the face's box
    matches the field measured at full size within about half an L* level on average (a
    few levels at most, on the skin's edges, where the reduced masks differ), and the tone
    within half a level."""
    points = astronaut_face.landmarks
    x0, y0 = (int(v) for v in points[:, :2].min(axis=0))
    x1, y1 = (int(v) + 1 for v in points[:, :2].max(axis=0))
    ramp = np.clip(0.4 + 0.6 * (np.arange(astronaut.shape[1]) - x0) / (x1 - x0), 0.4, 1.0)  # brighter to the right
    lit = np.clip(astronaut * ramp[None, :, None], 0, 255).astype(np.uint8)
    light = FaceLight.measure(lit, points)
    assert light.shading.shape == (SHADING_GRID, SHADING_GRID, 3)
    box = lit[y0:y1, x0:x1]
    skin = skin_mask(points, box.shape[:2], (x0, y0))
    expected = shading(to_lab(box), skin, face_size(points))
    read_back = light.shading_over(x0, y0, x1 - x0, y1 - y0)
    on_skin = skin.astype(bool)
    unlit = FaceLight.measure(astronaut, points).shading_over(x0, y0, x1 - x0, y1 - y0)
    third = (x1 - x0) // 3

    def left_to_right(field: np.ndarray) -> float:
        return float(field[:, -third:, 0][on_skin[:, -third:]].mean() - field[:, :third, 0][on_skin[:, :third]].mean())

    assert left_to_right(read_back) - left_to_right(unlit) > 10.0  # the side light is in it
    assert np.abs(read_back - expected)[on_skin].max() < 3.0
    assert np.abs(read_back - expected)[on_skin].mean() < 0.7
    full_size_tone = SkinTone.of(to_lab(box), skin).median
    assert np.abs(light.tone.median - full_size_tone).max() < 0.5


def test_what_is_in_front_of_the_face_is_no_skin(astronaut, astronaut_face):
    """A dark microphone over the mouth and chin: told as covered, it changes neither the
    tone nor the light the face is measured to have; untold, it darkens both."""
    points = astronaut_face.landmarks
    x0, y0 = (int(v) for v in points[:, :2].min(axis=0))
    x1, y1 = (int(v) + 1 for v in points[:, :2].max(axis=0))
    with_mic = astronaut.copy()
    mic = np.zeros(astronaut.shape[:2], bool)
    mic[int(points[13, 1]) - 6:y1 + 40, (x0 + x1) // 2 - 18:(x0 + x1) // 2 + 18] = True
    with_mic[mic] = (35, 35, 40)
    clear = FaceLight.measure(astronaut, points)
    region = clear.region
    covered = cv2.warpAffine(mic.astype(np.float32), region.to_mask(128), (128, 128))
    told = FaceLight.measure(with_mic, points, region, covered)
    untold = FaceLight.measure(with_mic, points, region)
    box = (x0, y0, x1 - x0, y1 - y0)
    chin = slice(int(points[13, 1]) - y0 + 8, y1 - y0), slice(0, x1 - x0)
    assert abs(float(told.tone.median[0] - clear.tone.median[0])) < 1.0  # (a little less skin to measure)
    assert untold.tone.median[0] < clear.tone.median[0] - 2.5
    truth = clear.shading_over(*box)[chin][..., 0]
    told_error = float(np.abs(told.shading_over(*box)[chin][..., 0] - truth).mean())
    untold_error = float(np.abs(untold.shading_over(*box)[chin][..., 0] - truth).mean())
    assert told_error < 2.5 and untold_error > 2 * told_error


def test_a_black_and_white_frame_and_the_eye_whites(astronaut, astronaut_face):
    points = astronaut_face.landmarks
    colour = FaceLight.measure(astronaut, points)
    grey = FaceLight.measure(np.repeat(astronaut.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8), points)
    assert not colour.greyscale and grey.greyscale
    assert colour.white is not None and colour.white > colour.tone.median[0]  # open eyes: whites above the skin
    dim = FaceLight.measure((astronaut * 0.5).astype(np.uint8), points)
    assert dim.white < colour.white - 15 and dim.tone.median[0] < colour.tone.median[0] - 15
