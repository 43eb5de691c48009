"""A template face's light as the compile caches it: the shading grid over the face region
gives back the full-size shading field, and the black-and-white and eye-white readings."""

import numpy as np

from inference.faces.light import SHADING_GRID, FaceLight
from inference.faces.skin import face_size, shading, skin_mask, to_lab


def test_the_shading_grid_gives_back_the_full_size_field(astronaut, astronaut_face):
    """Side light on the astronaut: the field read back from the grid over the face's box
    matches the field measured at full size within a fraction of an L* level on the skin."""
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
    assert np.abs(read_back - expected)[on_skin].max() < 1.5
    assert np.abs(read_back - expected)[on_skin].mean() < 0.4


def test_a_black_and_white_frame_and_the_eye_whites(astronaut, astronaut_face):
    points = astronaut_face.landmarks
    colour = FaceLight.measure(astronaut, points)
    grey = FaceLight.measure(np.repeat(astronaut.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8), points)
    assert not colour.greyscale and grey.greyscale
    assert colour.white is not None and colour.white > colour.tone.median[0]  # open eyes: whites above the skin
    dim = FaceLight.measure((astronaut * 0.5).astype(np.uint8), points)
    assert dim.white < colour.white - 15 and dim.tone.median[0] < colour.tone.median[0] - 15
