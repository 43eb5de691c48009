"""The command line's safety checks, as an operator meets them: a real `memeswap` process."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from tests.bot.test_cli import NATIVE_NOISE, run


@pytest.fixture(scope="module")
def animal_workspace(tmp_path_factory, cat_face, drawn_face) -> Path:
    folder = tmp_path_factory.mktemp("animals")
    cv2.imwrite(str(folder / "cat.png"), cat_face[:, :, ::-1])
    cv2.imwrite(str(folder / "drawn.png"), drawn_face[:, :, ::-1])
    return folder


def one_line(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(NATIVE_NOISE)]


def test_a_drawn_person_is_a_template_face(animal_workspace, tmp_path):
    add = run(["templates", "add", "drawn.png", "--name", "drawn"], tmp_path / "data", animal_workspace)
    assert add.returncode == 0, add.stderr
    assert add.stdout.strip() == "added template 'drawn': 1 frames, 1 face track(s)"


def test_a_cat_is_neither_a_selfie_nor_a_template(animal_workspace, tmp_path):
    swap = run(["swap", "cat.png", "-t", "bounce", "-o", "out.gif"], tmp_path / "data", animal_workspace)
    add = run(["templates", "add", "cat.png", "--name", "cat"], tmp_path / "data", animal_workspace)
    assert swap.returncode == 2, swap.stderr
    assert one_line(swap.stderr) == ["error: no human face found in the photo; send a clear, front-facing photo "
                                     "of your face"]
    assert not (animal_workspace / "out.gif").exists()
    assert add.returncode == 2, add.stderr
    assert one_line(add.stderr) == ["error: no human face found in that template; pick a GIF or video where a "
                                    "person's face is clearly visible"]
    assert not (tmp_path / "data" / "templates" / "cat").exists()


@pytest.fixture(scope="module")
def protected_workspace(tmp_path_factory, astronaut, group, template_media) -> Path:
    """The astronaut's photo to protect (the built-in templates show her), a selfie of
    someone else, and a clip of the built-in "bounce" to add as a template."""
    from memeswap.inference.samples import crop_face

    folder = tmp_path_factory.mktemp("protected")
    cv2.imwrite(str(folder / "astronaut.png"), astronaut[:, :, ::-1])
    image, faces = group
    cv2.imwrite(str(folder / "selfie.png"), crop_face(image, faces[2])[:, :, ::-1])
    (folder / "clip.mp4").write_bytes(template_media.read_bytes())
    return folder


def test_a_protected_face_is_never_swapped_out_of_a_template(protected_workspace, tmp_path):
    data = tmp_path / "data"
    protect = run(["protected", "add", "astronaut.png", "--label", "nasa"], data, protected_workspace)
    assert protect.returncode == 0, protect.stderr
    swap = run(["swap", "selfie.png", "-t", "bounce", "-o", "out.gif"], data, protected_workspace)
    add = run(["templates", "add", "clip.mp4", "--name", "bouncy"], data, protected_workspace)
    refusal = "error: this template shows a face that can't be used in swaps here."
    assert swap.returncode == 2 and one_line(swap.stderr) == [refusal], swap.stderr
    assert not (protected_workspace / "out.gif").exists()
    assert add.returncode == 2 and one_line(add.stderr) == [refusal], add.stderr
    assert not (data / "templates" / "bouncy").exists()


def test_protected_list_shows_each_label_and_a_label_in_use_says_so(protected_workspace, tmp_path):
    data = tmp_path / "data"
    empty = run(["protected", "list"], data, protected_workspace)
    first = run(["protected", "add", "astronaut.png", "--label", "nasa"], data, protected_workspace)
    again = run(["protected", "add", "astronaut.png", "--label", "nasa"], data, protected_workspace)
    listed = run(["protected", "list"], data, protected_workspace)
    assert empty.returncode == 0 and empty.stdout.strip().startswith("no protected faces"), empty.stderr
    assert first.stdout.strip() == "protected 'nasa': that face can no longer be swapped in or out", first.stderr
    assert again.stdout.strip() == ("protected 'nasa': that face can no longer be swapped in or out ('nasa' was in "
                                    "use already: it now holds 2 faces)"), again.stderr
    [line] = listed.stdout.strip().splitlines()
    label, faces, added = line.split("  ")
    assert (label, faces) == ("nasa", "2 faces") and added.startswith("added 20"), line
