"""What is in front of a template's face, frame by frame: hands, objects, the hair's fringe.

Run once per face track when a template is compiled (`inference.templates.face_frames`),
never per swap. Three kinds of evidence, each for a different occluder:

- hands (`HandFinder`): MediaPipe's palm and hand landmark models (`hand_landmarks`, on
  onnxruntime) on a square around the face; each hand found becomes its filled outline (the
  convex hull of its 21 landmarks, grown by a fifth of the palm's width, since the
  landmarks run along the bones, not the skin's edge);
- things that come and go (`OccluderFinder`, temporal): every frame's face is warped onto
  one canonical face (the track's most frontal frame turned upright, through the mesh's
  triangles, so a turn or an expression moves no pixel of the face; what a turn hides is
  left out), brought to the track's median face by a gain that varies smoothly over the
  face and an offset, per channel (a flash, a colour pulse, a vignette, a light moving
  across), and compared with that median. A pixel that differs by at least
  `TEMPORAL_MIN` levels, `TEMPORAL_K` times its own usual difference over the clip and
  `FRAME_K` times its frame's usual difference (a frame that is all softer or blockier is
  not covered) seeds a blob, which grows over the connected pixels that differ by half as
  much (`TEMPORAL_LOW` at least). A blob counts in the frames next to its own too: a thing
  moves little in a frame, and the landmarks it pushes aside can hide part of it in one.
  This finds a skin-coloured hand as well as a cup, as long as it is in front of the face
  for less than half of the clip; where the median itself is not skin (something held
  there most of the time), frames that show skin there are not flagged;
- things that are not skin (`OccluderFinder`, colour): the track's skin colour is learned
  from the plain skin of its median face (mean and covariance in Lab, floored so shading
  and grain do not count); a pixel outside the eyes, brows, nostrils and lips whose colour
  is further than `SKIN_DISTANCE` (Mahalanobis) from it is covered, unless it is brighter
  with its colour between the skin's and grey (a shine): the hair's fringe over the
  forehead, a microphone, a beard. The skin colour follows each frame's lighting (the
  median of its own plain skin). Blobs that hug the face's outline below the brows are
  dropped (where the face meets hair or background, colour effects such as a vaporwave
  RGB split and the mesh's outline disagree).

Blobs smaller than `MIN_BLOB` (colour) or `MIN_MOVED` (change) of the face, and blobs that
lie mostly on the eyes, brows and lips (a blink, a mouth opening: changes of expression,
not occluders), are dropped; the rest is closed, mapped back from the canonical face onto
the frame's face region, and there grown by `GROW` of the face and feathered
(`inference.templates.face_frames`), so the soft edge falls outside the occluder.

What it cannot see: an object of skin colour held in front of the face for most of the
clip, a hand the hand model misses that stays most of the clip, and anything on the eyes
or lips alone. A face without a 478-point mesh (insightface's analyser) gets hands only.
On the built-in templates it marks the astronaut's fringe (0 to 7% of the face region),
and on "deep-fried", whose frames are blocky from JPEG and shaken, up to 24% in a few.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np

from memeswap.inference.faces import mesh, zones
from memeswap.inference.faces.face import FaceRegion
from memeswap.inference.faces.hand_landmarks import HandLandmarker
from memeswap.inference.faces.skin import dark_over_skin
from memeswap.inference.swappers.mesh_warp import build_mesh_warp, signed_areas

CANONICAL_SIDE = 128  # px: the canonical face the track's frames are compared on
TEMPORAL_K = 4.0
TEMPORAL_MIN = 30.0  # levels (RGB distance): a pixel this far off seeds a blob of change ...
TEMPORAL_LOW = 12.0  # ... which grows over the connected pixels at least this far off
FRAME_K = 3.0  # times the frame's own median difference
CLIPPED = 250.0  # levels: a pixel this bright changes in ways no gain explains
SKIN_DISTANCE = 4.0  # Mahalanobis, in Lab
MIN_BLOB = 0.004  # of the face's area: smaller blobs of colour are dropped
MIN_MOVED = 0.015  # of the face's area: smaller blobs of change are dropped
INTERIOR = 0.08  # of the canonical side: the face's outline band, where colour blobs must not stay
GROW = 0.03  # of the face's size: how far the mask is grown past an occluder's edge
HAIR_TIPS = 0.06  # of the face's size: how far strands found off the features are followed onto them
MEDIAN_FRAMES = 48  # frames the median face is taken over (spread over the track)

_TRIANGLES = np.concatenate([mesh.skin_triangles(), np.array(mesh.RIGHT_EYE_FILL + mesh.LEFT_EYE_FILL
                                                                  + mesh.MOUTH_FILL, np.int32)])


class HandFinder:
    """MediaPipe Hands (`hand_landmarks.HandLandmarker`) on a square around a face."""

    def __init__(self, min_score: float = 0.5) -> None:
        self._hands = HandLandmarker(min_detection_confidence=min_score)

    def find(self, image: np.ndarray, region: FaceRegion, context: float = 2.0) -> list[np.ndarray]:
        """Hands near the face: each (21, 2) landmarks in `image` pixels. The model sees a
        square `context` times the face region's side around it, at most 384 px."""
        height, width = image.shape[:2]
        side = region.side * context
        cx, cy = region.x0 + region.side / 2, region.y0 + region.side / 2
        x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
        x1, y1 = min(width, int(cx + side / 2)), min(height, int(cy + side / 2))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        crop = image[y0:y1, x0:x1]
        scale = min(1.0, 384 / max(crop.shape[:2]))
        if scale < 1:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return [points / scale + (x0, y0) for points in self._hands.find(crop)]

    def close(self) -> None:
        self._hands.close()


