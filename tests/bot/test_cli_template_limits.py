"""`memeswap templates` and `memeswap swap` as a user runs them, on what is costly to decode
and on what they leave in the face-track cache."""

import hashlib
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from memeswap.inference.media import ffmpeg
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import encode_frames
from memeswap.inference.samples import crop_face
from memeswap.inference.templates.catalog import builtin_templates_dir
from tests.hostile_media import decode_cost_gif, late_face_clip


def run(args: list[str], data_dir: Path, cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memeswap", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "MEMESWAP_DATA_DIR": str(data_dir), **env})


def track_files(data_dir: Path) -> list[str]:
    folder = data_dir / "cache" / "tracks"
    return sorted(p.name for p in folder.glob("*.npz")) if folder.is_dir() else []


def stored_media_hash(data_dir: Path, name: str) -> str:
    return hashlib.sha256((data_dir / "templates" / name / "template.mp4").read_bytes()).hexdigest()


def builtin(name: str) -> Path:
    return next((builtin_templates_dir() / name).glob("*.mp4"))


def test_templates_add_refuses_the_decode_cost_gif_in_seconds(tmp_path):
    (tmp_path / "party.gif").write_bytes(decode_cost_gif())
    started = time.monotonic()
    result = run(["templates", "add", "party.gif", "--name", "party"], tmp_path / "data", tmp_path, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: the template is too big to decode: 300 frames of 6000x6000 pixels; the limit is 650 megapixels "
        "in all, so make it smaller or shorter"]
    assert elapsed < 10, elapsed  # the process's start included
    assert not (tmp_path / "data" / "templates").exists() or not any((tmp_path / "data" / "templates").iterdir())


@pytest.mark.parametrize("lie", ["title tag", "patched duration"])
def test_templates_add_screens_the_frames_it_decodes_not_the_ones_a_file_announces(tmp_path, group, astronaut, lie):
    """A protected face in the second half of a clip that announces half a second."""
    image, faces = group
    (tmp_path / "clip.mp4").write_bytes(late_face_clip(crop_face(image, faces[2]), astronaut, tmp_path / "c.mp4", lie))
    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut[:, :, ::-1])
    data = tmp_path / "data"
    protect = run(["protected", "add", "astronaut.png", "--label", "nasa"], data, tmp_path)
    assert protect.returncode == 0, protect.stderr
    add = run(["templates", "add", "clip.mp4", "--name", "sneaky"], data, tmp_path)
    assert add.returncode == 2, add.stderr
    assert add.stderr.strip().splitlines() == ["error: this template shows a face that can't be used in swaps here."]
    assert not (data / "templates" / "sneaky").exists()


def test_removed_templates_leave_no_tracks_and_shared_tracks_stay_while_used(tmp_path):
    data = tmp_path / "data"
    for name in ("first-pan", "second-pan"):  # the same clip twice: the same stored media, one cache entry
        added = run(["templates", "add", str(builtin("pan")), "--name", name], data, tmp_path)
        assert added.returncode == 0, added.stderr
    entries = track_files(data)
    assert len(entries) == 1
    assert run(["templates", "remove", "first-pan"], data, tmp_path).returncode == 0
    assert track_files(data) == entries  # the other template still uses them
    assert run(["templates", "remove", "second-pan"], data, tmp_path).returncode == 0
    assert track_files(data) == []


def test_a_swap_into_a_media_file_leaves_no_tracks(tmp_path, group):
    image, faces = group
    cv2.imwrite(str(tmp_path / "selfie.png"), crop_face(image, faces[2])[:, :, ::-1])
    frames = list(itertools.islice(read_frames(builtin("bounce")), 6))
    (tmp_path / "posted.mp4").write_bytes(encode_frames(frames, "mp4", fps=12).data)
    result = run(["swap", "selfie.png", "-t", "posted.mp4", "-o", "out.gif"], tmp_path / "data", tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.gif").is_file()
    assert track_files(tmp_path / "data") == []


def test_the_track_cache_byte_cap_evicts_the_oldest(tmp_path):
    data = tmp_path / "data"
    cap = "1"  # bytes: every entry is over it, so only the newest stays
    for name, clip in (("my-pan", "pan"), ("my-bounce", "bounce")):
        added = run(["templates", "add", str(builtin(clip)), "--name", name], data, tmp_path,
                    MEMESWAP_TRACK_CACHE_BYTES=cap)
        assert added.returncode == 0, added.stderr
    newest = stored_media_hash(data, "my-bounce")
    assert [entry[:64] for entry in track_files(data)] == [newest]
    shown = run(["templates", "show", "my-pan"], data, tmp_path, MEMESWAP_TRACK_CACHE_BYTES=cap)
    assert shown.returncode == 0, shown.stderr  # an evicted entry is recomputed when used
    assert [entry[:64] for entry in track_files(data)] == [stored_media_hash(data, "my-pan")]


def test_templates_add_refuses_a_clip_whose_tag_key_forges_its_duration(tmp_path):
    """The built-in "pan" clip with a tag whose key adds a line "  Duration: 00:00:00.50" to
    ffmpeg's description of it: one line, exit status 2, nothing stored (the real duration
    line is printed once; a file that shows two is not read with either)."""
    key = "k\n  Duration: 00:00:00.50, start: 0.000000, bitrate: 41 kb/s\n    x"
    subprocess.run([ffmpeg.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(builtin("pan")),
                    "-c", "copy", "-movflags", "use_metadata_tags", "-metadata", f"{key}=v", str(tmp_path / "pan.mp4")],
                   check=True)
    data = tmp_path / "data"
    added = run(["templates", "add", "pan.mp4", "--name", "forged"], data, tmp_path)
    assert added.returncode == 2, added.stderr
    assert added.stderr.strip().splitlines() == ["error: the video file is truncated or damaged"]
    assert not (data / "templates" / "forged").exists()
