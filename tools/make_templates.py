"""Generate memeswap's built-in meme template library.

Source material and licence
---------------------------
Only public-domain pictures go in (``NOTICE`` at the repository root lists each template's):

- ``skimage.data.astronaut()``, the NASA portrait of astronaut Eileen Collins (512x512 RGB)
  that ships with scikit-image: a work of the US federal government (NASA).
- ``inference/sample_photos/grace_hopper.jpg``, the US Navy portrait of Rear Admiral Grace
  M. Hopper (1984) that matplotlib ships as sample data: a work of the US federal government.
- Drawings of people from Openclipart, read from Debian's ``openclipart-png`` package
  (``apt-get install openclipart-png``; needed only here, at generation time): dedicated to
  the public domain.  Tracings of famous people are left out.

No other faces, no downloaded assets, no external fonts (text is drawn with Pillow's built-in
scalable font, ``PIL.ImageFont.load_default(size=N)``).  Each manifest names its sources
(``source``) and licence (``licence``).

Output layout (one folder per template)::

    <out>/<name>/template.mp4   base frames only; the face is never occluded here
    <out>/<name>/overlay.webp   optional lossless animated RGBA drawn OVER the swap
    <out>/<name>/manifest.json  name, title, tags, fps, loop, caption, ...

Captions are not burnt into anything: the engine renders ``caption`` at
``caption_position`` itself.

Each face in a frame is one similarity transform of its source picture
(``cv2.warpAffine`` with a 2x3 matrix), optionally colour graded; the astronaut's photo is
first lightly denoised (its film grain is what costs the most bits at CRF 12).  The matrices
are kept so overlay elements (sunglasses, lens flares, a spotlight) follow the
face exactly, and so every frame can be checked: the face box must stay inside
the frame and at least ``MIN_FACE_PX`` wide.

Usage::

    python tools/make_templates.py [--out templates/builtin] [--only NAME] [--verify]

``--verify`` decodes what was written and runs MediaPipe face detection on every
frame (as many faces as ``EXPECTED_FACES`` says), compiles each template as memeswap does
(one face track per face, each judged human) and counts the identities across the library
with dlib's face descriptors; ``--no-build`` verifies without regenerating.

The run is deterministic: all randomness comes from seeded generators, x264 runs
single-threaded with bit-exact flags.  The eye positions come from one MediaPipe
FaceMesh pass over each source picture, rounded to 0.1 px.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from memeswap.inference.faces.mediapipe_analyser import MediaPipeAnalyser

PUBLIC_DOMAIN_US = "public domain (a work of the US federal government)"
PUBLIC_DOMAIN_OPENCLIPART = "public domain (Openclipart's public-domain dedication)"


@dataclass(frozen=True)
class Credit:
    """One source picture of a template: what it is, where it comes from, its licence."""

    source: str
    licence: str


ASTRONAUT = Credit("NASA portrait of astronaut Eileen Collins, via scikit-image (skimage.data.astronaut)",
                   PUBLIC_DOMAIN_US)
HOPPER = Credit("US Navy portrait of Rear Admiral Grace M. Hopper (1984), via matplotlib's sample data "
                "(grace_hopper.jpg, also in inference/sample_photos/)", PUBLIC_DOMAIN_US)
OPENCLIPART_DIR = Path("/usr/share/openclipart/png/people")  # Debian's openclipart-png


def clipart_credit(file_name: str) -> Credit:
    return Credit(f"Openclipart drawing people/{file_name}, via Debian's openclipart-png",
                  PUBLIC_DOMAIN_OPENCLIPART)


GENERATED_BY = "composed by tools/make_templates.py"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "templates" / "builtin"
NOTICE_PATH = Path(__file__).resolve().parents[1] / "NOTICE"
EDGE_MARGIN_PX = 2.0  # ... and this far inside the frame edges
MAX_SECONDS = 3.0
MAX_SIDE = 512
NAME_RE = re.compile(r"^[a-z0-9-]{1,32}$")

Frame = np.ndarray  # HxWx3 uint8 RGB
Rgba = np.ndarray  # HxWx4 uint8 RGBA
Matrix = np.ndarray  # 2x3 float64, photo (or mirrored photo) -> output pixels


# --------------------------------------------------------------------------- #
# Source photo and face geometry
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class FaceGeometry:
    """Face landmarks of the source photo, in photo pixel coordinates."""

    eye_left: np.ndarray  # iris centre on the image's left (landmark 468)
    eye_right: np.ndarray  # iris centre on the image's right (landmark 473)
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the mesh

    @property
    def center(self) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        return np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])

    def mirrored(self, width: int) -> FaceGeometry:
        """The same face in the horizontally flipped photo."""
        x0, y0, x1, y1 = self.box
        flip = lambda p: np.array([width - 1 - p[0], p[1]])  # noqa: E731
        return FaceGeometry(
            eye_left=flip(self.eye_right),
            eye_right=flip(self.eye_left),
            box=(width - 1 - x1, y0, width - 1 - x0, y1),
        )


@functools.lru_cache(maxsize=1)
def raw_photo() -> Frame:
    from skimage import data

    img = np.ascontiguousarray(data.astronaut()[..., :3])
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    return img


@functools.lru_cache(maxsize=1)
def source_photo() -> Frame:
    """The photo with its film grain lightly removed: grain is what costs the
    most bits at CRF 12, and the face gets swapped out anyway."""
    return cv2.fastNlMeansDenoisingColored(raw_photo(), None, 4, 4, 7, 21)


@functools.lru_cache(maxsize=1)
def face_geometry() -> FaceGeometry:
    """Locate the face once with MediaPipe's FaceMesh (refined iris landmarks)."""
    points = mesh_analyser().face_mesh(raw_photo())
    if points is None:
        raise RuntimeError("FaceMesh found no face in the source photo")
    pts = points[:, :2].astype(np.float64)
    pts = np.round(pts, 1)  # so float noise between machines rarely shows
    x0, y0 = pts[:468].min(axis=0)
    x1, y1 = pts[:468].max(axis=0)
    return FaceGeometry(eye_left=pts[468], eye_right=pts[473], box=(x0, y0, x1, y1))


# --------------------------------------------------------------------------- #
# Camera: one similarity matrix per frame
# --------------------------------------------------------------------------- #


def camera(
    center: tuple[float, float] | np.ndarray,
    scale: float,
    angle_deg: float,
    out_size: tuple[int, int],
    src_size: tuple[int, int] = (512, 512),
    margin: float = 0.0,
) -> Matrix:
    """Matrix mapping photo -> output: photo point ``center`` lands in the middle
    of the output, magnified ``scale`` times and rotated ``angle_deg`` (clockwise
    on screen).  The centre is clamped so the (rotated) view stays on the photo,
    with room for a later shift of up to ``margin`` output pixels.
    """
    w, h = out_size
    sw, sh = src_size
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    hx = (w / 2 * abs(c) + h / 2 * abs(s) + margin) / scale  # half extent of the
    hy = (w / 2 * abs(s) + h / 2 * abs(c) + margin) / scale  # view, photo pixels
    cx, cy = float(center[0]), float(center[1])
    cx = (sw - 1) / 2 if 2 * hx > sw else min(max(cx, hx - 0.5), sw - 0.5 - hx)
    cy = (sh - 1) / 2 if 2 * hy > sh else min(max(cy, hy - 0.5), sh - 0.5 - hy)
    lin = scale * np.array([[c, -s], [s, c]])
    off = np.array([(w - 1) / 2, (h - 1) / 2]) - lin @ np.array([cx, cy])
    return np.hstack([lin, off[:, None]])


def shifted(m: Matrix, dx: float, dy: float) -> Matrix:
    """``m`` followed by a translation in output pixels."""
    out = m.copy()
    out[:, 2] += (dx, dy)
    return out


def compose(a: Matrix, b: Matrix) -> Matrix:
    """The affine map ``a(b(p))``."""
    a3 = np.vstack([a, [0, 0, 1]])
    b3 = np.vstack([b, [0, 0, 1]])
    return (a3 @ b3)[:2]


def apply(m: Matrix, pts: np.ndarray) -> np.ndarray:
    pts = np.atleast_2d(np.asarray(pts, dtype=np.float64))
    return pts @ m[:, :2].T + m[:, 2]


def warp(img: np.ndarray, m: Matrix, out_size: tuple[int, int]) -> np.ndarray:
    return cv2.warpAffine(
        img, m, out_size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101
    )


# --------------------------------------------------------------------------- #
# Small helpers: easing, drift, colour grading, drawing
# --------------------------------------------------------------------------- #


def lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def smoothstep(t: float) -> float:
    t = min(max(t, 0.0), 1.0)
    return t * t * (3 - 2 * t)


def ease_out(t: float, power: float = 3.0) -> float:
    t = min(max(t, 0.0), 1.0)
    return 1 - (1 - t) ** power


def drift(seed: int, n: int, amp: float, waves: int = 3) -> np.ndarray:
    """Smooth, deterministic 'handheld' wobble: n x 2 offsets within +-amp."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / max(n, 1)
    out = np.zeros((n, 2))
    for _ in range(waves):
        freq = rng.uniform(0.6, 2.5, size=2)
        phase = rng.uniform(0, 2 * math.pi, size=2)
        out += np.sin(2 * math.pi * freq * t + phase)
    return out * amp / waves


def to_float(img: Frame) -> np.ndarray:
    return img.astype(np.float32) / 255.0


def to_u8(img: np.ndarray) -> Frame:
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def vignette_mask(size: tuple[int, int], strength: float, power: float = 2.0) -> np.ndarray:
    """HxWx1 multiplier: 1 in the middle, 1-strength in the corners."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((xx - (w - 1) / 2) / (w / 2), (yy - (h - 1) / 2) / (h / 2)) / math.sqrt(2)
    return (1.0 - strength * r**power)[..., None]


