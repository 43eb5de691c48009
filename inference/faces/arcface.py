"""ArcFace identity embeddings (insightface's w600k_r50.onnx) for the learned swapper.

The model is loaded through insightface's own `model_zoo.get_model`, which routes a
single-input 112x112 graph to `ArcFaceONNX` and, given a local path, never downloads.
"""

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from memeswap.inference.errors import NoFaceError
from memeswap.inference.faces.face import Face
from memeswap.inference.faces.native_logs import printed_to_debug_log
from memeswap.inference.onnx_providers import TENSORRT, choose_providers, provider_options

if TYPE_CHECKING:
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

log = logging.getLogger("memeswap.onnx")


def has_keypoints(face: Face) -> bool:
    kps = getattr(face, "kps", None)
    return kps is not None and np.shape(kps) == (5, 2) and bool(np.isfinite(kps).all())


def estimate_norm(kps: np.ndarray, image_size: int) -> np.ndarray:
    """insightface's own alignment (`face_align.estimate_norm`): the 2x3 similarity taking
    the five keypoints to the ArcFace template (112 px; for 128 px the template is shifted
    right by 8 px). scikit-image >= 0.26 warns about the `estimate` call inside it."""
    from insightface.utils import face_align  # the `learned` extra; imported when a swap needs it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return face_align.estimate_norm(np.asarray(kps, np.float32), image_size)


class ArcFaceEmbedder:
    """L2-normalised 512-d ArcFace embedding of a face, aligned on its five keypoints."""

    name = "arcface"

    def __init__(self, model_path: Path, providers: str = "auto") -> None:
        self.model_path = Path(model_path)
        self.providers = providers
        self.model: ArcFaceONNX | None = None  # once prepared

    @property
    def version(self) -> str:
        return f"arcface-{self.model_path.stem}"

    def prepare(self) -> None:
        if self.model is not None:
            return
        if not self.model_path.is_file():
            raise FileNotFoundError(f"ArcFace model not found: {self.model_path}")
        from insightface.model_zoo import get_model
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX

        providers = choose_providers(self.providers)
        cache_dir = self.model_path.parent / "trt_cache"
        if TENSORRT in providers:
            cache_dir.mkdir(parents=True, exist_ok=True)
        with printed_to_debug_log(log):  # the model router print()s its providers
            model = get_model(str(self.model_path), providers=providers,
                              provider_options=provider_options(providers, cache_dir))
        if not isinstance(model, ArcFaceONNX):
            raise ValueError(f"{self.model_path} is not an ArcFace recognition model "
                             f"(insightface routed it to {type(model).__name__})")
        log.info("%s runs on %s", self.model_path.name, model.session.get_providers()[0])
        self.model = model

    def embed(self, image_rgb: np.ndarray, face: Face) -> np.ndarray:
        """The face's normalised embedding, shape (512,), float32.

        insightface's `ArcFaceONNX.get` aligns a BGR image with `norm_crop` and feeds it
        through `blobFromImages(swapRB=True)`. Alignment is per channel, so aligning the RGB
        image and flipping the 112x112 crop to BGR gives the same blob for less copying.
        """
        if not has_keypoints(face):
            raise NoFaceError("the face has no keypoints to align it for recognition; "
                              "send a clear, front-facing photo")
        self.prepare()
        assert self.model is not None, "prepare() loaded it"
        size = self.model.input_size[0]
        matrix = estimate_norm(face.kps, size)  # what face_align.norm_crop does
        crop = cv2.warpAffine(image_rgb, matrix, (size, size), borderValue=0.0)
        feature = self.model.get_feat(np.ascontiguousarray(crop[:, :, ::-1])).reshape(-1).astype(np.float32)
        norm = float(np.linalg.norm(feature))
        if not np.isfinite(norm) or norm == 0:
            raise NoFaceError("could not compute an identity embedding for the face in the photo")
        return feature / norm
