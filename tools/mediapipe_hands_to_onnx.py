"""Convert MediaPipe 0.10.21's palm detection, hand landmark (full) and selfie segmentation
.tflite models to float32 ONNX (opset 17), once, at development time.

The translator is our own (about 200 lines below): the three models use only 18 TFLite ops,
their weights are float16 behind DEQUANTIZE ops, and the selfie model carries MediaPipe's
custom op `Convolution2DTransposeBias`, which no off-the-shelf converter handles. Inside the
graph everything runs NCHW; the ONNX model's inputs and outputs keep the TFLite names,
shapes and NHWC layout, so a runner feeds it exactly what MediaPipe feeds the TFLite model.

Needs (a development venv, never the app's):
    pip install tflite==2.18.0 onnx==1.23.2 "numpy<2" onnxruntime==1.32.0
    optional, for `--check` (runs TFLite and ONNX on the same random input):
    pip install ai-edge-litert==2.3.0
The .tflite files come from the mediapipe==0.10.21 wheel (`--source` defaults to the repo's
.venv). Usage: python convert.py [--source DIR] [--out models] [--check]
"""
from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

DEFAULT_SOURCE = Path("/work/main/.venv/lib/python3.11/site-packages/mediapipe/modules")
MODELS = {
    "palm_detection_full": "palm_detection/palm_detection_full.tflite",
    "hand_landmark_full": "hand_landmark/hand_landmark_full.tflite",
    "selfie_segmentation": "selfie_segmentation/selfie_segmentation.tflite",
}
OPSET = 17
OPS = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
DTYPES = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
          tflite.TensorType.INT32: np.int32, tflite.TensorType.INT64: np.int64}
NHWC_TO_NCHW, NCHW_TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
ACTIVATIONS = {0: None, 1: "Relu", 3: "Relu6"}


def options(op, cls):
    table = op.BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


