"""The realism corpus: selfies and templates made at run time from licence-clean portraits,
each with its ground truth.

Two portraits ship inside our dependencies: scikit-image's astronaut (NASA, public domain)
and Grace Hopper's US Navy portrait (public domain, shipped in `sample_photos/`). Every case takes one as the
template's person and the other as the selfie's (so identity is measurable), films the
template with a hand-held camera path (`synthetic.camera_path`) and adds one hard thing:

| case | what is hard |
| --- | --- |
| frontal | nothing: an evenly lit frontal face, the baseline |
| hand, microphone, hair-strands | something in front of the face (its mask is known) |
| turn-20, turn-40, turn-60 | the head turns to that yaw and back (rendered from the mesh) |
| template-light | a hard light from the image's left and a shine spot on the template |
| selfie-light | the same light on the selfie instead, from the right |
| background-face | a second, out-of-focus face behind the first |
| tone-darker, tone-lighter | selfies recoloured darker or lighter (synthetic skin tones) |
| small-selfie | a selfie whose face is 90 pixels wide |

A case is a folder: `template.mp4` with its `manifest.json` (so `memeswap inspect` and
`memeswap swap` take it as a template file), `selfie.png`, `truth.npz` (each face's mesh in
every frame, the occluders' masks, the selfie's mesh) and `case.json`. Building all of them
takes a few seconds; they are cached under the corpus version and rebuilt when it changes.
"""

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from memeswap.inference.faces.analyser import FaceAnalyser
from memeswap.inference.faces.face import face_crop_box
from memeswap.inference.media.decode import load_image
from memeswap.inference.media.encode import encode_frames
from memeswap.inference.quality.head_turn import turn_head
from memeswap.inference.quality.regions import face_of, face_width
from memeswap.inference.quality.synthetic import (
    Placement,
    camera_path,
    draw_hair_strands,
    draw_hand,
    draw_microphone,
    move_points,
    shift_skin_tone,
    side_light,
    similarity,
)
from memeswap.inference.samples import grace_hopper_path
from memeswap.inference.templates.catalog import Template
from memeswap.inference.templates.manifest import TemplateManifest

CORPUS_VERSION = "corpus-v2"  # change whenever what a case renders changes
FRAMES = 30
FPS = 12.0
FRAME_SIZE = (360, 360)  # width, height
WIDE_FRAME_SIZE = (480, 360)  # for the case with a second face
FACE_WIDTH = 140.0  # the template face's width in pixels at the start of the clip
SMALL_SELFIE_FACE = 90.0


@dataclass(frozen=True)
class Portrait:
    name: str
    credit: str
    image: np.ndarray
    points: np.ndarray  # (478, 3) MediaPipe mesh in image pixels


def load_portraits(analyser: FaceAnalyser) -> dict[str, Portrait]:
    """The two packaged portraits and their meshes (`analyser` must give MediaPipe's 478 points)."""
    import skimage.data

    images = {
        "astronaut": (skimage.data.astronaut(), "NASA portrait of Eileen Collins (public domain), from scikit-image"),
        "grace_hopper": (load_image(grace_hopper_path()), "US Navy portrait of Grace Hopper (public domain)"),
    }
    portraits = {}
    for name, (image, credit) in images.items():
        faces = analyser.analyse(image)
        face = max(faces, key=lambda f: f.area) if faces else None  # faces[0]: they come largest first
        if face is None or face.landmarks is None or len(face.landmarks) != 478:
            raise RuntimeError(f"the realism corpus needs MediaPipe's 478-point mesh of the {name} portrait")
        portraits[name] = Portrait(name, credit, np.ascontiguousarray(image), face.landmarks.astype(np.float32))
    return portraits


@dataclass(frozen=True)
class CaseSpec:
    """How one case is made."""

    about: str
    template_from: str = "astronaut"
    selfie_from: str = "grace_hopper"
    occluder: str | None = None  # "hand", "microphone" or "hair"
    peak_yaw: float = 0.0  # the head turns to this yaw at mid-clip and back
    template_light: str | None = None  # side of the image the template's hard light comes from
    selfie_light: str | None = None  # ... the selfie's
    background_face: bool = False
    selfie_lightness: float | None = None  # see `synthetic.shift_skin_tone`
    selfie_warmth: float = 0.0
    selfie_face_px: float | None = None
    seed: int = 1


