"""insightface's "buffalo_l" pack as a face analyser, for deployments that have its weights.

SCRFD-10G (det_10g.onnx) finds the faces and their five keypoints, the 2d106 model
(2d106det.onnx) adds dense landmarks and ArcFace (w600k_r50.onnx) an identity embedding.
Each model is loaded from a local path through insightface's own `model_zoo.get_model`,
which routes a graph by its shape (>= 5 outputs: a detector, a 192x192 input: a landmark
model, 112x112: ArcFace) and never downloads; detection, anchor decoding, NMS and alignment
are insightface's code, called the way its `FaceAnalysis` calls them.
"""

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from memeswap.inference.faces.face import Face
from memeswap.inference.faces.native_logs import printed_to_debug_log
from memeswap.inference.onnx_providers import TENSORRT, choose_providers, provider_options

log = logging.getLogger("memeswap.onnx")

_LANDMARK_TASK = "landmark_2d_106"


class InsightFaceAnalyser:
    """Faces from insightface's detector, with 106 landmarks and embeddings when the landmark
    and recognition models are given.

    `landmarks` are (106, 3) float32 with z = 0 (the 2d106 model has no depth); `embedding`
    is the L2-normalised 512-d ArcFace vector. `min_score` is the detector's threshold.
    """

    name = "insightface"

    def __init__(
        self, detector_path: Path, landmark_path: Path | None = None, recogniser_path: Path | None = None,
        providers: str = "auto", det_size: int = 640, min_score: float = 0.5,
    ) -> None:
        if det_size <= 0 or det_size % 32:
            raise ValueError(f"det_size must be a positive multiple of 32 (the detector's largest stride), "
                             f"not {det_size}")
        self.detector_path = Path(detector_path)
        self.landmark_path = Path(landmark_path) if landmark_path is not None else None
        self.recogniser_path = Path(recogniser_path) if recogniser_path is not None else None
        self.providers = providers
        self.det_size = det_size
        self.min_score = min_score
        self._detector: Any = None  # insightface RetinaFace/SCRFD once prepared
        self._landmark: Any = None  # insightface Landmark (2d106)
        self._recogniser: Any = None  # insightface ArcFaceONNX

    @property
    def version(self) -> str:
        # min_score is part of it too: it changes which faces come out.
        models = [p.stem if p is not None else "none"
                  for p in (self.detector_path, self.landmark_path, self.recogniser_path)]
        return f"insightface-{'-'.join(models)}-det{self.det_size}-score{self.min_score:g}"

    def prepare(self) -> None:
        if self._detector is not None:
            return
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX
        from insightface.model_zoo.landmark import Landmark
        from insightface.model_zoo.retinaface import RetinaFace
        from insightface.model_zoo.scrfd import SCRFD

        detector = self._load(self.detector_path, (RetinaFace, SCRFD), "an SCRFD/RetinaFace face detector")
        if not detector.use_kps:
            raise ValueError(f"{self.detector_path} is a face detector without keypoints "
                             f"({len(detector.output_names)} outputs); use one with them, such as det_10g.onnx")
        with printed_to_debug_log(log):  # "det_size is already set" for a fixed-input graph
            detector.prepare(ctx_id=0, input_size=(self.det_size, self.det_size), det_thresh=self.min_score)
        if tuple(detector.input_size) != (self.det_size, self.det_size):
            # A graph with a fixed input keeps it (insightface only prints a warning), and the
            # version would then name the wrong size.
            raise ValueError(f"{self.detector_path} has a fixed {detector.input_size[0]}x{detector.input_size[1]} "
                             f"input; set det_size to {detector.input_size[0]}")
        landmark = recogniser = None
        if self.landmark_path is not None:
            landmark = self._load(self.landmark_path, (Landmark,), "a 2d106 landmark model")
            if landmark.taskname != _LANDMARK_TASK:
                raise ValueError(f"{self.landmark_path} is a {landmark.taskname} model, not a 2d106 "
                                 f"landmark model such as 2d106det.onnx")
            landmark.prepare(ctx_id=0)
        if self.recogniser_path is not None:
            recogniser = self._load(self.recogniser_path, (ArcFaceONNX,), "an ArcFace recognition model")
            recogniser.prepare(ctx_id=0)
        self._detector, self._landmark, self._recogniser = detector, landmark, recogniser

    def _load(self, path: Path, expected: tuple[type[Any], ...], what: str) -> Any:
        if not path.is_file():
            raise FileNotFoundError(f"insightface model not found: {path}")
        from insightface.model_zoo import get_model

        providers = choose_providers(self.providers)
        cache_dir = path.parent / "trt_cache"
        if TENSORRT in providers:
            cache_dir.mkdir(parents=True, exist_ok=True)
        with printed_to_debug_log(log):  # the model router print()s its providers
            model = get_model(str(path), providers=providers,
                              provider_options=provider_options(providers, cache_dir))
        if not isinstance(model, expected):
            routed = type(model).__name__ if model is not None else "nothing it knows"
            raise ValueError(f"{path} is not {what} (insightface routed it to {routed})")
        log.info("%s runs on %s", path.name, model.session.get_providers()[0])
        return model

    def analyse(self, image: np.ndarray) -> list[Face]:
        """All faces in an RGB uint8 image, largest first."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image of shape (height, width, 3), not {image.shape}")
        self.prepare()
        from insightface.app.common import Face as InsightFace

        bgr = np.ascontiguousarray(image[:, :, ::-1])
        bboxes, kpss = self._detector.detect(bgr, max_num=0, metric="default")
        faces: list[Face] = []
        for bbox, kps in zip(bboxes, kpss):
            found = InsightFace(bbox=bbox[:4], kps=kps, det_score=bbox[4])
            landmarks = embedding = None
            if self._landmark is not None:
                self._landmark.get(bgr, found)
                points = np.asarray(found[_LANDMARK_TASK], np.float32)
                landmarks = np.concatenate([points[:, :2], np.zeros((len(points), 1), np.float32)], axis=1)
            if self._recogniser is not None:
                with warnings.catch_warnings():  # scikit-image >= 0.26, inside insightface's norm_crop
                    warnings.simplefilter("ignore", FutureWarning)
                    self._recogniser.get(bgr, found)
                embedding = np.asarray(found.normed_embedding, np.float32).reshape(-1)
            faces.append(Face(box=np.array(bbox[:4], np.float32), score=float(bbox[4]),
                              kps=np.array(kps, np.float32).reshape(5, 2), landmarks=landmarks,
                              embedding=embedding))
        return sorted(faces, key=lambda f: f.area, reverse=True)
