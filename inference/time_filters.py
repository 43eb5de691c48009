"""Filters along a track's frames (axis 0), with the edge frames repeated past the ends:
what `scipy.ndimage.gaussian_filter1d` and `median_filter` give with mode="nearest", in
a few lines of NumPy (SciPy was the install's largest dependency for these two calls)."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def gaussian_over_frames(values: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian of `sigma` frames (cut at 4 sigma), computed in float64; the input's dtype out."""
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    padded = np.pad(values.astype(np.float64), [(radius, radius)] + [(0, 0)] * (values.ndim - 1), mode="edge")
    count = len(values)
    out = np.zeros((count, *padded.shape[1:]), np.float64)
    for weight, start in zip(weights, range(2 * radius + 1)):
        out += weight * padded[start:start + count]
    return out.astype(values.dtype)


def median_over_frames(values: np.ndarray, size: int) -> np.ndarray:
    """The median of `size` frames around each one (for an even size, the upper middle value,
    as SciPy's rank filter takes), for a 1-d series."""
    before = size // 2
    padded = np.pad(values, (before, size - 1 - before), mode="edge")
    windows = np.sort(sliding_window_view(padded, size), axis=-1)
    return windows[:, size // 2].astype(values.dtype)
