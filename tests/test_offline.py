"""memeswap runs offline and sends nothing: ONNX Runtime's telemetry is off in every
process that imports memeswap (it would write a session file in the temp folder at import,
and may post usage events to Microsoft)."""

import os
import subprocess
import sys


def test_onnx_runtime_telemetry_is_off_and_leaves_nothing_in_the_temp_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env["TMPDIR"] = str(tmp_path)
    script = ("import os, memeswap.inference.faces.mediapipe_analyser as m; "
              "from memeswap.inference.faces.blaze import model_path; "
              "from memeswap.inference.onnx_providers import create_small_session; "
              "create_small_session(model_path('face_detection_short_range')); "
              "print(os.environ['ORT_DISABLE_TELEMETRY'])")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    assert list(tmp_path.iterdir()) == []
