"""The command line's safety checks, as an operator meets them: a real `memeswap` process."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from tests.bot.test_cli import NATIVE_NOISE, run


@pytest.fixture(scope="module")
def animal_workspace(tmp_path_factory, cat_face) -> Path:
    folder = tmp_path_factory.mktemp("animals")
    cv2.imwrite(str(folder / "cat.png"), cat_face[:, :, ::-1])
    return folder


def one_line(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(NATIVE_NOISE)]


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
