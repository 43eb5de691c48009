"""The `memeswap` command as a user runs it: a real process, its exit status and what it prints."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from memeswap.inference.samples import crop_face, group_photo_path

NATIVE_NOISE = ("W0000", "I0000", "INFO:", "WARNING:", "absl", "XNNPACK", "Traceback")


def run(args: list[str], data_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEMESWAP_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "memeswap", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, group) -> Path:
    """A folder of inputs, good and bad, made here from packaged images."""
    folder = tmp_path_factory.mktemp("cli")
    image, faces = group
    cv2.imwrite(str(folder / "selfie.png"), crop_face(image, faces[2])[:, :, ::-1])
    cv2.imwrite(str(folder / "blank.png"), np.full((300, 300, 3), 200, np.uint8))
    (folder / "text.jpg").write_text("this is not a picture")
    (folder / "zero.png").write_bytes(b"")
    jpeg = cv2.imencode(".jpg", crop_face(image, faces[2]))[1].tobytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    Image.new("1", (20000, 20000)).save(folder / "bomb.png")  # 400 megapixels in 48 KB
    header = b"GIF89a" + struct.pack("<HH", 16, 16) + bytes([0x80, 0, 0]) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x21\xf9\x04\x00\x02\x00\x00\x00\x2c" + struct.pack("<HHHH", 0, 0, 16, 16) + b"\x00\x02\x02\x4c\x01\x00"
    (folder / "100k-frames.gif").write_bytes(header + frame * 100_000 + b"\x3b")
    tiny = [Image.new("RGB", (1, 1), (i * 40, 0, 0)) for i in range(5)]
    tiny[0].save(folder / "1x1.gif", save_all=True, append_images=tiny[1:])
    return folder


BAD_INPUTS = {
    "not an image": (["swap", "text.jpg", "-t", "pan", "-o", "out.gif"], "not an image"),
    "zero bytes": (["swap", "zero.png", "-t", "pan", "-o", "out.gif"], "empty"),
    "truncated": (["swap", "truncated.jpg", "-t", "pan", "-o", "out.gif"], "truncated or damaged"),
    "decompression bomb": (["swap", "bomb.png", "-t", "pan", "-o", "out.gif"], "too large"),
    "100,000 frames": (["swap", "selfie.png", "-t", "100k-frames.gif", "-o", "out.gif"], "too long"),
    "1x1 frames": (["swap", "selfie.png", "-t", "1x1.gif", "-o", "out.gif"], "too small"),
    "selfie without a face": (["swap", "blank.png", "-t", "pan", "-o", "out.gif"], "no face found in the photo"),
    "template without a face": (["swap", "selfie.png", "-t", "blank.png", "-o", "out.gif"],
                                "no human face found in the template"),
    "missing path": (["swap", "nowhere.jpg", "-t", "pan", "-o", "out.gif"], "no such file"),
    "missing output folder": (["swap", "selfie.png", "-t", "pan", "-o", "no/such/out.gif"], "output folder does not exist"),
    "output is a folder": (["swap", "selfie.png", "-t", "pan", "-o", "."], "output path is a folder"),
    "path characters in a name": (["templates", "add", "selfie.png", "--name", "../x"], "invalid template name"),
    "path as a template": (["swap", "selfie.png", "-t", "../x", "-o", "out.gif"], "no such file"),
    "unknown template": (["swap", "selfie.png", "-t", "nosuch", "-o", "out.gif"], "no template named"),
    "impossible byte budget": (["swap", "selfie.png", "-t", "pan", "-o", "out.gif", "--max-bytes", "100"], "does not fit"),
    "turned selfie": (["swap", str(group_photo_path()), "-t", "pan", "-o", "out.gif"], "front-facing"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_gets_one_clear_line(case, workspace, tmp_path):
    args, expected = BAD_INPUTS[case]
    result = run(args, tmp_path / "data", workspace)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert not any(noise in result.stderr for noise in NATIVE_NOISE)
    assert not (workspace / "out.gif").exists()
    assert not list(workspace.glob("*.tmp")) and not list(workspace.glob(".*"))


def test_swap_writes_a_gif_and_prints_only_our_messages(workspace, tmp_path):
    output = tmp_path / "result.gif"
    result = run(["swap", "selfie.png", "-t", "bounce", "-o", str(output)], tmp_path / "data", workspace)
    assert result.returncode == 0, result.stderr
    assert f"wrote {output}" in result.stdout
    assert not any(noise in result.stderr + result.stdout for noise in NATIVE_NOISE)
    with Image.open(output) as gif:
        assert gif.format == "GIF" and gif.n_frames == 36


def test_swap_to_mp4_by_file_name(workspace, tmp_path):
    output = tmp_path / "result.mp4"
    result = run(["swap", "selfie.png", "-t", "duo", "-o", str(output), "--face", "largest"], tmp_path / "data", workspace)
    assert result.returncode == 0, result.stderr
    assert output.read_bytes()[4:8] == b"ftyp"


def test_demo_writes_a_gif(tmp_path):
    result = run(["demo", "-o", "demo.gif"], tmp_path / "data", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote demo.gif" in result.stdout
    with Image.open(tmp_path / "demo.gif") as gif:
        assert gif.n_frames > 10


def test_templates_add_list_show_remove(workspace, tmp_path):
    data = tmp_path / "data"
    source = Path(__file__).resolve().parents[2] / "templates" / "builtin" / "pan" / "template.mp4"
    added = run(["templates", "add", str(source), "--name", "my-pan", "--tag", "mine"], data, workspace)
    assert added.returncode == 0, added.stderr
    assert "added template 'my-pan'" in added.stdout
    listed = json.loads(run(["templates", "list", "--json"], data, workspace).stdout)
    by_name = {t["name"]: t for t in listed}
    assert by_name["my-pan"]["builtin"] is False and by_name["my-pan"]["tags"] == ["mine"]
    assert sum(t["builtin"] for t in listed) >= 8
    shown = json.loads(run(["templates", "show", "my-pan"], data, workspace).stdout)
    assert shown["frames"] == 36 and len(shown["faces"]) == 1
    assert run(["templates", "remove", "my-pan"], data, workspace).returncode == 0
    assert "my-pan" not in run(["templates", "list"], data, workspace).stdout


def test_verbose_shows_what_quiet_hides(workspace, tmp_path):
    quiet = run(["swap", "blank.png", "-t", "pan", "-o", "out.gif"], tmp_path / "data", workspace)
    loud = run(["--verbose", "swap", "blank.png", "-t", "pan", "-o", "out.gif"], tmp_path / "data", workspace)
    assert len(loud.stderr.splitlines()) > len(quiet.stderr.splitlines())


def test_a_bad_setting_is_one_clear_line(workspace, tmp_path):
    env = {**os.environ, "MEMESWAP_DATA_DIR": str(tmp_path), "MEMESWAP_SWAPPER": "fastest"}
    result = subprocess.run([sys.executable, "-m", "memeswap", "templates", "list"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: invalid MEMESWAP_SWAPPER: choose auto or one of inswapper, classic"]


def test_a_one_off_template_that_fails_the_nudity_screen_is_one_clear_line(workspace, tmp_path):
    """Run through the real detector, with a face class standing in for a blocked one."""
    from memeswap.inference.templates.catalog import builtin_templates_dir

    clip = next((builtin_templates_dir() / "bounce").glob("*.mp4"))
    env = {**os.environ, "MEMESWAP_DATA_DIR": str(tmp_path / "data"), "MEMESWAP_NSFW_BLOCKED": '["FACE_FEMALE"]'}
    result = subprocess.run([sys.executable, "-m", "memeswap", "swap", "selfie.png", "-t", str(clip), "-o", "out.gif"],
                            cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: this template can't be used here: it looks like it contains nudity. Pick another one."]
    assert not (workspace / "out.gif").exists()


def test_the_operator_protects_a_face_and_swaps_of_it_are_refused(workspace, tmp_path):
    data = tmp_path / "data"
    added = run(["protected", "add", "selfie.png", "--label", "test person"], data, workspace)
    assert added.returncode == 0, added.stderr
    refused = run(["swap", "selfie.png", "-t", "pan", "-o", "out.gif"], data, workspace)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == ["error: this face can't be used in swaps here."]
    assert "test person" not in refused.stderr
    removed = run(["protected", "remove", "test person"], data, workspace)
    assert removed.returncode == 0 and not (workspace / "out.gif").exists()


def test_version_prints_the_installed_version(tmp_path):
    from importlib.metadata import version

    result = run(["--version"], tmp_path / "data", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"memeswap {version('memeswap')}"
    assert not (tmp_path / "data").exists()  # nothing opened


def test_an_unknown_template_name_suggests_the_closest_names_and_titles(workspace, tmp_path):
    close = run(["swap", "selfie.png", "-t", "triggerd", "-o", "out.gif"], tmp_path / "data", workspace)
    prefix = run(["swap", "selfie.png", "-t", "deal", "-o", "out.gif"], tmp_path / "data", workspace)
    far = run(["swap", "selfie.png", "-t", "zzzqqq", "-o", "out.gif"], tmp_path / "data", workspace)
    assert close.returncode == prefix.returncode == far.returncode == 2
    assert close.stderr.strip() == "error: no template named 'triggerd'; did you mean `shake` (Triggered)?"
    assert prefix.stderr.strip().startswith("error: no template named 'deal'; did you mean `deal-with-it` (")
    assert far.stderr.strip() == "error: no template named 'zzzqqq'; `memeswap templates list` shows them"
    assert not (workspace / "out.gif").exists()


def test_an_output_name_that_is_no_format_is_refused_not_written_as_gif(workspace, tmp_path):
    refused = run(["swap", "selfie.png", "-t", "bounce", "-o", "meme.txt"], tmp_path / "data", workspace)
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("error: cannot write a '.txt' file: name the output .gif, .mp4, .webp, or "
                                      "choose one with --format")
    assert not (workspace / "meme.txt").exists()