def luminance(f: np.ndarray) -> np.ndarray:
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)  # Pillow's bundled scalable font


def blank_rgba(size: tuple[int, int]) -> Rgba:
    w, h = size
    return np.zeros((h, w, 4), dtype=np.uint8)


def draw_meme_text(
    canvas: Image.Image, xy: tuple[float, float], text: str, size: int, stroke: int
) -> None:
    """White text with a black outline, centred on ``xy``."""
    ImageDraw.Draw(canvas).text(
        xy, text, font=font(size), fill=(255, 255, 255, 255),
        stroke_width=stroke, stroke_fill=(0, 0, 0, 255), anchor="mm",
    )


# --------------------------------------------------------------------------- #
# Template model, checks and writer
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class FacePlacement:
    """Where one face of the photo lands in one output frame."""

    matrix: Matrix  # photo -> output pixels
    box: tuple[float, float, float, float]  # face box in photo pixels
    clip: tuple[float, float, float, float]  # region of the output it must stay in


@dataclass
class Template:
    name: str
    title: str
    tags: list[str]
    fps: int
    caption: str | None
    caption_position: str
    frames: list[Frame]
    faces: list[list[FacePlacement]]  # per frame, one entry per face
    overlay: list[Rgba] | None = None
    loop: bool = True
    credits: tuple[Credit, ...] = (ASTRONAUT,)
    min_face_px: float = 90.0  # every face box at least this wide in every frame

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.frames[0].shape[:2]
        return w, h

    @property
    def seconds(self) -> float:
        return len(self.frames) / self.fps

    def manifest(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "tags": self.tags,
            "fps": self.fps,
            "loop": self.loop,
            "caption": self.caption,
            "caption_position": self.caption_position,
            "media": "template.mp4",
            "overlay": "overlay.webp" if self.overlay is not None else None,
            "source": "; ".join([c.source for c in self.credits] + [GENERATED_BY]),
            "licence": "; ".join(dict.fromkeys(c.licence for c in self.credits)),
        }


def placements(
    matrices: list[Matrix], size: tuple[int, int], geo: FaceGeometry | None = None
) -> list[list[FacePlacement]]:
    """One face per frame, allowed anywhere in the frame."""
    geo = geo or face_geometry()
    w, h = size
    return [[FacePlacement(m, geo.box, (0.0, 0.0, float(w), float(h)))] for m in matrices]


def face_extent(p: FacePlacement, pad: float = 0.10) -> tuple[np.ndarray, float]:
    """Output corners of the padded face box, and the face's width in output px."""
    x0, y0, x1, y1 = p.box
    px, py = (x1 - x0) * pad, (y1 - y0) * pad
    corners = np.array(
        [[x0 - px, y0 - py], [x1 + px, y0 - py], [x1 + px, y1 + py], [x0 - px, y1 + py]]
    )
    scale = math.sqrt(abs(np.linalg.det(p.matrix[:, :2])))
    return apply(p.matrix, corners), (x1 - x0) * scale


def check_template(t: Template) -> None:
    """Fail loudly if a template breaks the library's rules."""
    w, h = t.size
    problems: list[str] = []
    if not NAME_RE.match(t.name):
        problems.append(f"bad name {t.name!r}")
    if w % 2 or h % 2 or max(w, h) > MAX_SIDE:
        problems.append(f"bad size {w}x{h}")
    if t.seconds > MAX_SECONDS + 1e-9:
        problems.append(f"too long: {t.seconds:.2f}s")
    if t.caption_position not in ("top", "bottom"):
        problems.append(f"bad caption_position {t.caption_position!r}")
    if len(t.faces) != len(t.frames):
        problems.append("faces/frames length mismatch")
    for i, f in enumerate(t.frames):
        if f.shape != (h, w, 3) or f.dtype != np.uint8:
            problems.append(f"frame {i}: shape {f.shape} {f.dtype}")
    if t.overlay is not None:
        if len(t.overlay) != len(t.frames):
            problems.append(f"overlay has {len(t.overlay)} frames, base {len(t.frames)}")
        for i, o in enumerate(t.overlay):
            if o.shape != (h, w, 4) or o.dtype != np.uint8:
                problems.append(f"overlay frame {i}: shape {o.shape} {o.dtype}")
    for i, faces in enumerate(t.faces):
        for j, p in enumerate(faces):
            corners, width = face_extent(p)
            cx0, cy0, cx1, cy1 = p.clip
            m = EDGE_MARGIN_PX
            if (corners[:, 0].min() < cx0 + m or corners[:, 1].min() < cy0 + m
                    or corners[:, 0].max() > cx1 - m or corners[:, 1].max() > cy1 - m):
                problems.append(f"frame {i} face {j}: cut by the frame edge {corners.round(1).tolist()}")
            if width < t.min_face_px:
                problems.append(f"frame {i} face {j}: only {width:.0f}px wide")
    if problems:
        raise ValueError(f"template {t.name}: " + "; ".join(problems[:8]))


def encode_mp4(frames: list[Frame], fps: int, path: Path) -> None:
    h, w = frames[0].shape[:2]
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", str(fps),
        "-i", "-",
        "-an", "-c:v", "libx264", "-preset", "slow", "-crf", "12", "-pix_fmt", "yuv444p",
        # swscale converts RGB -> YUV with the BT.601 matrix in limited range; say so
        "-colorspace", "smpte170m", "-color_range", "tv",
        "-r", str(fps), "-threads", "1", "-map_metadata", "-1",
        "-fflags", "+bitexact", "-flags:v", "+bitexact",
        "-movflags", "+faststart", str(path),
    ]
    data = b"".join(np.ascontiguousarray(f).tobytes() for f in frames)
    subprocess.run(cmd, input=data, check=True)


def frame_durations_ms(n: int, fps: int) -> list[int]:
    """Integer per-frame durations whose running sum tracks n/fps exactly."""
    edges = [round(i * 1000 / fps) for i in range(n + 1)]
    return [b - a for a, b in zip(edges, edges[1:])]


def write_overlay(frames: list[Rgba], fps: int, path: Path) -> None:
    # libwebp merges a frame identical to the previous one into a longer frame;
    # nudge the alpha of one corner pixel by 1 so every frame survives.
    kept: list[np.ndarray] = []
    for f in frames:
        f = f.copy()
        if kept and np.array_equal(f, kept[-1]):
            f[0, 0, 3] ^= 1
        kept.append(f)
    images = [Image.fromarray(f) for f in kept]  # HxWx4 uint8 -> RGBA
    images[0].save(
        path, format="WEBP", save_all=True, append_images=images[1:], lossless=True,
        quality=100, method=6, duration=frame_durations_ms(len(images), fps), loop=0,
    )
    with Image.open(path) as back:
        if back.n_frames != len(frames):
            raise RuntimeError(f"{path}: wrote {back.n_frames} frames, expected {len(frames)}")


def write_template(t: Template, out_root: Path) -> Path:
    check_template(t)
    folder = out_root / t.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    encode_mp4(t.frames, t.fps, folder / "template.mp4")
    if t.overlay is not None:
        write_overlay(t.overlay, t.fps, folder / "overlay.webp")
    (folder / "manifest.json").write_text(json.dumps(t.manifest(), indent=2) + "\n")
    return folder


# --------------------------------------------------------------------------- #
# Templates: one function each
# --------------------------------------------------------------------------- #

SQUARE = (480, 480)


def make_dramatic_zoom() -> Template:
    """Slow creep, then a sudden ease-in snap onto the face; tiny handheld drift."""
    geo, photo, fps, n = face_geometry(), source_photo(), 16, 48
    shake = drift(seed=11, n=n, amp=2.5)  # output pixels
    frames, mats = [], []
    for i in range(n):
        if i < 26:  # slow creep
            s = lerp(1.0, 1.12, (i / 25) ** 2)
        elif i < 34:  # the snap: accelerating, stops dead on the face
            s = lerp(1.12, 3.0, ((i - 25) / 8) ** 3)
        else:  # hold the stare
            s = 3.0
        m = shifted(camera(geo.center, s, 0.0, SQUARE, margin=3.0), *shake[i])
        f = to_float(warp(photo, m, SQUARE))
        k = smoothstep((s - 1.12) / 1.88)  # darken the edges as we close in
        f = f * vignette_mask(SQUARE, 0.55 * k) * (1 + 0.08 * k)
        frames.append(to_u8(f))
        mats.append(m)
    return Template("dramatic-zoom", "Dramatic Zoom", ["zoom", "dramatic", "reaction"],
                    fps, None, "bottom", frames, placements(mats, SQUARE))


def make_shake() -> Template:
    """'Triggered': violent seeded shake, slight zoom, pulsing red tint; red bar overlay."""
    geo, photo, fps, n = face_geometry(), source_photo(), 12, 18
    rng = np.random.default_rng(2024)
    offsets = rng.uniform(-10, 10, size=(n, 2))  # photo pixels
    angles = rng.uniform(-2.5, 2.5, size=n)
    zooms = 1.6 + rng.uniform(-0.04, 0.04, size=n)
    text_jitter = rng.integers(-4, 5, size=(n, 2))
    w, h = SQUARE
    bar_h = 76
    frames, mats, overlay = [], [], []
    for i in range(n):
        centre = np.array([geo.center[0], 170.0]) + offsets[i]
        m = camera(centre, zooms[i], angles[i], SQUARE)
        f = to_float(warp(photo, m, SQUARE))
        k = 0.55 + 0.25 * math.sin(2 * math.pi * i / 6)  # red pulse, 2 per second
        f[..., 0] = f[..., 0] * (1 + 0.25 * k) + 0.08 * k
        f[..., 1:] *= 1 - 0.4 * k
        frames.append(to_u8(f))
        mats.append(m)
        canvas = Image.new("RGBA", SQUARE, (0, 0, 0, 0))
        ImageDraw.Draw(canvas).rectangle([0, h - bar_h, w, h], fill=(214, 18, 18, 255))
        tx, ty = w / 2 + text_jitter[i, 0], h - bar_h / 2 + text_jitter[i, 1]
        draw_meme_text(canvas, (tx, ty), "TRIGGERED", size=58, stroke=3)
        overlay.append(np.asarray(canvas))
    clip_h = float(h - bar_h)  # the face must stay above the bar
    faces = [[FacePlacement(m, geo.box, (0.0, 0.0, float(w), clip_h))] for m in mats]
    return Template("shake", "Triggered", ["triggered", "shake", "angry", "rage"],
                    fps, None, "top", frames, faces, overlay)


