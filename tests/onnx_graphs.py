"""Tiny ONNX graphs with the contracts of the real insightface models, for offline tests.

`make_inswapper` mimics inswapper_128.onnx (inputs "target" 1x3x128x128 and "source"
1x512, output 1x3x128x128 in 0..1, the 512x512 "emap" as the last initializer);
`make_arcface` mimics w600k_r50.onnx (input "input.1" Nx3x112x112, output Nx512), so
insightface's model_zoo routes it to ArcFaceONNX.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 8


def emap_matrix(seed: int = 7) -> np.ndarray:
    """A seeded random orthogonal 512x512 matrix, the stand-in for inswapper's emap."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((512, 512)))
    return q.astype(np.float32)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def tint_weight(seed: int = 11) -> np.ndarray:
    """The tint graph's 512x3 projection: channel c of the output is
    0.5 * target[c] + 0.5 * sigmoid(source @ W)[c], in the model's (RGB) channel order."""
    return (np.random.default_rng(seed).standard_normal((512, 3)) * 4).astype(np.float32)


def make_inswapper(path: Path, mode: str = "identity", fixed_batch: bool = True) -> Path:
    """Write an inswapper-like graph.

    "identity": output = target (still consuming "source").
    "tint": output = 0.5 * target + 0.5 * sigmoid(source @ W) per channel, so the output
        depends on the latent and a batch mix-up shows.
    "batch1": like tint, but through Reshapes hard-wired to batch 1 (as an exported graph
        can be), so its batch dimension cannot be made symbolic.
    """
    batch: int | str = 1 if fixed_batch else "N"
    target = helper.make_tensor_value_info("target", TensorProto.FLOAT, [batch, 3, 128, 128])
    source = helper.make_tensor_value_info("source", TensorProto.FLOAT, [batch, 512])
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 3, 128, 128])
    initializers = [numpy_helper.from_array(np.array([2, 3], np.int64), "spatial_axes")]
    nodes = []
    image = "target"
    if mode == "batch1":
        initializers += [numpy_helper.from_array(np.array([1, 3 * 128 * 128], np.int64), "flat_shape"),
                         numpy_helper.from_array(np.array([1, 3, 128, 128], np.int64), "image_shape")]
        nodes += [helper.make_node("Reshape", ["target", "flat_shape"], ["flat"], name="flatten1"),
                  helper.make_node("Reshape", ["flat", "image_shape"], ["image1"], name="unflatten1")]
        image = "image1"
    if mode == "identity":
        initializers += [numpy_helper.from_array(np.array([1], np.int64), "latent_axis"),
                         numpy_helper.from_array(np.zeros((), np.float32), "zero")]
        nodes += [
            helper.make_node("ReduceSum", ["source", "latent_axis"], ["latent_sum"], name="latent_sum"),
            helper.make_node("Mul", ["latent_sum", "zero"], ["nothing"], name="nothing"),
            helper.make_node("Unsqueeze", ["nothing", "spatial_axes"], ["nothing4"], name="nothing4"),
            helper.make_node("Add", [image, "nothing4"], ["output"], name="output"),
        ]
    elif mode in ("tint", "batch1"):
        initializers += [numpy_helper.from_array(tint_weight(), "tint_weight"),
                         numpy_helper.from_array(np.array(0.5, np.float32), "half")]
        nodes += [
            helper.make_node("MatMul", ["source", "tint_weight"], ["tint_logit"], name="tint_logit"),
            helper.make_node("Sigmoid", ["tint_logit"], ["tint"], name="tint"),
            helper.make_node("Unsqueeze", ["tint", "spatial_axes"], ["tint4"], name="tint4"),
            helper.make_node("Add", [image, "tint4"], ["mixed"], name="mixed"),
            helper.make_node("Mul", ["mixed", "half"], ["output"], name="output"),
        ]
    else:
        raise ValueError(f"unknown mode {mode!r}")
    initializers.append(numpy_helper.from_array(emap_matrix(), "emap"))  # last, as in the real model
    graph = helper.make_graph(nodes, f"inswapper_{mode}", [target, source], [output], initializer=initializers)
    return _save(graph, path)


def arcface_weight(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((3 * 7 * 7, 512)).astype(np.float32)


def make_arcface(path: Path) -> Path:
    """Write an ArcFace-like graph: 16x16 average pooling of the 112x112 crop (7x7 cells,
    3 channels) times a fixed random 147x512 matrix, so different faces differ.

    The batch dimension is named "None" like w600k_r50's; node names avoid the "Sub"/"Mul"
    prefixes that make ArcFaceONNX assume an mxnet model with other input scaling.
    """
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])
    embedding = helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", 512])
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["cells"], name="pool", kernel_shape=[16, 16],
                         strides=[16, 16]),
        helper.make_node("Flatten", ["cells"], ["flat"], name="flatten", axis=1),
        helper.make_node("MatMul", ["flat", "fc_weight"], ["683"], name="fc"),
    ]
    graph = helper.make_graph(nodes, "arcface_tiny", [image], [embedding],
                              initializer=[numpy_helper.from_array(arcface_weight(), "fc_weight")])
    return _save(graph, path)


