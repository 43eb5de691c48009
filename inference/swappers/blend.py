"""Colour, lighting and edge blending for a warped face.

Lighting is matched by replacing the warped face's low frequencies with the template
face's: result = warped - lowpass(warped) + lowpass(target). The selfie keeps its detail
(eyes, brows, skin texture) while the template's colour cast, shading and brightness come
through, so the seam at the forehead and cheeks disappears under the feathered edge.
Low-pass images are computed as normalised convolutions inside the face mask, on a
quarter-size copy, so the background never bleeds into the face and the cost stays small.
"""

import cv2
import numpy as np


def masked_lowpass(image: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of `image` using only pixels where `mask` is set."""
    height, width = mask.shape
    factor = max(1, int(sigma // 4))
    small_size = (max(1, width // factor), max(1, height // factor))
    small_image = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask.astype(np.float32), small_size, interpolation=cv2.INTER_AREA)
    s = max(0.5, sigma / factor)
    small_image = small_image.reshape(*small_mask.shape, -1)
    weighted = cv2.GaussianBlur(small_image * small_mask[..., None], (0, 0), s)
    weight = cv2.GaussianBlur(small_mask, (0, 0), s)[..., None]
    low = weighted.reshape(*weighted.shape[:2], -1) / np.maximum(weight, 1e-4)
    return cv2.resize(low, (width, height), interpolation=cv2.INTER_LINEAR).reshape(image.shape)


def match_lighting(warped: np.ndarray, target: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Give `warped` the colour and shading of `target` (float32 RGB, 0..255).

    Works in Lab. Lightness takes the template's shading at scale `sigma`; colour is
    matched by mean and spread over the face (Reinhard transfer), so a selfie's blotchy
    warm cast becomes the template's evenly lit skin instead of leaving coloured patches.
    """
    warped_lab = cv2.cvtColor(warped / 255.0, cv2.COLOR_RGB2Lab)
    target_lab = cv2.cvtColor(target / 255.0, cv2.COLOR_RGB2Lab)
    stride = max(1, int(np.sqrt(mask.size / 4000)))  # colour statistics from about 4000 pixels
    inside = mask[::stride, ::stride].astype(bool)
    result = warped_lab
    result[..., :1] += masked_lowpass(target_lab[..., :1], mask, sigma) - masked_lowpass(warped_lab[..., :1], mask, sigma)
    if inside.sum() > 16:
        source_ab = warped_lab[::stride, ::stride, 1:][inside]
        target_ab = target_lab[::stride, ::stride, 1:][inside]
        spread = target_ab.std(axis=0) / np.maximum(source_ab.std(axis=0), 1e-3)
        result[..., 1:] = (warped_lab[..., 1:] - source_ab.mean(axis=0)) * np.minimum(spread, 1.5) + target_ab.mean(axis=0)
    return cv2.cvtColor(result, cv2.COLOR_Lab2RGB) * 255.0


def feathered_alpha(mask: np.ndarray, feather: float) -> np.ndarray:
    """A soft 0..1 alpha that reaches 0 at the mask's edge and 1 about `feather` px inside."""
    radius = max(1, int(round(0.75 * feather)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    inner = cv2.erode(mask.astype(np.uint8), kernel)
    padded = cv2.copyMakeBorder(inner.astype(np.float32), radius * 2, radius * 2, radius * 2, radius * 2,
                                cv2.BORDER_CONSTANT, value=0)
    soft = cv2.GaussianBlur(padded, (0, 0), max(0.5, feather / 3))
    return soft[radius * 2:-radius * 2, radius * 2:-radius * 2]


def is_greyscale(image: np.ndarray) -> bool:
    """True when the colour channels barely differ (a black-and-white template)."""
    sample = image[:: max(1, image.shape[0] // 64), :: max(1, image.shape[1] // 64)].astype(np.int16)
    return float(np.abs(sample - sample.mean(axis=2, keepdims=True)).mean()) < 2.0
