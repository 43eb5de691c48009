"""The embedded default swapper: dense-mesh warp, lighting match and feathered blend.

It needs dense landmarks on both sides (the MediaPipe analyser gives 478 points) and no
model of its own, so it runs anywhere on the CPU. Expressions are handled per region:
the eye and mouth openings of the mesh are filled from the selfie only where the selfie's
eye or mouth is at least about as open as the template's; otherwise the template's own
open mouth (teeth, tongue) or open eyes show through, so a closed-mouth selfie is never
stretched over a laughing template.
"""

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from inference.errors import InputError
from inference.faces import mesh
from inference.faces.face import Face
from inference.swappers.blend import feathered_alpha, is_greyscale, match_lighting
from inference.swappers.mesh_warp import build_mesh_warp, signed_areas
from inference.swappers.shape_transfer import ShapeTransfer

_SKIN = mesh.skin_triangles()
_REGIONS = {
    "skin": _SKIN,
    "right_eye": np.array(mesh.RIGHT_EYE_FILL, np.int32),
    "left_eye": np.array(mesh.LEFT_EYE_FILL, np.int32),
    "mouth": np.array(mesh.MOUTH_FILL, np.int32),
}
_TEXTURE_MAX_SIDE = 640


@dataclass
class ClassicSource:
    """The selfie's face, cropped, with its mesh in crop coordinates."""

    texture: np.ndarray
    points: np.ndarray
    eyes: tuple[float, float]
    mouth: float
    winding: dict[str, np.ndarray]
    shape: ShapeTransfer


@dataclass
class ExpressionPlan:
    regions: list[str]  # mesh regions filled from the selfie
    keep_template: set[str]  # features whose template pixels show through
    selfie_shaped: set[str]  # features that take the selfie's shape, not the template's


class ClassicSwapper:
    name = "classic"

    def __init__(self, max_yaw_degrees: float = 30.0, shape_strength: float = 1.0, lighting_scale: float = 0.25,
                 threads: int | None = None) -> None:
        self.max_yaw_degrees = max_yaw_degrees
        self.lighting_scale = lighting_scale
        self.shape_strength = shape_strength
        threads = threads or min(4, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="swap") if threads > 1 else None

    def prepare(self) -> None:
        """Nothing to load: the classic swapper has no model."""

    def prepare_source(self, image: np.ndarray, face: Face) -> ClassicSource:
        if face.landmarks is None:
            raise InputError("this face analyser gives no dense landmarks; the classic swapper needs them")
        points = face.landmarks.astype(np.float32).copy()
        mesh.require_frontal(points, self.max_yaw_degrees)
        height, width = image.shape[:2]
        margin = 0.25 * max(face.width, face.height)
        x0, y0 = (max(0, int(v - margin)) for v in points[:, :2].min(axis=0))
        x1 = min(width, int(points[:, 0].max() + margin) + 1)
        y1 = min(height, int(points[:, 1].max() + margin) + 1)
        texture = np.ascontiguousarray(image[y0:y1, x0:x1])
        points[:, 0] -= x0
        points[:, 1] -= y0
        scale = _TEXTURE_MAX_SIDE / max(texture.shape[:2])
        if scale < 1:
            texture = cv2.resize(texture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            points *= scale
        winding = {name: np.sign(signed_areas(points, tris)) for name, tris in _REGIONS.items()}
        return ClassicSource(texture, points, mesh.eye_openness(points), mesh.mouth_openness(points), winding,
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

    def expression_plan(self, target: np.ndarray, source: ClassicSource) -> "ExpressionPlan":
        """Where the selfie's pixels go, and whose expression each eye and the mouth shows.

        Eyes always come from the selfie; a selfie eye less open than the template's
        (a blink, a squint) keeps its own shape, a template eye that is closed stays
        closed. The mouth follows the template: when the template's mouth is open wider
        than the selfie's, its own mouth (teeth, tongue) shows through the hole in the mesh.
        """
        selfie_shaped = {
            name for name, src_open, dst_open in zip(("right_eye", "left_eye"), source.eyes, mesh.eye_openness(target))
            if src_open < 0.7 * dst_open
        }
        regions = ["skin", "right_eye", "left_eye"]
        keep_template = set()
        if source.mouth >= 0.6 * mesh.mouth_openness(target):
            regions.append("mouth")
        else:
            keep_template.add("mouth")
        return ExpressionPlan(regions, keep_template, selfie_shaped)

    def _swap_face(self, frame: np.ndarray, target: Face, source: ClassicSource) -> None:
        if target.landmarks is None:
            return
        plan = self.expression_plan(target.landmarks, source)
        dst = source.shape.apply(target.landmarks, plan.keep_template, plan.selfie_shaped)
        triangles = np.concatenate([_REGIONS[r] for r in plan.regions])
        winding = np.concatenate([source.winding[r] for r in plan.regions])
        warp = build_mesh_warp(source.points, dst, triangles, frame.shape[:2], dst[:, 2], winding)
        if warp is None:
            return
        h, w = warp.coverage.shape
        region = frame[warp.y0:warp.y0 + h, warp.x0:warp.x0 + w]
        original = region.astype(np.float32)
        warped = warp.apply(source.texture).astype(np.float32)
        if is_greyscale(region):
            warped[:] = warped.mean(axis=2, keepdims=True)
        face_size = max(target.width, target.height)
        corrected = match_lighting(warped, original, warp.coverage, sigma=face_size * self.lighting_scale)
        alpha = feathered_alpha(warp.coverage, feather=max(2.0, face_size / 14))[..., None]
        blended = original + (corrected - original) * alpha
        region[:] = np.clip(blended, 0, 255).astype(np.uint8)
