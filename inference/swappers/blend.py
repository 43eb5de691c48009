"""Tone, lighting and edge blending for a warped face.

The policy: lighting follows the template, tone follows the selfie. The selfie's face comes
in as if evenly lit (its own shading taken out, `inference.faces.skin`); the template's
light, measured on its skin only, goes on it; and the skin tone is the selfie's, moved
towards the template's only by `1 - balance` (a setting). So a dark-skinned selfie stays
dark-skinned under a template's stage light, and a hard side light on the selfie does not
come along. Where the new tone meets the template's neck and ears, their skin is moved to
it too, fading with the distance from the face, so there is no ring at the seam.
"""

import cv2
import numpy as np

from memeswap.inference.faces.skin import SkinTone, to_lab, to_rgb


def tone_target(selfie: SkinTone, template: SkinTone, balance: float) -> np.ndarray:
    """The skin colour the swapped face gets. Lightness, the main axis of skin tone, is the
    selfie's moved `1 - balance` of the way to the template's (balance 1: the selfie's own;
    0: the template's); colour follows the selfie half as much, since a photo's colour is
    partly its camera's; and a template whose skin is no natural skin colour (a graded,
    tinted or posterised clip) keeps its colour, which is then its light, not a tone."""
    weights = np.array([balance, balance / 2, balance / 2], np.float32)
    if not natural_skin_colour(template.median):
        weights[1:] = 0.0
    return template.median + weights * (selfie.median - template.median)


def natural_skin_colour(lab: np.ndarray) -> bool:
    """Whether a Lab colour is in the range of human skin under roughly white light: warm
    hues (orange to yellow) of moderate chroma."""
    hue = float(np.degrees(np.arctan2(lab[2], lab[1])))
    chroma = float(np.hypot(lab[1], lab[2]))
    return 15.0 <= hue <= 85.0 and 4.0 <= chroma <= 45.0


