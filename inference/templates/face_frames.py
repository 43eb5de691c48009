"""What a template tells about each of its faces in each frame, worked out once at compile
time and cached with the tracks: pose, blur, grain, what is in front of the face, and its light.

`FaceFrameAnalysis.analyse` takes a template's tracks (linked, gap-filled and smoothed)
and its frames a second time, and fills each track's per-frame arrays (`FaceTrack.pose`,
`blur`, `noise`, `visible`, and the light's; see `inference.faces.face.FaceFrame`):

- pose from the track's landmarks (`inference.faces.pose`);
- blur and grain measured on the frame at template scale (`inference.faces.degradation`),
  then median-filtered over 5 frames, since one frame's reading wobbles a little;
- visible: hands (`HandFinder`, every frame) and, for a face with MediaPipe's mesh, the
  temporal and colour evidence of `OccluderFinder`, over `face_region` of the face's box,
  grown by `occluders.GROW` of the face and feathered, so the template's own pixels win
  over the whole occluder and the soft edge lies outside it;
- for a face with a mesh, its light (`inference.faces.light.FaceLight`): skin tone,
  eye-white lightness, black and white, and the shading grid, measured on the skin that
  nothing is in front of.

A swap job never runs any of this: it reads the arrays from the cache.
"""

import dataclasses
from collections.abc import Iterable

import cv2
import numpy as np

from memeswap.inference.faces import degradation, zones
from memeswap.inference.faces.face import VISIBLE_SIDE, Face, face_region
from memeswap.inference.faces.light import FaceLight, eye_white, region_pixels
from memeswap.inference.faces.occluders import GROW, HandFinder, OccluderFinder, hand_mask
from memeswap.inference.faces.pose import head_pose
from memeswap.inference.templates.tracks import FaceTrack
from memeswap.inference.time_filters import median_over_frames


def _mesh_of(face: Face) -> np.ndarray:
    """The mesh of a face on a meshed track (only those are measured for occluders and light)."""
    assert face.landmarks is not None, "a meshed track's faces have their mesh"
    return face.landmarks


class _TrackWork:
    """One track's measurements while the frames go past."""

    def __init__(self, track: FaceTrack) -> None:
        self.track = track
        self.faces = [track.face_on(int(i)) for i in track.frames]
        self.pose = np.stack([head_pose(f) for f in self.faces]).astype(np.float32)
        self.regions = [face_region(f.box) for f in self.faces]
        meshes = track.landmarks if track.landmarks is not None and zones.has_mesh(track.landmarks[0]) else None
        meshed = meshes is not None
        frontal = int(np.argmin(np.abs(self.pose[:, 0]) + 0.5 * np.abs(self.pose[:, 1])))
        self.occluders = OccluderFinder(meshes[frontal]) if meshes is not None else None
        self.blur: list[float] = []
        self.noise: list[float] = []
        self.hands: list[np.ndarray] = []
        self.light_pixels: list[np.ndarray] | None = [] if meshed else None  # `light.region_pixels` per frame
        self.whites: list[float | None] = []

    def look(self, frame: np.ndarray, index: int, hands: HandFinder) -> None:
        face = self.faces[index - self.track.first]
        region = self.regions[index - self.track.first]
        points = degradation.face_points(face)
        self.blur.append(degradation.blur_sigma(frame, points))
        self.noise.append(degradation.grain_std(frame, points))
        self.hands.append(hand_mask(hands.find(frame, region), region, VISIBLE_SIDE))
        if self.occluders is not None:
            self.occluders.add(frame, _mesh_of(face))
        if self.light_pixels is not None:
            self.light_pixels.append(region_pixels(frame, region))
            self.whites.append(eye_white(frame, _mesh_of(face)))

    def finish(self) -> FaceTrack:
        count = len(self.faces)
        if len(self.blur) != count:  # the frames ran out early: the track stays as it was
            return self.track
        covered = np.stack(self.hands)
        if self.occluders is not None:
            covered = np.maximum(covered, np.stack(self.occluders.masks(self.regions, VISIBLE_SIDE)))
        visible = np.stack([_visible(c) for c in covered])
        smooth = min(5, count)
        blur = median_over_frames(np.array(self.blur, np.float32), smooth)
        noise = median_over_frames(np.array(self.noise, np.float32), smooth)
        track = dataclasses.replace(self.track, pose=self.pose, blur=blur, noise=noise, visible=visible)
        if self.light_pixels is None:
            return track
        # measured now that what is in front of the face is known: it is no skin
        lights = [FaceLight.from_pixels(pixels, _mesh_of(face), region, white, c)
                  for pixels, face, region, white, c in zip(self.light_pixels, self.faces, self.regions, self.whites,
                                                           covered)]
        return dataclasses.replace(
            track, skin_tone=np.stack([(light.tone.median, light.tone.spread) for light in lights]),
            eye_white=np.array([np.nan if light.white is None else light.white for light in lights], np.float32),
            greyscale=np.array([light.greyscale for light in lights]),
            shading=np.stack([light.shading for light in lights]).astype(np.float16))


class FaceFrameAnalysis:
    """Fills the per-frame arrays of compiled tracks. `hands`: the process's hand finder
    (its model loads on first use)."""

    def __init__(self, hands: HandFinder | None = None) -> None:
        self.hands = hands or HandFinder()

    def analyse(self, frames: Iterable[np.ndarray], tracks: list[FaceTrack]) -> list[FaceTrack]:
        """`frames`: the template's frames again, as the swap will see them (same decoding)."""
        work = [_TrackWork(t) for t in tracks]
        for index, frame in enumerate(frames):
            for item in work:
                if item.track.first <= index <= item.track.last:
                    item.look(frame, index, self.hands)
        return [item.finish() for item in work]


def _visible(covered: np.ndarray) -> np.ndarray:
    """255 - covered, grown by GROW of the face and feathered outwards."""
    if covered.max() <= 0:
        return np.full(covered.shape, 255, np.uint8)
    radius = max(1, int(round(GROW * covered.shape[0])))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    grown = cv2.dilate(covered, kernel)
    soft = cv2.GaussianBlur(grown, (0, 0), radius / 2)
    soft = np.maximum(soft, covered)
    return np.clip(np.rint(255 * (1 - soft)), 0, 255).astype(np.uint8)
