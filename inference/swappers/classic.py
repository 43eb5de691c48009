"""The embedded default swapper: dense-mesh warp, the template's light on the selfie's
tone, and a feathered blend.

It needs dense landmarks on both sides (the MediaPipe analyser gives 478 points) and no
model of its own, so it runs anywhere on the CPU. The selfie is read once, and kept for
its next jobs: its skin is cleaned of hair strands, glasses frames and shine, and its own
shading is taken out (`inference.faces.skin`). Each frame then lights it with the
template's shading, measured on the template's skin only, at the selfie's skin tone
(`blend`).

The template's expression drives the mouth: an open template mouth keeps its own mouth
(teeth, tongue) whatever the selfie's lips do, and a closed one gets the selfie's closed
lips, so a laughing selfie cannot open a crying template's mouth. The eyes stay the
selfie's (they carry most of who it is), shaped like the template's: a shut template eye
shuts the selfie's, and a selfie eye less open than the template's keeps its own shape.
The mouth's decision depends on the template frame alone, so it does not flip between
frames with the selfie's shape.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from memeswap.inference.errors import InputError
from memeswap.inference.faces import mesh
from memeswap.inference.faces.face import Face, FaceRegion
from memeswap.inference.faces.light import FaceLight
from memeswap.inference.faces.skin import (
    SkinTone,
    clean_selfie,
    exposure,
    face_size,
    feature_mask,
    shading,
    skin_mask,
    to_lab,
    to_rgb,
)
from memeswap.inference.swappers.base import SwapperConfig
from memeswap.inference.swappers.blend import carry_tone_around, feathered_alpha, relight, tone_target
from memeswap.inference.swappers.mesh_warp import build_mesh_warp, signed_areas
from memeswap.inference.swappers.shape_transfer import ShapeTransfer
from memeswap.inference.swappers.source_cache import PreparedSources

_SKIN = mesh.skin_triangles()
_REGIONS = {
    "skin": _SKIN,
    "right_eye": np.array(mesh.RIGHT_EYE_FILL, np.int32),
    "left_eye": np.array(mesh.LEFT_EYE_FILL, np.int32),
    "mouth": np.array(mesh.MOUTH_FILL, np.int32),
}
_TEXTURE_MAX_SIDE = 640
BLURRED_FACE = 2.0  # blur sigma (template px) from which a face is swapped at half size
MIN_HALF_SIZE_FACE = 48  # px: the smallest face swapped at half size
MOUTH_OPEN = 0.08  # template inner-lip gap over mouth width above which its own mouth shows


@dataclass
class ClassicSource:
    """The selfie's face, cropped, with its mesh in crop coordinates."""

    texture: np.ndarray  # Lab float32, as if evenly lit
    tone: SkinTone
    points: np.ndarray
    eyes: tuple[float, float]
    mouth: float
    winding: dict[str, np.ndarray]
    shape: ShapeTransfer


@dataclass
class ExpressionPlan:
    regions: list[str]  # mesh regions filled from the selfie
    keep_template: set[str]  # features whose template pixels (and shape) show through
    selfie_shaped: set[str]  # features that take the selfie's shape, not the template's


