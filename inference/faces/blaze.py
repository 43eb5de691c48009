"""The parts MediaPipe's single-shot detectors share (BlazeFace; BlazePalm uses the same
pieces), re-implemented after MediaPipe's graph calculators so the converted models
(`mediapipe_models/`, made by `tools/mediapipe_to_onnx.py`) give MediaPipe's own results:
  - ImageToTensorCalculator: a rotated-rect crop (`warp_rect`);
  - SsdAnchorsCalculator (`ssd_anchors`);
  - NonMaxSuppressionCalculator, WEIGHTED (`weighted_nms`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from memeswap.inference.onnx_providers import create_small_session


def model_path(name: str) -> Path:
    """One of the converted MediaPipe models that ship inside this package."""
    return Path(str(files("memeswap.inference.faces") / "mediapipe_models" / f"{name}.onnx"))


def warp_rect(image: np.ndarray, center: tuple[float, float], size: tuple[float, float], angle: float,
              out: tuple[int, int], border: int) -> np.ndarray:
    """ImageToTensorCalculator's OpenCV path: map the corners of the rotated rect (pixels,
    angle in radians) onto the corners of an `out` (width, height) image."""
    src = cv2.boxPoints((center, size, float(np.degrees(angle)))).astype(np.float32)
    width, height = out
    dst = np.array([[0, height], [0, 0], [width, 0], [width, height]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(image, matrix, out, flags=cv2.INTER_LINEAR, borderMode=border, borderValue=(0, 0, 0))


def ssd_anchors(size: int, strides: list[int], interpolated: bool) -> np.ndarray:
    """SsdAnchorsCalculator with fixed_anchor_size and one aspect ratio: only the centres
    matter, (x, y) in [0, 1], one or two per cell and per layer of the same stride."""
    centres = []
    layer = 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        per_cell = (same - layer) * (2 if interpolated else 1)
        cells = -(-size // strides[layer])
        ys, xs = np.mgrid[0:cells, 0:cells].astype(np.float32)
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
        layer = same
    return np.concatenate(centres).astype(np.float32)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                  threshold: float = 0.3) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """NonMaxSuppressionCalculator, algorithm WEIGHTED: each kept detection is the score-weighted
    mean of every remaining box overlapping it by IoU > threshold (its own score is kept)."""
    order = list(np.argsort(-scores, kind="stable"))
    kept = []
    while order:
        top = order[0]
        rest = np.array(order)
        x1 = np.maximum(boxes[top, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[top, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[top, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[top, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        union = _area(boxes[top]) + _area(boxes[rest]) - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        close = rest[iou > threshold]
        weights = scores[close][:, None]
        box = (boxes[close] * weights).sum(0) / weights.sum() if len(close) else boxes[top]
        kps = (keypoints[close] * weights[:, :, None]).sum(0) / weights.sum() if len(close) else keypoints[top]
        kept.append((box, kps, float(scores[top])))
        order = [i for i, overlap in zip(order, iou) if overlap <= threshold]
    return kept


class BlazeDetector:
    """One BlazeFace-style model: the whole image letterboxed into its square input."""

    def __init__(self, path: Path, size: int, strides: list[int], interpolated: bool) -> None:
        self.session: ort.InferenceSession = create_small_session(path)
        self.input = self.session.get_inputs()[0].name
        self.size = size
        self.anchors = ssd_anchors(size, strides, interpolated)

    def detect(self, image: np.ndarray, min_score: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Boxes (x1, y1, x2, y2) and six keypoints in pixels, with scores, best first."""
        height, width = image.shape[:2]
        side = float(max(width, height))
        centre = (width / 2, height / 2)
        crop = warp_rect(image, centre, (side, side), 0.0, (self.size, self.size), cv2.BORDER_CONSTANT)
        tensor = crop.astype(np.float32)[None] * np.float32(2 / 255) - np.float32(1)
        regressors, logits = self.session.run(None, {self.input: tensor})
        scores = 1 / (1 + np.exp(-np.clip(logits[0, :, 0].astype(np.float64), -100, 100)))
        keep = scores >= min_score
        if not keep.any():
            return []
        raw, anchors, scores = regressors[0, keep] / self.size, self.anchors[keep], scores[keep]
        xy = raw[:, :2] + anchors
        boxes = np.concatenate([xy - raw[:, 2:4] / 2, xy + raw[:, 2:4] / 2], 1)
        keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None]
        # letterbox tensor coordinates [0, 1] -> image pixels
        offset = np.array([centre[0] - side / 2, centre[1] - side / 2], np.float32)
        return [(box * side + np.tile(offset, 2), kps * side + offset, score)
                for box, kps, score in weighted_nms(boxes, keypoints, scores)]




def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
