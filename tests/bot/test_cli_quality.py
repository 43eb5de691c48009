"""`memeswap inspect` and `memeswap bench --quality` as a user runs them: real processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from memeswap.inference.media.decode import read_frames
from memeswap.inference.quality.contact_sheet import FRAMES_KEY, sheet_layout
from memeswap.inference.quality.corpus import CASES, load_portraits, render_selfie


def run(args: list[str], data_dir: Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEMESWAP_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "memeswap", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def selfie(tmp_path_factory, analyser) -> Path:
    """Grace Hopper's portrait (the shipped sample photo), cropped as a selfie."""
    image, _ = render_selfie(CASES["frontal"], load_portraits(analyser))
    path = tmp_path_factory.mktemp("inspect") / "hopper.png"
    cv2.imwrite(str(path), image[:, :, ::-1])
    return path


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_inspect_writes_template_frames_above_the_swapped_ones(selfie, tmp_path, compiled_builtins):
    result = run(["inspect", str(selfie), "dramatic-zoom", "-o", "sheet.png", "--frames", "4"],
                 tmp_path / "data", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote sheet.png") and "Traceback" not in result.stderr

    sheet_image = Image.open(tmp_path / "sheet.png")
    assert sheet_image.format == "PNG"
    shown = [int(v) for v in sheet_image.text[FRAMES_KEY].split(",")]
    compiled = compiled_builtins("dramatic-zoom")
    frames = list(read_frames(compiled.template.media_path))
    assert len(shown) == 4 and shown == sorted(set(shown)) and 0 <= shown[0] and shown[-1] < len(frames)
    layout = sheet_layout(4, frames[0].shape[1], frames[0].shape[0])
    sheet = np.asarray(sheet_image.convert("RGB")).astype(np.float32)
    assert sheet.shape == (layout.height, layout.width, 3)
    for column, index in enumerate(shown):
        x0, y0, x1, y1 = layout.cell(column, 0)
        top = sheet[y0:y1, x0:x1]
        expected = cv2.resize(frames[index], (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        assert np.abs(top - expected).mean() < 3, f"column {column} is not template frame {index}"
        x0, y0, x1, y1 = layout.cell(column, 1)
        bottom = sheet[y0:y1, x0:x1]
        scale = (x1 - x0) / frames[0].shape[1]
        fx0, fy0, fx1, fy1 = compiled.tracks.faces_at(index)[0].box * scale
        inset_x, inset_y = 0.2 * (fx1 - fx0), 0.2 * (fy1 - fy0)
        face = (slice(int(fy0 + inset_y), int(fy1 - inset_y)), slice(int(fx0 + inset_x), int(fx1 - inset_x)))
        corner = (slice(0, (y1 - y0) // 8), slice(0, (x1 - x0) // 8))
        assert np.abs(bottom[face] - top[face]).mean() > 8, f"column {column}: the face was not swapped"
        assert np.abs(bottom[corner] - top[corner]).mean() < 6, f"column {column}: the output is another frame"


def test_inspect_refuses_a_sheet_that_is_not_a_png(selfie, tmp_path):
    line = _one_error_line(run(["inspect", str(selfie), "pan", "-o", "sheet.jpg"], tmp_path / "data", tmp_path))
    assert ".png" in line
    assert not (tmp_path / "sheet.jpg").exists()


def test_inspect_of_a_missing_selfie_is_one_line(tmp_path):
    line = _one_error_line(run(["inspect", "nowhere.png", "pan"], tmp_path / "data", tmp_path))
    assert "no such file" in line


def test_quality_benchmark_scores_corpus_cases_and_draws_their_sheets(tmp_path):
    result = run(["bench", "--quality", "--json", "--case", "hand", "--case", "turn-40", "--sheets", "sheets"],
                 tmp_path / "data", tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    cases = {case["case"]: case for case in report["cases"]}
    assert set(cases) == {"hand", "turn-40"}
    for case in cases.values():
        assert case["frames"] == 30 and case["analyser_calls"] == 1, case
        assert 0 < case["sharpness_min"] <= case["sharpness_max"] and 0 <= case["identity"] < 2
        assert case["job_s"] > 0 and case["transcode_s"] > 0 and case["seam"] >= 0
    assert 0 <= cases["hand"]["occluder_kept"] <= 1 and cases["hand"]["occluder_pass"] is not None
    assert cases["turn-40"]["occluder_kept"] is None  # nothing in front of that face
    overall = report["overall"]
    assert overall["cases"] == 2 and overall["occluder"]["measured"] == 1
    assert overall["cost"]["analyser_calls_per_job"] == 1
    for name in cases:
        assert Image.open(tmp_path / "sheets" / f"{name}.png").text[FRAMES_KEY]
    assert (tmp_path / "data" / "cache" / "quality").is_dir()
    assert not (tmp_path / "data" / "cache" / "tracks").exists()  # the library's track cache is not used


def test_quality_benchmark_refuses_an_unknown_case_in_one_line(tmp_path):
    line = _one_error_line(run(["bench", "--quality", "--case", "nope"], tmp_path / "data", tmp_path))
    assert "no corpus case named 'nope'" in line and "hand" in line


def test_quality_benchmark_refuses_sheets_that_are_a_file_in_one_line(tmp_path):
    (tmp_path / "sheets.txt").write_text("not a folder")
    line = _one_error_line(run(["bench", "--quality", "--case", "hand", "--sheets", "sheets.txt"], tmp_path / "data",
                               tmp_path))
    assert "--sheets must be a folder" in line
