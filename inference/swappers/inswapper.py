"""The learned swapper: insightface's inswapper_128.onnx on onnxruntime (TensorRT, CUDA or CPU).

It follows insightface's `INSwapper.get` (insightface/model_zoo/inswapper.py, 0.7.3) step
by step: the target face is aligned to a 128x128 crop on the ArcFace template
(`face_align.estimate_norm(kps, 128)`), fed as RGB in 0..1, the selfie's latent is its
normalised ArcFace embedding times the model's `emap` (the graph's last initializer),
normalised again, and the 0..1 RGB output goes back through the inverse similarity with
an eroded and blurred mask. Two things differ, both for speed: all faces of a batch of
frames run through the model at once where the graph allows it (insightface runs one face
per call), and the paste-back works on the face box only, not on whole frames.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime
from onnx import numpy_helper

from memeswap.inference.errors import InputError, NoFaceError
from memeswap.inference.faces import mesh
from memeswap.inference.faces.arcface import ArcFaceEmbedder, estimate_norm, has_keypoints
from memeswap.inference.faces.face import Face
from memeswap.inference.onnx_graph import graph_inputs as _graph_inputs
from memeswap.inference.onnx_graph import make_batch_symbolic
from memeswap.inference.onnx_graph import tensor_dims as _dims
from memeswap.inference.onnx_providers import create_session
from memeswap.inference.swappers.base import SwapperConfig
from memeswap.inference.swappers.paste_back import paste_back

log = logging.getLogger("memeswap.onnx")

_MOUTH = list(mesh.LIPS_INNER_UPPER) + list(reversed(mesh.LIPS_INNER_LOWER[1:-1]))


@dataclass
class InSwapperSource:
    """The selfie as the model sees it."""

    latent: np.ndarray  # (1, 512) float32: normalised(normalised embedding @ emap)
    embedding: np.ndarray  # (512,) float32, the normalised ArcFace embedding


class InSwapper:
    """insightface-compatible inswapper_128 face swapper, batched over faces and frames."""

    name = "inswapper"
    required_models: tuple[str, ...] = ("inswapper_128", "w600k_r50")  # the swapper and its ArcFace
    required_packages: tuple[str, ...] = ("insightface",)  # ArcFace's routing and alignment: the `learned` extra

    @classmethod
    def from_models(cls, config: SwapperConfig, models: Mapping[str, Path]) -> InSwapper:
        embedder = ArcFaceEmbedder(models["w600k_r50"], providers=config.onnx_provider)
        return cls(models["inswapper_128"], embedder, providers=config.onnx_provider, batch_size=config.batch_size,
                   mouth_mask=config.mouth_mask)

    def __init__(self, model_path: Path, embedder: ArcFaceEmbedder, providers: str = "auto",
                 batch_size: int = 16, mouth_mask: bool = False) -> None:
        """`batch_size` is the most faces per model call; 1 runs one face per call as
        insightface does. `mouth_mask` keeps the template's own open mouth (needs the
        target faces' dense MediaPipe landmarks)."""
        self.model_path = Path(model_path)
        self.embedder = embedder
        self.providers = providers
        self.batch_size = max(1, int(batch_size))
        self.mouth_mask = mouth_mask
        self.session: onnxruntime.InferenceSession | None = None
        self.batched = False
        self.emap: np.ndarray | None = None
        self.input_size = 128
        self.target_name = self.source_name = self.output_name = ""

    def prepare(self) -> None:
        if self.session is not None:
            return
        if not self.model_path.is_file():
            raise FileNotFoundError(f"swap model not found: {self.model_path}")
        model = onnx.load(str(self.model_path))
        self.emap = numpy_helper.to_array(model.graph.initializer[-1]).astype(np.float32)  # as INSwapper does
        self._read_io(model)
        self.session, self.batched = self._open(model)
        del model
        log.info("%s: %s", self.model_path.name,
                 f"batched, up to {self.batch_size} faces per run" if self.batched else "one face per run")
        self.embedder.prepare()

    def _read_io(self, model: onnx.ModelProto) -> None:
        """Find the crop and the latent inputs by shape (N x 3 x S x S and N x 512)."""
        inputs = _graph_inputs(model.graph)
        images = [v for v in inputs if len(_dims(v)) == 4]
        latents = [v for v in inputs if len(_dims(v)) == 2]
        if len(inputs) != 2 or len(images) != 1 or len(latents) != 1 or len(model.graph.output) != 1:
            raise ValueError(f"{self.model_path.name} is not an inswapper model: it needs an image input, "
                             f"a latent input and one output")
        size = _dims(images[0])[2]
        latent_size = _dims(latents[0])[1]
        if not isinstance(size, int) or self._emap.shape != (latent_size, latent_size):
            raise ValueError(f"{self.model_path.name}: unexpected input sizes {_dims(images[0])}, "
                             f"{_dims(latents[0])} or emap {self._emap.shape}")
        self.input_size = size
        self.target_name, self.source_name = images[0].name, latents[0].name
        self.output_name = model.graph.output[0].name

    @property
    def _emap(self) -> np.ndarray:
        """The model's embedding map, read by prepare() (everything that uses it comes after)."""
        assert self.emap is not None, "prepare() reads it first"
        return self.emap

    def _trt_profile(self) -> tuple[str, str, str]:
        """TensorRT's min/opt/max shapes: one engine for 1 to batch_size faces."""
        s, n = self.input_size, self._emap.shape[0]
        low, high = (f"{self.target_name}:{b}x3x{s}x{s},{self.source_name}:{b}x{n}" for b in (1, self.batch_size))
        return low, high, high

    def _open(self, model: onnx.ModelProto) -> tuple[onnxruntime.InferenceSession, bool]:
        """A session, batched when the graph runs a symbolic batch and a dry run agrees
        with single runs; otherwise the file as it is, one face per run."""
        if self.batch_size > 1:
            symbolic = all(isinstance(_dims(v)[0], str) for v in _graph_inputs(model.graph))
            if symbolic or make_batch_symbolic(model):
                try:
                    data = self.model_path if symbolic else model.SerializeToString()
                    session = create_session(data, self.providers, cache_dir=self.model_path.parent / "trt_cache",
                                             trt_profile=self._trt_profile())
                    if self._batch_agrees(session):
                        return session, True
                    log.warning("%s: a batched run differs from single runs; running one face at a time",
                                self.model_path.name)
                except Exception as error:  # any failure here only costs speed
                    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                    log.warning("%s: cannot run batched (%s); running one face at a time",
                                self.model_path.name, reason)
            else:
                log.info("%s: the batch dimension is fixed; running one face at a time", self.model_path.name)
        return create_session(self.model_path, self.providers), False

    def _batch_agrees(self, session: onnxruntime.InferenceSession) -> bool:
        """A two-item run equals two one-item runs (to within a pixel level)."""
        rng = np.random.default_rng(0)
        s, n = self.input_size, self._emap.shape[0]
        crops = rng.random((2, 3, s, s), dtype=np.float32)
        latents = rng.standard_normal((2, n)).astype(np.float32)
        latents /= np.linalg.norm(latents, axis=1, keepdims=True)
        both = self._run(session, crops, latents)
        singles = np.concatenate([self._run(session, crops[i:i + 1], latents[i:i + 1]) for i in range(2)])
        return both.shape == singles.shape and bool(np.allclose(both, singles, rtol=0, atol=1 / 255))

    def _run(self, session: onnxruntime.InferenceSession, crops: np.ndarray, latents: np.ndarray) -> np.ndarray:
        return session.run([self.output_name], {self.target_name: crops, self.source_name: latents})[0]

    def _require_prepared(self) -> None:
        if self.session is None:
            self.prepare()

    def prepare_source(self, image: np.ndarray, face: Face) -> InSwapperSource:
        self._require_prepared()
        if face.embedding is not None:
            embedding = np.asarray(face.embedding, np.float32).reshape(-1)
        elif not has_keypoints(face):
            raise NoFaceError("the face in the photo has no keypoints to align it; "
                              "send a clear, front-facing photo")
        else:
            embedding = self.embedder.embed(image, face)
        if embedding.shape != (self._emap.shape[0],):
            raise InputError(f"the face's identity embedding has {embedding.size} values; "
                             f"this swap model needs {self._emap.shape[0]} (ArcFace)")
        norm = float(np.linalg.norm(embedding))
        if not np.isfinite(norm) or norm == 0:
            raise InputError("could not compute an identity for the face in the photo")
        embedding = embedding / norm
        latent = embedding.reshape(1, -1) @ self._emap
        latent /= np.linalg.norm(latent)
        return InSwapperSource(latent.astype(np.float32), embedding)

    def swap(self, frames: Sequence[np.ndarray], targets: Sequence[Sequence[Face]],
             source: InSwapperSource) -> list[np.ndarray]:
        """Swap every target face of every frame; one model call per `batch_size` faces."""
        self._require_prepared()
        s = self.input_size
        jobs: list[tuple[int, Face, np.ndarray]] = []
        crops: list[np.ndarray] = []
        for index, (frame, faces) in enumerate(zip(frames, targets)):
            for face in faces:
                if not has_keypoints(face):
                    continue
                matrix = estimate_norm(face.kps, s)  # face_align.norm_crop2, as INSwapper.get
                crops.append(cv2.warpAffine(frame, matrix, (s, s), borderValue=0.0))
                jobs.append((index, face, matrix))
        outputs = [np.array(frame, copy=True) for frame in frames]
        if not jobs:
            return outputs
        for (index, face, matrix), fake in zip(jobs, self._generate(np.stack(crops), source.latent)):
            self._paste(outputs[index], fake, face, matrix)
        return outputs

    def _generate(self, crops: np.ndarray, latent: np.ndarray) -> np.ndarray:
        """RGB uint8 crops in, swapped RGB uint8 crops out.

        INSwapper.get feeds `blobFromImage(bgr, 1/255, swapRB=True)`, i.e. RGB / 255 in
        NCHW, and reads the output as RGB (it flips it to BGR for its BGR frames). Our
        frames are RGB, so neither end needs a flip.
        """
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32) * np.float32(1 / 255)
        step = self.batch_size if self.batched else 1
        preds = [self._run(self.session, blob[i:i + step], np.repeat(latent, len(blob[i:i + step]), axis=0))
                 for i in range(0, len(blob), step)]
        pred = np.concatenate(preds).transpose(0, 2, 3, 1)
        return np.rint(np.clip(pred * 255, 0, 255)).astype(np.uint8)

    def _paste(self, frame: np.ndarray, fake: np.ndarray, face: Face, matrix: np.ndarray) -> None:
        """Blend the swapped crop back inside the face box, in place (`paste_back`: pixels
        outside the box are never touched); with `mouth_mask` the template's open mouth
        shows through."""
        keep = (lambda x0, y0, shape: self._mouth(face, x0, y0, shape)) if self.mouth_mask else None
        paste_back(frame, fake, face.box, matrix, keep=keep)

    @staticmethod
    def _mouth(face: Face, x0: int, y0: int, shape: tuple[int, int]) -> np.ndarray:
        """A soft mask of the template's inner-lip opening (0 where the landmarks are not
        MediaPipe's dense mesh)."""
        mask: np.ndarray = np.zeros(shape, np.float32)
        points = face.landmarks
        if points is None or points.ndim != 2 or points.shape[0] < 478:
            return mask
        polygon = (points[_MOUTH, :2] - (x0, y0)) * 4
        cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=2)
        width = float(np.linalg.norm(points[61, :2] - points[291, :2]))
        grow = max(1, int(round(width * 0.06)))
        mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
        return cv2.GaussianBlur(mask, (2 * grow + 1, 2 * grow + 1), 0)
