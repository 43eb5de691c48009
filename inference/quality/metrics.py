"""What is measured on one swap, against the truth of its case.

Every measure compares the output with the template frame it came from (and, for tone,
lighting and identity, with the selfie), on regions taken from the known face mesh
(`regions`), never from a detector run on the output. Where something is in front of the
face, its pixels are left out of every measure but the occluder's own.

- occluder kept: the share of the occluders' pixels over the face where the output is within
  `KEPT_LEVELS` of the template; goal >= 95 %.
- sharpness: `sharpness()` inside the face, output over template, for every face in every
  frame; goal 0.5-2.0x.
- skin tone: median skin L*, how far the output went from the template's towards the
  selfie's; goal at least half-way.
- lighting: log of left over right cheek L*, how far the output went from the template's
  towards the selfie's; goal under 0.15 of the way, and the template's bright side kept.
- seam: on rays across the face's edge where it meets skin in the template (neck, ears), how
  much steeper the output's steepest step of L* is than the template's own; goal <= 0.3 L*/px.
- identity: dlib's descriptor distance, output face to selfie face, median over frames; goal < 0.5.

Tone, lighting and identity are taken over the frames where the face is in full view, and
identity only where its eyes and brows are in view too (see `score_swap`); the occluder,
sharpness and seam measures over every frame.

Sharpness is the variance of the Laplacian, as the issue words it, taken at two scales (after
Gaussian blurs of 1 and 2 pixels) and divided: how much of the face's detail is fine rather
than coarse. The plain variance compares how much texture two people's faces have (wrinkles
and glasses score eight times a smooth face at the same focus, and a smooth selfie in a
wrinkled template a sixth); the ratio compares focus, which is what a pasted face must match
(a sharp sticker on an out-of-focus face, a mushy small selfie). Both are reported (the plain
one as `laplacian_variance_ratio`); the goal is on the ratio.

The thresholds that make "a few levels" and "a small margin" exact are set so that an output
identical to the template, encoded once more as an MP4, passes every measure, and a face
pasted with a hard edge 20 levels brighter fails the seam.
"""

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from memeswap.inference.quality.regions import (
    cheek_masks,
    edge_rays,
    eyes_and_brows_mask,
    face_hull_mask,
    face_of,
    skin_mask,
)

SKIN_OUTSIDE_LAB = 15.0  # Lab distance: a ray leaves the face onto skin when its ends are this close
KEPT_LEVELS = 12  # "within a few levels": of 255, in every channel
OCCLUDER_GOAL = 0.95
SHARPNESS_RANGE = (0.5, 2.0)
TONE_GOAL = 0.5
TONE_MIN_GAP = 4.0  # L*: selfie and template closer than this have the same tone; nothing to measure
LIGHTING_GOAL = 0.15
LIGHTING_MIN_GAP = 0.15  # log cheek ratio: selfie and template lit this alike leave nothing to measure
SEAM_GOAL = 0.3  # L* per pixel
IDENTITY_GOAL = 0.5
FULL_VIEW_MAX_YAW = 30.0  # degrees of rendered yaw: beyond, the swap fades out by design (PoseRule)
FULL_VIEW_MAX_HIDDEN = 0.2  # of the face's hull
EYES_MAX_HIDDEN = 0.1  # of the eyes and brows (`regions.eyes_and_brows_mask`), for identity

Describe = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (image, mesh) -> identity descriptor


def _grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    if not mask.any():
        return mask
    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _shrunk(mask: np.ndarray, pixels: int) -> np.ndarray:
    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel).astype(bool)


def lightness(image: np.ndarray) -> np.ndarray:
    """L* (0-100) of an RGB uint8 image."""
    return cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 0]


def occluder_pixels(output: np.ndarray, template: np.ndarray, occluder: np.ndarray,
                    points: np.ndarray) -> tuple[int, int]:
    """(kept, counted): the occluder's pixels over the face (the mesh's hull grown by a fifth)
    where the output is within `KEPT_LEVELS` of the template in every channel. The occluder's
    one-pixel rim is not counted (its anti-aliased edge moves in any re-encoding)."""
    counted = _shrunk(occluder, 1) & face_hull_mask(points, occluder.shape, 1.2)
    if not counted.any():
        return 0, 0
    close = np.abs(output.astype(np.int16) - template.astype(np.int16)).max(axis=-1) <= KEPT_LEVELS
    return int((close & counted).sum()), int(counted.sum())


