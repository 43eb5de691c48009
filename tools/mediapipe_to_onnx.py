"""Convert MediaPipe 0.10.21's face .tflite models to ONNX (a development tool, run once).

    python convert.py [--modules DIR] [--out models]

Needs (tested with Python 3.11.7):
    pip install tflite==2.18.0 flatbuffers==25.12.19 onnx==1.23.2 numpy==2.4.6
(`onnxruntime` is only needed for the smoke run at the end.) The output is deterministic
(same bytes on every run). `verify_tflite.py` checks the plain models against TFLite itself.
DIR defaults to the `mediapipe/modules` folder of an installed mediapipe==0.10.21 wheel.

This is a small hand-written TFLite -> ONNX translator for exactly the ops these five models
use, not a general converter: tflite2onnx 0.4.1 has no DENSIFY, DEPTH_TO_SPACE or custom ops
(the full-range detector and the attention mesh need them), and tf2onnx needs TensorFlow. Activations are kept NCHW inside the ONNX graph
(the input is transposed once); model inputs and outputs keep the TFLite NHWC shapes and
names. fp16 and sparse (DENSIFY) weights are expanded to dense float32 constants.

face_landmark_with_attention.tflite has three MediaPipe custom ops, rebuilt here from
standard ONNX ops, following mediapipe/util/tflite/operations/*.cc (v2 kernels):
  Landmarks2TransformMatrix -> Gather/Min/Max arithmetic building the 4x4 affine,
  TransformTensorBilinear   -> GridSample(align_corners=1) times an in-bounds mask (MediaPipe
                               writes 0 wherever the sample point leaves the input),
  TransformLandmarks        -> MatMul + Add with the affine's 2x2 block and translation.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import onnx
import tflite
from flatbuffers import flexbuffers
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # GridSample needs 16; onnxruntime >= 1.14 runs 17
MODELS = {
    "face_detection_short_range": "face_detection/face_detection_short_range.tflite",
    "face_detection_full_range_sparse": "face_detection/face_detection_full_range_sparse.tflite",
    "face_landmark": "face_landmark/face_landmark.tflite",
    "face_landmark_with_attention": "face_landmark/face_landmark_with_attention.tflite",
    "iris_landmark": "iris_landmark/iris_landmark.tflite",
}
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
_OPNAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
NHWC_TO_NCHW, NCHW_TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def _options(op, cls):
    opts = cls()
    table = op.BuiltinOptions()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _densify(values: np.ndarray, tensor) -> np.ndarray:
    """TFLite sparse tensors: here always dense leading dims and one CSR-compressed last dim."""
    sp = tensor.Sparsity()
    shape = tensor.ShapeAsNumpy()
    assert list(sp.TraversalOrderAsNumpy()) == list(range(len(shape))) and sp.BlockMapLength() == 0
    last = sp.DimMetadata(len(shape) - 1)
    assert last.Format() == 1 and all(sp.DimMetadata(d).Format() == 0 for d in range(len(shape) - 1))

    def vector(union_type, table):
        cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}[union_type]
        vec = cls()
        vec.Init(table.Bytes, table.Pos)
        return vec.ValuesAsNumpy()

    segments = vector(last.ArraySegmentsType(), last.ArraySegments()).astype(np.int64)
    indices = vector(last.ArrayIndicesType(), last.ArrayIndices()).astype(np.int64)
    dense = np.zeros((int(np.prod(shape[:-1])), shape[-1]), values.dtype)
    for row in range(dense.shape[0]):
        lo, hi = segments[row], segments[row + 1]
        dense[row, indices[lo:hi]] = values[lo:hi]
    return dense.reshape(shape)


class _Converter:
    def __init__(self, path: str) -> None:
        self.model = tflite.Model.GetRootAsModel(open(path, "rb").read(), 0)
        self.graph = self.model.Subgraphs(0)
        self.nodes: list = []
        self.inits: list = []
        self.const: dict[int, np.ndarray] = {}  # tensor index -> value (weights, folded ops)
        self.nchw: dict[int, bool] = {}  # 4D activations stored NCHW in the ONNX graph
        self._uid = 0
        for k in range(self.graph.TensorsLength()):
            t = self.graph.Tensors(k)
            buf = self.model.Buffers(t.Buffer())
            if buf is not None and buf.DataLength() > 0:
                values = np.frombuffer(buf.DataAsNumpy().tobytes(), _DTYPES[t.Type()])
                if t.Sparsity() is not None:
                    self.const[k] = values  # densified by its DENSIFY op
                else:
                    self.const[k] = values.reshape(t.ShapeAsNumpy()) if t.ShapeLength() else values

    # -- helpers ---------------------------------------------------------------------------
    def name(self, k: int) -> str:
        return f"t{k}"

    def shape(self, k: int) -> list[int]:
        return self.graph.Tensors(k).ShapeAsNumpy().tolist()

    def fresh(self, hint: str) -> str:
        self._uid += 1
        return f"{hint}_{self._uid}"

    def node(self, op: str, inputs: list[str], outputs: list[str] | None = None, **attrs) -> str:
        outputs = outputs or [self.fresh(op.lower())]
        self.nodes.append(helper.make_node(op, inputs, outputs, **attrs))
        return outputs[0]

    def constant(self, value, hint: str = "c", dtype=np.float32) -> str:
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def get(self, k: int, nchw: bool | None = None) -> str:
        """ONNX name of tensor k; for a 4D activation, in the layout asked for."""
        if k in self.const:
            value = self.const[k].astype(np.float32) if self.const[k].dtype == np.float16 else self.const[k]
            if nchw and value.ndim == 4:
                value = value.transpose(NHWC_TO_NCHW)
            return self.constant(value, "w", value.dtype)
        stored = self.nchw.get(k, False)
        if nchw is None or nchw == stored or len(self.shape(k)) != 4:
            return self.name(k)
        return self.node("Transpose", [self.name(k)], perm=NHWC_TO_NCHW if nchw else NCHW_TO_NHWC)

    def channel_const(self, k: int) -> str:
        """A constant that broadcasts over the channels of an NCHW activation."""
        value = self.const[k].astype(np.float32)
        if value.ndim == 4:
            value = value.transpose(NHWC_TO_NCHW)
        elif value.ndim == 3:  # (H, W, C)
            value = value.transpose(2, 0, 1)
        elif value.ndim == 1 and value.size > 1:
            value = value.reshape(-1, 1, 1)
        return self.constant(value, "w")

    def activation(self, x: str, code: int, out: str) -> str:
        if code == 0:
            return self.node("Identity", [x], [out])
        if code == 1:
            return self.node("Relu", [x], [out])
        if code == 3:
            return self.node("Clip", [x, self.constant(0.0), self.constant(6.0)], [out])
        raise NotImplementedError(f"fused activation {code}")

    @staticmethod
    def same_pads(size: list[int], kernel: list[int], stride: list[int], dilation: list[int]) -> list[int]:
        begins, ends = [], []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            out = -(-n // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
            begins.append(total // 2)
            ends.append(total - total // 2)
        return begins + ends

    # -- ops -------------------------------------------------------------------------------
    def convert(self) -> onnx.ModelProto:
        g = self.graph
        for j in range(g.OperatorsLength()):
            op = g.Operators(j)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            custom = code.CustomCode()
            kind = custom.decode() if custom else _OPNAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            ins = [op.Inputs(i) for i in range(op.InputsLength())]
            outs = [op.Outputs(i) for i in range(op.OutputsLength())]
            getattr(self, "op_" + kind)(op, ins, outs)

        inputs, outputs = [], []
        for i in range(g.InputsLength()):
            k = g.Inputs(i)
            name = g.Tensors(k).Name().decode()
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, self.shape(k)))
            self.nodes.insert(0, helper.make_node("Identity", [name], [self.name(k)]))
        for i in range(g.OutputsLength()):
            k = g.Outputs(i)
            name = g.Tensors(k).Name().decode()
            self.node("Identity", [self.get(k, nchw=False)], [name])
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, self.shape(k)))
        graph = helper.make_graph(self.nodes, "mediapipe", inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="memeswap-tflite2onnx")
        model.ir_version = 8
        return model

    def op_DEQUANTIZE(self, op, ins, outs):
        self.const[outs[0]] = self.const[ins[0]].astype(np.float32)

    def op_DENSIFY(self, op, ins, outs):
        self.const[outs[0]] = _densify(self.const[ins[0]], self.graph.Tensors(ins[0]))

    def _conv(self, op, ins, outs, depthwise: bool):
        opts = _options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
        weight = self.const[ins[1]].astype(np.float32)  # OHWI, or 1HWC for depthwise
        in_shape = self.shape(ins[0])
        if depthwise:
            weight = weight.transpose(3, 0, 1, 2)  # (C*M, 1, H, W)
            group = in_shape[3]
        else:
            weight = weight.transpose(0, 3, 1, 2)
            group = 1
        stride = [opts.StrideH(), opts.StrideW()]
        dilation = [opts.DilationHFactor(), opts.DilationWFactor()]
        kernel = list(weight.shape[2:])
        pads = self.same_pads(in_shape[1:3], kernel, stride, dilation) if opts.Padding() == 0 else [0] * 4
        args = [self.get(ins[0], True), self.constant(weight, "w")]
        if len(ins) > 2 and ins[2] >= 0:
            args.append(self.constant(self.const[ins[2]].astype(np.float32), "b"))
        y = self.node("Conv", args, kernel_shape=kernel, strides=stride, dilations=dilation, pads=pads, group=group)
        self.activation(y, opts.FusedActivationFunction(), self.name(outs[0]))
        self.nchw[outs[0]] = True

    def op_CONV_2D(self, op, ins, outs):
        self._conv(op, ins, outs, depthwise=False)

    def op_DEPTHWISE_CONV_2D(self, op, ins, outs):
        self._conv(op, ins, outs, depthwise=True)

    def op_MAX_POOL_2D(self, op, ins, outs):
        opts = _options(op, tflite.Pool2DOptions)
        kernel, stride = [opts.FilterHeight(), opts.FilterWidth()], [opts.StrideH(), opts.StrideW()]
        pads = self.same_pads(self.shape(ins[0])[1:3], kernel, stride, [1, 1]) if opts.Padding() == 0 else [0] * 4
        y = self.node("MaxPool", [self.get(ins[0], True)], kernel_shape=kernel, strides=stride, pads=pads)
        self.activation(y, opts.FusedActivationFunction(), self.name(outs[0]))
        self.nchw[outs[0]] = True

    def _binary(self, op, ins, outs, onnx_op: str, options_cls):
        opts = _options(op, options_cls) if op.BuiltinOptions() is not None else None
        four_d = len(self.shape(outs[0])) == 4
        args = []
        for k in ins:
            if k in self.const:
                args.append(self.channel_const(k) if four_d else self.constant(self.const[k].astype(np.float32)))
            else:
                args.append(self.get(k, True if four_d else None))
        y = self.node(onnx_op, args)
        self.activation(y, opts.FusedActivationFunction() if opts else 0, self.name(outs[0]))
        self.nchw[outs[0]] = four_d

    def op_ADD(self, op, ins, outs):
        self._binary(op, ins, outs, "Add", tflite.AddOptions)

    def op_MUL(self, op, ins, outs):
        self._binary(op, ins, outs, "Mul", tflite.MulOptions)

    def op_RELU(self, op, ins, outs):
        self.node("Relu", [self.get(ins[0], True)], [self.name(outs[0])])
        self.nchw[outs[0]] = True

    def op_PRELU(self, op, ins, outs):
        self.node("PRelu", [self.get(ins[0], True), self.channel_const(ins[1])], [self.name(outs[0])])
        self.nchw[outs[0]] = True

    def op_PAD(self, op, ins, outs):
        pads = self.const[ins[1]].astype(np.int64)  # (4, 2), NHWC
        pads = pads[NHWC_TO_NCHW]
        onnx_pads = np.concatenate([pads[:, 0], pads[:, 1]])
        self.node("Pad", [self.get(ins[0], True), self.constant(onnx_pads, "pads", np.int64)], [self.name(outs[0])])
        self.nchw[outs[0]] = True

    def op_RESHAPE(self, op, ins, outs):
        shape = np.array(self.shape(outs[0]), np.int64)
        self.node("Reshape", [self.get(ins[0], False), self.constant(shape, "shape", np.int64)], [self.name(outs[0])])
        self.nchw[outs[0]] = False

    def op_CONCATENATION(self, op, ins, outs):
        opts = _options(op, tflite.ConcatenationOptions)
        rank = len(self.shape(outs[0]))
        axis = opts.Axis() % rank
        if rank == 4:
            axis = [0, 2, 3, 1][axis]  # NHWC axis -> NCHW axis
        y = self.node("Concat", [self.get(k, True if rank == 4 else None) for k in ins], axis=axis)
        self.activation(y, opts.FusedActivationFunction(), self.name(outs[0]))
        self.nchw[outs[0]] = rank == 4

    def op_RESIZE_BILINEAR(self, op, ins, outs):
        opts = _options(op, tflite.ResizeBilinearOptions)
        mode = ("align_corners" if opts.AlignCorners() else
                "half_pixel" if opts.HalfPixelCenters() else "asymmetric")
        n, h, w, c = self.shape(outs[0])
        sizes = self.constant([n, c, h, w], "sizes", np.int64)
        self.node("Resize", [self.get(ins[0], True), "", "", sizes], [self.name(outs[0])],
                  mode="linear", coordinate_transformation_mode=mode)
        self.nchw[outs[0]] = True

    def op_DEPTH_TO_SPACE(self, op, ins, outs):
        opts = _options(op, tflite.DepthToSpaceOptions)
        self.node("DepthToSpace", [self.get(ins[0], True)], [self.name(outs[0])], blocksize=opts.BlockSize(), mode="DCR")
        self.nchw[outs[0]] = True

    def op_STRIDED_SLICE(self, op, ins, outs):
        assert self.shape(ins[0]) == self.shape(outs[0]), "only the identity slice is used"
        self.node("Identity", [self.get(ins[0])], [self.name(outs[0])])
        self.nchw[outs[0]] = self.nchw.get(ins[0], False)

    # -- MediaPipe custom ops --------------------------------------------------------------
    def _custom_options(self, op) -> dict:
        raw = op.CustomOptionsAsNumpy()
        return {} if isinstance(raw, int) else flexbuffers.Loads(raw.tobytes())

    def _col(self, x: str, index: int, axis: int = -1) -> str:
        """x[..., index:index+1] along axis."""
        return self.node("Slice", [x, self.constant([index], "s", np.int64), self.constant([index + 1], "e", np.int64),
                                   self.constant([axis], "a", np.int64)])

    def op_Landmarks2TransformMatrix(self, op, ins, outs):
        """v2: rotate the subset so the left->right landmark line is level, take its bounding box,
        and map a (output_width x output_height) grid onto that box scaled by scale_x/y."""
        p = self._custom_options(op)
        assert abs(p.get("target_rotation_radians", 0.0)) < 1e-9
        lm = self.get(ins[0])  # (1, N, 3)
        xy = self.node("Slice", [lm, self.constant([0], "s", np.int64), self.constant([2], "e", np.int64),
                                 self.constant([2], "a", np.int64)])  # (1, N, 2)
        left = self.node("Gather", [xy, self.constant([p["left_rotation_idx"]], "i", np.int64)], axis=1)
        right = self.node("Gather", [xy, self.constant([p["right_rotation_idx"]], "i", np.int64)], axis=1)
        d = self.node("Sub", [right, left])  # (1, 1, 2)
        norm = self.node("Sqrt", [self.node("ReduceSum", [self.node("Mul", [d, d]), self.constant([2], "a", np.int64)],
                                            keepdims=1)])
        unit = self.node("Div", [d, norm])
        # rotation r = -atan2(dy, dx): cos r = dx/|d|, sin r = -dy/|d|
        cos, sin = self._col(unit, 0), self.node("Neg", [self._col(unit, 1)])
        subset = self.node("Gather", [xy, self.constant(np.array(p["subset_idxs"]), "i", np.int64)], axis=1)
        x, y = self._col(subset, 0), self._col(subset, 1)
        rx = self.node("Sub", [self.node("Mul", [cos, x]), self.node("Mul", [sin, y])])
        ry = self.node("Add", [self.node("Mul", [sin, x]), self.node("Mul", [cos, y])])
        rot = self.node("Concat", [rx, ry], axis=2)  # (1, K, 2)
        hi = self.node("ReduceMax", [rot], axes=[1], keepdims=1)
        lo = self.node("ReduceMin", [rot], axes=[1], keepdims=1)
        size = self.node("Sub", [hi, lo])  # (1, 1, 2): crop width, height
        mid = self.node("Mul", [self.node("Add", [hi, lo]), self.constant(0.5)])
        mx, my = self._col(mid, 0), self._col(mid, 1)
        # back-rotate the centre by -r: (c*mx + s*my, -s*mx + c*my)
        cx = self.node("Add", [self.node("Mul", [cos, mx]), self.node("Mul", [sin, my])])
        cy = self.node("Sub", [self.node("Mul", [cos, my]), self.node("Mul", [sin, mx])])
        ow, oh = float(p["output_width"]), float(p["output_height"])
        sx = self.node("Mul", [self._col(size, 0), self.constant(p["scale_x"] / ow)])
        sy = self.node("Mul", [self._col(size, 1), self.constant(p["scale_y"] / oh)])
        # t = shift(c) * rot(-r) * scale(s) * shift(-o/2); rot(-r) = [[c, s], [-s, c]]
        a00, a01 = self.node("Mul", [cos, sx]), self.node("Mul", [sin, sy])
        a10, a11 = self.node("Neg", [self.node("Mul", [sin, sx])]), self.node("Mul", [cos, sy])
        tx = self.node("Sub", [cx, self.node("Add", [self.node("Mul", [a00, self.constant(ow / 2)]),
                                                     self.node("Mul", [a01, self.constant(oh / 2)])])])
        ty = self.node("Sub", [cy, self.node("Add", [self.node("Mul", [a10, self.constant(ow / 2)]),
                                                     self.node("Mul", [a11, self.constant(oh / 2)])])])
        zero, one = self.constant(np.zeros((1, 1, 1))), self.constant(np.ones((1, 1, 1)))
        row = [a00, a01, zero, tx, a10, a11, zero, ty, zero, zero, one, zero, zero, zero, zero, one]
        flat = self.node("Concat", row, axis=2)  # (1, 1, 16)
        self.node("Reshape", [flat, self.constant([1, 4, 4], "shape", np.int64)], [self.name(outs[0])])

    def op_TransformTensorBilinear(self, op, ins, outs):
        """v2: out[y, x] = bilinear(in, M @ (x + .5, y + .5) - .5), 0 outside [0, W-1] x [0, H-1]."""
        _, h_in, w_in, _ = self.shape(ins[0])
        _, h_out, w_out, _ = self.shape(outs[0])
        m = self.get(ins[1])  # (1, 4, 4)
        rows = self.node("Slice", [m, self.constant([0, 0], "s", np.int64), self.constant([2, 4], "e", np.int64),
                                   self.constant([1, 2], "a", np.int64)])  # (1, 2, 4)
        oy, ox = np.mgrid[0:h_out, 0:w_out].astype(np.float32)
        coords = np.stack([ox + 0.5, oy + 0.5, np.zeros_like(ox), np.ones_like(ox)], -1).reshape(-1, 4)
        tc = self.node("MatMul", [self.constant(coords, "grid"), self.node("Transpose", [rows], perm=[0, 2, 1])])
        tc = self.node("Sub", [tc, self.constant(0.5)])  # (1, HW, 2) input pixel coordinates
        limit = self.constant([w_in - 1, h_in - 1])
        inside = self.node("And", [self.node("GreaterOrEqual", [tc, self.constant(0.0)]),
                                   self.node("LessOrEqual", [tc, limit])])
        mask = self.node("ReduceMin", [self.node("Cast", [inside], to=TensorProto.FLOAT)], axes=[2], keepdims=0)
        mask = self.node("Reshape", [mask, self.constant([1, 1, h_out, w_out], "shape", np.int64)])
        grid = self.node("Sub", [self.node("Div", [self.node("Mul", [tc, self.constant(2.0)]), limit]), self.constant(1.0)])
        grid = self.node("Reshape", [grid, self.constant([1, h_out, w_out, 2], "shape", np.int64)])
        sampled = self.node("GridSample", [self.get(ins[0], True), grid], mode="bilinear",
                            padding_mode="zeros", align_corners=1)
        self.node("Mul", [sampled, mask], [self.name(outs[0])])
        self.nchw[outs[0]] = True

    def op_TransformLandmarks(self, op, ins, outs):
        """v2: (x, y) -> M[:2, :2] @ (x, y) + M[:2, 3]; a third coordinate passes through."""
        dims = self.shape(ins[0])[-1]
        m = self.get(ins[1])
        a = self.node("Slice", [m, self.constant([0, 0], "s", np.int64), self.constant([2, 2], "e", np.int64),
                                self.constant([1, 2], "a", np.int64)])
        t = self.node("Slice", [m, self.constant([0, 3], "s", np.int64), self.constant([2, 4], "e", np.int64),
                                self.constant([1, 2], "a", np.int64)])  # (1, 2, 1)
        lm = self.get(ins[0])
        xy = lm if dims == 2 else self.node("Slice", [lm, self.constant([0], "s", np.int64),
                                                      self.constant([2], "e", np.int64), self.constant([2], "a", np.int64)])
        out = self.node("Add", [self.node("MatMul", [xy, self.node("Transpose", [a], perm=[0, 2, 1])]),
                                self.node("Transpose", [t], perm=[0, 2, 1])])
        if dims == 3:
            out = self.node("Concat", [out, self._col(lm, 2)], axis=2)
        self.node("Identity", [out], [self.name(outs[0])])


def convert(tflite_path: str, onnx_path: str) -> None:
    model = _Converter(tflite_path).convert()
    onnx.checker.check_model(model)
    onnx.save(model, onnx_path)


def _default_modules() -> str:
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        raise SystemExit("pass --modules (the mediapipe/modules folder of mediapipe==0.10.21)")
    return os.path.join(os.path.dirname(spec.origin), "modules")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", default=None)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
    args = parser.parse_args()
    modules = args.modules or _default_modules()
    os.makedirs(args.out, exist_ok=True)
    for name, rel in MODELS.items():
        out = os.path.join(args.out, name + ".onnx")
        convert(os.path.join(modules, rel), out)
        try:
            import onnxruntime as ort

            sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
            feed = {i.name: np.random.rand(*i.shape).astype(np.float32) for i in sess.get_inputs()}
            shapes = [o.shape for o in sess.run(None, feed)]
        except ImportError:
            shapes = "(onnxruntime not installed, not run)"
        print(f"{name}: {os.path.getsize(out) / 1e6:.2f} MB, outputs {shapes}")


if __name__ == "__main__":
    main()
