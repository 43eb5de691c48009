"""GFPGAN v1.4 face restoration (Apache-2.0) on onnxruntime, applied after a swap.

Each face is aligned to the FFHQ 5-point template at the model's input size (512 px for
GFPGAN exports) and restored. What goes back into the frame is the model's change (the
restored crop minus the aligned crop), shrunk to about the frame's scale with area
averaging so the new detail does not alias, warped back and added inside the face box
with the swapper's feathered mask (`paste_back`) times `blend`. That is the restored crop
blended with the aligned crop by `blend` and pasted back, less the loss of sending the
original pixels through the crop and back: what the model leaves alone stays exactly as
it was (an identity model returns the frame bit for bit, `blend=0` likewise), and the
anti-aliasing softens only the added detail, never the original.

Batching: a model whose batch dimension is already symbolic runs all faces of a call in
one run (`max_batch` at most, to bound memory); a fixed batch of 1 runs one face per run.
A batch-1 graph is not rewritten to a symbolic batch as the swapper does: GFPGAN's
modulated convolutions bake the batch into Reshapes when exported, so the rewrite would
fail its dry run, and that dry run would cost three 512 px passes at every start.
"""

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime

from memeswap.inference.faces.arcface import has_keypoints
from memeswap.inference.faces.face import Face
from memeswap.inference.onnx_graph import graph_inputs, tensor_dims
from memeswap.inference.onnx_providers import create_session
from memeswap.inference.swappers.paste_back import paste_back

log = logging.getLogger("memeswap.onnx")

# The 5-point FFHQ template of face restorers (GFPGAN, CodeFormer), as fractions of the
# crop side, in insightface order: left eye, right eye, nose, left and right mouth corner.
FFHQ_TEMPLATE = (
    (0.37691676, 0.46864664),
    (0.62285697, 0.46912813),
    (0.50123859, 0.61331904),
    (0.39308822, 0.72541100),
    (0.61150205, 0.72490465),
)