RESTORER_BRIGHTEN = 0.25  # the "brighten" restorer's change, in its [-1, 1] units (about 32 levels)


def make_face_restorer(path: Path, mode: str = "identity", fixed_batch: bool = True, size: int = 512) -> Path:
    """Write a GFPGAN-like graph: "input" [1, 3, 512, 512] -> "output" of the same shape,
    both in [-1, 1] (the contract of GFPGAN v1.4's ONNX export).

    "identity": output = input.
    "brighten": output = clip(input + RESTORER_BRIGHTEN, -1, 1) on every channel.
    `fixed_batch=False` names the batch dimension "N"; `size` changes the crop side.
    """
    batch: int | str = 1 if fixed_batch else "N"
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, size, size])
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 3, size, size])
    if mode == "identity":
        initializers = []
        nodes = [helper.make_node("Identity", ["input"], ["output"], name="restore")]
    elif mode == "brighten":
        initializers = [numpy_helper.from_array(np.array(RESTORER_BRIGHTEN, np.float32), "lift"),
                        numpy_helper.from_array(np.array(-1, np.float32), "low"),
                        numpy_helper.from_array(np.array(1, np.float32), "high")]
        nodes = [helper.make_node("Add", ["input", "lift"], ["lifted"], name="lift"),
                 helper.make_node("Clip", ["lifted", "low", "high"], ["output"], name="clip")]
    else:
        raise ValueError(f"unknown mode {mode!r}")
    graph = helper.make_graph(nodes, f"face_restorer_{mode}", [image], [output], initializer=initializers)
    return _save(graph, path)


# --- insightface buffalo_l detector and 2d106 landmark graphs -------------------------------

SCRFD_STRIDES = (8, 16, 32)
SCRFD_ANCHORS = 2  # anchors per feature-map location in det_10g (3 strides, 9 outputs)


def scrfd_det_scale(image_shape: tuple[int, ...], size: int = 640) -> float:
    """The factor insightface's detector (`RetinaFace.detect` / `SCRFD.detect`) scales an
    image by before pasting it into the top-left of its size x size input: the long side
    becomes `size`, the short side is truncated to an int, and the factor is taken from the
    height. Multiply image coordinates by it to get the detector-input coordinates that
    `make_scrfd` wants."""
    height, width = image_shape[:2]
    im_ratio = float(height) / width
    new_height = size if im_ratio > 1.0 else int(size * im_ratio)
    return float(new_height) / height


def scrfd_stride_for(side: float) -> int:
    """The stride whose anchors (SCRFD's base sizes 16/32, 64/128, 256/512) suit a face."""
    return 8 if side < 48 else 16 if side < 192 else 32


def make_scrfd(
    path: Path, faces: list[tuple], size: int = 640, dynamic: bool = True, stride: int | None = None,
    background: float = 0.01,
) -> Path:
    """Write an SCRFD-10G-like detector (det_10g.onnx of insightface's buffalo_l) whose
    outputs are constants that decode to `faces`.

    Each face is (x1, y1, x2, y2, kps) or (x1, y1, x2, y2, kps, score) in the detector's
    input pixels (see `scrfd_det_scale`), kps (5, 2) in insightface order; score 0.9 unless
    given. The graph has input "input.1" [1, 3, ?, ?] (or [1, 3, size, size] when not
    `dynamic`; it only runs at `size`) and nine outputs in det_10g's order: scores for
    strides 8, 16, 32 (N_s, 1), then box distances (N_s, 4), then keypoint offsets (N_s, 10),
    with N_s = (size / s)^2 * 2 anchors.

    The encoding follows `RetinaFace.forward` (insightface/model_zoo/retinaface.py, which
    model_zoo routes every >= 5-output graph to; scrfd.py is the same code): anchor k of
    location (row, col) is row (row * cols + col) * 2 + k with centre (col * s, row * s);
    the box is centre -/+ distances (left, top, right, bottom) * s (`distance2bbox`), each
    keypoint centre + offset * s (`distance2kps`). A face goes to the anchor nearest its
    centre at `stride` (default: the one suiting its size); every other anchor scores
    `background`. The outputs are the constants plus 0 * ReduceMean(input), so the input
    is consumed.
    """
    if size % 32:
        raise ValueError(f"size {size} is not a multiple of 32")
    counts = {s: (size // s) ** 2 * SCRFD_ANCHORS for s in SCRFD_STRIDES}
    scores = {s: np.full((n, 1), background, np.float32) for s, n in counts.items()}
    boxes = {s: np.ones((n, 4), np.float32) for s, n in counts.items()}
    points = {s: np.zeros((n, 10), np.float32) for s, n in counts.items()}
    taken: set[tuple[int, int]] = set()
    for face in faces:
        x1, y1, x2, y2, kps = face[:5]
        score = float(face[5]) if len(face) > 5 else 0.9
        s = stride or scrfd_stride_for(max(x2 - x1, y2 - y1))
        cols = size // s
        col = int(np.clip(round((x1 + x2) / 2 / s), 0, cols - 1))
        row = int(np.clip(round((y1 + y2) / 2 / s), 0, cols - 1))
        free = [i for i in ((row * cols + col) * SCRFD_ANCHORS + k for k in range(SCRFD_ANCHORS))
                if (s, i) not in taken]
        if not free:
            raise ValueError(f"no free anchor left at stride {s} for the face at {x1, y1, x2, y2}")
        i = free[0]
        taken.add((s, i))
        ax, ay = col * s, row * s
        scores[s][i] = score
        boxes[s][i] = np.array([ax - x1, ay - y1, x2 - ax, y2 - ay], np.float32) / s
        points[s][i] = ((np.asarray(kps, np.float32).reshape(5, 2) - [ax, ay]) / s).reshape(-1)

    side: int | str = "?" if dynamic else size
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, side, side])
    nodes = [
        helper.make_node("ReduceMean", ["input.1"], ["input_mean"], name="input_mean", keepdims=0),
        helper.make_node("Mul", ["input_mean", "zero"], ["nothing"], name="nothing"),
    ]
    initializers = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outputs = []
    for kind, tables in (("score", scores), ("bbox", boxes), ("kps", points)):
        for s in SCRFD_STRIDES:
            name = f"{kind}_{s}"
            initializers.append(numpy_helper.from_array(tables[s], f"{name}_const"))
            nodes.append(helper.make_node("Add", [f"{name}_const", "nothing"], [name], name=name))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(tables[s].shape)))
    graph = helper.make_graph(nodes, "scrfd_tiny", [image], outputs, initializer=initializers)
    return _save(graph, path)