def hand_mask(hands: list[np.ndarray], region: FaceRegion, size: int) -> np.ndarray:
    """The hands' filled outlines over a face region, float32 0..1 of `size` x `size`.

    A hand comes with its forearm, which the landmarks do not reach: each outline takes in
    a wrist-wide band from the wrist (landmark 0) away from the middle finger's knuckle
    (landmark 9), as long as the region is wide."""
    mask: np.ndarray = np.zeros((size, size), np.uint8)
    to_mask = region.to_mask(size)
    for hand in hands:
        points = hand @ to_mask[:, :2].T + to_mask[:, 2]
        palm = float(np.linalg.norm(points[5] - points[17]))
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points * 16).astype(np.int32)), 1, shift=4)
        along = points[0] - points[9]
        along /= float(np.linalg.norm(along)) + 1e-6
        elbow = points[0] + along * 1.5 * size
        cv2.line(mask, tuple(int(v) for v in np.round(points[0] * 16)), tuple(int(v) for v in np.round(elbow * 16)),
                 1, max(1, int(round(palm))), shift=4)
        radius = max(1, int(round(0.2 * palm)))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    return mask.astype(np.float32)


class OccluderFinder:
    """Temporal and colour evidence of occluders for one face track: `add` every frame's face
    (in order), then `masks` gives each frame's covered area over its face region."""

    def __init__(self, reference: np.ndarray, size: int = CANONICAL_SIDE) -> None:
        """`reference`: the track's most frontal landmarks (478 x 3), which fix the canonical
        face (turned upright: eyes level)."""
        self.size = size
        eyes = reference[mesh.IRIS_LEFT, :2] - reference[mesh.IRIS_RIGHT, :2]
        angle = np.arctan2(eyes[1], eyes[0])
        upright = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        flat = reference[:, :2].astype(np.float64) @ upright.T
        scale = 0.9 * size / float(np.ptp(flat, axis=0).max())
        centre = (flat.min(axis=0) + flat.max(axis=0)) / 2
        self.canonical = np.concatenate([(flat - centre) * scale + size / 2, reference[:, 2:3] * scale], axis=1)
        self.canonical_area = np.sign(signed_areas(self.canonical, _TRIANGLES))
        self.face_size = 0.9 * size
        shape = (size, size)
        self.face = zones.face_mask(self.canonical, shape).astype(bool)
        self.features = zones.feature_mask(self.canonical, shape, grow=0.03).astype(bool)
        self.features_themselves = zones.feature_mask(self.canonical, shape, grow=0.0).astype(bool)
        self.eye_openings = np.zeros(shape, np.uint8)
        for upper, lower in ((mesh.RIGHT_EYE_UPPER, mesh.RIGHT_EYE_LOWER), (mesh.LEFT_EYE_UPPER, mesh.LEFT_EYE_LOWER)):
            contour = self.canonical[list(upper) + list(lower[::-1]), :2]
            cv2.fillPoly(self.eye_openings, [np.round(contour).astype(np.int32)], 1)
        self.eye_openings = self.eye_openings.astype(bool)
        self.skin = zones.skin_mask(self.canonical, shape).astype(bool)
        inset = int(round(INTERIOR * size))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inset + 1, 2 * inset + 1))
        self.interior = cv2.erode(self.face.astype(np.uint8), kernel).astype(bool)
        brows = self.canonical[[*zones.BROWS[0], *zones.BROWS[1]], 1].min()
        self.forehead = self.face & (np.arange(size)[:, None] < brows)
        eyes_row = float(self.canonical[[mesh.IRIS_LEFT, mesh.IRIS_RIGHT], 1].mean())
        self.hairline = ~self.interior & (np.arange(size)[:, None] < eyes_row - 0.05 * self.face_size)
        self.crops: list[np.ndarray] = []
        self.seen: list[np.ndarray] = []
        self.points: list[np.ndarray] = []

    def add(self, frame: np.ndarray, points: np.ndarray) -> None:
        """The frame's face, warped onto the canonical face (pixels of it that the frame does
        not show, the far side of a turned head, are marked unseen)."""
        crop = np.zeros((self.size, self.size, 3), np.uint8)
        seen = np.zeros((self.size, self.size), bool)
        winding = np.sign(signed_areas(points, _TRIANGLES))
        # a triangle the frame shows from behind (the far side of a turned head) is culled
        warp = build_mesh_warp(points, self.canonical, _TRIANGLES, (self.size, self.size), self.canonical[:, 2],
                               winding)
        if warp is not None:
            h, w = warp.coverage.shape
            box = (slice(warp.y0, warp.y0 + h), slice(warp.x0, warp.x0 + w))
            crop[box] = warp.apply(frame)
            seen[box] = warp.coverage > 0
        self.crops.append(crop)
        self.seen.append(seen & self.face)
        self.points.append(points.astype(np.float32))

    def masks(self, regions: list[FaceRegion], size: int) -> list[np.ndarray]:
        """Per frame added, the covered share (float32 0..1) of a `size` square over its region."""
        covered = self._covered()
        return [self._to_region(c, points, region, size) for c, points, region in zip(covered, self.points, regions)]

    def _covered(self) -> list[np.ndarray]:
        n = len(self.crops)
        soft = np.stack([cv2.GaussianBlur(c, (0, 0), 1.5) for c in self.crops]).astype(np.float32)
        seen = np.stack(self.seen)
        median = self._median(soft, seen)
        skin_model = _SkinModel.learn(median, self.skin)
        temporal = self._temporal(soft, seen, median) if n >= 5 else np.zeros(seen.shape, bool)
        median_is_skin = skin_model.is_skin(median, np.zeros(3, np.float32)) if skin_model is not None else None
        moved, colour = [], []
        for i in range(n):
            changed = temporal[i]
            not_skin = np.zeros_like(changed)
            if skin_model is not None:
                assert median_is_skin is not None, "computed whenever there is a skin model"
                shift = skin_model.shift(soft[i], self.skin & seen[i] & ~changed)
                is_skin = skin_model.is_skin(soft[i], shift)
                not_skin = ~is_skin & ~self.features
                # the median is the occluder here (held most of the clip), and this frame shows skin
                changed = changed & ~(is_skin & ~median_is_skin & ~self.features)
            hair = self._hair(_lab(soft[i])[..., 0], seen[i])
            moved.append(self._clean(changed & seen[i], MIN_MOVED))
            colour.append(self._clean((not_skin | hair) & seen[i], MIN_BLOB, edges=True))
        # a thing that comes and goes is there in the frames around the ones it was seen in too
        # (it moves little in a frame; where it covers the face, the landmarks it displaced may
        # have hidden part of it in one frame)
        around = [moved[i] | (moved[i - 1] if i else False) | (moved[i + 1] if i + 1 < n else False) for i in range(n)]
        return [(a | c) & s for a, c, s in zip(around, colour, seen)]

    def _median(self, soft: np.ndarray, seen: np.ndarray) -> np.ndarray:
        picks = np.unique(np.linspace(0, len(soft) - 1, min(len(soft), MEDIAN_FRAMES)).round().astype(int))
        values = np.where(seen[picks][..., None], soft[picks], np.nan)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # pixels no frame shows
            median = np.nanmedian(values, axis=0) if len(picks) > 1 else values[0]
        return np.nan_to_num(median, nan=0.0).astype(np.float32)

    def _temporal(self, soft: np.ndarray, seen: np.ndarray, median: np.ndarray) -> np.ndarray:
        """Pixels that differ from the median face far more than they usually do, and far more
        than the rest of their frame does (a frame that is all softer or blockier is not
        covered)."""
        distances = np.zeros(seen.shape, np.float32)
        frame_level = np.zeros(len(soft), np.float32)
        for i in range(len(soft)):
            distances[i] = np.linalg.norm(_match_gain(soft[i], median, self.skin & seen[i]) - median, axis=2)
            distances[i][(soft[i].max(axis=2) >= CLIPPED) | (median.max(axis=2) >= CLIPPED)] = 0  # a blown highlight
            frame_level[i] = np.median(distances[i][seen[i]]) if seen[i].any() else 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            usual = np.nan_to_num(np.nanmedian(np.where(seen, distances, np.nan), axis=0), nan=0.0)
        strong = np.maximum(np.maximum(TEMPORAL_MIN, TEMPORAL_K * usual), FRAME_K * frame_level[:, None, None])
        weak = np.maximum(np.maximum(TEMPORAL_LOW, TEMPORAL_K / 2 * usual), FRAME_K / 2 * frame_level[:, None, None])
        flags = np.zeros(seen.shape, bool)
        for i in range(len(soft)):
            flags[i] = _hysteresis(seen[i] & (distances[i] > strong[i]), seen[i] & (distances[i] > weak[i]))
        return flags

    def _hair(self, lightness: np.ndarray, seen: np.ndarray) -> np.ndarray:
        """Hair in front of the face: what is far darker than the skin around it, off the
        features, in blobs that fall in from the hairline (`_from_outline`); then, for a
        fringe (a blob mostly on the forehead), its tips, followed a little way onto the
        brows, where a fringe ends (never into the eyes: a glasses frame's rim, dark and
        near, is not a strand)."""
        hair = self._from_outline(dark_over_skin(lightness, seen & ~self.features_themselves, self.face_size))
        fringe = self._mostly_on(hair, self.forehead)
        if not fringe.any():
            return hair
        radius = max(1, int(round(HAIR_TIPS * self.face_size)))
        reach = cv2.dilate(fringe.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                                              (2 * radius + 1, 2 * radius + 1)))
        tips = dark_over_skin(lightness, seen & ~self.eye_openings, self.face_size) & reach.astype(bool)
        return hair | tips

    @staticmethod
    def _mostly_on(flags: np.ndarray, zone: np.ndarray) -> np.ndarray:
        """The blobs of `flags` with at least half their pixels in `zone`."""
        if not flags.any():
            return flags
        count, labels = cv2.connectedComponents(flags.astype(np.uint8), connectivity=8)
        inside = np.bincount(labels[zone & flags], minlength=count)
        total = np.bincount(labels[flags], minlength=count)
        keep = inside * 2 >= total
        keep[0] = False
        return keep[labels]

    def _from_outline(self, flags: np.ndarray) -> np.ndarray:
        """The blobs of `flags` that reach the face's outline band above the eyes: hair falls
        in from the hairline, while a deep fold or wrinkle of the same darkness lies inside
        the face, and a glasses frame's arm meets the outline at the eyes' height."""
        return _hysteresis(flags & self.hairline, flags)

    def _clean(self, flags: np.ndarray, min_area: float, edges: bool = False) -> np.ndarray:
        """Drop specks, small blobs and blobs on the features, and with `edges` blobs that hug
        the face's outline below the brows (where the face meets hair or background, colour
        effects and the mesh's outline disagree); close the rest."""
        if not flags.any():
            return flags
        flags = cv2.morphologyEx(flags.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(flags, connectivity=8)
        if count <= 1:
            return flags.astype(bool)
        face_area = float(self.face.sum())
        on_features = np.bincount(labels[self.features], minlength=count)
        inside = np.bincount(labels[self.interior], minlength=count)
        on_forehead = np.bincount(labels[self.forehead], minlength=count)
        area = stats[:, cv2.CC_STAT_AREA]
        keep = (area >= min_area * face_area) & (on_features < 0.6 * area)
        if edges:
            keep &= (inside >= 0.25 * area) | (on_forehead >= 0.5 * area)
        keep[0] = False
        flags = keep[labels].astype(np.uint8)
        radius = max(1, int(round(GROW * self.size)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        return cv2.morphologyEx(flags, cv2.MORPH_CLOSE, kernel).astype(bool)

    def _to_region(self, covered: np.ndarray, points: np.ndarray, region: FaceRegion, size: int) -> np.ndarray:
        if not covered.any():
            return np.zeros((size, size), np.float32)
        to_mask = region.to_mask(size)
        local = points.astype(np.float64).copy()
        local[:, :2] = local[:, :2] @ to_mask[:, :2].T + to_mask[:, 2]
        local[:, 2] *= to_mask[0, 0]
        warp = build_mesh_warp(self.canonical, local, _TRIANGLES, (size, size), local[:, 2],
                               self.canonical_area)
        out = np.zeros((size, size), np.float32)
        if warp is None:
            return out
        h, w = warp.coverage.shape
        values = cv2.remap(covered.astype(np.float32), warp.map_x, warp.map_y, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        out[warp.y0:warp.y0 + h, warp.x0:warp.x0 + w] = values * warp.coverage
        return out


class _SkinModel:
    """The track's skin colour: mean and covariance in Lab of the median face's plain skin."""

    def __init__(self, mean: np.ndarray, inverse: np.ndarray, reference: np.ndarray) -> None:
        self.mean = mean
        self.inverse = inverse
        self.reference = reference  # the median face's skin median, which frame shifts are taken from

    @classmethod
    def learn(cls, median: np.ndarray, skin: np.ndarray) -> _SkinModel | None:
        lab = _lab(median)[skin]
        if len(lab) < 50:
            return None
        low, high = np.percentile(lab, [10, 90], axis=0)
        core = lab[np.all((lab >= low) & (lab <= high), axis=1)]  # the skin itself, not stray hair or shine
        if len(core) < 20:
            core = lab
        mean = core.mean(axis=0)
        covariance = np.cov(core.T) + np.diag([8.0 ** 2, 3.0 ** 2, 3.0 ** 2])
        return cls(mean, np.linalg.inv(covariance).astype(np.float32), np.median(lab, axis=0))

    def shift(self, crop: np.ndarray, skin: np.ndarray) -> np.ndarray:
        """How this frame's lighting moves the skin colour: its plain skin's median less the
        median face's (no shift when too little skin shows)."""
        if skin.sum() < 50:
            return np.zeros(3, np.float32)
        return (np.median(_lab(crop)[skin], axis=0) - self.reference).astype(np.float32)

    def is_skin(self, crop: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """Skin-coloured pixels. A pixel brighter than the skin is a shine, not a thing, as
        long as its colour lies between the skin's and grey (a highlight washes colour out)."""
        lab = _lab(crop)
        mean = self.mean + shift
        difference = lab - mean
        brighter = difference[..., 0] > 0
        difference[..., 0] = np.minimum(difference[..., 0], 0)
        chroma = mean[1:]
        along = np.clip((lab[..., 1:] @ chroma) / max(float(chroma @ chroma), 1e-3), 0, 1)
        washed_out = lab[..., 1:] - along[..., None] * chroma
        difference[..., 1:] = np.where(brighter[..., None], washed_out, difference[..., 1:])
        distance = np.einsum("...i,ij,...j->...", difference, self.inverse, difference)
        return distance <= SKIN_DISTANCE ** 2


def _hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """The blobs of `weak` that hold a pixel of `strong`."""
    if not strong.any():
        return strong
    count, labels = cv2.connectedComponents((weak | strong).astype(np.uint8), connectivity=8)
    seeded = np.zeros(count, bool)
    seeded[np.unique(labels[strong])] = True
    seeded[0] = False
    return seeded[labels]


def _lab(rgb: np.ndarray) -> np.ndarray:
    """Lab with L in 0..100 and a, b in about -128..127 (float32 input, 0..255)."""
    return cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _match_gain(crop: np.ndarray, target: np.ndarray, where: np.ndarray) -> np.ndarray:
    """`crop` brought to `target` by a gain that varies smoothly over the face (a quadratic in x
    and y: a vignette, a light moving across the face) and an offset, per channel, fitted by
    least squares on (every third pixel of) `where`, then again on the best-fitting 70% of
    those, so that an occluder does not bend the fit."""
    picked = np.flatnonzero(where.ravel())[::3]
    if len(picked) < 50:
        return crop
    size = crop.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    terms = [np.ones_like(xs), xs, ys, xs * xs, xs * ys, ys * ys]
    out = np.empty_like(crop)
    for channel in range(3):
        values = crop[..., channel]
        basis = np.stack([values * t for t in terms] + [np.ones_like(values)], axis=-1).reshape(-1, len(terms) + 1)
        design, goal = basis[picked], target[..., channel].ravel()[picked]
        use = np.ones(len(goal), bool)
        for _ in range(2):
            coefficients, *_ = np.linalg.lstsq(design[use], goal[use], rcond=None)
            residual = np.abs(design @ coefficients - goal)
            use = residual <= np.percentile(residual, 70)
        out[..., channel] = (basis @ coefficients).reshape(size, size)
    return out
