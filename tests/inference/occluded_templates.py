"""Templates with something in front of the face, drawn over built-in template frames, with
the masks of what was drawn (the ground truth the occluder tests measure against).

Everything is drawn here with OpenCV over the built-in templates (made from the public-domain
astronaut photo); no other image is needed.
"""

from pathlib import Path

import cv2
import numpy as np

from memeswap.inference.faces.face import Face
from memeswap.inference.media.encode import StreamingEncoder
from memeswap.inference.quality.synthetic import draw_hair_strands

SKIN = np.array([224, 178, 152], np.float32)  # about the astronaut's own cheek: the hardest hand to tell apart


def draw_hand(shape: tuple[int, int], wrist: np.ndarray, size: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """A flat open hand, fingers up, turned by `angle` degrees, wrist at `wrist`, `size` px from
    wrist to fingertips: its RGB (float32) and its coverage (float32 0..1, anti-aliased)."""
    height, width = shape
    scale = 4  # drawn 4x larger, then shrunk: smooth edges
    canvas = np.zeros((height * scale, width * scale), np.uint8)
    turn = np.radians(angle)
    up = np.array([np.sin(turn), -np.cos(turn)])
    side = np.array([np.cos(turn), np.sin(turn)])

    def at(along: float, across: float) -> tuple[int, int]:
        point = (np.asarray(wrist, np.float64) + up * along * size + side * across * size) * scale
        return int(round(point[0])), int(round(point[1]))

    palm_axes = (int(0.26 * size * scale), int(0.25 * size * scale))
    cv2.ellipse(canvas, at(0.3, 0.0), palm_axes, angle, 0, 360, 255, -1)
    thickness = int(0.11 * size * scale)
    for across, length in ((-0.19, 0.78), (-0.065, 0.92), (0.065, 0.88), (0.19, 0.72)):
        cv2.line(canvas, at(0.4, across), at(length, across * 1.15), 255, thickness)
        cv2.circle(canvas, at(length, across * 1.15), thickness // 2, 255, -1)
    cv2.line(canvas, at(0.25, -0.22), at(0.5, -0.45), 255, int(0.12 * size * scale))  # the thumb
    cv2.circle(canvas, at(0.5, -0.45), int(0.06 * size * scale), 255, -1)
    coverage = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    # skin: lit from the upper left, darker at the outline, with a fine texture
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 1.0 - 0.08 * ((xs - wrist[0]) * side[0] + (ys - wrist[1]) * side[1]) / size
    inner = cv2.GaussianBlur(coverage, (0, 0), max(1.0, 0.04 * size))
    texture = np.random.default_rng(3).normal(0, 3, (height, width)).astype(np.float32)
    rgb = SKIN[None, None] * (light * (0.75 + 0.25 * inner))[..., None] + texture[..., None]
    return np.clip(rgb, 0, 255), coverage


def draw_microphone(shape: tuple[int, int], head: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """A dark handheld microphone: a grille ball of `radius` at `head`, its handle going down."""
    height, width = shape
    scale = 4
    canvas = np.zeros((height * scale, width * scale), np.uint8)
    centre = (int(head[0] * scale), int(head[1] * scale))
    cv2.circle(canvas, centre, int(radius * scale), 255, -1)
    handle = np.array([[-0.45, 0.6], [0.45, 0.6], [0.3, 4.0], [-0.3, 4.0]]) * radius * scale + centre
    cv2.fillConvexPoly(canvas, handle.astype(np.int32), 255)
    coverage = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    grille = 40 + 25 * ((np.sin(xs * 1.3) * np.sin(ys * 1.3)) > 0)
    rgb = np.stack([grille, grille, grille + 5], axis=-1).astype(np.float32)
    return rgb, coverage


def over(frame: np.ndarray, rgb: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    out = frame.astype(np.float32) * (1 - coverage[..., None]) + rgb * coverage[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def hand_passing(frames: list[np.ndarray], faces: list[Face],
                 covered: range) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A hand raised over the lower left of the face (the image's left cheek and mouth corner)
    in the frames of `covered`, moving a little: the frames and each frame's true mask (bool)."""
    out, masks = [], []
    for index, (frame, face) in enumerate(zip(frames, faces)):
        if index not in covered:
            out.append(frame)
            masks.append(np.zeros(frame.shape[:2], bool))
            continue
        size = max(face.width, face.height)
        step = index - covered.start
        wrist = np.array([face.box[0] + 0.25 * size + 2 * step, face.box[3] + 0.45 * size])
        rgb, coverage = draw_hand(frame.shape[:2], wrist, 0.95 * size, angle=15.0)
        out.append(over(frame, rgb, coverage))
        masks.append(coverage >= 0.5)
    return out, masks


def microphone_held(frames: list[np.ndarray], faces: list[Face]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A microphone in front of the chin, in every frame: the frames and the true masks."""
    out, masks = [], []
    for frame, face in zip(frames, faces):
        size = max(face.width, face.height)
        chin = face.landmarks[152, :2] if face.landmarks is not None else face.center + (0, 0.45 * size)
        head = chin + np.array([0.1 * size, -0.04 * size])
        rgb, coverage = draw_microphone(frame.shape[:2], head, 0.12 * size)
        out.append(over(frame, rgb, coverage))
        masks.append(coverage >= 0.5)
    return out, masks


def write_template(frames: list[np.ndarray], path: Path, fps: int = 12) -> Path:
    with StreamingEncoder("mp4", fps=fps) as encoder:
        for frame in frames:
            encoder.write(frame)
        path.write_bytes(encoder.finish().data)
    return path


def fringe_over(frames: list[np.ndarray], faces: list[Face], seed: int = 4) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Strands of dark hair across the forehead in every frame, swinging a little (the realism
    corpus's fringe, `inference.quality.synthetic.draw_hair_strands`): the frames and the true masks."""
    out, masks = [], []
    for index, (frame, face) in enumerate(zip(frames, faces)):
        sway = 0.05 * np.sin(2 * np.pi * index / len(frames))
        made, mask = draw_hair_strands(frame, face.landmarks, sway, np.random.default_rng(seed))
        out.append(made)
        masks.append(mask)
    return out, masks
