import numpy as np

from memeswap.inference.faces.skin import SkinTone
from memeswap.inference.swappers.blend import relight


def test_colour_variations_shrink_with_the_faces_colour():
    """A face whose colour moves half-way to a paler template's keeps its redder patches
    (the skin around the eyes) in proportion, not at full strength on a paler face."""
    even = np.zeros((40, 40, 3), np.float32)
    even[...] = (70.0, 12.0, 28.0)
    even[10:20, 10:20, 1] += 10.0  # a redder patch
    selfie = SkinTone(np.array([70.0, 12.0, 28.0], np.float32), np.array([3.0, 2.0, 2.0], np.float32))
    target = np.array([72.0, 6.0, 14.0], np.float32)  # half the selfie's colour strength
    flat_light = np.zeros((40, 40, 3), np.float32)  # the template's shading: none
    out = relight(even, selfie, flat_light, target)
    assert np.allclose(out[30, 30], target, atol=0.5)
    assert abs(float(out[15, 15, 1] - out[30, 30, 1]) - 5.0) < 0.5  # the patch's +10 in a* is now +5
    assert abs(float(out[15, 15, 0] - out[30, 30, 0])) < 0.5  # lightness untouched


def test_a_mask_that_fills_its_box_is_feathered_at_the_boxs_edge():
    """A face's coverage box is cut tight around the face: the feather must still fall to
    nothing at the box's edge, or the paste shows a hard seam there."""
    from memeswap.inference.swappers.blend import feathered_alpha

    alpha = feathered_alpha(np.ones((60, 50), np.uint8), feather=8.0)
    assert alpha[30, 25] > 0.99
    assert max(alpha[0].max(), alpha[-1].max(), alpha[:, 0].max(), alpha[:, -1].max()) < 0.1
