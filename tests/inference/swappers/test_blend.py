import numpy as np

from inference.faces.skin import SkinTone
from inference.swappers.blend import relight


def test_colour_variations_shrink_with_the_faces_colour():
    """A face whose colour moves half-way to a paler template's keeps its redder patches
    (the skin around the eyes) in proportion, not at full strength on a paler face."""
    even = np.zeros((40, 40, 3), np.float32)
    even[...] = (70.0, 12.0, 28.0)
    even[10:20, 10:20, 1] += 10.0  # a redder patch
    selfie = SkinTone(np.array([70.0, 12.0, 28.0], np.float32), np.array([3.0, 2.0, 2.0], np.float32))
    target = np.array([72.0, 6.0, 14.0], np.float32)  # half the selfie's colour strength
    flat_light = np.zeros((40, 40, 3), np.float32)
    flat_light[...] = (72.0, 6.0, 14.0)
    out = relight(even, selfie, flat_light, np.ones((40, 40), np.uint8), target, size=40.0)
    assert np.allclose(out[30, 30], target, atol=0.5)
    assert abs(float(out[15, 15, 1] - out[30, 30, 1]) - 5.0) < 0.5  # the patch's +10 in a* is now +5
    assert abs(float(out[15, 15, 0] - out[30, 30, 0])) < 0.5  # lightness untouched
