"""A video template with sound, added with `memeswap templates add` and swapped with
`memeswap swap`: an MP4 output keeps the template's tone (looped to the output's length,
AAC, within the byte budget); a GIF has none."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from memeswap.inference.media import ffmpeg
from memeswap.inference.samples import crop_face

PAN = Path(__file__).resolve().parents[2] / "templates" / "builtin" / "pan" / "template.mp4"  # 36 frames, 3 s
TONE_HZ = 440
RATE = 8000  # samples per second the sound is read back at


def run(args: list[str], data_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEMESWAP_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "memeswap", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def ffmpeg_streams(path: Path) -> str:
    """What `ffmpeg -i` says about a file (the bundled ffmpeg has no ffprobe)."""
    result = subprocess.run([ffmpeg.ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                            timeout=60)
    return result.stderr


def sound_of(path: Path) -> np.ndarray:
    """The first audio stream, decoded to mono 16-bit samples at RATE."""
    result = subprocess.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
                             "-ar", str(RATE), "-f", "s16le", "pipe:1"], capture_output=True, timeout=60, check=True)
    return np.frombuffer(result.stdout, dtype="<i2").astype(np.float64)


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, group) -> Path:
    """A selfie, and the built-in `pan` clip with a 1.2 s sine tone: shorter than the clip,
    so the output must loop it."""
    folder = tmp_path_factory.mktemp("sound")
    image, faces = group
    cv2.imwrite(str(folder / "selfie.png"), crop_face(image, faces[2])[:, :, ::-1])
    subprocess.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-y", "-i", str(PAN),
                    "-f", "lavfi", "-i", f"sine=frequency={TONE_HZ}:sample_rate=44100:duration=1.2",
                    "-map", "0:v:0", "-map", "1:a:0", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    str(folder / "with-tone.mp4")], check=True, timeout=120)
    assert "Audio: aac" in ffmpeg_streams(folder / "with-tone.mp4")
    return folder


def test_an_added_video_with_sound_keeps_it_in_mp4_outputs(workspace, tmp_path):
    data = tmp_path / "data"
    added = run(["templates", "add", "with-tone.mp4", "--name", "toned"], data, workspace)
    assert added.returncode == 0, added.stderr
    stored = next(data.rglob("toned/*.mp4"))
    assert "Audio: aac" in ffmpeg_streams(stored)  # the stored (re-encoded) template kept its sound

    output = tmp_path / "meme.mp4"
    swapped = run(["swap", "selfie.png", "-t", "toned", "-o", str(output), "--max-bytes", "400000"], data, workspace)
    assert swapped.returncode == 0, swapped.stderr
    assert output.stat().st_size <= 400_000
    described = ffmpeg_streams(output)
    assert "Video: h264" in described and "Audio: aac" in described
    sound = sound_of(output)
    assert abs(len(sound) / RATE - 3.0) < 0.15  # the clip's 3 s: the 1.2 s tone looped, then cut
    assert abs(dominant_hz(sound) - TONE_HZ) < 5
    assert np.abs(sound[int(2.0 * RATE):int(2.3 * RATE)]).mean() > 500  # still sounding after the tone's own end

    gif = tmp_path / "meme.gif"
    assert run(["swap", "selfie.png", "-t", "toned", "-o", str(gif)], data, workspace).returncode == 0
    assert gif.read_bytes()[:6] == b"GIF89a"


def test_a_one_off_video_with_sound_keeps_it_and_a_silent_one_stays_silent(workspace, tmp_path):
    toned, silent = tmp_path / "toned.mp4", tmp_path / "silent.mp4"
    assert run(["swap", "selfie.png", "-t", "with-tone.mp4", "-o", str(toned)], tmp_path / "data",
               workspace).returncode == 0
    assert "Audio: aac" in ffmpeg_streams(toned)
    assert run(["swap", "selfie.png", "-t", "pan", "-o", str(silent)], tmp_path / "data", workspace).returncode == 0
    assert "Audio:" not in ffmpeg_streams(silent)