# "Deal with it" pixel-art sunglasses: X black, w white glint, . transparent.
SUNGLASSES = [
    "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "...XXXXXXXXXXXXXXXXXXXXXXXXXX...",
    "...XwwXXXXXXXXX..XwwXXXXXXXXX...",
    "...XXwwXXXXXXXX..XXwwXXXXXXXX...",
    "....XXXXXXXXXX....XXXXXXXXXX....",
    ".....XXXXXXXX......XXXXXXXX.....",
]


def sunglasses_sprite() -> tuple[Rgba, np.ndarray, np.ndarray]:
    """RGBA sprite (1 px per cell) and the cell coordinates of its lens centres."""
    rows = SUNGLASSES
    width = len(rows[0])
    assert all(len(r) == width for r in rows)
    sprite = np.zeros((len(rows), width, 4), dtype=np.uint8)
    colours = {"X": (8, 8, 8, 255), "w": (255, 255, 255, 255)}
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            if ch in colours:
                sprite[y, x] = colours[ch]
    lens_l = np.array([8.5, 2.6])
    lens_r = np.array([22.5, 2.6])
    return sprite, lens_l, lens_r


def sprite_to_photo(lens_l: np.ndarray, lens_r: np.ndarray, eye_l: np.ndarray,
                    eye_r: np.ndarray) -> Matrix:
    """Similarity mapping sprite cells -> photo so the lenses sit on the irises."""
    d_sprite = lens_r - lens_l
    d_photo = eye_r - eye_l
    scale = np.linalg.norm(d_photo) / np.linalg.norm(d_sprite)
    ang = math.atan2(d_photo[1], d_photo[0]) - math.atan2(d_sprite[1], d_sprite[0])
    c, s = math.cos(ang) * scale, math.sin(ang) * scale
    lin = np.array([[c, -s], [s, c]])
    return np.hstack([lin, (eye_l - lin @ lens_l)[:, None]])


def render_sprite(sprite: Rgba, m: Matrix, size: tuple[int, int]) -> Rgba:
    return cv2.warpAffine(sprite, m, size, flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))


def make_deal_with_it() -> Template:
    """Slow zoom; pixel sunglasses slide down from the top and land on the eyes."""
    geo, photo, fps, n = face_geometry(), source_photo(), 12, 30
    sprite, lens_l, lens_r = sunglasses_sprite()
    g = sprite_to_photo(lens_l, lens_r, geo.eye_left, geo.eye_right)
    land = 18  # frame on which the glasses arrive; then everything holds still
    frames, mats, overlay = [], [], []
    for i in range(n):
        s = lerp(1.15, 1.5, min(i / land, 1.0))
        m = camera((geo.center[0], 150.0), s, 0.0, SQUARE)
        frames.append(warp(photo, m, SQUARE))
        mats.append(m)
        a = compose(m, g)  # sprite -> output, following the camera exactly
        sh, sw = sprite.shape[:2]
        edges = [[-0.5, -0.5], [sw - 0.5, -0.5], [sw - 0.5, sh - 0.5], [-0.5, sh - 0.5]]
        start = -apply(a, edges)[:, 1].max() - 2  # starts fully above the top edge
        drop = lerp(start, 0.0, min(i / land, 1.0))  # classic constant-speed slide
        overlay.append(render_sprite(sprite, shifted(a, 0.0, round(drop)), SQUARE))
    return Template("deal-with-it", "Deal With It", ["sunglasses", "cool", "deal with it"],
                    fps, "DEAL WITH IT", "bottom", frames, placements(mats, SQUARE), overlay)


def make_wobble() -> Template:
    """Head sways like a metronome (about +-22 degrees) with a bob on every swing."""
    geo, photo, fps, n = face_geometry(), source_photo(), 12, 18
    frames, mats = [], []
    for i in range(n):
        t = i / n  # loops seamlessly: two full swings
        ang = 22.0 * math.sin(2 * math.pi * 2 * t)
        bob = 7.0 * math.cos(2 * math.pi * 4 * t)
        s = 1.55 + 0.04 * math.cos(2 * math.pi * 4 * t)
        m = camera((geo.center[0], 185.0 + bob), s, ang, SQUARE)
        frames.append(warp(photo, m, SQUARE))
        mats.append(m)
    return Template("wobble", "Wobble", ["vibing", "dance", "wobble"],
                    fps, "VIBING", "bottom", frames, placements(mats, SQUARE))


def make_bounce() -> Template:
    """Scale punch on every beat: 4 beats in 3 s (80 bpm), with a brightness kick."""
    geo, photo, fps, n = face_geometry(), source_photo(), 12, 36
    beat = n // 4
    frames, mats = [], []
    for i in range(n):
        k = i // beat
        phase = (i % beat) / beat
        env = math.exp(-9.0 * phase)  # sharp attack, quick decay ...
        env = env if env > 0.1 else 0.0  # ... then rest exactly (cheap to encode)
        s = 1.45 * (1 + 0.2 * env)
        ang = (3.0 if k % 2 else -3.0) * env
        m = camera((geo.center[0], 140.0), s, ang, SQUARE)
        f = to_float(warp(photo, m, SQUARE)) * (1 + 0.18 * env)
        frames.append(to_u8(f))
        mats.append(m)
    return Template("bounce", "Bounce", ["beat", "bounce", "music", "dance"],
                    fps, "WHEN THE BEAT DROPS", "top", frames, placements(mats, SQUARE))


def make_pan() -> Template:
    """The camera pans across the photo and back: the face travels side to side."""
    photo, fps, n = source_photo(), 12, 36
    size = (480, 360)
    frames, mats = [], []
    for i in range(n):
        u = 0.5 - 0.5 * math.cos(2 * math.pi * i / n)  # 0 -> 1 -> 0, eased
        m = camera((lerp(150.0, 318.0, u), 135.0), 1.6, 0.0, size)
        frames.append(warp(photo, m, size))
        mats.append(m)
    return Template("pan", "Pan", ["pan", "camera", "sneaky"],
                    fps, None, "bottom", frames, placements(mats, size))


def deep_fry(frame: Frame) -> Frame:
    """Over-saturate, crush contrast, over-sharpen, shift hue, then JPEG-crunch."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + 6) % 180  # ~12 degree hue shift
    hsv[..., 1] = np.clip(hsv[..., 1] * 2.3 + 20, 0, 255)
    hsv[..., 2] = np.clip((hsv[..., 2] - 128) * 1.4 + 138, 0, 255)
    rgb = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    blur = cv2.GaussianBlur(rgb, (0, 0), 2.0)
    rgb = cv2.addWeighted(rgb, 2.4, blur, -1.4, 0)
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    for quality in (9, 14):
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        small = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def lens_flare(size: tuple[int, int], centres: np.ndarray, radius: float) -> Rgba:
    """Glowing red 'deep fried' eyes: soft glow, hot core, four-point star."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha = np.zeros((h, w), np.float32)
    core = np.zeros((h, w), np.float32)
    for cx, cy in centres:
        dx, dy = xx - cx, yy - cy
        r = np.hypot(dx, dy)
        glow = np.exp(-((r / radius) ** 2))
        star = (np.exp(-np.abs(dy) / (0.06 * radius)) * np.exp(-np.abs(dx) / (1.3 * radius))
                + np.exp(-np.abs(dx) / (0.06 * radius)) * np.exp(-np.abs(dy) / (1.0 * radius)))
        alpha = np.maximum(alpha, np.maximum(glow, 0.9 * star))
        core = np.maximum(core, np.exp(-((r / (0.3 * radius)) ** 2)))
    rgb = np.stack([np.ones_like(core), 0.15 + 0.85 * core, 0.1 + 0.9 * core], axis=-1)
    out = np.concatenate([rgb, np.clip(alpha, 0, 1)[..., None]], axis=-1)
    out = (out * 255 + 0.5).astype(np.uint8)
    out[..., :3][out[..., 3] < 4] = 0
    out[..., 3][out[..., 3] < 4] = 0
    return out


def make_deep_fried() -> Template:
    """Deep-fried colours, a zoom punch on frame 8, then glowing red eyes."""
    geo, photo, fps, n = face_geometry(), source_photo(), 12, 24
    punch = 8
    jitter = np.random.default_rng(77).uniform(-8, 8, size=(n, 2))
    frames, mats, overlay = [], [], []
    for i in range(n):
        s = 1.15 if i < punch else lerp(1.15, 2.4, ease_out((i - punch + 1) / 2))
        m = camera((geo.center[0], 115.0), s, 0.0, SQUARE, margin=12.0)
        if punch <= i < punch + 4:  # impact shake, dying out
            m = shifted(m, *(jitter[i] * (1 - (i - punch) / 4)))
        frames.append(deep_fry(warp(photo, m, SQUARE)))
        mats.append(m)
        if i < punch:
            overlay.append(blank_rgba(SQUARE))
        else:
            eyes = apply(m, [geo.eye_left, geo.eye_right])
            flicker = 1.0 + (0.25 * math.sin(i * 2.1) if i < punch + 4 else 0.0)
            overlay.append(lens_flare(SQUARE, eyes, radius=11.0 * s * flicker))
    return Template("deep-fried", "Deep Fried", ["deep fried", "coffee", "hyper", "cursed"],
                    fps, "ME AFTER ONE COFFEE", "top", frames, placements(mats, SQUARE), overlay)