class FaceEnhancer:
    """GFPGAN-style face restorer: a 3 x S x S RGB input and output in [-1, 1]."""

    name = "gfpgan"

    def __init__(self, model_path: Path, providers: str = "auto", blend: float = 0.7,
                 max_batch: int = 8) -> None:
        """`blend` is the share of the restored face in the result (0: off, 1: all of it);
        `max_batch` caps the faces per run of a batched model (each is a 512 px pass)."""
        if not 0.0 <= float(blend) <= 1.0:
            raise ValueError(f"blend must be between 0 and 1, not {blend}")
        self.model_path = Path(model_path)
        self.providers = providers
        self.blend = float(blend)
        self.max_batch = max(1, int(max_batch))
        self.session: onnxruntime.InferenceSession | None = None
        self.batched = False
        self.input_size = 512
        self.input_name = self.output_name = ""

    @property
    def version(self) -> str:
        return f"gfpgan-{self.model_path.stem}-blend{self.blend:g}"

    def prepare(self) -> None:
        if self.session is not None:
            return
        if not self.model_path.is_file():
            raise FileNotFoundError(f"face enhancer model not found: {self.model_path}")
        model = onnx.load(str(self.model_path))
        self._read_io(model)
        del model
        profile = None
        if self.batched:  # one TensorRT engine for 1 to max_batch faces
            s = self.input_size
            low, high = (f"{self.input_name}:{b}x3x{s}x{s}" for b in (1, self.max_batch))
            profile = (low, high, high)
        self.session = create_session(self.model_path, self.providers, trt_profile=profile)
        log.info("%s: %s", self.model_path.name,
                 f"batched, up to {self.max_batch} faces per run" if self.batched else "one face per run")

    def _read_io(self, model: onnx.ModelProto) -> None:
        """One N x 3 x S x S input and one output of the same shape; S read from the graph."""
        inputs, outputs = graph_inputs(model.graph), list(model.graph.output)
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{self.model_path.name} is not a face restorer: it needs one image input "
                             f"and one image output")
        dims, out_dims = tensor_dims(inputs[0]), tensor_dims(outputs[0])
        if (len(dims) != 4 or dims[1] != 3 or not isinstance(dims[2], int) or dims[2] <= 0
                or dims[2] != dims[3] or out_dims[1:] != dims[1:]):
            raise ValueError(f"{self.model_path.name} is not a face restorer: expected a square 3-channel "
                             f"input and an output of the same shape, got {dims} -> {out_dims}")
        if not isinstance(dims[0], str) and dims[0] not in (0, 1):
            raise ValueError(f"{self.model_path.name}: unsupported batch dimension {dims[0]}")
        self.input_size = dims[2]
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        # dim_value 0 is an unnamed dynamic dimension
        self.batched = isinstance(dims[0], str) or dims[0] == 0

    def align(self, kps: np.ndarray) -> np.ndarray | None:
        """The 2x3 similarity taking the five keypoints to the FFHQ template at the input
        size (least median of squares), or None when it cannot be estimated."""
        template = np.array(FFHQ_TEMPLATE, np.float32) * self.input_size
        matrix, _ = cv2.estimateAffinePartial2D(np.asarray(kps, np.float32), template, method=cv2.LMEDS)
        if matrix is None or not np.isfinite(matrix).all() or abs(np.linalg.det(matrix[:, :2])) < 1e-8:
            return None
        return matrix

    def enhance(self, frames: Sequence[np.ndarray], targets: Sequence[Sequence[Face]]) -> list[np.ndarray]:
        """Restore every face with keypoints in every frame (RGB uint8); new frames, the
        inputs untouched. Faces go through the model `max_batch` at a time when it is
        batched, else one by one, so memory stays bounded however long the call."""
        if len(frames) != len(targets):
            raise ValueError(f"{len(frames)} frames but {len(targets)} face lists")
        outputs = [np.array(frame, copy=True) for frame in frames]
        if self.blend == 0.0:
            return outputs
        if self.session is None:
            self.prepare()
        jobs: list[tuple[int, Face, np.ndarray]] = []
        for index, faces in enumerate(targets):
            for face in faces:
                matrix = self.align(face.kps) if has_keypoints(face) else None
                if matrix is not None:
                    jobs.append((index, face, matrix))
        step = self.max_batch if self.batched else 1
        s = self.input_size
        for start in range(0, len(jobs), step):
            chunk = jobs[start:start + step]
            # Replicated borders: a face at the frame's edge is not restored against black.
            crops = np.stack([cv2.warpAffine(frames[index], matrix, (s, s), flags=cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_REPLICATE) for index, _, matrix in chunk])
            changes = self._restore(crops).astype(np.float32) - crops.astype(np.float32)
            for (index, face, matrix), change in zip(chunk, changes):
                if change.any():
                    change, matrix = to_frame_scale(change, matrix)
                    paste_back(outputs[index], change, face.box, matrix, opacity=self.blend, additive=True)
        return outputs

    def _restore(self, crops: np.ndarray) -> np.ndarray:
        """RGB uint8 crops (N, S, S, 3) in, restored RGB uint8 crops out, in one run."""
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        blob = blob * np.float32(2 / 255) - np.float32(1)
        assert self.session is not None, "enhance() prepared it"
        pred = self.session.run([self.output_name], {self.input_name: blob})[0]
        return np.rint((np.clip(pred, -1, 1).transpose(0, 2, 3, 1) + 1) * 127.5).astype(np.uint8)


def to_frame_scale(crop: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shrink a crop that is larger than the face in the frame to about the frame's
    scale with area averaging, so its detail does not alias when it is warped back
    (a plain bilinear warp would skip most crop pixels); the matrix is scaled to match."""
    side = crop.shape[0]
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))  # crop pixels per frame pixel
    if scale <= 1.25:
        return crop, matrix
    small = max(8, int(round(side / scale)))
    factor = small / side
    # cv2.resize maps pixel centres: x_small = (x + 0.5) * factor - 0.5
    scaled = matrix * factor
    scaled[:, 2] += 0.5 * factor - 0.5
    return cv2.resize(crop, (small, small), interpolation=cv2.INTER_AREA), scaled
