import logging

import numpy as np
import onnxruntime
import pytest

from memeswap.inference.onnx_providers import (
    CPU,
    CUDA,
    TENSORRT,
    choose_providers,
    create_session,
    provider_options,
)
from tests.onnx_graphs import make_inswapper


def pretend(monkeypatch, *providers: str) -> None:
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [*providers, "AzureExecutionProvider"])


def test_auto_on_this_machine_is_the_cpu():
    assert CUDA not in onnxruntime.get_available_providers()  # the test machine has no GPU build
    assert choose_providers() == [CPU]
    assert choose_providers("cpu") == [CPU]


@pytest.mark.parametrize("preference", ["cuda", "tensorrt", "CUDA"])
def test_missing_gpu_falls_back_to_the_cpu_with_a_warning(preference, caplog):
    with caplog.at_level(logging.INFO, logger="memeswap.onnx"):
        assert choose_providers(preference) == [CPU]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "memeswap.onnx"]
    assert len(warnings) == 1 and "falling back to CPUExecutionProvider" in warnings[0].getMessage()
    assert any(r.levelno == logging.INFO and CPU in r.getMessage() for r in caplog.records)


def test_order_when_gpu_providers_exist(monkeypatch, caplog):
    pretend(monkeypatch, CPU, CUDA, TENSORRT)  # onnxruntime's own order is not ours
    with caplog.at_level(logging.WARNING, logger="memeswap.onnx"):
        assert choose_providers("auto") == [TENSORRT, CUDA, CPU]
        assert choose_providers("tensorrt") == [TENSORRT, CUDA, CPU]
        assert choose_providers("cuda") == [CUDA, CPU]
        assert choose_providers("cpu") == [CPU]
    assert not caplog.records

    pretend(monkeypatch, CUDA, CPU)
    assert choose_providers("auto") == [CUDA, CPU]
    with caplog.at_level(logging.WARNING, logger="memeswap.onnx"):
        assert choose_providers("tensorrt") == [CUDA, CPU]  # next best, with a warning
    assert "falling back to CUDAExecutionProvider" in caplog.records[0].getMessage()


def test_unknown_preference_is_refused():
    with pytest.raises(ValueError, match="gpu"):
        choose_providers("gpu")


def test_provider_options(tmp_path):
    trt, cuda, cpu = provider_options([TENSORRT, CUDA, CPU], tmp_path,
                                      ("x:1x3x8x8", "x:4x3x8x8", "x:8x3x8x8"))
    assert trt["trt_fp16_enable"] is True and trt["device_id"] == 0
    assert trt["trt_engine_cache_enable"] is True and trt["trt_engine_cache_path"] == str(tmp_path)
    assert trt["trt_profile_max_shapes"] == "x:8x3x8x8"
    assert cuda == {"device_id": 0} and cpu == {}
    assert "trt_engine_cache_path" not in provider_options([TENSORRT])[0]


def test_create_session_reports_the_active_provider(tmp_path, caplog):
    path = make_inswapper(tmp_path / "model.onnx", "tint")
    with caplog.at_level(logging.INFO, logger="memeswap.onnx"):
        session = create_session(path, "cuda")  # no CUDA here: a CPU session, not an error
    assert session.get_providers()[0] == CPU
    assert any(r.getMessage() == f"model.onnx runs on {CPU}" for r in caplog.records)
    out = session.run(None, {"target": np.zeros((1, 3, 128, 128), np.float32),
                             "source": np.zeros((1, 512), np.float32)})[0]
    assert out.shape == (1, 3, 128, 128) and np.allclose(out, 0.25)
    assert create_session(path.read_bytes(), "cpu").get_providers()[0] == CPU
    assert not (tmp_path / "trt_cache").exists()  # made only when TensorRT is used