CASES: dict[str, CaseSpec] = {
    "frontal": CaseSpec("an evenly lit frontal face, a hand-held camera: the baseline"),
    "hand": CaseSpec("a hand on its forearm passes across the face", occluder="hand", seed=2),
    "microphone": CaseSpec("a microphone rises in front of the mouth", template_from="grace_hopper",
                           selfie_from="astronaut", occluder="microphone", seed=3),
    "hair-strands": CaseSpec("strands of dark hair across the forehead, swinging", occluder="hair", seed=4),
    "turn-20": CaseSpec("the head turns to 20 degrees of yaw and back", peak_yaw=20.0, seed=5),
    "turn-40": CaseSpec("the head turns to 40 degrees of yaw and back", peak_yaw=40.0, seed=6),
    "turn-60": CaseSpec("the head turns to 60 degrees of yaw and back", peak_yaw=60.0, seed=7),
    "template-light": CaseSpec("the template has a hard light from the image's left and a shine spot",
                               template_light="left", seed=8),
    "selfie-light": CaseSpec("the selfie has a hard light from the image's right and a shine spot",
                             selfie_light="right", seed=9),
    "background-face": CaseSpec("an out-of-focus second face behind the first", background_face=True, seed=10),
    "tone-darker": CaseSpec("a darker-skinned selfie (synthetic: the portrait recoloured in Lab)",
                            selfie_lightness=0.55, selfie_warmth=6.0, seed=11),
    "tone-lighter": CaseSpec("a lighter-skinned selfie (synthetic: the portrait recoloured in Lab)",
                             template_from="grace_hopper", selfie_from="astronaut", selfie_lightness=1.45, seed=12),
    "small-selfie": CaseSpec("a selfie whose face is 90 pixels wide", selfie_face_px=SMALL_SELFIE_FACE, seed=13),
}


@dataclass
class CaseTruth:
    faces: np.ndarray  # (n, F, 478, 3) float32: each face's mesh in each frame, the swapped-into face first
    yaw: np.ndarray  # (n, F) float32: the yaw each face was rendered at, degrees
    occluders: np.ndarray  # (F, H, W) bool: per frame, the pixels where something is in front of a face
    selfie_points: np.ndarray  # (478, 3) float32: the selfie's mesh
    lit_side: str | None  # the side of the image the template's light comes from, if it has one


@dataclass
class CorpusCase:
    name: str
    spec: CaseSpec
    folder: Path
    selfie: np.ndarray
    truth: CaseTruth

    @property
    def template_path(self) -> Path:
        return self.folder / "template.mp4"

    @property
    def selfie_path(self) -> Path:
        return self.folder / "selfie.png"

    @property
    def template(self) -> Template:
        manifest = TemplateManifest.model_validate_json((self.folder / "manifest.json").read_text())
        return Template(manifest, self.folder, builtin=False)


class Corpus:
    """The cases under `root/CORPUS_VERSION`, built on first use. `analyser` gives the
    portraits' meshes (MediaPipe's 478 points)."""

    def __init__(self, root: Path, analyser: FaceAnalyser) -> None:
        self.root = Path(root)
        self.folder = self.root / CORPUS_VERSION
        self.analyser = analyser
        self._portraits: dict[str, Portrait] | None = None

    @property
    def portraits(self) -> dict[str, Portrait]:
        if self._portraits is None:
            self._portraits = load_portraits(self.analyser)
        return self._portraits

    def case(self, name: str) -> CorpusCase:
        spec = CASES[name]
        folder = self.folder / name
        if not (folder / "case.json").is_file():
            self._build(name, spec, folder)
        selfie = load_image(folder / "selfie.png")
        with np.load(folder / "truth.npz") as data:
            shape = tuple(int(v) for v in data["occluder_shape"])
            occluders = np.unpackbits(data["occluders"], count=int(np.prod(shape))).reshape(shape).astype(bool)
            truth = CaseTruth(data["faces"], data["yaw"], occluders, data["selfie_points"],
                              json.loads((folder / "case.json").read_text())["lit_side"])
        return CorpusCase(name, spec, folder, selfie, truth)

    def _build(self, name: str, spec: CaseSpec, folder: Path) -> None:
        """Render into a staging folder, then rename it into place (a half-built case is never
        seen). Cases of other corpus versions are removed first: they are never read again."""
        for stale in self.root.glob("corpus-v*"):
            if stale.name != CORPUS_VERSION:
                shutil.rmtree(stale, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".building-{name}-", dir=self.folder))
        try:
            frames, faces, yaw, occluders = render_template(spec, self.portraits)
            selfie, selfie_points = render_selfie(spec, self.portraits)
            media = encode_frames(frames, "mp4", FPS)
            (staging / "template.mp4").write_bytes(media.data)
            manifest = TemplateManifest(name=name, title=f"corpus case {name}", fps=FPS, media="template.mp4",
                                        source=f"{self.portraits[spec.template_from].credit}; rendered by "
                                               f"inference/quality/corpus.py ({CORPUS_VERSION})")
            (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2))
            _, png = cv2.imencode(".png", selfie[:, :, ::-1])
            (staging / "selfie.png").write_bytes(png.tobytes())
            np.savez_compressed(staging / "truth.npz", faces=faces, yaw=yaw, occluders=np.packbits(occluders),
                                occluder_shape=np.array(occluders.shape), selfie_points=selfie_points)
            (staging / "case.json").write_text(json.dumps({
                "name": name, **asdict(spec), "lit_side": spec.template_light, "version": CORPUS_VERSION,
                "selfie_credit": self.portraits[spec.selfie_from].credit}, indent=2))
            try:
                os.rename(staging, folder)
            except OSError:
                if not (folder / "case.json").is_file():  # not just built by another process
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _clip_phase(index: int) -> float:
    """0 at the clip's ends, 1 in its middle: how far along its way the hard thing is."""
    return float(np.sin(np.pi * index / (FRAMES - 1)))


