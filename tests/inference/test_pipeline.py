import io

import numpy as np
import pytest
from PIL import Image

from memeswap.inference import pipeline
from memeswap.inference.errors import InputError, NoFaceError
from memeswap.inference.faces import mesh
from memeswap.inference.faces.analyser import CountingAnalyser
from memeswap.inference.faces.selfie import pick_selfie_face
from memeswap.inference.media import ffmpeg
from memeswap.inference.media.badge import BadgeStamp, BadgeStyle, badge_layer
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import StreamingEncoder
from memeswap.inference.media.overlay import composite, read_overlay
from memeswap.inference.pipeline import AI_LABEL, SwapOptions, run_swap
from memeswap.inference.samples import crop_face
from memeswap.inference.swappers.composite import Compositor, PoseRule, SourceLook


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


def test_a_job_analyses_only_the_selfie(selfie, analyser, swapper, compiled_builtins, human_check):
    compiled = compiled_builtins("dramatic-zoom")
    counting = CountingAnalyser(analyser)
    result = run_swap(selfie, compiled, counting, swapper, human_check=human_check)
    assert counting.calls == 1
    frames = gif_frames(result.media.data)
    assert len(frames) == compiled.tracks.frame_count == 48
    assert frames[0].shape == (480, 480, 3)
    assert result.media.mime == "image/gif"
    assert AI_LABEL.encode() in result.media.data
    assert set(result.timings) >= {"selfie_analysis", "swap", "total"}


def test_the_output_face_is_on_the_template_face_in_every_frame(selfie, analyser, swapper, compiled_builtins,
                                                                human_check):
    """Locked on: the analyser finds the swapped face where the template's face was."""
    compiled = compiled_builtins("shake")
    result = run_swap(selfie, compiled, analyser, swapper, SwapOptions(format="mp4"), human_check=human_check)
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


def test_no_flicker_between_frames(selfie, analyser, swapper, compiled_builtins, human_check):
    """The swapped face's brightness changes from frame to frame about as the template's does."""
    compiled = compiled_builtins("pan")
    result = run_swap(selfie, compiled, analyser, swapper, SwapOptions(format="webp"), human_check=human_check)
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


def test_byte_budget_is_never_exceeded(selfie, analyser, swapper, compiled_builtins, human_check):
    compiled = compiled_builtins("dramatic-zoom")
    result = run_swap(selfie, compiled, analyser, swapper, SwapOptions(max_bytes=600_000), human_check=human_check)
    assert len(result.media.data) <= 600_000
    assert len(gif_frames(result.media.data)) >= 12


def test_every_face_of_a_multi_face_template_or_one(selfie, analyser, swapper, compiled_builtins, human_check):
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
        run_swap(selfie, compiled, analyser, swapper, SwapOptions(faces="5"), human_check=human_check)


def test_overlay_and_caption_are_drawn_over_the_swapped_face(selfie, analyser, swapper, compiled_builtins, human_check):
    compiled = compiled_builtins("deal-with-it")
    result = run_swap(selfie, compiled, analyser, swapper, human_check=human_check)
    last = gif_frames(result.media.data)[-1]
    face = compiled.tracks.faces_at(compiled.tracks.frame_count - 1)[0]
    eyes = face.landmarks[[mesh.IRIS_RIGHT, mesh.IRIS_LEFT], :2].astype(int)
    for x, y in eyes:
        assert last[y - 2:y + 3, x - 2:x + 3].mean() < 60  # the pixel sunglasses cover the eyes
    bottom = last[int(last.shape[0] * 0.8):]
    assert (bottom.min(axis=2) > 235).sum() > 200  # white caption letters


def test_selfie_without_a_face_says_so(analyser, swapper, compiled_builtins, human_check):
    blank = np.full((400, 400, 3), 180, np.uint8)
    with pytest.raises(NoFaceError, match="no face found in the photo"):
        run_swap(blank, compiled_builtins("dramatic-zoom"), analyser, swapper, human_check=human_check)