class Converter:
    def __init__(self, path: Path) -> None:
        self.model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
        self.graph = self.model.Subgraphs(0)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, np.ndarray] = {}   # tflite tensor index name -> constant
        self.consts: dict[int, np.ndarray] = {}  # tensor index -> constant (NHWC / TFLite layout)
        self.count = 0

    # --- helpers -------------------------------------------------------------------------
    def tensor(self, index: int):
        return self.graph.Tensors(index)

    def shape(self, index: int) -> list[int]:
        return [int(v) for v in self.tensor(index).ShapeAsNumpy()]

    def name(self, index: int) -> str:
        return f"t{index}"

    def const(self, index: int) -> np.ndarray | None:
        if index in self.consts:
            return self.consts[index]
        t = self.tensor(index)
        data = self.model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        array = np.frombuffer(data.tobytes(), DTYPES[t.Type()]).reshape(self.shape(index))
        self.consts[index] = array
        return array

    def add_const(self, array: np.ndarray, hint: str = "c") -> str:
        self.count += 1
        name = f"{hint}_{self.count}"
        if array.dtype == np.float16 or array.dtype == np.float64:
            array = array.astype(np.float32)
        self.inits[name] = array
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        self.count += 1
        output = output or f"n{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [output], name=f"{op}_{self.count}", **attrs))
        return output

    def value(self, index: int) -> str:
        """An op input: a constant (float32, layout as TFLite) or the activation's name."""
        array = self.const(index)
        if array is not None and index not in self.produced:
            return self.add_const(array, "w")
        return self.name(index)

    def activation(self, x: str, code: int, output: str) -> str:
        if code not in ACTIVATIONS:
            raise NotImplementedError(f"fused activation {code}")
        act = ACTIVATIONS[code]
        if act is None:
            return self.node("Identity", [x], output)
        if act == "Relu6":
            return self.node("Clip", [x, self.add_const(np.float32(0)), self.add_const(np.float32(6))], output)
        return self.node(act, [x], output)

    @staticmethod
    def same_pads(size: list[int], kernel: list[int], stride: list[int], dilation: list[int]) -> list[int]:
        begin, end = [], []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            begin.append(total // 2)
            end.append(total - total // 2)
        return begin + end

    def nchw_const(self, index: int) -> str:
        """A constant operand of an elementwise op on NCHW activations."""
        array = self.const(index).astype(np.float32)
        if array.ndim >= 1 and array.ndim <= 4:
            array = array.reshape([1] * (4 - array.ndim) + list(array.shape)).transpose(NHWC_TO_NCHW)
        return self.add_const(array, "w")

    # --- ops -----------------------------------------------------------------------------
    def convert_op(self, op) -> None:
        code = self.model.OperatorCodes(op.OpcodeIndex())
        kind = OPS[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [op.Inputs(i) for i in range(op.InputsLength())]
        out = op.Outputs(0)
        y = self.name(out)
        rank = len(self.shape(out))
        if kind == "DEQUANTIZE":
            self.consts[out] = self.const(ins[0]).astype(np.float32)
            self.produced.discard(out)
            return
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = kind == "DEPTHWISE_CONV_2D"
            o = options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
            w = self.const(ins[1]).astype(np.float32)  # conv: O,H,W,I; depthwise: 1,H,W,C*M
            _, h_in, w_in, c_in = self.shape(ins[0])
            w = w.transpose(3, 0, 1, 2) if depthwise else w.transpose(0, 3, 1, 2)
            stride, dilation = [o.StrideH(), o.StrideW()], [o.DilationHFactor(), o.DilationWFactor()]
            pads = (self.same_pads([h_in, w_in], list(w.shape[2:]), stride, dilation)
                    if o.Padding() == tflite.Padding.SAME else [0, 0, 0, 0])
            inputs = [self.name(ins[0]), self.add_const(w, "w")]
            if len(ins) > 2 and ins[2] >= 0:
                inputs.append(self.add_const(self.const(ins[2]).astype(np.float32), "b"))
            conv = self.node("Conv", inputs, strides=stride, dilations=dilation, pads=pads,
                             group=c_in if depthwise else 1)
            self.activation(conv, o.FusedActivationFunction(), y)
        elif kind == "CUSTOM" and code.CustomCode() == b"Convolution2DTransposeBias":
            padding, stride_w, stride_h = struct.unpack("<iii", op.CustomOptionsAsNumpy().tobytes()[:12])
            w = self.const(ins[1]).astype(np.float32).transpose(3, 0, 1, 2)  # O,H,W,I -> I,O,H,W
            h_in, w_in = self.shape(ins[0])[1:3]
            h_out, w_out = self.shape(out)[1:3]
            k_h, k_w = w.shape[2:]
            pads = [0, 0, 0, 0]
            if padding == tflite.Padding.SAME:
                th = max((h_in - 1) * stride_h + k_h - h_out, 0)
                tw = max((w_in - 1) * stride_w + k_w - w_out, 0)
                pads = [th // 2, tw // 2, th - th // 2, tw - tw // 2]
            self.node("ConvTranspose", [self.name(ins[0]), self.add_const(w, "w"),
                                        self.add_const(self.const(ins[2]).astype(np.float32), "b")],
                      y, strides=[stride_h, stride_w], pads=pads)
        elif kind == "PRELU":
            alpha = self.const(ins[1]).astype(np.float32).reshape(-1, 1, 1)
            self.node("PRelu", [self.name(ins[0]), self.add_const(alpha, "a")], y)
        elif kind in ("ADD", "MUL"):
            o = options(op, tflite.AddOptions if kind == "ADD" else tflite.MulOptions)
            inputs = [self.nchw_const(i) if self.is_const(i) and rank == 4 else self.value(i) for i in ins]
            z = self.node("Add" if kind == "ADD" else "Mul", inputs)
            self.activation(z, o.FusedActivationFunction(), y)
        elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            o = options(op, tflite.Pool2DOptions)
            kernel, stride = [o.FilterHeight(), o.FilterWidth()], [o.StrideH(), o.StrideW()]
            pads = (self.same_pads(self.shape(ins[0])[1:3], kernel, stride, [1, 1])
                    if o.Padding() == tflite.Padding.SAME else [0, 0, 0, 0])
            z = self.node("MaxPool" if kind == "MAX_POOL_2D" else "AveragePool", [self.name(ins[0])],
                          kernel_shape=kernel, strides=stride, pads=pads)
            self.activation(z, o.FusedActivationFunction(), y)
        elif kind == "PAD":
            p = self.const(ins[1]).astype(np.int64)  # rank x 2, NHWC
            if len(p) == 4:
                p = p[NHWC_TO_NCHW]
            self.node("Pad", [self.name(ins[0]), self.add_const(np.concatenate([p[:, 0], p[:, 1]]), "p")], y)
        elif kind == "RESIZE_BILINEAR":
            o = options(op, tflite.ResizeBilinearOptions)
            mode = ("align_corners" if o.AlignCorners() else
                    "half_pixel" if o.HalfPixelCenters() else "asymmetric")
            n, h, w, c = self.shape(out)
            self.node("Resize", [self.name(ins[0]), "", "", self.add_const(np.array([n, c, h, w], np.int64), "s")],
                      y, mode="linear", coordinate_transformation_mode=mode)
        elif kind == "RESHAPE":
            x = self.name(ins[0])
            if len(self.shape(ins[0])) == 4:
                x = self.node("Transpose", [x], perm=NCHW_TO_NHWC)
            target = self.shape(out)
            if rank == 4:
                z = self.node("Reshape", [x, self.add_const(np.array(target, np.int64), "s")])
                self.node("Transpose", [z], y, perm=NHWC_TO_NCHW)
            else:
                self.node("Reshape", [x, self.add_const(np.array(target, np.int64), "s")], y)
        elif kind == "CONCATENATION":
            o = options(op, tflite.ConcatenationOptions)
            axis = o.Axis() % rank
            if rank == 4:
                axis = NHWC_TO_NCHW.index(axis)
            z = self.node("Concat", [self.value(i) for i in ins], axis=axis)
            self.activation(z, o.FusedActivationFunction(), y)
        elif kind == "MEAN":
            o = options(op, tflite.ReducerOptions)
            axes = [int(a) % len(self.shape(ins[0])) for a in self.const(ins[1]).reshape(-1)]
            if len(self.shape(ins[0])) == 4:
                axes = [NHWC_TO_NCHW.index(a) for a in axes]
            self.node("ReduceMean", [self.name(ins[0])], y, axes=sorted(axes), keepdims=int(o.KeepDims()))
        elif kind == "FULLY_CONNECTED":
            o = options(op, tflite.FullyConnectedOptions)
            w = self.const(ins[1]).astype(np.float32)  # out, in
            x = self.name(ins[0])
            if len(self.shape(ins[0])) == 4:
                x = self.node("Transpose", [x], perm=NCHW_TO_NHWC)
            x = self.node("Reshape", [x, self.add_const(np.array([-1, w.shape[1]], np.int64), "s")])
            inputs = [x, self.add_const(w, "w")]
            if len(ins) > 2 and ins[2] >= 0:
                inputs.append(self.add_const(self.const(ins[2]).astype(np.float32), "b"))
            z = self.node("Gemm", inputs, transB=1)
            self.activation(z, o.FusedActivationFunction(), y)
        elif kind in ("LOGISTIC", "RELU", "HARD_SWISH"):
            self.node({"LOGISTIC": "Sigmoid", "RELU": "Relu", "HARD_SWISH": "HardSwish"}[kind],
                      [self.name(ins[0])], y)
        else:
            raise NotImplementedError(kind)

    def is_const(self, index: int) -> bool:
        return index not in self.produced and self.const(index) is not None

    def convert(self) -> onnx.ModelProto:
        g = self.graph
        self.produced = {g.Operators(i).Outputs(0) for i in range(g.OperatorsLength())}
        inputs, outputs = [], []
        for i in range(g.InputsLength()):
            index = g.Inputs(i)
            tname = self.tensor(index).Name().decode()
            shape = self.shape(index)
            inputs.append(helper.make_tensor_value_info(tname, TensorProto.FLOAT, shape))
            if len(shape) == 4:
                self.node("Transpose", [tname], self.name(index), perm=NHWC_TO_NCHW)
            else:
                self.node("Identity", [tname], self.name(index))
        for i in range(g.OperatorsLength()):
            self.convert_op(g.Operators(i))
        for i in range(g.OutputsLength()):
            index = g.Outputs(i)
            tname = self.tensor(index).Name().decode()
            shape = self.shape(index)
            outputs.append(helper.make_tensor_value_info(tname, TensorProto.FLOAT, shape))
            if len(shape) == 4:
                self.node("Transpose", [self.name(index)], tname, perm=NCHW_TO_NHWC)
            else:
                self.node("Identity", [self.name(index)], tname)
        initializers = [numpy_helper.from_array(v, k) for k, v in self.inits.items()]
        graph = helper.make_graph(self.nodes, "mediapipe", inputs, outputs, initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="memeswap-tflite2onnx")
        model.ir_version = 8  # onnxruntime >= 1.15 reads it
        onnx.checker.check_model(model, full_check=True)
        return model


def check(tflite_path: Path, onnx_path: Path) -> str:
    """Max abs difference of each output, TFLite (ai-edge-litert) vs onnxruntime, random input."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    x = np.random.default_rng(0).random(detail["shape"], dtype=np.float32)
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ours = dict(zip([o.name for o in session.get_outputs()], session.run(None, {session.get_inputs()[0].name: x})))
    lines = []
    for out in interpreter.get_output_details():
        theirs = interpreter.get_tensor(out["index"])
        lines.append(f"{out['name']}: max|diff| {np.abs(theirs - ours[out['name']]).max():.2e} "
                     f"(range {theirs.min():.3g}..{theirs.max():.3g})")
    return "; ".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "models")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, relative in MODELS.items():
        model = Converter(args.source / relative).convert()
        path = args.out / f"{name}.onnx"
        onnx.save(model, path)
        print(f"{path}: {path.stat().st_size / 1e6:.2f} MB, {len(model.graph.node)} nodes")
        if args.check:
            try:
                print("   ", check(args.source / relative, path))
            except Exception as error:  # the custom op is not in LiteRT's resolver
                print(f"    check skipped: {type(error).__name__}: {str(error).splitlines()[0][:120]}")


if __name__ == "__main__":
    main()