def render_template(spec: CaseSpec, portraits: dict[str, Portrait]
                    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """The template's frames, each face's mesh in each frame (n, F, 478, 3; the swapped-into
    face first), the yaw it was rendered at (n, F) and the occluders' masks (F, H, W)."""
    portrait = portraits[spec.template_from]
    size = WIDE_FRAME_SIZE if spec.background_face else FRAME_SIZE
    centre = (0.3, 0.42) if spec.background_face else (0.5, 0.42)
    path = camera_path(FRAMES, size, FACE_WIDTH, spec.seed, centre)
    frames, meshes, yaws, masks = [], [], [], []
    background_meshes = []
    for index, placement in enumerate(path):
        yaw = spec.peak_yaw * _clip_phase(index)
        image, points = turn_head(portrait.image, portrait.points, yaw)
        matrix = similarity(portrait.points, placement)
        frame = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_AREA if matrix[0, 0] < 1 else cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        points = move_points(points, matrix)
        if spec.background_face:
            frame, background = _with_background_face(frame, portraits[spec.selfie_from], index)
            background_meshes.append(background)
        if spec.template_light:
            frame = side_light(frame, points, spec.template_light)
        mask = np.zeros(frame.shape[:2], bool)
        if spec.occluder:
            frame, mask = _occlude(frame, points, spec.occluder, index, spec.seed)
        frames.append(frame)
        meshes.append(points)
        yaws.append(yaw)
        masks.append(mask)
    faces = [np.stack(meshes)]
    face_yaws = [np.array(yaws, np.float32)]
    if background_meshes:
        faces.append(np.stack(background_meshes))
        face_yaws.append(np.zeros(FRAMES, np.float32))
    return frames, np.stack(faces).astype(np.float32), np.stack(face_yaws), np.stack(masks)


def _with_background_face(frame: np.ndarray, portrait: Portrait, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The frame's left part in front of an out-of-focus portrait whose face is on the right."""
    height, width = frame.shape[:2]
    drift = 0.03 * np.sin(2 * np.pi * index / FRAMES)
    placement = Placement(x=(0.76 + drift) * width, y=0.38 * height, width=100.0)
    matrix = similarity(portrait.points, placement)
    behind = cv2.warpAffine(portrait.image, matrix, (width, height), flags=cv2.INTER_AREA,
                            borderMode=cv2.BORDER_REFLECT)
    behind = cv2.GaussianBlur(behind, (0, 0), 3.2)
    xs = np.arange(width, dtype=np.float32)
    front = np.clip((0.64 * width - xs) / (0.12 * width), 0, 1)[None, :, None]
    composed = (frame * front + behind * (1 - front)).astype(np.uint8)
    return composed, move_points(portrait.points, matrix)


def _occlude(frame: np.ndarray, points: np.ndarray, kind: str, index: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw the case's occluder for frame `index`; the same seed keeps its look from frame to frame."""
    rng = np.random.default_rng(seed)
    width = face_width(points)
    centre = points[:, :2].mean(axis=0)
    phase = _clip_phase(index)
    if kind == "hand":
        start, middle = np.array([0.95, 1.05]), np.array([-0.2, 0.18])
        at = centre + (start + (middle - start) * phase) * width
        return draw_hand(frame, (float(at[0]), float(at[1])), 1.0 * width, -30.0, rng)
    if kind == "microphone":
        mouth = points[13, :2]
        at = mouth + np.array([0.08 * np.sin(2 * np.pi * index / FRAMES), 0.95 - 0.8 * phase]) * width
        return draw_microphone(frame, (float(at[0]), float(at[1])), 0.42 * width,
                               8.0 * np.sin(2 * np.pi * index / FRAMES), rng)
    if kind == "hair":
        return draw_hair_strands(frame, points, 0.05 * np.sin(2 * np.pi * index / FRAMES), rng)
    raise ValueError(f"unknown occluder {kind!r}")


def render_selfie(spec: CaseSpec, portraits: dict[str, Portrait]) -> tuple[np.ndarray, np.ndarray]:
    """The selfie (a crop around the portrait's face, changed as the case says) and its mesh."""
    portrait = portraits[spec.selfie_from]
    x0, y0, x1, y1 = face_crop_box(portrait.image, face_of(portrait.points))
    selfie = np.ascontiguousarray(portrait.image[y0:y1, x0:x1])
    points = portrait.points.copy()
    points[:, 0] -= x0
    points[:, 1] -= y0
    if spec.selfie_light:
        selfie = side_light(selfie, points, spec.selfie_light)
    if spec.selfie_lightness is not None:
        selfie = shift_skin_tone(selfie, points, spec.selfie_lightness, spec.selfie_warmth)
    if spec.selfie_face_px is not None:
        scale = spec.selfie_face_px / face_width(points)
        selfie = cv2.resize(selfie, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        points = points * scale
    return selfie, points.astype(np.float32)