def relight(even: np.ndarray, selfie: SkinTone, template_shading: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The warped selfie face (`even`: evenly lit Lab) in the template's light and the
    `target` tone: result = even - selfie median + target + template shading (its
    `FaceLight.shading_over` the same pixels), where the
    face's colour variations (a blush, the redder skin around the eyes) are scaled as its
    colour strength is: a face whose colour moved half-way to a paler template's would
    otherwise keep its full-strength red rims around the eyes on a paler face."""
    strength = min(float(np.hypot(*target[1:])) / max(float(np.hypot(*selfie.median[1:])), 1.0), 1.0)
    scale = np.array([1.0, strength, strength], np.float64)
    # one affine colour transform per pixel: scale * (even - selfie median) + target
    matrix = np.concatenate([np.diag(scale), (target - scale * selfie.median)[:, None]], axis=1)
    return cv2.add(cv2.transform(np.ascontiguousarray(even, np.float32), matrix), template_shading)


def carry_tone_around(rgb: np.ndarray, face: np.ndarray, template: SkinTone, shift: np.ndarray, size: float,
                      eye_y: float, nose_y: float) -> tuple[np.ndarray, np.ndarray]:
    """Move the template's skin outside the face (neck, ears, the cheeks beyond the mesh) by
    `shift` (Lab): in proportion to how skin-like each pixel is, fading with its distance
    from the face (`face`: uint8 mask of the swapped area), to nothing at the region's edge
    and above the eyes (hair, whatever its colour, is never touched). `rgb`: the region,
    uint8; `eye_y`, `nose_y`: rows of the eyes and the nose tip in it. Returns the change to
    add to the region's RGB (float32, H x W x 3) and the weight given to `shift` per pixel.

    The weights are smooth, and so is the change they make: both are worked out on a grid of
    about 64 px across the face and scaled up, so the region is never converted to Lab and
    back at full size."""
    height, width = face.shape
    change = np.zeros((height, width, 3), np.float32)
    weight = np.zeros(face.shape, np.float32)
    top = int(np.clip(eye_y, 0, height))  # nothing above the eyes moves: work below them only
    if not np.any(shift) or top >= height - 1:
        return change, weight
    change[top:], weight[top:] = _carried_below(rgb[top:], face[top:], template, shift, size, eye_y - top,
                                                nose_y - top, top)
    return change, weight


def _carried_below(rgb: np.ndarray, face: np.ndarray, template: SkinTone, shift: np.ndarray, size: float,
                   eye_y: float, nose_y: float, top: int) -> tuple[np.ndarray, np.ndarray]:
    """`carry_tone_around` on the rows from the eyes down (`top`: how many rows above them)."""
    height, width = face.shape
    factor = max(1, int(size // 64))
    small = (max(1, width // factor), max(1, height // factor))
    # averaged over whole cells of factor x factor pixels (OpenCV's fast path; the last
    # few rows and columns, less than a cell, are left out of the averages)
    cells = rgb[:small[1] * factor, :small[0] * factor]
    small_rgb = cv2.resize(cells, small, interpolation=cv2.INTER_AREA).astype(np.float32)
    small_lab = to_lab(small_rgb)
    small_face = cv2.resize(face, small, interpolation=cv2.INTER_NEAREST)
    size_small = size / factor
    distance = cv2.distanceTransform((1 - small_face).astype(np.uint8), cv2.DIST_L2, 3)
    near = np.exp(-distance / (0.3 * size_small))
    rows = np.arange(small[1], dtype=np.float32)[:, None] * factor
    cols = np.arange(small[0], dtype=np.float32)[None, :] * factor
    below_eyes = np.clip((rows - eye_y) / max(nose_y - eye_y, 1.0), 0.0, 1.0)
    edge = np.minimum(np.minimum(rows + top, height - 1 - rows), np.minimum(cols, width - 1 - cols))
    inside = np.clip(edge / (0.15 * size), 0.0, 1.0)
    spread = np.maximum(template.spread * 1.5, (5.0, 3.0, 3.0)).astype(np.float64)
    # per pixel and channel (Lab - median) / spread, then its square summed over the channels
    z = cv2.transform(small_lab, np.concatenate([np.diag(1 / spread), (-template.median / spread)[:, None]], axis=1))
    d2 = cv2.transform(cv2.multiply(z, z), np.ones((1, 3)))
    likeness = cv2.GaussianBlur(np.exp(-0.5 * np.maximum(d2 - 2.0, 0.0)).astype(np.float32), (0, 0),
                                max(0.7, 0.03 * size_small))  # smooth: compression noise must not speckle it
    weight = (near * below_eyes * inside * likeness).astype(np.float32)
    moved = cv2.add(small_lab, cv2.transform(weight, np.asarray(shift, np.float64)[:, None]))  # + weight * shift
    change = cv2.subtract(to_rgb(moved), small_rgb)
    return (cv2.resize(change, (width, height), interpolation=cv2.INTER_LINEAR),
            cv2.resize(weight, (width, height), interpolation=cv2.INTER_LINEAR))


def feathered_alpha(mask: np.ndarray, feather: float) -> np.ndarray:
    """A soft 0..1 alpha that reaches 0 at the mask's edge and 1 about `feather` px inside
    (computed on a grid of a few pixels per feather width, then scaled up: it is smooth)."""
    factor = max(1, int(feather // 6))
    height, width = mask.shape
    if factor > 1:
        mask = cv2.resize(mask, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)
        feather /= factor
    radius = max(1, int(round(0.75 * feather)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    # outside the mask's box is outside the mask: a face that fills its box is feathered at the box's edge too
    inner = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    padded = cv2.copyMakeBorder(inner.astype(np.float32), radius * 2, radius * 2, radius * 2, radius * 2,
                                cv2.BORDER_CONSTANT, value=0)
    soft = cv2.GaussianBlur(padded, (0, 0), max(0.5, feather / 3))[radius * 2:-radius * 2, radius * 2:-radius * 2]
    return cv2.resize(soft, (width, height), interpolation=cv2.INTER_LINEAR) if factor > 1 else soft

