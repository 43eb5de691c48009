"""How clean skin stays through an encoder: the colour error of an output against the frames
it was made from, measured on the smooth skin inside the face boxes."""

from collections.abc import Sequence

import cv2
import numpy as np


def lab(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def skin_mask(frame: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """The smooth part of each face: an ellipse inside the box (forehead to chin, cheek to
    cheek) where the frame itself has no edge (eyes, brows, lips and nostrils drop out)."""
    height, width = frame.shape[:2]
    inside = np.zeros((height, width), np.uint8)
    for x0, y0, x1, y1 in boxes:
        centre = (round((x0 + x1) / 2), round(y0 + 0.45 * (y1 - y0)))
        cv2.ellipse(inside, centre, (round(0.38 * (x1 - x0)), round(0.42 * (y1 - y0))), 0, 0, 360, 1, -1)
    grey = cv2.GaussianBlur(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
    gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    return (inside > 0) & (gradient < 60)


def skin_blotchiness(reference: Sequence[np.ndarray], output: Sequence[np.ndarray],
                     boxes: Sequence[Sequence[Sequence[float]]]) -> float:
    """Mean over frames of the spread (ΔE, CIELAB) of the output's error across the skin.

    The error is smoothed first (Gaussian, sigma 1.5 px), so a dither's pixel-sized noise
    averages out and what is left is error the size of a patch; its spread over the skin is
    what reads as blotches (an even shift of the whole face is not a blotch).
    """
    spreads = []
    for ref, out, frame_boxes in zip(reference, output, boxes, strict=True):
        mask = skin_mask(ref, frame_boxes)
        if mask.sum() < 50:
            continue
        error = cv2.GaussianBlur(lab(out) - lab(ref), (0, 0), 1.5)[mask]
        spreads.append(float(np.sqrt(error.var(axis=0).sum())))
    assert spreads, "no skin to measure"
    return float(np.mean(spreads))


def skin_delta_e(reference: Sequence[np.ndarray], output: Sequence[np.ndarray],
                 boxes: Sequence[Sequence[Sequence[float]]]) -> float:
    """Mean ΔE (CIELAB, per pixel, unsmoothed) over the skin of every frame."""
    errors = []
    for ref, out, frame_boxes in zip(reference, output, boxes, strict=True):
        mask = skin_mask(ref, frame_boxes)
        if mask.any():
            errors.append(float(np.sqrt(((lab(out) - lab(ref)) ** 2).sum(axis=-1))[mask].mean()))
    return float(np.mean(errors))