def make_noir() -> Template:
    """Black-and-white film look, heavy vignette, slow push-in."""
    geo, photo, fps, n = face_geometry(), source_photo(), 12, 24
    vig = vignette_mask(SQUARE, 0.75, power=1.6)
    frames, mats = [], []
    for i in range(n):
        s = lerp(1.0, 1.75, smoothstep(i / (n - 1)))
        m = camera((geo.center[0], 140.0), s, 0.0, SQUARE)
        y = luminance(to_float(warp(photo, m, SQUARE)))
        y = np.clip((y - 0.5) * 1.25 + 0.5, 0, 1)
        y = 0.4 * y + 0.6 * y * y * (3 - 2 * y)  # S-curve
        frames.append(to_u8(np.repeat(y[..., None], 3, axis=2) * vig))
        mats.append(m)
    return Template("noir", "Noir", ["noir", "black and white", "detective", "dramatic"],
                    fps, "THE PLOT THICKENS", "bottom", frames, placements(mats, SQUARE))


def make_duo() -> Template:
    """Two faces: the photo and its mirror image side by side, drifting apart/together."""
    geo, photo, fps, n = face_geometry(), source_photo(), 12, 24
    mirror = np.ascontiguousarray(photo[:, ::-1])
    geo_m = geo.mirrored(photo.shape[1])
    size, panel, gap = (480, 320), (240, 320), 2
    frames, faces = [], []
    for i in range(n):
        u = math.sin(2 * math.pi * i / n)
        v = math.cos(2 * math.pi * i / n)
        # mirror-image motion: the two faces sway apart and back together
        m_l = camera((geo.center[0] + 10 * u, 178.0 + 5 * v), 1.15, 0.0, panel)
        m_r = shifted(camera((geo_m.center[0] - 10 * u, 178.0 + 5 * v), 1.15, 0.0, panel),
                      panel[0], 0)
        left = warp(photo, m_l, panel)
        right = warp(mirror, shifted(m_r, -panel[0], 0), panel)
        frame = np.hstack([left, right])
        frame[:, panel[0] - gap: panel[0] + gap] = (12, 12, 12)
        frames.append(frame)
        faces.append([
            FacePlacement(m_l, geo.box, (0.0, 0.0, float(panel[0] - gap), float(size[1]))),
            FacePlacement(m_r, geo_m.box, (float(panel[0] + gap), 0.0, float(size[0]), float(size[1]))),
        ])
    return Template("duo", "Duo", ["two faces", "twins", "mirror", "duo"],
                    fps, "ME AND WHO?", "bottom", frames, faces)


def spotlight_overlay(size: tuple[int, int], centre: np.ndarray, radius: float) -> Rgba:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(xx - centre[0], yy - centre[1])
    lit = 1.0 - np.clip((r - radius) / 28.0, 0.0, 1.0)
    lit = lit * lit * (3 - 2 * lit)
    out = blank_rgba(size)
    out[..., 3] = (8 * np.round(29 * (1.0 - lit))).astype(np.uint8)  # steps of 8 compress well
    return out


def make_spotlight() -> Template:
    """Dark stage: a spotlight sweeps around, finds the face and stays on it."""
    geo, photo, fps, n = face_geometry(), source_photo(), 12, 30
    find = 18  # frame on which the light settles on the face
    s = 1.35  # the stage (base) holds still; only the light moves
    frames, mats, overlay = [], [], []
    for i in range(n):
        m = camera((geo.center[0], 160.0), s, 0.0, SQUARE)
        frames.append(warp(photo, m, SQUARE))
        mats.append(m)
        face = apply(m, [geo.center])[0]
        t = i / find
        wander = np.array([240 + 170 * math.sin(2 * math.pi * 0.9 * t + 2.2),
                           250 + 120 * math.sin(2 * math.pi * 1.4 * t)])
        k = smoothstep((i - find + 6) / 6)
        centre = (1 - k) * wander + k * face
        radius = lerp(105.0, 100.0, k)
        overlay.append(spotlight_overlay(SQUARE, centre, radius))
    return Template("spotlight", "Spotlight", ["spotlight", "stage", "guilty", "busted"],
                    fps, "WHO DID THIS?", "bottom", frames, placements(mats, SQUARE), overlay)


def gradient_map(lum: np.ndarray, stops: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    xs = [p for p, _ in stops]
    return np.stack(
        [np.interp(lum, xs, [c[ch] / 255.0 for _, c in stops]) for ch in range(3)], axis=-1
    ).astype(np.float32)


def make_vaporwave() -> Template:
    """Pink/cyan grading and RGB split, a dreamy slow float; scanline overlay."""
    geo, photo, fps, n = face_geometry(), source_photo(), 12, 30
    stops = [(0.0, (35, 0, 80)), (0.45, (255, 70, 190)), (1.0, (110, 250, 255))]
    w, h = SQUARE
    scan = blank_rgba(SQUARE)
    scan[::3, :, 3] = 46  # faint CRT scanlines
    frames, mats = [], []
    for i in range(n):
        t = i / n  # loops seamlessly: a slow figure-of-eight float
        centre = (geo.center[0] + 10 * math.sin(2 * math.pi * t),
                  150.0 + 6 * math.sin(4 * math.pi * t))
        m = camera(centre, 1.45, 0.0, SQUARE)
        f = to_float(warp(photo, m, SQUARE))
        graded = 0.72 * gradient_map(luminance(f), stops) + 0.28 * f
        split = graded.copy()
        split[:, 4:, 0] = graded[:, :-4, 0]  # red fringe to the right
        split[:, :-4, 2] = graded[:, 4:, 2]  # blue fringe to the left
        frames.append(to_u8(split))
        mats.append(m)
    overlay = [scan] * n
    return Template("vaporwave", "Vaporwave", ["vaporwave", "aesthetic", "retro", "80s"],
                    fps, "A E S T H E T I C", "bottom", frames, placements(mats, SQUARE), overlay)


# --------------------------------------------------------------------------- #
# More faces: Grace Hopper's portrait and Openclipart drawings of people
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Portrait:
    """A source picture with one face: premultiplied RGBA (float32, 0..1) and its face geometry.

    Photos are opaque; Openclipart drawings keep their transparent background, so a scene can
    stand them in front of anything."""

    rgba: np.ndarray
    geo: FaceGeometry
    credit: Credit

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.rgba.shape[:2]
        return w, h


@functools.lru_cache(maxsize=1)
def mesh_analyser() -> MediaPipeAnalyser:
    from memeswap.inference.faces.mediapipe_analyser import MediaPipeAnalyser

    return MediaPipeAnalyser()


def geometry_of(rgb: Frame) -> FaceGeometry:
    points = mesh_analyser().face_mesh(rgb)
    if points is None:
        raise RuntimeError("FaceMesh found no face in a source picture")
    pts = np.round(points[:, :2].astype(np.float64), 1)
    x0, y0 = pts[:468].min(axis=0)
    x1, y1 = pts[:468].max(axis=0)
    return FaceGeometry(eye_left=pts[468], eye_right=pts[473], box=(x0, y0, x1, y1))


def opaque(rgb: Frame) -> np.ndarray:
    f = to_float(rgb)
    return np.concatenate([f, np.ones_like(f[..., :1])], axis=-1)


@functools.cache
def portrait(key: str) -> Portrait:
    """The astronaut, Grace Hopper, or an Openclipart drawing by file name."""
    if key == "astronaut":
        return Portrait(opaque(source_photo()), face_geometry(), ASTRONAUT)
    if key == "hopper":
        path = Path(__file__).resolve().parents[1] / "inference" / "sample_photos" / "grace_hopper.jpg"
        rgb = np.asarray(Image.open(path).convert("RGB"))
        rgb = cv2.fastNlMeansDenoisingColored(rgb, None, 4, 4, 7, 21)
        return Portrait(opaque(rgb), geometry_of(rgb), HOPPER)
    path = OPENCLIPART_DIR / key
    if not path.is_file():
        raise SystemExit(f"{path} is missing: `apt-get install openclipart-png` (generation only)")
    rgba = np.asarray(Image.open(path).convert("RGBA")).astype(np.float32) / 255.0
    rgba = fill_holes(rgba)
    rgba[..., :3] *= rgba[..., 3:]  # premultiplied: warps then blend without dark fringes
    grey = rgba[..., :3] + (1 - rgba[..., 3:]) * 0.8
    return Portrait(rgba, geometry_of(to_u8(grey)), clipart_credit(key))


def fill_holes(rgba: np.ndarray) -> np.ndarray:
    """Make see-through gaps inside a drawing (not connected to its border) opaque, filled
    from the colours around them, so the scene behind never shows through a face."""
    h, w = rgba.shape[:2]
    clear = (rgba[..., 3] < 0.5).astype(np.uint8)
    outside = np.zeros((h + 2, w + 2), np.uint8)
    for x, y in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)):
        if clear[y, x] and not outside[y + 1, x + 1]:
            cv2.floodFill(clear, outside, (x, y), 2, flags=4 | (1 << 8))
    inside = outside[1:-1, 1:-1] == 0
    holes = (inside & (rgba[..., 3] < 0.99)).astype(np.uint8)
    out = rgba.copy()
    filled = cv2.inpaint(to_u8(rgba[..., :3]), holes, 3, cv2.INPAINT_TELEA)
    a = out[..., 3:]
    mixed = out[..., :3] * a + to_float(filled) * (1 - a)
    out[..., :3] = np.where(inside[..., None], mixed, out[..., :3])
    out[..., 3] = np.where(inside, 1.0, out[..., 3])
    return out