def landmark_106_layout() -> np.ndarray:
    """A face-like 106-point layout, (106, 2) in 2d106det's normalised units: a point p
    lands at the crop centre + p * 96 px of the 192 px crop, which `Landmark.get` cuts at
    1.5 x the box's long side, so |p| < 0.6 stays inside a near-square box.

    33 jaw points, 2 x 9 brow, 2 x 10 eye, 15 nose, 20 mouth (the group sizes of the real
    layout, not its exact order)."""
    def ellipse(cx: float, cy: float, rx: float, ry: float, n: int, start: float = 0.0,
                stop: float = 2 * np.pi, closed: bool = True) -> np.ndarray:
        t = np.linspace(start, stop, n, endpoint=not closed)
        return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)

    jaw = ellipse(0.0, -0.05, 0.5, 0.55, 33, np.pi, 0.0, closed=False)  # left ear, chin, right ear
    brows = [ellipse(x, -0.3, 0.15, 0.04, 9, np.pi, 2 * np.pi, closed=False) for x in (-0.22, 0.22)]
    eyes = [ellipse(x, -0.15, 0.1, 0.04, 10) for x in (-0.22, 0.22)]
    nose = np.concatenate([np.stack([np.zeros(7), np.linspace(-0.15, 0.12, 7)], axis=1),
                           ellipse(0.0, 0.15, 0.09, 0.04, 8)])
    mouth = np.concatenate([ellipse(0.0, 0.33, 0.2, 0.08, 12), ellipse(0.0, 0.33, 0.12, 0.03, 8)])
    layout = np.concatenate([jaw, *brows, *eyes, nose, mouth]).astype(np.float32)
    assert layout.shape == (106, 2)
    return layout


def make_landmark_106(path: Path) -> Path:
    """Write a 2d106det-like graph (insightface buffalo_l's 2d106det.onnx): input "data"
    [N, 3, 192, 192], output "fc1" [N, 212] = `landmark_106_layout()` flattened (x0, y0,
    x1, y1, ...) plus 0 * mean(input). model_zoo routes a 192x192 input to `Landmark`,
    whose `get` maps (p + 1) * 96 from the crop back into the image."""
    image = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["None", 3, 192, 192])
    points = helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["None", 212])
    nodes = [
        helper.make_node("ReduceMean", ["data"], ["channel_means"], name="channel_means", axes=[2, 3], keepdims=0),
        helper.make_node("ReduceMean", ["channel_means"], ["image_mean"], name="image_mean", axes=[1], keepdims=1),
        helper.make_node("Mul", ["image_mean", "zero"], ["nothing"], name="nothing"),  # (N, 1)
        helper.make_node("Add", ["layout", "nothing"], ["fc1"], name="landmarks"),
    ]
    initializers = [numpy_helper.from_array(np.zeros((), np.float32), "zero"),
                    numpy_helper.from_array(landmark_106_layout().reshape(1, 212), "layout")]
    graph = helper.make_graph(nodes, "landmark_106_tiny", [image], [points], initializer=initializers)
    return _save(graph, path)
