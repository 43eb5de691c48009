"""What the safety detectors accept: any uint8 RGB, RGBA or greyscale picture."""

import numpy as np


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A C-contiguous (H, W, 3) uint8 view or copy of an RGB, RGBA or greyscale uint8 image."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])
