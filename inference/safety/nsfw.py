"""Offline NSFW screening of pictures and template frames with NudeNet's detector.

The detector is NudeNet 3.4's `320n.onnx` (MIT), a small YOLOv8 object detector for 18
body-part classes (`NUDENET_LABELS`: exposed and covered genitalia, breasts, buttocks,
anus, belly, armpits and feet, plus female and male faces). The model ships inside the
`nudenet` wheel; it is loaded from the installed package folder and nothing is ever
downloaded. Only the file is taken from nudenet: its `NudeDetector` reads BGR image paths
and has fixed behaviour, so the pre- and post-processing are done here, following
nudenet's own algorithm (MIT): the RGB picture is padded at the right and bottom to a
square, resized to 320x320 and scaled to 0..1; each of the network's ~2100 candidate rows
holds a centre box and one score per class; rows whose best score is >= 0.2 are kept and
go through `cv2.dnn.NMSBoxes` (score 0.25, IoU 0.45), across classes as nudenet does.
The network is fed RGB, as the ultralytics pipeline it was trained with does (and as
nudenet 3.0 did). nudenet 3.4.2's own `NudeDetector.detect` applies `COLOR_RGBA2BGR` to a
3-channel BGR picture, which swaps it to RGB, and then `swapRB=True` swaps it back, so it
actually feeds BGR (notAI-tech/NudeNet issue #203); its scores therefore differ a little
from the ones here.

By default only explicit nudity blocks (`DEFAULT_BLOCKED`: exposed genitalia, female
breasts, buttocks and anus). Exposed bellies, feet, armpits or male chests and every
"covered" class are ordinary meme content (beach photos, gym selfies) and never block
unless a deployment asks for them. The score threshold is configurable per deployment
(`NsfwScreen(threshold=...)`); 0.6 trades a few missed borderline pictures for very few
ordinary photos turned away.
"""

import importlib.util
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime

from memeswap.inference.errors import InputError
from memeswap.inference.media.sampling import SCREENED_FRAMES, SpreadSample
from memeswap.inference.onnx_providers import CPU
from memeswap.inference.safety.images import as_rgb
from memeswap.inference.safety.nsfw_labels import DEFAULT_BLOCKED, NUDENET_LABELS

log = logging.getLogger("memeswap.onnx")

MODEL_FILE = "320n.onnx"
INPUT_SIZE = 320
MIN_SCORE = 0.2  # rows below this are dropped before NMS, as in nudenet
NMS_SCORE = 0.25
NMS_IOU = 0.45


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[int, int, int, int]  # x, y, w, h in the image's pixels


class NsfwContentError(InputError):
    """The picture or template looks like it contains nudity. The message names no
    classes or scores: it tells the person what to do instead."""

    code = "nsfw"

    def __init__(self, subject: str = "picture") -> None:
        subject = " ".join(str(subject).split()) or "picture"
        if subject == "template":
            message = "this template can't be used here: it looks like it contains nudity. Pick another one."
        else:
            message = f"this {subject} can't be used: it looks like it contains nudity. Please send a different one."
        super().__init__(message)
        self.subject = subject


def nudenet_model_path() -> Path:
    """The detector shipped in the installed nudenet wheel. The package is located, not
    imported (importing it would load nudenet's own detector code)."""
    spec = importlib.util.find_spec("nudenet")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / MODEL_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(f"NudeNet's {MODEL_FILE} not found: install nudenet==3.4.2, which ships it")