def paste(base: np.ndarray, who: Portrait, m: Matrix) -> np.ndarray:
    """``base`` (HxWx3 float) with the portrait warped by ``m`` laid over it."""
    h, w = base.shape[:2]
    layer = cv2.warpAffine(who.rgba, m, (w, h), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    layer = np.clip(layer, 0.0, 1.0)
    return base * (1 - layer[..., 3:]) + layer[..., :3]


def photo_view(who: Portrait, m: Matrix, size: tuple[int, int]) -> np.ndarray:
    """An opaque photo filling the whole frame (edges reflected), as float RGB."""
    return warp(who.rgba[..., :3], m, size)


def look_at(who: Portrait, face_width: float, centre: tuple[float, float], angle_deg: float = 0.0,
            mirror: bool = False) -> Matrix:
    """Matrix putting the portrait's face ``face_width`` px wide with its centre at ``centre``."""
    geo = who.geo
    x0, _, x1, _ = geo.box
    s = face_width / (x1 - x0)
    a = math.radians(angle_deg)
    c, sn = math.cos(a) * s, math.sin(a) * s
    lin = np.array([[c, -sn], [sn, c]])
    if mirror:
        lin = lin @ np.array([[-1.0, 0.0], [0.0, 1.0]])
    off = np.asarray(centre, dtype=np.float64) - lin @ geo.center
    return np.hstack([lin, off[:, None]])


def place(who: Portrait, m: Matrix, clip: tuple[float, float, float, float]) -> FacePlacement:
    return FacePlacement(m, who.geo.box, clip)


def full(size: tuple[int, int]) -> tuple[float, float, float, float]:
    return (0.0, 0.0, float(size[0]), float(size[1]))


def vertical_gradient(size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    w, h = size
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    a = np.array(top, np.float32) / 255
    b = np.array(bottom, np.float32) / 255
    return np.broadcast_to(a * (1 - t) + b * t, (h, w, 3)).copy()


def rays(size: tuple[int, int], centre: tuple[float, float], count: int, turn: float,
         a: tuple[int, int, int], b: tuple[int, int, int]) -> np.ndarray:
    """A sunburst of ``count`` alternating rays around ``centre``, turned by ``turn`` radians."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = np.arctan2(yy - centre[1], xx - centre[0]) + turn
    k = (np.sin(ang * count) > 0).astype(np.float32)[..., None]
    k = cv2.GaussianBlur(k, (0, 0), 0.8)[..., None]
    return np.array(a, np.float32) / 255 * k + np.array(b, np.float32) / 255 * (1 - k)


def text_layer(size: tuple[int, int], items: list[tuple[tuple[float, float], str, int, tuple, int]]) -> Image.Image:
    """RGBA layer of centred texts: ((x, y), text, size, fill RGBA, stroke width)."""
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for xy, text, px, fill, stroke in items:
        draw.text(xy, text, font=font(px), fill=fill, stroke_width=stroke, stroke_fill=(0, 0, 0, 255), anchor="mm")
    return canvas


def over(base: np.ndarray, layer: Image.Image | np.ndarray) -> np.ndarray:
    """Straight-alpha RGBA (PIL or uint8 array) laid over a float RGB frame."""
    arr = np.asarray(layer).astype(np.float32) / 255
    return base * (1 - arr[..., 3:]) + arr[..., :3] * arr[..., 3:]


def make_surprised() -> Template:
    """'Dun dun dun': three hard zoom cuts onto Grace Hopper's face, each with a jolt."""
    who, fps, n = portrait("hopper"), 12, 30
    steps = [(0, 1.0), (7, 1.22), (14, 1.45), (21, 1.7)]  # (first frame, zoom)
    jolt = np.random.default_rng(5).uniform(-6, 6, size=(n, 2))
    size = (432, 432)
    frames, faces = [], []
    for i in range(n):
        start, s = max((st for st in steps if st[0] <= i), key=lambda st: st[0])
        since = i - start
        m = camera(who.geo.center + (0, 18 / s), s * 0.85, 0.0, size, who.size, margin=8.0)
        if start and since < 3:
            m = shifted(m, *(jolt[i] * (1 - since / 3)))
        k = (s - 1.0) / 0.7
        f = photo_view(who, m, size) * vignette_mask(size, 0.6 * k) * (1 + 0.06 * k)
        frames.append(to_u8(f))
        faces.append([place(who, m, full(size))])
    return Template("surprised", "Wait, What?", ["surprised", "shocked", "zoom", "reaction", "dun dun dun"],
                    fps, "WAIT, WHAT?", "bottom", frames, faces, credits=(HOPPER,))


def make_breaking_news() -> Template:
    """A news broadcast: Grace Hopper on camera, a lower third, a blinking LIVE badge and a scrolling ticker."""
    who, fps, n = portrait("hopper"), 12, 36
    size = (480, 360)
    w, h = size
    band_top = h - 96
    ticker_text = "EXPERTS BAFFLED  +++  MORE AT ELEVEN  +++  SOURCES CONFIRM: IT HAPPENED  +++  "
    period = math.ceil(font(17).getlength(ticker_text))
    ticker = Image.new("RGBA", (period, 26), (0, 0, 0, 0))
    ImageDraw.Draw(ticker).text((0, 13), ticker_text, font=font(17), fill=(255, 255, 255, 255), anchor="lm")
    ticker_arr = np.tile(np.asarray(ticker), (1, math.ceil(w / period) + 1, 1))  # seamless when scrolled
    frames, faces, overlay = [], [], []
    for i in range(n):
        m = camera(who.geo.center + (-40, 60), 0.86, 0.0, size, who.size)  # a camera on a tripod
        frames.append(to_u8(photo_view(who, m, size)))
        faces.append([place(who, m, (0.0, 0.0, float(w), float(band_top)))])
        canvas = Image.new("RGBA", size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(canvas)
        draw.rectangle([0, band_top, w, band_top + 30], fill=(200, 16, 30, 255))
        draw.text((12, band_top + 15), "BREAKING NEWS", font=font(20), fill=(255, 255, 255, 255), anchor="lm")
        draw.rectangle([0, band_top + 30, w, h - 26], fill=(245, 245, 245, 255))
        draw.text((12, band_top + 50), "LOCAL PERSON DOES THE THING", font=font(22), fill=(20, 20, 30, 255),
                  anchor="lm")
        draw.rectangle([0, h - 26, w, h], fill=(14, 30, 80, 255))
        if (i // 6) % 2 == 0:  # a blinking LIVE badge
            draw.rectangle([w - 70, 12, w - 12, 38], fill=(200, 16, 30, 255))
            draw.text((w - 41, 25), "LIVE", font=font(18), fill=(255, 255, 255, 255), anchor="mm")
        layer = np.asarray(canvas).copy()
        x = i * period // n  # the ticker scrolls exactly once per loop
        strip = ticker_arr[:, x:x + w]
        a = strip[..., 3:].astype(np.float32) / 255
        region = layer[h - 26:h, :, :3].astype(np.float32)
        layer[h - 26:h, :, :3] = (region * (1 - a) + strip[..., :3] * a).astype(np.uint8)
        overlay.append(layer)
    return Template("breaking-news", "Breaking News", ["news", "breaking", "tv", "announcement"],
                    fps, None, "top", frames, faces, overlay, credits=(HOPPER,))


def make_versus() -> Template:
    """Fighting-game split screen: two portraits punch in with a flash, a VS pulses between them."""
    left, right, fps, n = portrait("astronaut"), portrait("hopper"), 12, 30
    size, panel = (480, 320), (236, 320)
    w, h = size
    frames, faces, overlay = [], [], []
    for i in range(n):
        slide = 1 - ease_out(i / 7)
        zoom = 1.0 + 0.3 * slide
        m_l = camera(left.geo.center + (0, 30), 1.15 * zoom, 0.0, panel, left.size)
        m_r = camera(right.geo.center + (0, 40), 0.72 * zoom, 0.0, panel, right.size)
        frame = np.zeros((h, w, 3), np.float32)
        frame[:] = (0.05, 0.05, 0.08)
        lv = photo_view(left, m_l, panel) * np.array([1.0, 0.92, 0.92], np.float32)
        rv = photo_view(right, m_r, panel) * np.array([0.9, 0.95, 1.05], np.float32)
        xs_l, xs_r = slice(0, panel[0]), slice(w - panel[0], w)  # each panel clipped to its side
        frame[:, xs_l] = np.where(photo_mask(m_l, left.size, panel), lv, frame[:, xs_l])
        frame[:, xs_r] = np.where(photo_mask(m_r, right.size, panel), rv, frame[:, xs_r])
        frame = frame + (1 - frame) * 0.8 * slide ** 2  # the flash as they land
        frames.append(to_u8(frame))
        m_r_out = shifted(m_r, w - panel[0], 0)
        faces.append([place(left, m_l, (0.0, 0.0, float(panel[0]), float(h))),
                      place(right, m_r_out, (float(w - panel[0]), 0.0, float(w), float(h)))])
        pulse = 1.0 + 0.12 * max(0.0, math.cos(2 * math.pi * i / 10)) ** 4 if i >= 7 else 0.0
        canvas = Image.new("RGBA", size, (0, 0, 0, 0))
        if i >= 7:
            draw_vs(canvas, (w / 2, h / 2 + 40), int(64 * pulse))
        overlay.append(np.asarray(canvas))
    return Template("versus", "Versus", ["versus", "vs", "fight", "rivals", "two faces"],
                    fps, "ROUND 1", "top", frames, faces, overlay, credits=(ASTRONAUT, HOPPER))


def photo_mask(m: Matrix, src: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Where in the output the (unreflected) photo lands."""
    ones = np.ones((src[1], src[0]), np.float32)
    mask = cv2.warpAffine(ones, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return (mask > 0.5)[..., None]


def draw_vs(canvas: Image.Image, xy: tuple[float, float], px: int) -> None:
    draw = ImageDraw.Draw(canvas)
    draw.text(xy, "VS", font=font(px), fill=(255, 210, 40, 255), stroke_width=5, stroke_fill=(150, 0, 0, 255),
              anchor="mm")


def make_squad() -> Template:
    """Three drawn people in a row, the camera tracking past them: the row in front moves faster
    than the one behind and the sky (parallax)."""
    fps, n = 12, 36
    size = (512, 384)
    w, h = size
    cast = [  # (portrait, face width, face centre in the scene, depth: 1 = nearest)
        (portrait("a_youngster_01.png"), 90.0, (95.0, 205.0), 0.8),
        (portrait("grandpa_01.png"), 88.0, (256.0, 185.0), 0.6),
        (portrait("man_face_darek_adamkiewi_01.png"), 94.0, (415.0, 215.0), 1.0),
    ]
    order = sorted(range(len(cast)), key=lambda k: cast[k][3])  # far ones first
    sky = vertical_gradient((w + 120, h), (120, 190, 255), (235, 245, 255))
    hills = np.zeros((h, w + 120), np.float32)
    xs = np.arange(w + 120)
    ridge = 250 + 20 * np.sin(xs / 55.0) + 12 * np.sin(xs / 23.0 + 1.0)
    hills[np.arange(h)[:, None] > ridge[None, :]] = 1.0
    hills = cv2.GaussianBlur(hills, (0, 0), 1.0)[..., None]
    scenery = sky * (1 - hills) + np.array([0.45, 0.7, 0.35], np.float32) * hills
    frames, faces = [], []
    for i in range(n):
        u = 0.5 - 0.5 * math.cos(2 * math.pi * i / n)  # 0 -> 1 -> 0
        pan = lerp(-24.0, 24.0, u)  # camera offset of the nearest plane, output px
        x_bg = int(round(60 + 0.5 * pan))
        frame = scenery[:, x_bg:x_bg + w].copy()
        placed = {}
        for k in order:
            who, fw, (cx, cy), depth = cast[k]
            m = look_at(who, fw, (cx - pan * depth, cy))
            frame = paste(frame, who, m)
            placed[k] = place(who, m, full(size))
        frames.append(to_u8(frame))
        faces.append([placed[k] for k in range(len(cast))])
    return Template("squad", "The Squad", ["squad", "group", "friends", "team", "three faces"],
                    fps, "THE SQUAD", "bottom", frames, faces,
                    credits=tuple(c[0].credit for c in cast), min_face_px=80.0)


def make_no_yes() -> Template:
    """Two-panel 'no / yes' format: the same man shakes his head at the top, nods at the bottom."""
    who, fps, n = portrait("man_face_darek_adamkiewi_01.png"), 12, 24
    size, half = (480, 480), 240
    w, h = size
    top_bg = np.full((half, half, 3), (0.93, 0.55, 0.45), np.float32)
    bottom_bg = np.full((half, half, 3), (0.55, 0.85, 0.5), np.float32)
    words = text_layer(size, [((360, 120), "NAH", 64, (30, 30, 30, 255), 0),
                              ((360, 360), "YEAH", 64, (30, 30, 30, 255), 0)])
    frames, faces, overlay = [], [], []
    for i in range(n):
        t = 2 * math.pi * i / n
        shake = 14.0 * math.sin(2 * t)  # two head shakes per loop
        nod = 9.0 * math.sin(2 * t)
        m_top = look_at(who, 118.0, (120 + 0.4 * shake, 128.0), angle_deg=shake * 0.9, mirror=True)
        m_bot = look_at(who, 124.0, (120.0, half + 122 + nod), angle_deg=-6.0 + 0.3 * nod)
        frame = np.ones((h, w, 3), np.float32)
        frame[:half, :half] = paste(top_bg, who, m_top)
        bottom = paste(bottom_bg, who, shifted(m_bot, 0, -half))
        frame[half:, :half] = bottom
        frame = over(frame, words)
        frame[half - 2:half + 2] = 0.1
        frame[:, half - 2:half + 2] = 0.1
        frames.append(to_u8(frame))
        faces.append([place(who, m_top, (0.0, 0.0, float(half - 2), float(half - 2))),
                      place(who, m_bot, (0.0, float(half + 2), float(half - 2), float(h)))])
        canvas = Image.new("RGBA", size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(canvas)
        pop = min(1.0, i / 3)
        r = 26 * pop
        if r > 1:
            draw.line([(430 - r, 30 - r + 26), (430 + r, 30 + r + 26)], fill=(200, 20, 20, 255), width=8)
            draw.line([(430 - r, 30 + r + 26), (430 + r, 30 - r + 26)], fill=(200, 20, 20, 255), width=8)
            draw.line([(420 - r, 300), (420, 300 + r), (420 + 1.6 * r, 300 - 1.2 * r)], fill=(20, 140, 40, 255),
                      width=8)
        overlay.append(np.asarray(canvas))
    return Template("no-yes", "Nah / Yeah", ["no yes", "nah yeah", "prefer", "choice", "two panels"],
                    fps, None, "bottom", frames, faces, overlay, credits=(who.credit,))


def sparkle_layer(size: tuple[int, int], i: int, n: int, avoid: np.ndarray, radius: float) -> Rgba:
    """Twinkling four-point stars, seeded, kept off the face."""
    rng = np.random.default_rng(31)
    w, h = size
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for _ in range(18):
        x, y = rng.uniform(20, w - 20), rng.uniform(20, h - 20)
        if math.hypot(x - avoid[0], y - avoid[1]) < radius:
            continue
        phase = rng.uniform(0, 1)
        k = max(0.0, math.sin(2 * math.pi * (i / n * 2 + phase)))
        r = 4 + 12 * k
        if r < 5:
            continue
        draw.polygon([(x, y - r), (x + r / 4, y - r / 4), (x + r, y), (x + r / 4, y + r / 4),
                      (x, y + r), (x - r / 4, y + r / 4), (x - r, y), (x - r / 4, y - r / 4)],
                     fill=(255, 255, 255, 235))
    return np.asarray(canvas)


def make_sparkle() -> Template:
    """Cartoon 'kawaii': a drawn face bounces in front of turning pink rays, with sparkles."""
    who, fps, n = portrait("boy_astrid_graeber_.png"), 12, 24
    w, h = SQUARE
    frames, faces, overlay = [], [], []
    for i in range(n):
        t = i / n
        bg = rays(SQUARE, (w / 2, h / 2), 12, 2 * math.pi * t / 12, (255, 150, 205), (255, 205, 230))
        hop = abs(math.sin(2 * math.pi * t * 2))  # two hops per loop
        m = look_at(who, 225.0 * (1 + 0.04 * hop), (w / 2, 262 - 30 * hop), angle_deg=6 * math.sin(2 * math.pi * t))
        frames.append(to_u8(paste(bg, who, m)))
        faces.append([place(who, m, full(SQUARE))])
        centre = apply(m, [who.geo.center])[0]
        overlay.append(sparkle_layer(SQUARE, i, n, centre, 150.0))
    return Template("sparkle", "Sparkle", ["kawaii", "cute", "cartoon", "sparkle", "happy"],
                    fps, "NOTICE ME", "bottom", frames, faces, overlay, credits=(who.credit,))


def film_overlay(size: tuple[int, int], i: int) -> Rgba:
    """Old film: a few scratches and dust specks, different every frame."""
    rng = np.random.default_rng(1000 + i)
    w, h = size
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(1, 3)):
        x = float(rng.uniform(0, w))
        if w * 0.3 < x < w * 0.7:
            x = float(rng.choice([rng.uniform(0, w * 0.3), rng.uniform(w * 0.7, w)]))
        draw.line([(x, 0), (x + rng.uniform(-6, 6), h)], fill=(240, 230, 210, 110), width=1)
    for _ in range(6):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(1, 2.5)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(30, 20, 10, 160))
    return np.asarray(canvas)


def make_back_in_my_day() -> Template:
    """Grandpa tells a story: a faded print, flickering old film, a slow push-in."""
    who, fps, n = portrait("grandpa_01.png"), 12, 30
    w, h = SQUARE
    vig = vignette_mask(SQUARE, 0.7, power=1.8)
    stops = [(0.0, (40, 25, 10)), (0.5, (150, 110, 70)), (1.0, (250, 235, 200))]
    flicker = np.random.default_rng(9).uniform(0.0, 1.0, size=n)
    frames, faces, overlay = [], [], []
    backdrop = vertical_gradient(SQUARE, (200, 190, 170), (120, 105, 85))
    for i in range(n):
        s = lerp(1.0, 1.25, smoothstep(i / (n - 1)))
        m = look_at(who, 165.0 * s, (w / 2 + 10, 215 + 25 * s))
        f = paste(backdrop, who, m)
        f = (0.55 * f + 0.45 * gradient_map(luminance(f), stops)) * vig  # a faded, yellowed print
        frames.append(to_u8(f))
        faces.append([place(who, m, full(SQUARE))])
        film = film_overlay(SQUARE, i).copy()  # the projector's flicker: a faint dark veil
        veil = int(round(40 * flicker[i]))
        film[..., 3] = np.where(film[..., 3] > 0, film[..., 3], veil)
        overlay.append(film)
    return Template("back-in-my-day", "Back In My Day", ["grandpa", "old", "story", "vintage", "old film"],
                    fps, "BACK IN MY DAY...", "top", frames, faces, overlay, credits=(who.credit,))


def confetti_layer(size: tuple[int, int], i: int, start: int) -> Rgba:
    """Confetti falling from the top from frame ``start`` on; the same pieces every run."""
    w, h = size
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    if i < start:
        return np.asarray(canvas)
    draw = ImageDraw.Draw(canvas)
    rng = np.random.default_rng(42)
    colours = [(240, 60, 60), (250, 200, 40), (60, 170, 250), (90, 210, 90), (220, 90, 220)]
    t = i - start
    for _ in range(60):
        x0, y0 = rng.uniform(0, w), rng.uniform(-h, 0)
        speed, sway, spin = rng.uniform(14, 26), rng.uniform(5, 15), rng.uniform(0.3, 0.9)
        colour = colours[int(rng.integers(len(colours)))]
        y = y0 + speed * t
        x = x0 + sway * math.sin(spin * t)
        if -10 < y < h + 10:
            ang = spin * t * 2
            dx, dy = 6 * math.cos(ang), 6 * math.sin(ang)
            ex, ey = -3 * math.sin(ang), 3 * math.cos(ang)
            draw.polygon([(x - dx - ex, y - dy - ey), (x + dx - ex, y + dy - ey), (x + dx + ex, y + dy + ey),
                          (x - dx + ex, y - dy + ey)], fill=(*colour, 255))
    return np.asarray(canvas)


def make_nailed_it() -> Template:
    """Success: the camera punches in on a proud grin, confetti rains."""
    who, fps, n = portrait("grandpa_01.png"), 12, 30
    punch = 8
    w, h = SQUARE
    bg = rays(SQUARE, (w / 2, h / 2), 10, 0.0, (255, 215, 90), (255, 240, 170))
    frames, faces, overlay = [], [], []
    for i in range(n):
        s = 1.0 if i < punch else lerp(1.0, 1.45, ease_out((i - punch + 1) / 3))
        wobble = 2.0 * math.sin(i * 1.7) * max(0.0, 1 - (i - punch) / 5) if i >= punch else 0.0
        m = look_at(who, 150.0 * s, (w / 2 + wobble, 240), angle_deg=wobble)
        frames.append(to_u8(paste(bg, who, m)))
        faces.append([place(who, m, full(SQUARE))])
        overlay.append(confetti_layer(SQUARE, i, punch))
    return Template("nailed-it", "Nailed It", ["success", "win", "nailed it", "proud", "confetti"],
                    fps, "NAILED IT", "top", frames, faces, overlay, credits=(who.credit,))


def make_wanted() -> Template:
    """A WANTED poster swinging on its nail on a plank wall."""
    who, fps, n = portrait("a_youngster_01.png"), 12, 30
    w, h = SQUARE
    wall = np.zeros((h, w, 3), np.float32)
    wall[:] = (0.42, 0.27, 0.15)
    for y in range(0, h, 60):
        wall[y:y + 3] = (0.25, 0.15, 0.08)
    pw, ph = 300, 400
    paper = np.zeros((ph, pw, 4), np.float32)
    paper[..., :3] = (0.93, 0.85, 0.66)
    paper[..., 3] = 1.0
    poster_text = text_layer((pw, ph), [((pw / 2, 44), "WANTED", 56, (70, 35, 15, 255), 0),
                                       ((pw / 2, 346), "$1,000,000", 34, (70, 35, 15, 255), 0),
                                       ((pw / 2, 378), "REWARD", 20, (70, 35, 15, 255), 0)])
    paper[..., :3] = over(paper[..., :3], poster_text)
    frame_box = (30, 80, pw - 30, 320)  # the portrait's window on the poster
    window = np.full((frame_box[3] - frame_box[1], frame_box[2] - frame_box[0], 3), (0.85, 0.8, 0.7), np.float32)
    m_in = look_at(who, 132.0, ((frame_box[2] - frame_box[0]) / 2, 112.0))
    window = paste(window, who, m_in)
    lum = luminance(window)[..., None]
    window = 0.55 * window + 0.45 * lum * np.array([1.05, 0.92, 0.72], np.float32)
    paper[frame_box[1]:frame_box[3], frame_box[0]:frame_box[2], :3] = window
    paper[frame_box[1] - 3:frame_box[1], frame_box[0]:frame_box[2], :3] = 0.3
    paper[frame_box[3]:frame_box[3] + 3, frame_box[0]:frame_box[2], :3] = 0.3
    poster = Portrait(paper, who.geo, who.credit)
    to_paper = shifted(m_in, frame_box[0], frame_box[1])  # photo -> poster pixels
    nail = np.array([w / 2, 40.0])
    frames, faces = [], []
    for i in range(n):
        a = math.radians(7.0 * math.sin(2 * math.pi * i / n))
        c, s = math.cos(a), math.sin(a)
        lin = np.array([[c, -s], [s, c]])
        off = nail - lin @ np.array([pw / 2, 10.0])
        m_poster = np.hstack([lin, off[:, None]])
        shadow = cv2.warpAffine(np.ones((ph, pw), np.float32), shifted(m_poster, 8, 10), SQUARE,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        f = wall * (1 - 0.45 * cv2.GaussianBlur(shadow, (0, 0), 6)[..., None])
        f = paste(f, poster, m_poster)
        cv2.circle(f, (int(nail[0]), int(nail[1])), 6, (0.15, 0.15, 0.15), -1)
        frames.append(to_u8(f))
        faces.append([place(who, compose(m_poster, to_paper), full(SQUARE))])
    return Template("wanted", "Wanted", ["wanted", "poster", "outlaw", "western", "guilty"],
                    fps, None, "bottom", frames, faces, credits=(who.credit,))


def make_galaxy_brain() -> Template:
    """Three panels, three people, ever brighter: small brain, big brain, galaxy brain."""
    cast = [portrait("man_face_darek_adamkiewi_01.png"), portrait("astronaut"), portrait("a_youngster_01.png")]
    fps, n = 12, 24
    size, ph, col = (384, 510), 170, 192
    w, h = size
    labels = ["SMALL BRAIN", "BIG BRAIN", "GALAXY BRAIN"]
    words = text_layer(size, [((288, ph * k + ph / 2), labels[k], 22, (255, 255, 255, 255), 3) for k in range(3)])
    stars = np.random.default_rng(3).uniform(0, 1, size=(70, 3))
    frames, faces = [], []
    for i in range(n):
        t = i / n
        frame = np.zeros((h, w, 3), np.float32)
        placed = []
        for k, who in enumerate(cast):
            y0 = ph * k
            glow = [0.0, 0.5, 1.0][k]
            panel = rays((w, ph), (col / 2, ph / 2), 8 + 4 * k, 2 * math.pi * t / (8 + 4 * k) * (k == 2),
                         tuple(int(v) for v in np.array([60, 60, 90]) + glow * np.array([120, 80, 160])),
                         tuple(int(v) for v in np.array([25, 25, 40]) + glow * np.array([40, 20, 90])))
            if k == 2:
                for sx, sy, sp in stars:
                    b = 0.5 + 0.5 * math.sin(2 * math.pi * (t * 2 + sp))
                    cv2.circle(panel, (int(sx * w), int(sy * ph)), 2, (b, b, 1.0), -1)
            m_local = look_at(who, (104.0, 104.0, 92.0)[k], (col / 2, ph / 2 + 4), angle_deg=4 * math.sin(2 * math.pi * (t + k / 3)))
            if who is cast[1]:  # the photo fills its square
                panel[:, :col] = photo_view(who, m_local, (col, ph))
            else:
                panel = paste(panel, who, m_local)
            frame[y0:y0 + ph] = panel
            placed.append(place(who, shifted(m_local, 0, y0), (0.0, float(y0 + 2), float(col), float(y0 + ph - 2))))
        frame = over(frame, words)
        for k in (1, 2):
            frame[ph * k - 2:ph * k + 2] = 0.0
        frames.append(to_u8(frame))
        faces.append(placed)
    return Template("galaxy-brain", "Galaxy Brain", ["galaxy brain", "expanding brain", "smart", "three faces"],
                    fps, None, "bottom", frames, faces, credits=tuple(c.credit for c in cast), min_face_px=90.0)


def head_turner(who: Portrait) -> Callable[[float], np.ndarray]:
    """Turn a photographed head about its vertical axis, rendered from its FaceMesh: the mesh's
    3-D points are rotated and projected, and the photo follows them piecewise-affinely
    (scikit-image), while a ring around the head and the frame's edges stay put. Good to
    about +-15 degrees; beyond, the cheek on the far side folds over itself."""
    from skimage.transform import PiecewiseAffineTransform
    from skimage.transform import warp as piecewise_warp

    rgb = to_u8(who.rgba[..., :3])
    mesh = mesh_analyser().face_mesh(rgb)
    if mesh is None:
        raise RuntimeError("FaceMesh found no face to turn")
    pts = np.round(mesh[:468].astype(np.float64), 1)
    h, w = rgb.shape[:2]
    cx, cz = pts[:, 0].mean(), pts[:, 2].mean()
    (x0, y0), (x1, y1) = pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)
    mid, radii = ((x0 + x1) / 2, (y0 + y1) / 2), ((x1 - x0) / 2 * 1.7, (y1 - y0) / 2 * 1.5)
    ring = [(mid[0] + radii[0] * math.cos(a), mid[1] + radii[1] * math.sin(a))
            for a in np.linspace(0, 2 * math.pi, 32, endpoint=False)]
    edges = [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1), (w / 2, 0), (w / 2, h - 1), (0, h / 2), (w - 1, h / 2)]
    fixed = np.array(ring + edges, dtype=np.float64)

    @functools.lru_cache(maxsize=64)
    def turned(degrees: float) -> np.ndarray:
        if degrees == 0:
            return who.rgba[..., :3]
        a = math.radians(degrees)
        moved = cx + (pts[:, 0] - cx) * math.cos(a) - (pts[:, 2] - cz) * math.sin(a)
        dst = np.vstack([np.stack([moved, pts[:, 1]], axis=1), fixed])
        src = np.vstack([pts[:, :2], fixed])
        inverse = PiecewiseAffineTransform()
        inverse.estimate(dst, src)  # output pixels -> photo pixels
        return piecewise_warp(who.rgba[..., :3], inverse, output_shape=(h, w), order=3, mode="edge").astype(np.float32)

    return turned


def make_side_eye() -> Template:
    """Suspicious: Grace Hopper turns her head aside as the camera creeps in, stares, and turns back."""
    who, fps, n = portrait("hopper"), 12, 30
    turned = head_turner(who)
    size = (432, 432)
    frames, faces = [], []
    for i in range(n):
        if i < 6:
            yaw = 0.0
        elif i < 10:
            yaw = -15.0 * smoothstep((i - 5) / 4)
        elif i < 22:
            yaw = -15.0
        else:
            yaw = -15.0 * (1 - smoothstep((i - 21) / 4))
        s = lerp(0.9, 1.2, yaw / -15.0)  # the camera creeps in as she turns; still while she stares
        m = camera(who.geo.center + (0, 30), s, 0.0, size, who.size)
        f = warp(turned(round(yaw, 1)), m, size) * vignette_mask(size, 0.35)
        frames.append(to_u8(f))
        faces.append([place(who, m, full(size))])
    return Template("side-eye", "Side Eye", ["side eye", "suspicious", "hmm", "head turn", "doubt"],
                    fps, "HMMMMM", "bottom", frames, faces, credits=(HOPPER,))


TEMPLATES: dict[str, Callable[[], Template]] = {
    "dramatic-zoom": make_dramatic_zoom,
    "shake": make_shake,
    "deal-with-it": make_deal_with_it,
    "wobble": make_wobble,
    "bounce": make_bounce,
    "pan": make_pan,
    "deep-fried": make_deep_fried,
    "noir": make_noir,
    "duo": make_duo,
    "spotlight": make_spotlight,
    "vaporwave": make_vaporwave,
    "surprised": make_surprised,
    "breaking-news": make_breaking_news,
    "versus": make_versus,
    "squad": make_squad,
    "no-yes": make_no_yes,
    "sparkle": make_sparkle,
    "back-in-my-day": make_back_in_my_day,
    "nailed-it": make_nailed_it,
    "wanted": make_wanted,
    "galaxy-brain": make_galaxy_brain,
    "side-eye": make_side_eye,
}
EXPECTED_FACES = {"duo": 2, "versus": 2, "no-yes": 2, "squad": 3, "galaxy-brain": 3}


# --------------------------------------------------------------------------- #
# Verification: decode what was written and look for faces in every frame
# --------------------------------------------------------------------------- #


def decode_mp4(path: Path) -> tuple[list[Frame], float]:
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(reader)
    w, h = meta["size"]
    frames = [np.frombuffer(buf, np.uint8).reshape(h, w, 3) for buf in reader]
    return frames, float(meta["fps"])


def verify(out_root: Path, names: list[str]) -> bool:
    """Decode every template and run MediaPipe's face detection and mesh on each frame."""
    from memeswap.inference.faces.mediapipe_analyser import MediaPipeAnalyser

    ok_all = True
    total = 0
    print(f"{'name':15} {'frames':>6} {'size':>8} {'fps':>5} {'detect':>8} {'min face':>8} {'bytes':>9}")
    analyser = MediaPipeAnalyser()
    for name in names:
        folder = out_root / name
        manifest = json.loads((folder / "manifest.json").read_text())
        frames, fps = decode_mp4(folder / manifest["media"])
        want = EXPECTED_FACES.get(name, 1)
        hits = 0
        min_face = math.inf  # narrowest detected face, in pixels
        for f in frames:
            found = analyser.analyse(f)
            hits += int(len(found) >= want)
            for face in found:
                min_face = min(min_face, face.width)
        size = sum(p.stat().st_size for p in folder.iterdir())
        total += size
        h, w = frames[0].shape[:2]
        rate = hits / len(frames)
        n_overlay = None
        if manifest["overlay"]:
            with Image.open(folder / manifest["overlay"]) as ov:
                n_overlay = ov.n_frames
                if ov.size != (w, h) or n_overlay != len(frames):
                    print(f"  ! {name}: overlay {ov.size} x{n_overlay} vs base {w}x{h} x{len(frames)}")
                    ok_all = False
        if abs(fps - manifest["fps"]) > 1e-6 or rate < 0.95:
            ok_all = False
        print(f"{name:15} {len(frames):6d} {w:>3}x{h:<4} {fps:5g} {rate:8.1%} {min_face:8.0f} {size:9d}"
              + ("" if want == 1 else f"  ({want} faces)"))
    print(f"{'total':15} {'':>6} {'':>8} {'':>5} {'':>8} {'':>8} {total:9d}")
    return ok_all


def sampled_frames(frames: list[Frame]) -> list[Frame]:
    """The first, middle and last frames: enough to see every face of a template."""
    return [frames[i] for i in sorted({0, len(frames) // 2, len(frames) - 1})]


def verify_library(out_root: Path, names: list[str]) -> bool:
    """Compile every template as memeswap does (our analyser's tracks, each face checked to be a
    human's) and count the faces' identities across the library with dlib's judge: descriptors of
    the faces in a few frames of each template, clustered with Chinese whispers at dlib's 0.6."""
    import tempfile

    import dlib

    from memeswap.inference.faces.human_check import HumanFaceCheck
    from memeswap.inference.safety.protected_faces import DlibFaceDescriptor
    from memeswap.inference.templates.compile import TrackCache
    from memeswap.inference.templates.library import TemplateLibrary

    ok = True
    describer = DlibFaceDescriptor()
    described: list[tuple[str, np.ndarray]] = []
    with tempfile.TemporaryDirectory() as tmp:
        library = TemplateLibrary(Path(tmp) / "custom", TrackCache(Path(tmp) / "tracks"), mesh_analyser(),
                                  builtin_dir=out_root, human_check=HumanFaceCheck())
        for name in names:
            tracks = library.compile(library.get(name)).tracks.tracks
            want = EXPECTED_FACES.get(name, 1)
            if len(tracks) != want:
                print(f"  ! {name}: {len(tracks)} face track(s), expected {want}")
                ok = False
            frames, _ = decode_mp4(out_root / name / "template.mp4")
            for frame in sampled_frames(frames):
                for face in mesh_analyser().analyse(frame):
                    described.append((name, describer.describe(frame, face)))
    labels = dlib.chinese_whispers_clustering([dlib.vector(d.astype(float).tolist()) for _, d in described], 0.6)
    clusters: dict[int, set[str]] = {}
    for (name, _), label in zip(described, labels):
        clusters.setdefault(label, set()).add(name)
    print(f"{len(clusters)} identities (dlib, Chinese whispers at 0.6):")
    for members in clusters.values():
        print("  " + ", ".join(sorted(members)))
    return ok


NOTICE_HEADER = """\
memeswap's built-in meme templates: their sources and licences
===============================================================

The templates in templates/builtin/ are composed by tools/make_templates.py from these
pictures only, with Pillow's built-in font for any text. Nothing else goes into them.

- The NASA portrait of astronaut Eileen Collins that scikit-image ships
  (skimage.data.astronaut): a work of the US federal government, in the public domain.
- The US Navy portrait of Rear Admiral Grace M. Hopper (1984) that matplotlib ships as
  sample data (grace_hopper.jpg): a work of the US federal government, in the public domain.
- Drawings of people from Openclipart, as Debian's openclipart-png package ships them
  (/usr/share/openclipart/png/people/): dedicated to the public domain by their authors
  (Openclipart's public-domain dedication; see that package's copyright file).

Each template's manifest.json names its sources ("source") and licence ("licence");
`memeswap templates show NAME` prints them. Template by template:
"""


def write_notice(out_root: Path, path: Path) -> None:
    """The NOTICE file: every template in ``out_root`` with its sources and licence."""
    lines = [NOTICE_HEADER]
    for manifest_path in sorted(out_root.glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        lines.append(f"{manifest['name']} ({manifest['title']})")
        for source in manifest["source"].split("; "):
            if source != GENERATED_BY:
                lines.append(f"  source:  {source}")
        lines.append(f"  licence: {manifest['licence']}")
        lines.append("")
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--only", choices=sorted(TEMPLATES), help="build one template")
    parser.add_argument("--verify", action="store_true",
                        help="afterwards, decode each template and check face detection")
    parser.add_argument("--no-build", action="store_true", help="only verify existing output")
    args = parser.parse_args(argv)
    names = [args.only] if args.only else list(TEMPLATES)
    if not args.no_build:
        args.out.mkdir(parents=True, exist_ok=True)
        for name in names:
            template = TEMPLATES[name]()
            assert template.name == name
            folder = write_template(template, args.out)
            print(f"wrote {folder} ({len(template.frames)} frames @ {template.fps} fps, "
                  f"{template.size[0]}x{template.size[1]})")
        if args.out.resolve() == DEFAULT_OUT:
            write_notice(args.out, NOTICE_PATH)
            print(f"wrote {NOTICE_PATH}")
    if args.verify or args.no_build:
        found = verify(args.out, names)
        return 0 if verify_library(args.out, names) and found else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