class ClassicSwapper:
    name = "classic"
    required_models: tuple[str, ...] = ()
    required_packages: tuple[str, ...] = ()

    @classmethod
    def from_models(cls, config: SwapperConfig, models: Mapping[str, Path]) -> ClassicSwapper:
        return cls(config.max_selfie_yaw_degrees, tone_balance=config.tone_balance)

    def __init__(self, max_yaw_degrees: float = 30.0, shape_strength: float = 1.0, tone_balance: float = 0.8,
                 threads: int | None = None) -> None:
        """`tone_balance`: 1 keeps the selfie's skin tone exactly, 0 takes the template's."""
        self.max_yaw_degrees = max_yaw_degrees
        self.tone_balance = tone_balance
        self.shape_strength = shape_strength
        threads = threads or min(4, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="swap") if threads > 1 else None
        self._sources: PreparedSources[ClassicSource] = PreparedSources()

    def prepare(self) -> None:
        """Nothing to load: the classic swapper has no model."""

    def prepare_source(self, image: np.ndarray, face: Face) -> ClassicSource:
        """The selfie's face, ready to paint with: worked out once per selfie and face
        (`PreparedSources`), so a person's next jobs start at once."""
        if face.landmarks is None:
            raise InputError("this face analyser gives no dense landmarks; the classic swapper needs them")
        mesh.require_frontal(face.landmarks, self.max_yaw_degrees)
        return self._sources.get(image, face.landmarks, lambda: self._prepare_source(image, face))

    def _prepare_source(self, image: np.ndarray, face: Face) -> ClassicSource:
        landmarks = face.landmarks
        assert landmarks is not None, "prepare_source checked it"
        points = landmarks.astype(np.float32).copy()
        height, width = image.shape[:2]
        margin = 0.25 * max(face.width, face.height)
        x0, y0 = (max(0, int(v - margin)) for v in points[:, :2].min(axis=0))
        x1 = min(width, int(np.max(points[:, 0]) + margin) + 1)
        y1 = min(height, int(np.max(points[:, 1]) + margin) + 1)
        texture = np.ascontiguousarray(image[y0:y1, x0:x1])
        points[:, 0] -= x0
        points[:, 1] -= y0
        scale = _TEXTURE_MAX_SIDE / max(texture.shape[:2])
        if scale < 1:
            texture = cv2.resize(texture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            points *= scale
        winding = {name: np.sign(signed_areas(points, tris)) for name, tris in _REGIONS.items()}
        size = face_size(points)
        lab, skin = clean_selfie(to_lab(texture), points, skin_mask(points, texture.shape[:2]), size)
        tone = SkinTone.of(lab, skin)
        # Its own light out (its colours stay), but for brows, eyes and lips, which keep their
        # lightness: the light's estimate over them is the skin's around them, and the dark
        # eye sockets under a brow would otherwise lighten the brow to white.
        features = cv2.GaussianBlur(feature_mask(points, texture.shape[:2]).astype(np.float32), (0, 0),
                                    max(1.0, 0.01 * size))
        lab[..., 0] -= shading(lab, skin, size)[..., 0] * (1.0 - features)
        # Taking the light out moves the skin's median a little (1-2 L*: the median of a
        # difference is not the difference of the medians); put it back at the tone, which
        # is where `relight` takes the face's skin to be.
        lab[..., 0] += tone.median[0] - SkinTone.of(lab, skin).median[0]
        return ClassicSource(lab, tone, points, mesh.eye_openness(points), mesh.mouth_openness(points), winding,
                             ShapeTransfer.for_source(points, self.shape_strength))

    def swap(
        self, frames: Sequence[np.ndarray], targets: Sequence[Sequence[Face]], source: ClassicSource
    ) -> list[np.ndarray]:
        """Swap a batch; frames are spread over threads (NumPy and OpenCV release the GIL)."""
        def swap_frame(frame: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
            out = frame.copy()
            for face in faces:
                self._swap_face(out, face, source)
            return out

        if self._pool is None or len(frames) == 1:
            return [swap_frame(f, t) for f, t in zip(frames, targets)]
        return list(self._pool.map(swap_frame, frames, targets))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def expression_plan(self, target: np.ndarray, source: ClassicSource) -> ExpressionPlan:
        """Where the selfie's pixels go, and whose eyes and mouth show (see the module text).

        The eyes always come from the selfie, for they carry most of who it is: a selfie eye
        less open than the template's (a blink, a squint, a look down) keeps its own shape
        rather than being stretched open, and a template eye that is shut stays shut (the
        selfie's lids take its shape)."""
        selfie_shaped = {
            name for name, src_open, dst_open in zip(("right_eye", "left_eye"), source.eyes, mesh.eye_openness(target))
            if src_open < 0.7 * dst_open
        }
        regions = ["skin", "right_eye", "left_eye"]
        keep_template = set()
        if mesh.mouth_openness(target) >= MOUTH_OPEN:
            keep_template.add("mouth")
        else:
            regions.append("mouth")
        return ExpressionPlan(regions, keep_template, selfie_shaped)

    def _swap_face(self, frame: np.ndarray, target: Face, source: ClassicSource) -> None:
        if target.landmarks is None:
            return
        info = target.frame_info
        if info is not None and info.blur >= BLURRED_FACE and face_size(target.landmarks) >= 2 * MIN_HALF_SIZE_FACE:
            self._swap_at_half_size(frame, target, source)
        else:
            self._paint_face(frame, target, source)

    def _swap_at_half_size(self, frame: np.ndarray, target: Face, source: ClassicSource) -> None:
        """An out-of-focus face (its template blur at least `BLURRED_FACE` px) shows no
        detail finer than two pixels: it is swapped in a half-size copy of the area the swap
        may change, and the change scaled back up (the compositing stage blurs it to the
        template's focus after). A quarter of the work, for the face behind the one in focus."""
        landmarks = target.landmarks
        assert landmarks is not None, "_swap_face skips faces without landmarks"
        height, width = frame.shape[:2]
        size = face_size(landmarks)
        (bx0, by0), (bx1, by1) = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
        x0, y0 = max(0, int(bx0 - 0.4 * size)), max(0, int(by0 - 0.2 * size))
        x1, y1 = min(width, int(bx1 + 0.4 * size) + 1), min(height, int(by1 + 0.7 * size) + 1)
        x1, y1 = x0 + (x1 - x0) // 2 * 2, y0 + (y1 - y0) // 2 * 2  # whole 2x2 cells
        if x1 - x0 < 8 or y1 - y0 < 8:
            return
        area = frame[y0:y1, x0:x1]
        small = cv2.resize(area, ((x1 - x0) // 2, (y1 - y0) // 2), interpolation=cv2.INTER_AREA)
        before = small.copy()
        self._paint_face(small, _halved(target, x0, y0), source)
        change = cv2.resize(cv2.subtract(small, before, dtype=cv2.CV_32F), (x1 - x0, y1 - y0),
                            interpolation=cv2.INTER_LINEAR)
        area[...] = cv2.add(area, change, dtype=cv2.CV_8U)

    def _paint_face(self, frame: np.ndarray, target: Face, source: ClassicSource) -> None:
        landmarks = target.landmarks
        assert landmarks is not None, "_swap_face skips faces without landmarks"
        plan = self.expression_plan(landmarks, source)
        dst = source.shape.apply(landmarks, plan.keep_template, plan.selfie_shaped)
        triangles = np.concatenate([_REGIONS[r] for r in plan.regions])
        winding = np.concatenate([source.winding[r] for r in plan.regions])
        warp = build_mesh_warp(source.points, dst, triangles, frame.shape[:2], dst[:, 2], winding)
        if warp is None:
            return
        h, w = warp.coverage.shape
        size = face_size(landmarks)
        light = target.frame_info.light if target.frame_info is not None else None
        if light is None:  # a track compiled without it: measure it on the frame
            light = FaceLight.measure(frame, landmarks)
        around = _around(warp, size, frame.shape[:2])
        ax0, ay0, ax1, ay1 = around
        area = frame[ay0:ay1, ax0:ax1]
        inner = (slice(warp.y0 - ay0, warp.y0 - ay0 + h), slice(warp.x0 - ax0, warp.x0 - ax0 + w))
        original = area[inner].astype(np.float32)
        template_tone = light.tone
        # A dim or bright scene is light, not tone: the selfie's skin takes the template's
        # exposure (told by the whites of its eyes, when they are open) before the tones meet.
        target_tone = tone_target(source.tone.exposed(exposure(light.white, float(template_tone.median[0]))),
                                  template_tone, self.tone_balance)
        if light.greyscale:
            target_tone[1:] = template_tone.median[1:]
        swapped = relight(warp.apply(source.texture), source.tone, light.shading_over(warp.x0, warp.y0, w, h),
                          target_tone)
        if light.greyscale:
            swapped[..., 1:] = 0
        face_in_area = np.zeros(area.shape[:2], np.uint8)
        face_in_area[inner] = warp.coverage
        points = landmarks[:, :2] - np.array([ax0, ay0], np.float32)
        change, carried = carry_tone_around(area, face_in_area, template_tone, target_tone - template_tone.median,
                                            size, eye_y=float(points[[33, 263], 1].mean()),
                                            nose_y=float(points[1, 1]))
        alpha = feathered_alpha(warp.coverage, feather=max(2.0, size / 14))[..., None]
        surround = original + change[inner]
        blended = surround + (to_rgb(swapped) - surround) * alpha
        around_face = carried > 1e-3
        around_face[inner] = False
        rows, cols = np.flatnonzero(around_face.any(axis=1)), np.flatnonzero(around_face.any(axis=0))
        if len(rows):
            box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            moved = cv2.add(area[box], change[box], dtype=cv2.CV_8U)  # rounded and saturated
            np.copyto(area[box], moved, where=around_face[box][..., None])
        # OpenCV takes a scalar as the second operand; its stubs want an array
        area[inner] = cv2.add(blended, 0.0, dtype=cv2.CV_8U)  # type: ignore[call-overload]


def _around(warp, size: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The swap's region grown to take in the neck and ears (whose skin takes the new tone)."""
    h, w = warp.coverage.shape
    x0, y0 = max(0, int(warp.x0 - 0.3 * size)), max(0, int(warp.y0 - 0.1 * size))
    x1, y1 = min(shape[1], int(warp.x0 + w + 0.3 * size)), min(shape[0], int(warp.y0 + h + 0.6 * size))
    return x0, y0, x1, y1


def _halved(face: Face, x0: int, y0: int) -> Face:
    """The face as seen in a half-size copy of the frame from (`x0`, `y0`) on (pixel centres
    lined up as `cv2.resize` places them), what the compile found about it scaled with it."""
    def half(points: np.ndarray) -> np.ndarray:
        moved = points.astype(np.float32).copy()
        moved[..., 0] = (moved[..., 0] - x0 + 0.5) / 2 - 0.5
        moved[..., 1] = (moved[..., 1] - y0 + 0.5) / 2 - 0.5
        if moved.shape[-1] > 2:
            moved[..., 2:] /= 2
        return moved

    info = face.frame_info
    if info is not None:
        region = FaceRegion((info.region.x0 - x0) / 2, (info.region.y0 - y0) / 2, info.region.side / 2)
        light = None if info.light is None else dataclasses.replace(info.light, region=region)
        info = dataclasses.replace(info, blur=info.blur / 2, region=region, light=light)
    assert face.landmarks is not None, "only faces with landmarks are swapped"
    box = half(face.box.reshape(2, 2)).reshape(4)
    return dataclasses.replace(face, box=box, kps=half(face.kps), landmarks=half(face.landmarks), frame_info=info)

