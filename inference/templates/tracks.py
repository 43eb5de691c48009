"""Face tracks: the faces of a template linked across frames, gap-filled and de-jittered.

A compiled track also carries what the template tells about its face in each frame (pose,
blur, grain, and what is in front of the face); `inference.templates.face_frames` fills
those arrays once, at compile time, and `FaceTrack.face_at` hands them out as a
`FaceFrame` on each `Face`."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from memeswap.inference.faces.face import Face, FaceFrame, FaceRegion, box_iou, face_region
from memeswap.inference.faces.light import FaceLight
from memeswap.inference.faces.skin import SkinTone
from memeswap.inference.time_filters import gaussian_over_frames

SAME_FACE = 0.15  # `face_affinity` from which two faces of consecutive frames are the same face


@dataclass
class FaceTrack:
    """One face followed through a template: its keypoints (and dense landmarks, when the
    analyser has them) for each frame it is in.

    The per-frame arrays after `scores` are None for a track compiled without them (see
    `inference.templates.face_frames`); `pose` to `visible` are all set or all None, and so
    are `skin_tone` to `shading` (set only for a track with a dense mesh). `visible` masks
    and `shading` grids cover `face_region` of the frame's face box (the box `face_at`
    gives)."""

    frames: np.ndarray  # (n,) int, consecutive frame indices
    kps: np.ndarray  # (n, 5, 2) float32, insightface order
    landmarks: np.ndarray | None  # (n, L, 3) float32, or None for a keypoints-only analyser
    boxes: np.ndarray  # (n, 4) float32
    scores: np.ndarray  # (n,) float32, 0 for interpolated frames
    pose: np.ndarray | None = None  # (n, 3) float32: yaw, pitch, roll in degrees
    blur: np.ndarray | None = None  # (n,) float32: the face's Gaussian blur sigma, in frame pixels
    noise: np.ndarray | None = None  # (n,) float32: its grain std, in 0..255 levels
    visible: np.ndarray | None = None  # (n, S, S) uint8: 255 where the face itself is seen, 0 where covered
    skin_tone: np.ndarray | None = None  # (n, 2, 3) float32: the skin's Lab median and spread
    eye_white: np.ndarray | None = None  # (n,) float32: L* of the eye whites, NaN when not seen
    greyscale: np.ndarray | None = None  # (n,) bool: a black-and-white frame
    shading: np.ndarray | None = None  # (n, G, G, 3) float16: the light's Lab offset over the region

    @property
    def first(self) -> int:
        return int(self.frames[0])

    @property
    def last(self) -> int:
        return int(self.frames[-1])

    def face_at(self, frame_index: int) -> Face | None:
        if not self.first <= frame_index <= self.last:
            return None
        i = frame_index - self.first
        points = None if self.landmarks is None else self.landmarks[i]
        box = self.boxes[i] if points is None else np.array(
            [*points[:, :2].min(axis=0), *points[:, :2].max(axis=0)], np.float32)
        info = None
        if self.visible is not None:
            assert self.pose is not None and self.blur is not None and self.noise is not None, "measured with visible"
            region = face_region(box)
            info = FaceFrame(self.pose[i], float(self.blur[i]), float(self.noise[i]), self.visible[i], region,
                             self._light_at(i, region))
        return Face(box=box, score=float(self.scores[i]), kps=self.kps[i].copy(), landmarks=points, frame_info=info)

    def face_on(self, frame_index: int) -> Face:
        """The face on one of the track's own frames."""
        face = self.face_at(frame_index)
        assert face is not None, f"frame {frame_index} is not one of the track's"
        return face

    def _light_at(self, i: int, region: FaceRegion) -> FaceLight | None:
        if self.shading is None:
            return None
        assert self.skin_tone is not None and self.eye_white is not None and self.greyscale is not None, \
            "measured with shading"
        white = float(self.eye_white[i])
        return FaceLight(SkinTone(self.skin_tone[i, 0], self.skin_tone[i, 1]), None if np.isnan(white) else white,
                         bool(self.greyscale[i]), self.shading[i], region)

    def mean_area(self) -> float:
        span = self.boxes[:, 2:] - self.boxes[:, :2]
        return float((span[:, 0] * span[:, 1]).mean())


def link_faces(per_frame: list[list[Face]], max_gap: int = 4, min_length: int = 3,
               keep: Callable[[list[Face]], bool] | None = None) -> list[FaceTrack]:
    """Link per-frame detections into tracks, fill short gaps and smooth the landmarks.

    Faces are matched greedily to each open track's latest face, by box overlap or, for a
    sudden zoom where boxes barely overlap, by how close their centres are. A track
    survives a gap of up to `max_gap` missed frames, which is filled by linear interpolation.
    Tracks shorter than `min_length` frames (spurious detections) are dropped unless the
    template itself is that short, and so are those whose detections `keep` turns down.
    """
    open_tracks: list[dict] = []
    done: list[dict] = []
    for index, faces in enumerate(per_frame):
        still_open = []
        for track in open_tracks:
            if index - track["frames"][-1] > max_gap + 1:
                done.append(track)
            else:
                still_open.append(track)
        open_tracks = still_open
        used_faces = set()
        for ti, fi in match_faces([t["faces"][-1] for t in open_tracks], faces):
            open_tracks[ti]["frames"].append(index)
            open_tracks[ti]["faces"].append(faces[fi])
            used_faces.add(fi)
        for fi, face in enumerate(faces):
            if fi not in used_faces:
                open_tracks.append({"frames": [index], "faces": [face]})
    done.extend(open_tracks)
    min_length = min(min_length, len(per_frame))
    tracks = [_fill_gaps(t["frames"], t["faces"]) for t in done
              if len(t["frames"]) >= min_length and (keep is None or keep(t["faces"]))]
    tracks = _join_across_cuts([smooth_track(t) for t in tracks], max_gap)
    return sorted(tracks, key=lambda t: (t.first, -t.mean_area()))


