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
