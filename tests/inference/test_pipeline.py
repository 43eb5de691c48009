import io

import numpy as np
import pytest
from PIL import Image

from inference.errors import InputError, NoFaceError
from inference.faces import mesh
from inference.media.decode import read_frames
from inference.pipeline import AI_LABEL, SwapOptions, run_swap
from inference.samples import crop_face
from tests.conftest import CountingAnalyser


@pytest.fixture(scope="module")
def selfie(group):
    image, faces = group
    return crop_face(image, faces[2])


def gif_frames(data: bytes) -> list[np.ndarray]:
    with Image.open(io.BytesIO(data)) as gif:
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    return frames


def test_a_job_analyses_only_the_selfie(selfie, analyser, swapper, compiled_builtins):
    compiled = compiled_builtins("dramatic-zoom")
    counting = CountingAnalyser(analyser)
    result = run_swap(selfie, compiled, counting, swapper)
    assert counting.calls == 1
    frames = gif_frames(result.media.data)
    assert len(frames) == compiled.tracks.frame_count == 48
    assert frames[0].shape == (480, 480, 3)
    assert result.media.mime == "image/gif"
    assert AI_LABEL.encode() in result.media.data
    assert set(result.timings) >= {"selfie_analysis", "swap", "total"}


def test_the_output_face_is_on_the_template_face_in_every_frame(selfie, analyser, swapper, compiled_builtins):
    """Locked on: the analyser finds the swapped face where the template's face was."""
    compiled = compiled_builtins("shake")
    result = run_swap(selfie, compiled, analyser, swapper, SwapOptions(format="mp4"))
    assert result.media.mime == "video/mp4"
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.mp4"
        path.write_bytes(result.media.data)
        for index, frame in enumerate(read_frames(path)):
            expected = compiled.tracks.faces_at(index)
            if not expected:
                continue
            found = analyser.analyse(frame)
            assert found, f"frame {index}: no face in the output"
            got = min(found, key=lambda f: np.linalg.norm(f.center - expected[0].center))
            eye_gap = np.linalg.norm(expected[0].kps[0] - expected[0].kps[1])
            assert np.linalg.norm(got.center - expected[0].center) < 0.25 * eye_gap + 4


def test_no_flicker_between_frames(selfie, analyser, swapper, compiled_builtins):
    """The swapped face's brightness changes from frame to frame about as the template's does."""
    compiled = compiled_builtins("pan")
    result = run_swap(selfie, compiled, analyser, swapper, SwapOptions(format="webp"))
    assert result.media.mime == "image/webp"
    with Image.open(io.BytesIO(result.media.data)) as webp:
        swapped = []
        for i in range(webp.n_frames):
            webp.seek(i)
            swapped.append(np.asarray(webp.convert("RGB")))
    originals = list(read_frames(compiled.template.media_path))
    def face_means(frames):
        values = []
        for index, frame in enumerate(frames):
            face = compiled.tracks.faces_at(index)[0]
            x0, y0, x1, y1 = face.box.astype(int)
            values.append(frame[y0:y1, x0:x1].mean())
        return np.array(values)
    jumps = np.abs(np.diff(face_means(swapped)))
    template_jumps = np.abs(np.diff(face_means(originals)))
    assert jumps.max() < template_jumps.max() + 3


def test_byte_budget_is_never_exceeded(selfie, analyser, swapper, compiled_builtins):
    compiled = compiled_builtins("dramatic-zoom")
    result = run_swap(selfie, compiled, analyser, swapper, SwapOptions(max_bytes=600_000))
    assert len(result.media.data) <= 600_000
    assert len(gif_frames(result.media.data)) >= 12


def test_every_face_of_a_multi_face_template_or_one(selfie, analyser, swapper, compiled_builtins):
    compiled = compiled_builtins("duo")
    assert compiled.face_count == 2
    frames = list(read_frames(compiled.template.media_path))
    def changed_faces(selection):
        out = swapper.swap([frames[0]], [compiled.tracks.faces_at(0, selection)], swapper.prepare_source(
            selfie, analyser.analyse(selfie)[0]))[0]
        count = 0
        for face in compiled.tracks.faces_at(0):
            x0, y0, x1, y1 = face.box.astype(int)
            count += np.abs(out[y0:y1, x0:x1].astype(int) - frames[0][y0:y1, x0:x1]).mean() > 3
        return count
    assert changed_faces("all") == 2
    assert changed_faces("largest") == 1
    assert changed_faces("1") == 1
    with pytest.raises(InputError, match="has 2 face track"):
        run_swap(selfie, compiled, analyser, swapper, SwapOptions(faces="5"))


def test_overlay_and_caption_are_drawn_over_the_swapped_face(selfie, analyser, swapper, compiled_builtins):
    compiled = compiled_builtins("deal-with-it")
    result = run_swap(selfie, compiled, analyser, swapper)
    last = gif_frames(result.media.data)[-1]
    face = compiled.tracks.faces_at(compiled.tracks.frame_count - 1)[0]
    eyes = face.landmarks[[mesh.IRIS_RIGHT, mesh.IRIS_LEFT], :2].astype(int)
    for x, y in eyes:
        assert last[y - 2:y + 3, x - 2:x + 3].mean() < 60  # the pixel sunglasses cover the eyes
    bottom = last[int(last.shape[0] * 0.8):]
    assert (bottom.min(axis=2) > 235).sum() > 200  # white caption letters


def test_selfie_without_a_face_says_so(analyser, swapper, compiled_builtins):
    blank = np.full((400, 400, 3), 180, np.uint8)
    with pytest.raises(NoFaceError, match="no face found in the photo"):
        run_swap(blank, compiled_builtins("dramatic-zoom"), analyser, swapper)


def test_selfie_with_several_faces_uses_the_largest_and_says_so(group, selfie, analyser, swapper, compiled_builtins):
    import cv2

    image, faces = group
    small = crop_face(image, faces[5])
    small = cv2.resize(small, (small.shape[1] * 3 // 4, small.shape[0] * 3 // 4))
    two = np.full((max(selfie.shape[0], small.shape[0]), selfie.shape[1] + small.shape[1], 3), 128, np.uint8)
    two[:selfie.shape[0], :selfie.shape[1]] = selfie
    two[:small.shape[0], selfie.shape[1]:] = small
    assert len(analyser.analyse(two)) == 2
    result = run_swap(two, compiled_builtins("bounce"), analyser, swapper)
    assert result.notices == ["found 2 faces in the photo; used the largest one"]