def _face_region(image: np.ndarray, points: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    """The face (its hull shrunk so the face's own outline is not counted), less `exclude`."""
    region = face_hull_mask(points, image.shape, 0.85)
    if exclude is not None:
        region &= ~_grown(exclude, 3)
    return region


def laplacian_variance(image: np.ndarray, points: np.ndarray, exclude: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of the grey image inside the face, less `exclude`."""
    region = _face_region(image, points, exclude)
    if region.sum() <= 16:
        return float("nan")
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F, ksize=3)[region].var())


def sharpness(image: np.ndarray, points: np.ndarray, exclude: np.ndarray | None = None) -> float:
    """The Laplacian's variance inside the face after a Gaussian blur of 1 pixel, over the same
    after one of 2 pixels: near 1 for a blurred face, about 4 for a sharp one, whatever the
    face's contrast and texture. The first blur takes out compression noise at the pixel
    scale, which would otherwise make an out-of-focus face look sharp."""
    region = _face_region(image, points, exclude)
    if region.sum() <= 16:
        return float("nan")
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    fine, coarse = (cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), sigma), cv2.CV_32F, ksize=3)[region].var()
                    for sigma in (1.0, 2.0))
    return float(fine / max(coarse, 1e-6))


def skin_lightness(image: np.ndarray, points: np.ndarray, exclude: np.ndarray | None = None) -> float:
    """Median L* of the face's skin, less `exclude`."""
    region = skin_mask(points, image.shape)
    if exclude is not None:
        region &= ~_grown(exclude, 2)
    return float(np.median(lightness(image)[region])) if region.sum() > 16 else float("nan")


def cheek_balance(image: np.ndarray, points: np.ndarray, exclude: np.ndarray | None = None) -> float:
    """log(mean L* of the image's left cheek / the right one's): > 0 when lit from the left."""
    lit = lightness(image)
    means = []
    for cheek in cheek_masks(points, image.shape):
        if exclude is not None:
            cheek &= ~_grown(exclude, 2)
        if cheek.sum() < 8:
            return float("nan")
        means.append(max(float(lit[cheek].mean()), 1.0))
    return float(np.log(means[0] / means[1]))


def edge_steps(image: np.ndarray, rays: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(rays,): the steepest change of L* along each ray of `regions.edge_rays`, per pixel."""
    xs, ys = rays
    profile = cv2.remap(cv2.GaussianBlur(lightness(image), (0, 0), 1.0), xs, ys, cv2.INTER_LINEAR)
    step = np.hypot(np.diff(xs, axis=1), np.diff(ys, axis=1))
    return (np.abs(np.diff(profile, axis=1)) / np.maximum(step, 1e-3)).max(axis=1)


def seam_excess(output: np.ndarray, template: np.ndarray, points: np.ndarray,
                exclude: np.ndarray | None = None) -> float:
    """How much steeper the output's steepest step across the face's edge is than the
    template's own on the same ray, averaged over the rays (L* per pixel); rays through
    `exclude` are left out, and so are rays that leave the face onto something other than
    skin in the template (hair, background, a collar): there a face of another skin tone
    has another edge by right (a darker face against a pale wall), while where the face
    meets the template's neck, ears or cheeks a step is a seam."""
    rays = edge_rays(points)
    keep = _onto_skin(template, rays)
    if exclude is not None and exclude.any():
        hit: np.ndarray = cv2.remap(_grown(exclude, 2).astype(np.uint8), rays[0], rays[1], cv2.INTER_NEAREST)
        keep = ~np.any(hit, axis=1)
    if not keep.any():
        return float("nan")
    excess = np.maximum(0.0, edge_steps(output, rays) - edge_steps(template, rays))
    return float(excess[keep].mean())


def _onto_skin(template: np.ndarray, rays: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(rays,) bool: the rays whose outer quarter is, in the template, of the colour of their
    inner quarter (within SKIN_OUTSIDE_LAB)."""
    lab = cv2.cvtColor(template.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    profile = cv2.remap(lab, rays[0], rays[1], cv2.INTER_LINEAR)
    quarter = max(1, profile.shape[1] // 4)
    inside = np.median(profile[:, :quarter], axis=1)
    outside = np.median(profile[:, -quarter:], axis=1)
    return np.linalg.norm(outside - inside, axis=1) <= SKIN_OUTSIDE_LAB


def progress(value: float, start: float, goal: float, min_gap: float) -> float | None:
    """How far `value` went from `start` towards `goal` (0: stayed, 1: got there); None when the
    two are closer than `min_gap` (nothing to measure) or a value is missing."""
    if not all(np.isfinite(v) for v in (value, start, goal)) or abs(goal - start) < min_gap:
        return None
    return float((value - start) / (goal - start))


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.median(finite)) if finite else float("nan")


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def score_swap(template_frames: Sequence[np.ndarray], output_frames: Sequence[np.ndarray], faces: np.ndarray,
               occluders: np.ndarray, selfie: np.ndarray, selfie_points: np.ndarray,
               lit_side: str | None = None, describe: Describe | None = None,
               yaw: np.ndarray | None = None) -> dict:
    """Every measure of one swap, with a verdict per goal. `faces` (n, F, 478, 3): each face's
    mesh in each frame, the swapped-into face first (tone, lighting, seam, identity and the
    occluders are measured on it; sharpness on all); `occluders` (F, H, W) bool; `lit_side`:
    the template's bright side ("left"/"right"), when it has one; `yaw` (n, F): the yaw each
    face was rendered at. A value (and its verdict) is None where the case has nothing to
    measure.

    Tone, lighting and identity are measured on the frames where the swap is meant to show
    all of the selfie's face, in full view: turned no more than `FULL_VIEW_MAX_YAW` and less
    than `FULL_VIEW_MAX_HIDDEN` hidden (a turned-away face is left the template's on purpose,
    and a face behind a hand is not anyone's to a face descriptor); `full_view_frames` says
    how many there were. Identity is measured on those of them whose eyes and brows are less
    than `EYES_MAX_HIDDEN` hidden (`identity_frames`): a descriptor leans on them, and the
    template's own hair over them moves it far (the corpus's 13 strands over the astronaut's
    brows put her 0.30 from herself, against 0.07 between two clean frames of her); the median
    over every full-view frame is kept as `identity_eyes_covered_too`."""
    count = min(len(template_frames), len(output_frames), faces.shape[1])
    kept = counted = 0
    ratios: list[float] = []
    plain_ratios: list[float] = []
    series: dict[str, list[float]] = {k: [] for k in ("out_tone", "tpl_tone", "out_light", "tpl_light", "seam",
                                                      "identity", "identity_all")}
    selfie_descriptor = describe(selfie, selfie_points) if describe is not None else None
    for i in range(count):
        template, output, occluder = template_frames[i], output_frames[i], occluders[i]
        points = faces[0, i]
        k, c = occluder_pixels(output, template, occluder, points)
        kept, counted = kept + k, counted + c
        for face in faces[:, i]:
            ratios.append(sharpness(output, face, occluder) / sharpness(template, face, occluder))
            plain_ratios.append(laplacian_variance(output, face, occluder)
                                / max(laplacian_variance(template, face, occluder), 1e-6))
        series["seam"].append(seam_excess(output, template, points, occluder))
        hull = face_hull_mask(points, occluder.shape)
        hidden = float((occluder & hull).sum()) / max(1.0, float(hull.sum()))
        if hidden >= FULL_VIEW_MAX_HIDDEN or (yaw is not None and abs(float(yaw[0, i])) > FULL_VIEW_MAX_YAW):
            continue
        series["out_tone"].append(skin_lightness(output, points, occluder))
        series["tpl_tone"].append(skin_lightness(template, points, occluder))
        series["out_light"].append(cheek_balance(output, points, occluder))
        series["tpl_light"].append(cheek_balance(template, points, occluder))
        if selfie_descriptor is not None and describe is not None:
            distance = float(np.linalg.norm(describe(output, points) - selfie_descriptor))
            series["identity_all"].append(distance)
            eyes = eyes_and_brows_mask(points, occluder.shape)
            if float((occluder & eyes).sum()) < EYES_MAX_HIDDEN * max(1.0, float(eyes.sum())):
                series["identity"].append(distance)
    finite = [r for r in ratios if np.isfinite(r)]
    low, high = (min(finite), max(finite)) if finite else (None, None)
    occluder_share = kept / counted if counted else None
    selfie_tone, selfie_light = skin_lightness(selfie, selfie_points), cheek_balance(selfie, selfie_points)
    out_tone, tpl_tone = _median(series["out_tone"]), _median(series["tpl_tone"])
    out_light, tpl_light = _median(series["out_light"]), _median(series["tpl_light"])
    tone = progress(out_tone, tpl_tone, selfie_tone, TONE_MIN_GAP)
    lighting = progress(out_light, tpl_light, selfie_light, LIGHTING_MIN_GAP)
    bright_side = "left" if out_light > 0 else "right"
    seam = _median(series["seam"])
    identity = _median(series["identity"]) if series["identity"] else None
    return {
        "frames": count,
        "occluder_kept": occluder_share,
        "occluder_pass": None if occluder_share is None else occluder_share >= OCCLUDER_GOAL,
        "sharpness_min": low,
        "sharpness_max": high,
        "sharpness_pass": (low is not None and high is not None  # there were finite ratios
                           and SHARPNESS_RANGE[0] <= low and high <= SHARPNESS_RANGE[1]),
        "laplacian_variance_ratio": _finite(_median(plain_ratios)),
        "tone_L": {"output": _finite(out_tone), "template": _finite(tpl_tone), "selfie": _finite(selfie_tone)},
        "tone_progress": tone,
        "tone_pass": None if tone is None else tone >= TONE_GOAL,
        "cheek_balance": {"output": _finite(out_light), "template": _finite(tpl_light),
                          "selfie": _finite(selfie_light)},
        "lighting_progress": lighting,
        "lighting_pass": None if lighting is None else bool(
            lighting < LIGHTING_GOAL and (lit_side is None or bright_side == lit_side)),
        "seam": _finite(seam),
        "seam_pass": None if not np.isfinite(seam) else seam <= SEAM_GOAL,
        "identity": identity,
        "identity_frames": len(series["identity"]),
        "identity_eyes_covered_too": _median(series["identity_all"]) if series["identity_all"] else None,
        "full_view_frames": len(series["out_tone"]),
        "identity_pass": None if identity is None else identity < IDENTITY_GOAL,
    }


def dlib_describer() -> Describe:
    """dlib's ResNet descriptor of the face at a mesh (the one the protected-face check uses)."""
    from memeswap.inference.safety.protected_faces import DlibFaceDescriptor

    descriptor = DlibFaceDescriptor()
    descriptor.prepare()
    return lambda image, points: descriptor.describe(image, face_of(points))
