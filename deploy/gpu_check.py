"""GPU check for the learned swapper: the CUDA provider, batched against one face per run.

Run from the repository root on a machine with an NVIDIA GPU (deploy/gpu_check.sh
installs what it needs first). Part 1 needs only numpy, onnx and onnxruntime-gpu: it
builds a stand-in for inswapper_128.onnx with the real contract (inputs "target"
1x3x128x128 and "source" 1x512, output 1x3x128x128, batch fixed to 1, `emap` as the last
initializer) and a realistic amount of convolution work, or uses the real model when
`--models-dir` holds a verified one, and times both ways of running it on the same faces.
Part 2, when the whole package is installed, runs full swap jobs on a built-in template.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memeswap.inference.onnx_graph import make_batch_symbolic  # noqa: E402
from memeswap.inference.onnx_providers import create_session  # noqa: E402


def stand_in_inswapper(path: Path, blocks: int = 6, width: int = 256) -> Path:
    """An inswapper-shaped graph: downsample to 32x32, `blocks` latent-modulated 3x3 conv
    blocks at `width` channels, upsample back to 128x128 (about 1.3 GFLOP per block)."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def weight(name: str, shape: tuple[int, ...], scale: float) -> str:
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    def conv(x: str, out: str, cin: int, cout: int, stride: int = 1) -> str:
        w = weight(f"{out}_w", (cout, cin, 3, 3), (2.0 / (cin * 9)) ** 0.5)
        nodes.append(helper.make_node("Conv", [x, w], [out], pads=[1, 1, 1, 1], strides=[stride, stride]))
        return out

    x = conv("target", "d1", 3, 64, 2)
    nodes.append(helper.make_node("Relu", [x], ["d1r"]))
    x = conv("d1r", "d2", 64, width, 2)
    nodes.append(helper.make_node("Gemm", ["source", weight("style_w", (512, width), 0.02)], ["style"]))
    nodes.append(helper.make_node("Unsqueeze", ["style", "axes23"], ["style4"]))
    inits.append(numpy_helper.from_array(np.array([2, 3], np.int64), "axes23"))
    for i in range(blocks):
        y = conv(x, f"b{i}", width, width)
        nodes.append(helper.make_node("Mul", [y, "style4"], [f"b{i}m"]))
        nodes.append(helper.make_node("Relu", [f"b{i}m"], [f"b{i}r"]))
        nodes.append(helper.make_node("Add", [x, f"b{i}r"], [f"b{i}o"]))
        x = f"b{i}o"
    nodes.append(helper.make_node("Resize", [x, "", "scales"], ["up"], mode="nearest"))
    inits.append(numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "scales"))
    x = conv("up", "rgb", width, 3)
    nodes.append(helper.make_node("Sigmoid", [x], ["output"]))
    inits.append(numpy_helper.from_array(np.eye(512, dtype=np.float32), "emap"))  # last, as in inswapper
    graph = helper.make_graph(
        nodes, "inswapper_stand_in",
        [helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
         helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def faces_per_second(run, crops: np.ndarray, latents: np.ndarray, batch: int,
                     repeats: int = 3) -> tuple[float, np.ndarray]:
    outputs = None
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        parts = [run(crops[i:i + batch], latents[i:i + batch]) for i in range(0, len(crops), batch)]
        best = min(best, time.perf_counter() - started)
        outputs = np.concatenate(parts)
    return len(crops) / best, outputs


def model_stage(model_path: Path, provider: str, faces: int, batch: int) -> None:
    model = onnx.load(str(model_path))
    rng = np.random.default_rng(1)
    crops = rng.random((faces, 3, 128, 128), dtype=np.float32)
    latent = rng.standard_normal((1, 512)).astype(np.float32)
    latents = np.repeat(latent / np.linalg.norm(latent), faces, axis=0)

    single = create_session(model_path, provider)
    active = single.get_providers()[0]
    names = [i.name for i in single.get_inputs()]
    out_name = single.get_outputs()[0].name

    def runner(session):
        return lambda crop, latent: session.run([out_name], {names[0]: crop, names[1]: latent})[0]

    faces_per_second(runner(single), crops[:batch], latents[:batch], 1, repeats=1)  # warm-up
    per_face, singles = faces_per_second(runner(single), crops, latents, 1)
    if not make_batch_symbolic(model):
        print("the model's batch dimension cannot be made symbolic; only per-face runs")
        return
    batched = create_session(model.SerializeToString(), provider)
    faces_per_second(runner(batched), crops[:batch], latents[:batch], batch, repeats=1)
    per_batch, batches = faces_per_second(runner(batched), crops, latents, batch)
    print(f"provider {active}: {faces} faces of 128x128")
    print(f"  one face per run   {per_face:8.1f} faces/s")
    print(f"  batches of {batch:<3}     {per_batch:8.1f} faces/s   ({per_batch / per_face:.2f}x)")
    print(f"  largest difference batched vs per-face: {np.abs(batches - singles).max():.2e}")


def full_pipeline(provider: str, batch: int) -> None:
    try:
        from memeswap.bot.assembly import build_swapper  # noqa: F401  (the whole package is installed)
        from memeswap.inference.faces.arcface import ArcFaceEmbedder
        from memeswap.inference.faces.mediapipe_analyser import MediaPipeAnalyser
        from memeswap.inference.pipeline import SwapOptions, run_swap
        from memeswap.inference.samples import sample_selfie
        from memeswap.inference.swappers.inswapper import InSwapper
        from memeswap.inference.templates.compile import TrackCache
        from memeswap.inference.templates.library import TemplateLibrary
        from tests.onnx_graphs import make_arcface
    except ImportError as missing:
        print(f"full pipeline skipped: {missing} (install the package with deploy/gpu_check.sh)")
        return
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        swapper = InSwapper(stand_in_inswapper(folder / "inswapper_128.onnx"),
                            ArcFaceEmbedder(make_arcface(folder / "w600k_r50.onnx"), provider), provider, batch)
        swapper.prepare()
        analyser = MediaPipeAnalyser()
        library = TemplateLibrary(folder / "templates", TrackCache(folder / "tracks"), analyser)
        selfie, _ = sample_selfie(analyser)
        for name in ("dramatic-zoom", "duo"):
            compiled = library.compile(library.get(name))
            run_swap(selfie, compiled, analyser, swapper, SwapOptions(format="mp4"), human_check=library.human_check)
            result = run_swap(selfie, compiled, analyser, swapper, SwapOptions(format="mp4"),
                              human_check=library.human_check)
            frames = compiled.tracks.frame_count
            print(f"full job '{name}' ({frames} frames, {compiled.face_count} face(s), batched={swapper.batched}): "
                  f"{result.timings['total']:.2f} s, {frames / result.timings['total']:.1f} frames/s, "
                  f"swap stage {frames / result.timings['swap']:.1f} frames/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="cuda", choices=["auto", "tensorrt", "cuda", "cpu"])
    parser.add_argument("--faces", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--model", type=Path, help="a real inswapper_128.onnx to time instead of the stand-in")
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__}, available providers: {onnxruntime.get_available_providers()}")
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or stand_in_inswapper(Path(folder) / "inswapper_stand_in.onnx")
        model_stage(model, args.provider, args.faces, args.batch)
    if not args.skip_pipeline:
        full_pipeline(args.provider, args.batch)


if __name__ == "__main__":
    main()