def test_selfie_with_several_faces_uses_the_largest_and_says_so(group, selfie, analyser, swapper, compiled_builtins,
                                                               human_check):
    import cv2

    image, faces = group
    small = crop_face(image, faces[5])
    small = cv2.resize(small, (small.shape[1] * 3 // 4, small.shape[0] * 3 // 4))
    two = np.full((max(selfie.shape[0], small.shape[0]), selfie.shape[1] + small.shape[1], 3), 128, np.uint8)
    two[:selfie.shape[0], :selfie.shape[1]] = selfie
    two[:small.shape[0], selfie.shape[1]:] = small
    assert len(analyser.analyse(two)) == 2
    result = run_swap(two, compiled_builtins("bounce"), analyser, swapper, human_check=human_check)
    assert result.notices == ["found 2 faces in the photo; used the largest one"]


# --------------------------------------------------------------------------- visible badge


@pytest.fixture(scope="module")
def badge_runs(selfie, analyser, swapper, compiled_builtins, human_check):
    """`(fmt, badge) -> (result, frames handed to the encoder)` for the short "shake" template
    (18 frames; its overlay covers the badge's corner), each run at most once per module."""
    compiled = compiled_builtins("shake")
    runs = {}

    def get(fmt: str, badge: BadgeStyle | None | str = "default"):
        """badge="default" leaves SwapOptions' own default in place: the badge is on by default."""
        if (fmt, badge) not in runs:
            written = []

            class Recording(StreamingEncoder):
                def write(self, frame, faces=()):
                    written.append(np.array(frame))
                    super().write(frame, faces)

            options = SwapOptions(format=fmt) if badge == "default" else SwapOptions(format=fmt, badge=badge)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(pipeline, "StreamingEncoder", Recording)
                result = run_swap(selfie, compiled, analyser, swapper, options, human_check=human_check)
            runs[fmt, badge] = (result, written)
        return runs[fmt, badge]

    return get


def decoded_frames(result, tmp_path) -> list[np.ndarray]:
    if result.media.format == "mp4":
        path = tmp_path / "out.mp4"
        path.write_bytes(result.media.data)
        return list(read_frames(path))
    with Image.open(io.BytesIO(result.media.data)) as image:
        frames = []
        for i in range(image.n_frames):
            image.seek(i)
            frames.append(np.asarray(image.convert("RGB")))
    return frames


@pytest.mark.parametrize("fmt", ["gif", "mp4", "webp"])
def test_every_frame_of_every_format_shows_the_badge(fmt, badge_runs, tmp_path):
    badged, _ = badge_runs(fmt)
    plain, _ = badge_runs(fmt, None)
    with_badge, without = decoded_frames(badged, tmp_path), decoded_frames(plain, tmp_path)
    assert len(with_badge) == len(without) == 18
    height, width = with_badge[0].shape[:2]
    layer = badge_layer(width, height, BadgeStyle())
    ys, xs = np.nonzero(layer[..., 3])
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    assert (ys.min(), xs.min()) > (height * 0.8, width * 0.8)  # bottom-right
    ink = layer[box][..., :3].min(axis=2)
    text, plate = ink > 200, (ink < 40) & (layer[box][..., 3] > 150)
    for index, (a, b) in enumerate(zip(with_badge, without)):
        region, before = a[box].astype(float).mean(axis=2), b[box].astype(float).mean(axis=2)
        # measured: ~57 / ~35 vs ~82 under the plate / ~210 / under 1
        assert np.abs(region - before).mean() > 20, f"frame {index}: no badge"
        assert region[plate].mean() < min(60, before[plate].mean() - 20), f"frame {index}: no dark plate"
        assert region[text].mean() > region[plate].mean() + 120, f"frame {index}: no light text"
        outside = np.ones((height, width), bool)
        outside[box] = False
        assert np.abs(a[outside].astype(float) - b[outside]).mean() < 2  # the rest of the frame is the same


@pytest.mark.parametrize("fmt", ["gif", "mp4", "webp"])
def test_the_metadata_label_stays_with_the_badge(fmt, badge_runs, tmp_path):
    result, _ = badge_runs(fmt)
    data = result.media.data
    if fmt == "gif":
        with Image.open(io.BytesIO(data)) as gif:
            assert gif.info["comment"] == AI_LABEL.encode()
    elif fmt == "mp4":
        path = tmp_path / "out.mp4"
        path.write_bytes(data)
        stream, _ = ffmpeg.probe(path)
        assert stream.metadata["comment"] == AI_LABEL
    else:
        assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
        xmp = data[data.index(b"XMP "):]
        assert b"<dc:description>" in xmp and AI_LABEL.encode() in xmp


def test_the_badge_is_drawn_last_and_only_in_its_box(badge_runs):
    """Exact, on the frames handed to the encoder: the badged frames are the badge-less ones
    with the badge blended over them (overlay included), and nothing else changes."""
    _, badged = badge_runs("gif")
    _, plain = badge_runs("gif", None)
    height, width = plain[0].shape[:2]
    stamp = BadgeStamp.for_frame(width, height, BadgeStyle())
    box = (slice(stamp.top, stamp.top + stamp.inverse_alpha.shape[0]),
           slice(stamp.left, stamp.left + stamp.inverse_alpha.shape[1]))
    assert len(badged) == len(plain) == 18
    for a, b in zip(badged, plain):
        assert np.array_equal(a, stamp.apply(b.copy()))
        assert np.abs(a[box].astype(int) - b[box]).mean() > 8


def test_without_a_badge_the_frames_are_the_swap_and_overlay_as_before(selfie, analyser, swapper,
                                                                       compiled_builtins, badge_runs, human_check):
    """badge=None: the encoder gets exactly the swapped (and composited) frame with the
    template's overlay, recomputed here without run_swap."""
    _, plain = badge_runs("gif", None)
    compiled = compiled_builtins("shake")
    face = pick_selfie_face(selfie, analyser, human_check)[0]
    source = swapper.prepare_source(selfie, face)
    compositor = Compositor(PoseRule(), SourceLook.measure(selfie, face))
    frames = list(read_frames(compiled.template.media_path))
    overlays = list(read_overlay(compiled.template.overlay_path))
    for index in (0, len(frames) - 1):
        targets = compiled.tracks.faces_at(index)
        swapped = compositor.composite(frames[index], swapper.swap([frames[index]], [targets], source)[0], targets,
                                       index)
        assert np.array_equal(plain[index], composite(swapped, overlays[index]))


def test_the_badge_follows_its_style_and_the_label_is_independent(selfie, analyser, swapper, compiled_builtins,
                                                                  human_check):
    compiled = compiled_builtins("shake")
    style = BadgeStyle(text="AI-generated", corner="top-left")
    result = run_swap(selfie, compiled, analyser, swapper, SwapOptions(format="webp", badge=style, label=None),
                      human_check=human_check)
    assert AI_LABEL.encode() not in result.media.data and b"XMP " not in result.media.data
    with Image.open(io.BytesIO(result.media.data)) as webp:
        webp.seek(webp.n_frames - 1)
        last = np.asarray(webp.convert("RGB"))
    layer = badge_layer(last.shape[1], last.shape[0], style)
    ys, xs = np.nonzero(layer[..., 3])
    assert ys.max() < last.shape[0] * 0.2 and xs.max() < last.shape[1] * 0.5  # top-left, wide
    ink = layer[..., :3].min(axis=2)
    assert last[ink > 200].mean() > last[(ink < 40) & (layer[..., 3] > 150)].mean() + 100
