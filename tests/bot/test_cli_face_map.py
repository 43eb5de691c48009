"""`memeswap swap --face-map`: a different photo (or none) for each face of a multi-face
template, as a real process."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from memeswap.inference.media.decode import read_frames
from memeswap.inference.samples import crop_face
from memeswap.inference.templates.face_order import numbered_faces
from tests.bot.test_cli import NATIVE_NOISE, run


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, group) -> Path:
    folder = tmp_path_factory.mktemp("face-map")
    image, faces = group
    cv2.imwrite(str(folder / "selfie.png"), crop_face(image, faces[2])[:, :, ::-1])
    return folder


def region_change(output: list[np.ndarray], template: list[np.ndarray], track) -> float:
    """How much the output differs from the template inside one face's box, on average over
    the frames the face is in (levels, 0..255)."""
    changes = []
    for index in range(track.first, track.last + 1):
        x0, y0, x1, y1 = np.round(track.face_on(index).box).astype(int)
        x0, y0 = max(x0, 0), max(y0, 0)
        before, after = template[index][y0:y1, x0:x1], output[index][y0:y1, x0:x1]
        changes.append(float(np.abs(after.astype(np.int16) - before.astype(np.int16)).mean()))
    return float(np.mean(changes))


def change_elsewhere(output: list[np.ndarray], template: list[np.ndarray], track) -> float:
    """The largest (over frames) mean change outside the face's box grown by half its size
    on each side, above the bottom quarter (where the caption and the AI badge go)."""
    worst = 0.0
    for index, (after, before) in enumerate(zip(output, template)):
        change = np.abs(after.astype(np.int16) - before.astype(np.int16)).mean(axis=2)
        outside = np.ones(change.shape, bool)
        outside[int(0.75 * change.shape[0]):] = False
        face = track.face_at(index)
        if face is not None:
            x0, y0, x1, y1 = face.box
            grow_x, grow_y = 0.5 * (x1 - x0), 0.5 * (y1 - y0)
            outside[max(0, int(y0 - grow_y)):int(y1 + grow_y), max(0, int(x0 - grow_x)):int(x1 + grow_x)] = False
        worst = max(worst, float(change[outside].mean()))
    return worst


def test_the_first_face_gets_the_photo_and_the_kept_one_stays_the_templates(workspace, tmp_path, compiled_builtins):
    data = tmp_path / "data"
    result = run(["swap", "-t", "duo", "--face-map", "selfie.png,_", "-o", "mapped.webp"], data, workspace)
    assert result.returncode == 0, result.stderr
    assert not any(noise in result.stderr for noise in NATIVE_NOISE), result.stderr

    compiled = compiled_builtins("duo")
    first, second = numbered_faces(compiled.tracks)
    output = list(read_frames(workspace / "mapped.webp"))
    template = list(read_frames(compiled.template.media_path))
    assert len(output) == len(template)
    swapped, kept = region_change(output, template, first), region_change(output, template, second)
    # The lossy encodes alone leave a few levels everywhere; the swap changes the first face by far more.
    assert kept < 8.0, kept
    assert swapped > 3 * kept and swapped > 15.0, (swapped, kept)
    assert change_elsewhere(output, template, first) < 4.0  # nothing but the first face changed

    too_long = run(["swap", "-t", "duo", "--face-map", "selfie.png,_,selfie.png", "-o", "long.webp"], data,
                   workspace)
    assert too_long.returncode == 2
    assert too_long.stderr.strip() == ("error: this template has 2 faces and the face map names 3; "
                                       "use _ for a face to keep")
    assert not (workspace / "long.webp").exists()


BAD_MAPS = {
    "a missing photo": (["--face-map", "selfie.png,_,nowhere-" + "x" * 60 + ".png"],
                        "no such file in --face-map: 'nowhere-" + "x" * 32 + "…'"),
    "keeps every face": (["--face-map", "_,_"], "keeps every face"),
    "an empty entry": (["--face-map", "selfie.png,,_"], "one of yours is empty"),
    "too many entries": (["--face-map", ",".join(["_"] * 11 + ["selfie.png"])], "at most 10 entries"),
    "a selfie as well": (["selfie.png", "--face-map", "selfie.png,_"], "not both"),
    "with --face": (["--face", "1", "--face-map", "selfie.png,_"], "use one of them"),
    "no face at all": ([], "give a SELFIE photo, or --face-map"),
}


@pytest.mark.parametrize("case", BAD_MAPS, ids=list(BAD_MAPS))
def test_a_bad_face_map_gets_one_line_before_any_work(case, workspace, tmp_path):
    args, expected = BAD_MAPS[case]
    result = run(["swap", "-t", "duo", "-o", "out.gif", *args], tmp_path / "data", workspace)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert not (workspace / "out.gif").exists()
    assert not list((tmp_path / "data").rglob("*.npz"))  # refused before the template was analysed
