"""Which onnxruntime execution provider runs the learned models, and sessions on it.

The choice never fails: a GPU provider that this onnxruntime build or machine lacks falls
back to the CPU with a warning, so the same configuration works on a laptop and on a GPU
worker. onnxruntime itself may also drop a provider it cannot start (a missing CUDA or
cuDNN library); `create_session` logs the provider the session really got.
"""

import logging
from pathlib import Path
from typing import Any

import onnxruntime

log = logging.getLogger("memeswap.onnx")

# onnxruntime's builds send usage events to Microsoft (mobile.events.data.microsoft.com, through
# any proxy named in the environment) unless told not to; every module that opens a session
# imports this one. (An event from the library's start-up was still seen going out after this.)
onnxruntime.disable_telemetry_events()

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# Each preference lists the providers it may use, best first; CPU always closes the list
# so that operators a GPU provider cannot run still have a home.
_CHAINS = {
    "auto": (TENSORRT, CUDA, CPU),
    "tensorrt": (TENSORRT, CUDA, CPU),
    "cuda": (CUDA, CPU),
    "cpu": (CPU,),
}
_WANTED = {"tensorrt": TENSORRT, "cuda": CUDA}


def choose_providers(preference: str = "auto") -> list[str]:
    """The providers to ask onnxruntime for, best first: "auto", "tensorrt", "cuda" or "cpu"."""
    preference = preference.lower()
    if preference not in _CHAINS:
        raise ValueError(f"unknown ONNX provider preference {preference!r}; use one of {', '.join(_CHAINS)}")
    available = set(onnxruntime.get_available_providers())
    chosen = [p for p in _CHAINS[preference] if p in available or p == CPU]
    if chosen[0] != CPU:
        _preload_cuda_libraries()
    wanted = _WANTED.get(preference)
    if wanted is not None and wanted not in available:
        log.warning("%s was asked for but this onnxruntime has no %s; falling back to %s",
                    preference, wanted, chosen[0])
    log.info("ONNX providers (%s): %s", preference, ", ".join(chosen))
    return chosen


def _preload_cuda_libraries() -> None:
    """With the `gpu` extra, CUDA and cuDNN come as NVIDIA's pip wheels rather than a system
    install; onnxruntime >= 1.21 loads them from there (a no-op where they are missing, and
    the session then falls back with its own warning)."""
    preload = getattr(onnxruntime, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception as error:  # noqa: BLE001  (a missing library is the session's to report)
            log.info("could not preload the CUDA libraries from pip wheels: %s", error)


def provider_options(
    providers: list[str], cache_dir: Path | None = None, trt_profile: tuple[str, str, str] | None = None
) -> list[dict[str, Any]]:
    """Options for each provider: TensorRT in fp16 with its engines cached in `cache_dir`
    (building an engine takes minutes), CUDA on device 0.

    `trt_profile` is TensorRT's (min, opt, max) input shapes, e.g. "x:1x3x8x8,y:1x4", for
    a graph with a symbolic batch: one engine then serves every batch size in the range
    instead of a rebuild for each new one.
    """
    options: list[dict[str, Any]] = []
    for provider in providers:
        if provider == TENSORRT:
            trt: dict[str, Any] = {"device_id": 0, "trt_fp16_enable": True}
            if cache_dir is not None:
                trt.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir),
                           trt_timing_cache_enable=True, trt_timing_cache_path=str(cache_dir))
            if trt_profile is not None:
                trt.update(trt_profile_min_shapes=trt_profile[0], trt_profile_opt_shapes=trt_profile[1],
                           trt_profile_max_shapes=trt_profile[2])
            options.append(trt)
        elif provider == CUDA:
            options.append({"device_id": 0})
        else:
            options.append({})
    return options


def create_session(
    model: Path | bytes, preference: str = "auto", cache_dir: Path | None = None,
    trt_profile: tuple[str, str, str] | None = None,
) -> onnxruntime.InferenceSession:
    """A session for a model file (or its serialised bytes) on the best allowed provider.

    The TensorRT engine cache goes to `cache_dir`, else to a `trt_cache` folder next to the
    model file; a model given as bytes without `cache_dir` builds its engines every time.
    """
    providers = choose_providers(preference)
    if cache_dir is None and isinstance(model, Path):
        cache_dir = model.parent / "trt_cache"
    if TENSORRT in providers and cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    source = str(model) if isinstance(model, Path) else model
    session = onnxruntime.InferenceSession(
        source, providers=providers, provider_options=provider_options(providers, cache_dir, trt_profile)
    )
    active = session.get_providers()[0]
    name = model.name if isinstance(model, Path) else "model from memory"
    if active != providers[0]:
        log.warning("%s: onnxruntime could not start %s; running on %s", name, providers[0], active)
    log.info("%s runs on %s", name, active)
    return session


def create_small_session(model: Path) -> onnxruntime.InferenceSession:
    """A CPU session for one of the small MediaPipe models (2-10 ms a run): one thread that
    does not spin-wait is as fast as a pool for them, and leaves the other cores to the swap
    and the encode running beside it (a pool was 2-3x slower and erratic on 2 cores)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