def _preprocess(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The network's (1, 3, 320, 320) RGB blob in 0..1 and the factor from network pixels
    back to image pixels. The picture is padded with black at the right and bottom to a
    square first, so that factor is the same on both axes."""
    height, width = rgb.shape[:2]
    side = max(height, width)
    padded = cv2.copyMakeBorder(rgb, 0, side - height, 0, side - width, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    blob = cv2.dnn.blobFromImage(padded, 1 / 255.0, (INPUT_SIZE, INPUT_SIZE), (0, 0, 0), swapRB=False, crop=False)
    return blob, side / INPUT_SIZE


def _postprocess(output: np.ndarray, scale: float, width: int, height: int) -> list[Detection]:
    """Detections from the raw (1, 4 + classes, rows) output, as nudenet's `_postprocess`
    computes them, without a Python loop over the rows."""
    rows = np.asarray(output, np.float32).reshape(output.shape[-2], output.shape[-1]).T
    class_scores = rows[:, 4:]
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(rows)), class_ids]
    keep = scores >= MIN_SCORE
    if not keep.any():
        return []
    rows, class_ids, scores = rows[keep], class_ids[keep], scores[keep]
    cx, cy, w, h = (rows[:, i] * scale for i in range(4))
    x = np.clip(cx - w / 2, 0, width)
    y = np.clip(cy - h / 2, 0, height)
    w = np.clip(np.minimum(w, width - x), 0, None)
    h = np.clip(np.minimum(h, height - y), 0, None)
    boxes = np.stack([x, y, w, h], axis=1)
    indices = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), NMS_SCORE, NMS_IOU)
    return [
        Detection(
            label=NUDENET_LABELS[int(class_ids[i])],
            score=float(scores[i]),
            box=(int(boxes[i, 0]), int(boxes[i, 1]), int(boxes[i, 2]), int(boxes[i, 3])),
        )
        for i in np.asarray(indices, int).reshape(-1)
    ]


class NsfwScreen:
    """Rejects pictures and template frames that look like they contain nudity.

    `prepare` loads the model once; afterwards `detect` and the checks may run from
    several threads at once (onnxruntime sessions are thread-safe and nothing else here
    changes after loading).
    """

    name = "nudenet-320n"

    def __init__(self, threshold: float = 0.6, blocked: Iterable[str] = DEFAULT_BLOCKED,
                 providers: list[str] | None = None) -> None:
        """`threshold`: the score from which a blocked class rejects (0..1). `blocked`:
        the labels that reject, out of `NUDENET_LABELS`. `providers`: onnxruntime
        execution providers, the CPU by default."""
        if isinstance(blocked, str):
            blocked = {blocked}
        self.blocked = frozenset(blocked)
        unknown = sorted(self.blocked - set(NUDENET_LABELS))
        if unknown:
            raise ValueError(f"unknown NudeNet label(s) {', '.join(unknown)}; "
                             f"valid labels are {', '.join(NUDENET_LABELS)}")
        self.threshold = float(threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        self.providers = list(providers) if providers else [CPU]
        self.session: onnxruntime.InferenceSession | None = None
        self.input_name = ""
        self._lock = threading.Lock()

    def prepare(self) -> None:
        if self.session is not None:
            return
        with self._lock:
            if self.session is not None:
                return
            path = nudenet_model_path()
            session = onnxruntime.InferenceSession(str(path), providers=self.providers)
            self.input_name = session.get_inputs()[0].name
            log.info("%s runs on %s", path.name, session.get_providers()[0])
            self.session = session

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Every detection scoring >= 0.2 after non-maximum suppression, best first.
        `image` is RGB uint8 (H, W, 3); greyscale and RGBA are accepted too."""
        rgb = as_rgb(image)
        self.prepare()
        blob, scale = _preprocess(rgb)
        assert self.session is not None, "prepare() loaded it"
        output = self.session.run(None, {self.input_name: blob})[0]
        return _postprocess(output, scale, rgb.shape[1], rgb.shape[0])

    def blocking(self, image: np.ndarray) -> list[Detection]:
        """The detections of blocked labels that score at least the threshold."""
        return [d for d in self.detect(image) if d.label in self.blocked and d.score >= self.threshold]

    def check_image(self, image: np.ndarray, subject: str = "picture") -> None:
        """Raises NsfwContentError when the image looks like it contains nudity."""
        found = self.blocking(image)
        if found:
            log.info("%s rejected: %s", subject, ", ".join(f"{d.label} {d.score:.2f}" for d in found))
            raise NsfwContentError(subject)

    def check_template(self, frames: Sequence[np.ndarray]) -> None:
        """The screen a new template or a one-off target passes, on frames spread over it."""
        self.prepare()
        self.check_frames(frames, subject="template")

    def check_frames(self, frames: Iterable[np.ndarray], subject: str = "template",
                     samples: int = SCREENED_FRAMES) -> None:
        """Screens up to `samples` frames, one at random from each of `samples` about equal parts
        of the clip (`SpreadSample`), in order; raises NsfwContentError at the first that
        blocks. `frames` (a list, an (N, H, W, C) array, or a generator such as
        `read_frames`'s) is read once, holding only about 2 * samples frames; a clip of
        `samples` frames or fewer is screened whole."""
        samples = int(samples)
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        if isinstance(frames, np.ndarray) and frames.ndim != 4:
            raise ValueError(f"expected an (N, H, W, C) array of frames, got shape {frames.shape}")
        sample: SpreadSample[np.ndarray] = SpreadSample(samples)
        for frame in frames:
            sample.offer(frame)
        for frame in sample.picked():
            self.check_image(frame, subject)
