"""`memeswap models` as a user runs it: nothing is downloaded without being asked."""

import json
import os
import subprocess
import sys
from pathlib import Path


def run(args: list[str], models_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEMESWAP_MODELS_DIR": str(models_dir), "MEMESWAP_DATA_DIR": str(models_dir / "data")}
    return subprocess.run([sys.executable, "-m", "memeswap", "models", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_list_shows_every_model_missing_with_its_licence(tmp_path):
    result = run(["list", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"inswapper_128", "det_10g", "w600k_r50", "2d106det"} <= set(rows)
    assert all(row["status"] == "missing" for row in rows.values())
    assert "non-commercial" in rows["inswapper_128"]["licence"]


def test_fetch_needs_the_licence_accepted(tmp_path):
    result = run(["fetch", "inswapper_128"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: inswapper_128 is for non-commercial research only (insightface); pass --accept-license to fetch it"]
    assert not any(tmp_path.glob("*.onnx"))


def test_verify_reports_a_corrupt_file(tmp_path):
    (tmp_path / "inswapper_128.onnx").write_bytes(b"not the model")
    result = run(["verify"], tmp_path)
    assert result.returncode == 2
    assert "inswapper_128    wrong_size" in result.stdout
    assert "failed verification" in result.stderr


def test_verify_with_nothing_installed_says_so(tmp_path):
    result = run(["verify"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no model files are installed" in result.stdout and str(tmp_path) in result.stdout
    assert "missing" not in result.stdout


def test_path_prints_the_models_folder(tmp_path):
    assert run(["path"], tmp_path).stdout.strip() == str(tmp_path)
