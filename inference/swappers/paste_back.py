"""Pasting an aligned face crop back into its frame, inside the face box only.

Shared by the learned swapper and the face enhancer: both warp a face to a square crop
with a 2x3 similarity, run a model on it, and blend the result back with insightface's
paste_back mask, cut to the face box so pixels outside the box are never touched.
"""

import math
from collections.abc import Callable

import cv2
import numpy as np

from memeswap.inference.faces.light import is_greyscale

# keep(x0, y0, (height, width)) -> 0..1 mask of box pixels that keep the frame's own value
KeepMask = Callable[[int, int, tuple[int, int]], np.ndarray]


def paste_back(frame: np.ndarray, crop: np.ndarray, box: np.ndarray, matrix: np.ndarray,
               opacity: float = 1.0, keep: KeepMask | None = None, additive: bool = False) -> None:
    """Blend `crop` back into `frame` inside `box` (x1, y1, x2, y2), in place.

    `matrix` is the 2x3 transform that took the frame to the crop. The mask is
    insightface's paste_back mask (the warped crop square, eroded by about a tenth of its
    size, blurred by about a twentieth) cut to the face box, and eroded from the box's
    inner edges so it fades to zero before them. Only the box is warped and blended.
    `opacity` scales the mask; `keep` cuts holes in it. With `additive`, `crop` is a
    signed float32 change that is added to the frame's own pixels instead of pixels that
    replace them. A greyscale region stays grey.
    """
    height, width = frame.shape[:2]
    crop_h, crop_w = crop.shape[:2]
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [crop_w, 0, 1], [0, crop_h, 1], [crop_w, crop_h, 1]], np.float64) @ inverse.T
    x0 = max(0, math.floor(max(box[0], corners[:, 0].min())))
    y0 = max(0, math.floor(max(box[1], corners[:, 1].min())))
    x1 = min(width, math.ceil(min(box[2], corners[:, 0].max())))
    y1 = min(height, math.ceil(min(box[3], corners[:, 1].max())))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return
    # The crop-from-frame matrix shifted to the box, used as an inverse map: the same
    # warp as cv2.warpAffine(crop, invertAffineTransform(M)) on the whole frame.
    shifted = np.array(matrix, np.float64, copy=True)
    shifted[:, 2] += shifted[:, :2] @ np.array([x0, y0], np.float64)
    size, flags = (x1 - x0, y1 - y0), cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(crop, shifted, size, flags=flags, borderValue=0.0)
    inside = cv2.warpAffine(np.ones((crop_h, crop_w), np.float32), shifted, size, flags=flags, borderValue=0.0)
    crop_side = max(crop_h, crop_w) / math.sqrt(abs(np.linalg.det(shifted[:, :2])))
    alpha = feather((inside > 20 / 255).astype(np.float32), crop_side, (x0 == 0, y0 == 0, x1 == width, y1 == height))
    if keep is not None:
        alpha *= 1 - keep(x0, y0, alpha.shape)
    if opacity != 1.0:
        alpha *= np.float32(opacity)
    region = frame[y0:y1, x0:x1]
    if is_greyscale(region):
        warped = np.repeat(cv2.cvtColor(warped, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    original = region.astype(np.float32)
    change = warped.astype(np.float32) if additive else warped.astype(np.float32) - original
    blended = original + change * alpha[..., None]
    region[:] = np.rint(np.clip(blended, 0, 255)).astype(np.uint8)


def feather(mask: np.ndarray, crop_side: float, frame_edges: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """Erode and blur a box mask. `crop_side` is the crop's side in frame pixels
    (insightface's mask_size); box sides on the frame's edge (left, top, right, bottom)
    are not faded."""
    box_side = min(mask.shape)
    blur = min(max(int(crop_side) // 20, 5), max(1, box_side // 8))
    erode = max(max(int(crop_side) // 10, 10) // 2, blur + 1)
    erode = min(erode, max(1, box_side // 4))
    blur = min(blur, erode - 1) if erode > 1 else 0
    pad = erode + blur + 1
    padded = np.pad(mask, pad)  # zeros beyond inner box edges fade the mask there
    left, top, right, bottom = frame_edges
    if top:
        padded[:pad] = padded[pad]
    if bottom:
        padded[-pad:] = padded[-pad - 1]
    if left:
        padded[:, :pad] = padded[:, pad:pad + 1]
    if right:
        padded[:, -pad:] = padded[:, -pad - 1:-pad]
    padded = cv2.erode(padded, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    if blur > 0:
        padded = cv2.GaussianBlur(padded, (2 * blur + 1, 2 * blur + 1), 0)
    return padded[pad:-pad, pad:-pad]
