"""Synthetic frames for the media tests."""

import cv2
import numpy as np


def moving_frames(n: int, width: int, height: int) -> list[np.ndarray]:
    """A gradient background with a disc moving across it."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), np.full_like(x, 90)], -1)
    frames = []
    for i in range(n):
        f = base.astype(np.uint8).copy()
        cx = int((width - 20) * i / max(1, n - 1)) + 10
        cv2.circle(f, (cx, height // 2), min(width, height) // 5, (255, 255, 0), -1)
        frames.append(f)
    return frames
