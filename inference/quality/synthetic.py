"""What the realism corpus draws over, around and onto its portraits, each with its known truth.

- `camera_path`: the similarity transforms of a hand-held camera (drift, a slow zoom, a little
  roll and shake), seeded, so a template has real motion and we know where every point went.
- Occluders drawn in front of a face, each returning the pixels it covers: a skin-coloured
  hand on its forearm (`draw_hand`), a microphone on its stick (`draw_microphone`), and
  strands of hair across the forehead (`draw_hair_strands`).
- Light: a hard side light with a shine spot (`side_light`), for a template (the output should
  follow it) or a selfie (the output should not carry it).
- Skin tone: a shift in Lab on the skin the mesh finds (`shift_skin_tone`); the darker and
  lighter selfies it makes are synthetic, not photos of people of those skin tones.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from memeswap.inference.quality.regions import FOREHEAD, face_hull_mask, face_width, features_mask


@dataclass(frozen=True)
class Placement:
    """Where a portrait's face goes in a frame: its centre, its width, its roll in degrees."""

    x: float
    y: float
    width: float
    roll: float = 0.0


def similarity(points: np.ndarray, to: Placement) -> np.ndarray:
    """The 2x3 matrix that puts the face of `points` (a portrait's mesh) at `to`."""
    centre = points[:, :2].mean(axis=0)
    scale = to.width / face_width(points)
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), to.roll, scale)
    matrix[:, 2] += np.array([to.x, to.y]) - centre
    return matrix


def move_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Mesh points through a 2x3 similarity; depth scales with it."""
    moved = points.astype(np.float32).copy()
    moved[:, :2] = points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    moved[:, 2] = points[:, 2] * float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    return moved


def camera_path(frames: int, size: tuple[int, int], face: float, seed: int,
                centre: tuple[float, float] = (0.5, 0.42)) -> list[Placement]:
    """A hand-held camera's path around a face `face` pixels wide in a `size` (width, height)
    frame: an elliptic drift of a tenth of the face, a 12 % zoom in, a roll of up to 4 degrees
    and a pixel or two of shake."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, frames)
    phase = rng.uniform(0, 2 * np.pi)
    shake: np.ndarray = rng.normal(0, 1.0, (frames, 2))
    shake = cv2.GaussianBlur(shake.astype(np.float32), (1, 5), 1.0)
    width, height = size
    return [Placement(x=centre[0] * width + 0.12 * face * np.cos(2 * np.pi * ti + phase) + shake[i, 0],
                      y=centre[1] * height + 0.07 * face * np.sin(2 * np.pi * ti + phase) + shake[i, 1],
                      width=face * (1 + 0.12 * ti), roll=4.0 * np.sin(2 * np.pi * ti + phase / 2))
            for i, ti in enumerate(t)]