def match_faces(previous: list[Face], current: list[Face]) -> list[tuple[int, int]]:
    """Pairs (i, j): `current[j]` is `previous[i]` a frame later. One to one, greedily by
    `face_affinity`, best first, from `SAME_FACE` up: a face next to another one's former
    place does not take it over while that face is still there."""
    pairs = sorted(((face_affinity(p, c), i, j) for i, p in enumerate(previous) for j, c in enumerate(current)),
                   reverse=True)
    matched: list[tuple[int, int]] = []
    used_previous, used_current = set(), set()
    for affinity, i, j in pairs:
        if affinity < SAME_FACE or i in used_previous or j in used_current:
            continue
        matched.append((i, j))
        used_previous.add(i)
        used_current.add(j)
    return matched


def _join_across_cuts(tracks: list[FaceTrack], max_gap: int) -> list[FaceTrack]:
    """Join a track that ends to the one that starts right after it (a hard cut or a
    sudden zoom punch), when no other track ends or starts then, so the same person stays
    one track and `--face largest` or a track number covers the whole template."""
    tracks = sorted(tracks, key=lambda t: t.first)
    joined = True
    while joined:
        joined = False
        for a in tracks:
            followers = [b for b in tracks if 0 < b.first - a.last <= max_gap + 1]
            rivals = ([c for c in tracks if c is not a and 0 < followers[0].first - c.last <= max_gap + 1]
                      if followers else [])
            if len(followers) == 1 and not rivals:
                b = followers[0]
                merged = _fill_gaps(
                    list(a.frames) + list(b.frames),
                    [a.face_on(i) for i in a.frames] + [b.face_on(i) for i in b.frames],
                )
                tracks = [t for t in tracks if t is not a and t is not b] + [merged]
                joined = True
                break
    return tracks


def face_affinity(previous: Face, current: Face) -> float:
    """How likely `current` is `previous` one frame later: box overlap, or for a sudden zoom
    where boxes barely overlap, how close their centres are (`SAME_FACE` and above: the same face)."""
    size = max(previous.width, previous.height, current.width, current.height)
    distance = float(np.linalg.norm(previous.center - current.center))
    return max(box_iou(previous.box, current.box), 0.5 * (1 - distance / (0.6 * size)))


def _fill_gaps(frames: list[int], faces: list[Face]) -> FaceTrack:
    seen = np.array(frames)
    every = np.arange(seen[0], seen[-1] + 1)

    def filled(values: np.ndarray) -> np.ndarray:
        flat = values.reshape(len(seen), -1).astype(np.float64)
        columns = [np.interp(every, seen, flat[:, k]) for k in range(flat.shape[1])]
        return np.stack(columns, axis=1).reshape(len(every), *values.shape[1:]).astype(np.float32)

    landmarks = [f.landmarks for f in faces if f.landmarks is not None]
    dense = len(landmarks) == len(faces)
    scores = np.zeros(len(every), np.float32)
    scores[seen - seen[0]] = [f.score for f in faces]
    return FaceTrack(
        every,
        filled(np.stack([f.kps for f in faces])),
        filled(np.stack(landmarks)) if dense else None,
        filled(np.stack([f.box for f in faces])),
        scores,
    )


def smooth_track(track: FaceTrack, sigma: float = 1.0) -> FaceTrack:
    """Remove landmark jitter without lagging behind real motion.

    Each frame is split into a similarity transform (position, scale, in-plane rotation,
    fitted on all points at once, so it barely jitters) and the residual shape; only the
    residual is smoothed over time, so shakes and zooms are followed exactly.
    """
    if len(track.frames) < 3:
        return track
    parts = [track.kps] + ([] if track.landmarks is None else [track.landmarks[:, :, :2]])
    xy = np.concatenate(parts, axis=1).astype(np.float64)
    centres = xy.mean(axis=1, keepdims=True)
    centred = xy - centres
    scales = np.sqrt((centred ** 2).sum(axis=(1, 2)) / xy.shape[1])[:, None, None]
    unit = centred / scales
    reference = unit[0]
    per_shape = []
    for shape in unit:
        u, _, vt = np.linalg.svd(shape.T @ reference)
        d = np.sign(np.linalg.det(u @ vt))
        per_shape.append(u @ np.diag([1.0, d]) @ vt)  # shape @ rotation ~ reference
    rotations = np.stack(per_shape)
    canonical = np.einsum("npj,nji->npi", unit, rotations)
    smoothed = gaussian_over_frames(canonical, sigma)
    back = (np.einsum("npj,nij->npi", smoothed, rotations) * scales + centres).astype(np.float32)
    kps, flat = back[:, :5], back[:, 5:]
    landmarks = None
    if track.landmarks is not None:
        depth = gaussian_over_frames(track.landmarks[:, :, 2], sigma)
        landmarks = np.concatenate([flat, depth[..., None]], axis=2).astype(np.float32)
    return FaceTrack(track.frames, kps, landmarks, track.boxes, track.scores)