def _paint(frame: np.ndarray, layer: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Paint `colour` (H, W, 3 float) where the anti-aliased `layer` (H, W uint8) is drawn."""
    alpha = layer.astype(np.float32)[..., None] / 255
    return np.clip(frame * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)


def _shaded(shape: tuple[int, ...], base: tuple[int, int, int], top: float, bottom: float,
            grain: float, rng: np.random.Generator) -> np.ndarray:
    """A colour field: `base` lit from `top` to `bottom` brightness, with a little grain."""
    ramp = np.linspace(top, bottom, shape[0], dtype=np.float32)[:, None, None]
    noise = cv2.GaussianBlur(rng.normal(0, grain, shape[:2]).astype(np.float32), (0, 0), 1.2)[..., None]
    return np.asarray(base, np.float32) * ramp + noise


def _rotate(offsets: np.ndarray, degrees: float) -> np.ndarray:
    theta = np.radians(degrees)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return offsets @ rotation.T


def draw_hand(frame: np.ndarray, centre: tuple[float, float], size: float, angle: float,
              rng: np.random.Generator, skin: tuple[int, int, int] = (214, 160, 128)) -> tuple[np.ndarray, np.ndarray]:
    """A hand (palm, four fingers of three tapering segments, a thumb of two) on its forearm,
    `size` pixels from wrist to finger tips, fingers pointing `angle` degrees from straight up
    (clockwise), the forearm running out of the frame. Each part is rounded by its shading
    (darker towards its edges), with grain and creases at the knuckles: a flat cut-out of a
    hand is not what a camera films, and MediaPipe's hand model does not see one. Returns the
    new frame and the bool mask of what the hand covers."""
    layer = np.zeros(frame.shape[:2], np.uint8)
    shift = 4  # sub-pixel precision of cv2's drawing
    scale = 1 << shift

    def point(offset) -> tuple[int, int]:
        x, y = _rotate(np.array([offset], np.float64) * size, angle)[0] + centre
        return int(round(x * scale)), int(round(y * scale))

    def segment(start, end, thick_start: float, thick_end: float) -> None:
        start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
        direction = end - start
        normal = np.array([-direction[1], direction[0]]) / (np.linalg.norm(direction) + 1e-9)
        corners = [start + normal * thick_start / 2, end + normal * thick_end / 2,
                   end - normal * thick_end / 2, start - normal * thick_start / 2]
        cv2.fillPoly(layer, [np.array([point(c) for c in corners], np.int32)], 255, cv2.LINE_AA, shift)
        for at, thick in ((start, thick_start), (end, thick_end)):
            cv2.circle(layer, point(at), int(thick / 2 * size * scale), 255, -1, cv2.LINE_AA, shift)

    palm = [(-0.2, -0.12), (0.21, -0.1), (0.22, 0.2), (0.1, 0.36), (-0.12, 0.36), (-0.22, 0.18)]
    cv2.fillPoly(layer, [np.array([point(p) for p in palm], np.int32)], 255, cv2.LINE_AA, shift)
    segment((0, 0.3), (0, 3.0), 0.36, 0.42)  # the forearm, out of the frame
    knuckles = []
    for x, length, spread, thick in ((-0.16, 0.38, -8, 0.085), (-0.055, 0.46, -3, 0.09),
                                     (0.055, 0.44, 2, 0.09), (0.16, 0.34, 8, 0.08)):
        base = np.array([x, -0.1])
        towards = np.array([np.sin(np.radians(spread)), -np.cos(np.radians(spread))])
        first = base + towards * length * 0.45
        second = first + towards * length * 0.3
        segment(base, first, thick, thick * 0.95)
        segment(first, second, thick * 0.95, thick * 0.88)
        segment(second, second + towards * length * 0.25, thick * 0.88, thick * 0.8)
        knuckles += [first, second]
    segment((0.2, 0.15), (0.34, -0.02), 0.12, 0.1)  # the thumb
    segment((0.34, -0.02), (0.44, -0.12), 0.1, 0.085)
    inside = cv2.distanceTransform((layer >= 128).astype(np.uint8), cv2.DIST_L2, 5)
    rounded = (0.7 + 0.35 * np.clip(inside / (0.04 * size), 0, 1))[..., None]
    colour = _shaded(frame.shape, skin, 1.0, 0.92, 4.0, rng) * rounded
    for knuckle in knuckles:
        cv2.circle(colour, point(knuckle), max(1, int(0.012 * size * scale)),
                   tuple(0.75 * float(v) for v in skin), -1, cv2.LINE_AA, shift)
    return _paint(frame, layer, colour), layer >= 128


def draw_microphone(frame: np.ndarray, head: tuple[float, float], size: float, tilt: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A hand-held microphone: a dark rounded head (`size` pixels tall) with a grille, a metal
    ring and a black stick running down out of the frame, leaning `tilt` degrees."""
    layer = np.zeros(frame.shape[:2], np.uint8)
    grille = np.zeros(frame.shape[:2], np.uint8)
    ring = np.zeros(frame.shape[:2], np.uint8)
    shift = 4
    scale = 1 << shift

    def point(offset) -> tuple[int, int]:
        x, y = _rotate(np.array([offset], np.float64) * size, tilt)[0] + head
        return int(round(x * scale)), int(round(y * scale))

    width = int(0.34 * size)
    cv2.line(layer, point((0, -0.15)), point((0, 0.15)), 255, 2 * width, cv2.LINE_AA, shift)  # rounded head
    cv2.line(ring, point((0, 0.42)), point((0, 0.5)), 255, int(0.5 * size), cv2.LINE_AA, shift)
    cv2.line(layer, point((0, 0.4)), point((0, 4.0)), 255, int(0.26 * size), cv2.LINE_AA, shift)  # the stick
    for step in np.arange(-0.45, 0.46, 0.09):
        cv2.line(grille, point((-0.5, step)), point((0.5, step)), 255, 1, cv2.LINE_AA, shift)
    layer = np.maximum(layer, ring)
    colour = _shaded(frame.shape, (46, 46, 50), 1.1, 0.8, 2.0, rng)
    head_mask = np.zeros_like(layer)
    cv2.line(head_mask, point((0, -0.15)), point((0, 0.15)), 255, 2 * width, cv2.LINE_AA, shift)
    colour += (np.minimum(grille, head_mask).astype(np.float32)[..., None] / 255) * 45
    colour = np.where(ring[..., None] >= 128, np.float32(150), colour)
    return _paint(frame, layer, colour), layer >= 128


def draw_hair_strands(frame: np.ndarray, points: np.ndarray, sway: float, rng: np.random.Generator,
                      count: int = 13, hair: tuple[int, int, int] = (62, 44, 30)) -> tuple[np.ndarray, np.ndarray]:
    """Strands of dark hair falling across the forehead of the face at `points`, swept to the
    image's right and swinging `sway` face widths sideways. The generator fixes their layout,
    so one seed gives the same fringe in every frame."""
    width = face_width(points)
    top = points[10, :2]
    brow_y = float(points[[105, 334], 1].mean())
    layer = np.zeros(frame.shape[:2], np.uint8)
    shift = 4
    scale = 1 << shift
    for start_x in np.linspace(-0.34, 0.26, count) + rng.normal(0, 0.015, count):
        start = top + np.array([start_x, -0.12]) * width
        end = np.array([top[0] + (start_x + 0.22 + sway) * width, brow_y + rng.uniform(-0.02, 0.12) * width])
        bend = (start + end) / 2 + np.array([-0.06, 0.02]) * width
        s = np.linspace(0, 1, 24)[:, None]
        curve = (1 - s) ** 2 * start + 2 * (1 - s) * s * bend + s ** 2 * end
        thickness = max(2, int(round(rng.uniform(0.022, 0.034) * width)))
        cv2.polylines(layer, [np.round(curve * scale).astype(np.int32)], False, 255, thickness, cv2.LINE_AA, shift)
    colour = _shaded(frame.shape, hair, 1.1, 0.9, 6.0, rng)
    return _paint(frame, layer, colour), layer >= 128


def side_light(image: np.ndarray, points: np.ndarray, lit: str, depth: float = 0.42,
               shine: float = 110.0) -> np.ndarray:
    """A hard light from one side: the image darkens across the face from its `lit` side
    ("left" or "right" of the image) to `depth` of its brightness on the other, and a white
    shine spot sits on the forehead, towards the light."""
    width = face_width(points)
    centre_x = float(points[:, 0].mean())
    xs = np.arange(image.shape[1], dtype=np.float32)
    across = np.clip((xs - (centre_x - 0.35 * width)) / (0.7 * width), 0, 1)
    across = across * across * (3 - 2 * across)  # smoothstep
    if lit == "right":
        across = 1 - across
    gain = (1 - (1 - depth) * across)[None, :, None]
    spot = points[FOREHEAD, :2] + np.array([-0.12 if lit == "left" else 0.12, -0.02]) * width
    ys, xs2 = np.mgrid[0:image.shape[0], 0:image.shape[1]].astype(np.float32)
    blob = np.exp(-((xs2 - spot[0]) ** 2 + ((ys - spot[1]) * 1.4) ** 2) / (2 * (0.075 * width) ** 2))
    inside = cv2.GaussianBlur(face_hull_mask(points, image.shape, 1.05).astype(np.float32), (0, 0), 0.03 * width)
    lit_image = image.astype(np.float32) * gain + (shine * blob * inside)[..., None]
    return np.clip(lit_image, 0, 255).astype(np.uint8)


def shift_skin_tone(image: np.ndarray, points: np.ndarray, lightness: float, warmth: float = 0.0) -> np.ndarray:
    """The face's skin recoloured in Lab: below 1, L* scaled by `lightness` (darker); above 1,
    L* moved towards 100 by the excess over 1 as a share of the way (lighter); the colour
    (a*, b*) toned down a little either way and b* (yellow) raised by `warmth`. Eyes, brows and
    lips are kept and the edge is feathered; the neck and ears keep their tone."""
    width = face_width(points)
    skin = face_hull_mask(points, image.shape, 1.02) & ~features_mask(points, image.shape)
    alpha = cv2.GaussianBlur(skin.astype(np.float32), (0, 0), 0.03 * width)[..., None]
    lab: np.ndarray = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    shifted = lab.copy()
    if lightness <= 1:
        shifted[..., 0] *= lightness
        shifted[..., 1:] *= 0.85
    else:
        shifted[..., 0] += (lightness - 1) * (100 - shifted[..., 0])
        shifted[..., 1:] *= 0.8
    shifted[..., 2] += warmth
    rgb = cv2.cvtColor(shifted, cv2.COLOR_Lab2RGB) * 255
    return np.clip(image * (1 - alpha) + rgb * alpha, 0, 255).astype(np.uint8)
