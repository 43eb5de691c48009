"""The compositing stage after the swapper, through `run_swap` and a `memeswap swap` process:
occluders stay in front, turned faces fade and are skipped, blur and grain follow the
template, and a job runs no template analysis.

The templates are built here from the built-in ones (the public-domain astronaut) with
things drawn over them (tests/inference/occluded_templates.py), and from insightface's
t1.jpg, whose six real faces are turned from -46 to +6 degrees."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from memeswap.inference import pipeline
from memeswap.inference.faces import mesh
from memeswap.inference.faces.analyser import CountingAnalyser
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import StreamingEncoder
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.pipeline import SwapOptions, run_swap
from memeswap.inference.samples import crop_face, group_photo_path
from memeswap.inference.templates.library import TemplateLibrary
from tests.inference.occluded_templates import fringe_over, hand_passing, microphone_held, write_template

KEPT = 4  # levels: an output pixel this close to the template's is the template's


def face_oval(face, shape) -> np.ndarray:
    """Inside the template face's mesh outline (where a swap paints), bool."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(face.landmarks[list(mesh.FACE_OVAL), :2]).astype(np.int32)], 1)
    return mask > 0


def grain(image: np.ndarray, face) -> float:
    """Grain std on the face's flattest quarter (Immerkaer's 3x3 kernel; a measure of the
    test's own, not the one under test)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(cv2.filter2D(grey, -1, kernel))
    inside = cv2.erode(face_oval(face, grey.shape).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    slope = cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), 2.0), cv2.CV_32F) ** 2
    flat = inside & (slope <= np.percentile(slope[inside], 25))
    return float(np.sqrt(np.pi / 2) * response[flat].mean() / 6)


@pytest.fixture(scope="module")
def selfie(group):
    image, faces = group
    return crop_face(image, faces[2])


@pytest.fixture(scope="module")
def sharp_selfie() -> np.ndarray:
    """The shipped photo of Grace Hopper (US Navy, public domain): a large, sharp, grainy face."""
    from PIL import Image

    from memeswap.inference.samples import grace_hopper_path

    with Image.open(grace_hopper_path()) as photo:
        return np.asarray(photo.convert("RGB"))


@pytest.fixture(scope="module")
def ad_hoc_library(tmp_path_factory, analyser, track_cache, human_check) -> TemplateLibrary:
    return TemplateLibrary(tmp_path_factory.mktemp("custom"), track_cache, analyser, human_check=human_check)


def encoded_frames(selfie, compiled, analyser, swapper, human_check, options=SwapOptions(badge=None)):
    """The frames `run_swap` hands to the encoder (before any lossy encoding)."""
    written = []

    class Recording(StreamingEncoder):
        def write(self, frame, faces=()):
            written.append(np.array(frame))
            super().write(frame, faces)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "StreamingEncoder", Recording)
        run_swap(selfie, compiled, analyser, swapper, options, human_check=human_check)
    return written


def base_frames(compiled_builtins, name):
    compiled = compiled_builtins(name)
    frames = list(read_frames(compiled.template.media_path))
    return frames, [compiled.tracks.faces_at(i)[0] for i in range(len(frames))]


def kept_inside_the_face(outputs, templates, masks, faces, kept=KEPT):
    """Per frame with an occluder: the share of the occluder's pixels on the template's face
    (where a swap paints) that the output left as the template had them (within `kept` levels)."""
    shares = []
    for out, template, mask, face in zip(outputs, templates, masks, faces):
        on_face = mask & face_oval(face, mask.shape)
        if on_face.sum() < 50:
            continue
        difference = np.abs(out.astype(int) - template).max(axis=2)
        shares.append(float((difference[on_face] <= kept).mean()))
    return shares


def swapped_elsewhere(outputs, templates, masks, faces):
    """Mean change on the face away from the occluder: the face is still swapped."""
    changes = []
    for out, template, mask, face in zip(outputs, templates, masks, faces):
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
        clear = face_oval(face, mask.shape) & ~grown
        changes.append(float(np.abs(out.astype(int) - template)[clear].mean()))
    return changes


@pytest.fixture(scope="module")
def hand_template(tmp_path_factory, compiled_builtins):
    """"bounce" with a skin-coloured hand over the lower left of the face in frames 12 to 23."""
    frames, faces = base_frames(compiled_builtins, "bounce")
    made, masks = hand_passing(frames, faces, range(12, 24))
    path = write_template(made, tmp_path_factory.mktemp("hand") / "hand.mp4")
    return path, masks


def test_a_hand_in_front_of_the_face_stays_in_front(hand_template, ad_hoc_library, selfie, analyser, swapper,
                                                    human_check):
    path, masks = hand_template
    compiled = ad_hoc_library.ad_hoc(path)
    outputs = encoded_frames(selfie, compiled, analyser, swapper, human_check)
    templates = list(read_frames(path))
    faces = [compiled.tracks.faces_at(i)[0] for i in range(len(templates))]
    kept = kept_inside_the_face(outputs, templates, masks, faces)
    assert len(kept) == 12
    assert min(kept) >= 0.95, f"hand pixels kept per frame: {np.round(kept, 3)}"
    assert min(swapped_elsewhere(outputs, templates, masks, faces)) > 8


def test_a_hand_the_hand_model_misses_is_found_by_what_changes(hand_template, tmp_path, analyser, track_cache,
                                                               selfie, swapper, human_check):
    from memeswap.inference.faces.occluders import HandFinder
    from memeswap.inference.templates.face_frames import FaceFrameAnalysis

    class NoHands(HandFinder):
        """A hand model that never sees a hand (a drawn one, or one it misses)."""

        def find(self, image, region, context=2.0):
            return []

    path, masks = hand_template
    library = TemplateLibrary(tmp_path, track_cache, analyser, human_check=human_check,
                              face_frames=FaceFrameAnalysis(NoHands()))
    compiled = library.ad_hoc(path)
    outputs = encoded_frames(selfie, compiled, analyser, swapper, human_check)
    templates = list(read_frames(path))
    faces = [compiled.tracks.faces_at(i)[0] for i in range(len(templates))]
    kept = kept_inside_the_face(outputs, templates, masks, faces)
    assert len(kept) == 12
    # MediaPipe's models on onnxruntime place the mesh of a half-hidden face up to 2 px from where
    # MediaPipe's own runtime did (0.001 px on clear faces), and the place moves with the CPU's
    # kernels: the last hand frames keep 0.75-0.76 of the hand and the mean is 0.9498 on one
    # machine, 0.923 on another (an AMD EPYC). Without finding the hand by what changes, the
    # mean is 0.018, so these bounds still tell the mechanism from its absence.
    assert min(kept) >= 0.7 and np.mean(kept) >= 0.9, f"hand pixels kept per frame: {np.round(kept, 3)}"


def kept_in_every_frame(draw, path, compiled_builtins, ad_hoc_library, selfie, analyser, swapper, human_check,
                        kept=KEPT):
    """"pan" with `draw(frames, faces)` over every frame, swapped: the share of the drawn
    occluder kept per frame, and the least change elsewhere on the face."""
    frames, faces = base_frames(compiled_builtins, "pan")
    made, masks = draw(frames, faces)
    compiled = ad_hoc_library.ad_hoc(write_template(made, path))
    outputs = encoded_frames(selfie, compiled, analyser, swapper, human_check)
    templates = list(read_frames(path))
    faces = [compiled.tracks.faces_at(i)[0] for i in range(len(templates))]
    shares = kept_inside_the_face(outputs, templates, masks, faces, kept)
    assert len(shares) == len(templates)
    return shares, min(swapped_elsewhere(outputs, templates, masks, faces))


def test_a_microphone_held_through_the_whole_clip_stays_in_front(tmp_path, compiled_builtins, ad_hoc_library, selfie,
                                                                 analyser, swapper, human_check):
    """In every frame, so only its colour (not skin) tells it apart."""
    kept, elsewhere = kept_in_every_frame(microphone_held, tmp_path / "microphone.mp4", compiled_builtins,
                                          ad_hoc_library, selfie, analyser, swapper, human_check)
    assert min(kept) >= 0.95, f"microphone pixels kept per frame: {np.round(kept, 3)}"
    assert elsewhere > 8


def test_a_fringe_over_the_forehead_in_every_frame_stays_in_front(tmp_path, compiled_builtins, ad_hoc_library, selfie,
                                                                  analyser, swapper, human_check):
    """Dark strands from the hairline to the brows in every frame: nothing comes and goes, and
    the strands' colour is the skin's in shadow, so only their darkness against the skin
    around them, falling in from the hairline, tells them apart. Hair has grain, which a
    second MP4 encoding moves by more than KEPT levels: the realism benchmark's "within a few
    levels" (12) is the measure here. The strands' thin ends, where they fade onto the brows,
    are not always told from a shadow: a few frames keep 93-95% (the forehead they end on is
    lit as the skin around the strands is, not darkened by the strands themselves)."""
    kept, elsewhere = kept_in_every_frame(fringe_over, tmp_path / "fringe.mp4", compiled_builtins, ad_hoc_library,
                                          selfie, analyser, swapper, human_check, kept=12)
    assert min(kept) >= 0.93 and np.mean(kept) >= 0.95, f"strand pixels kept per frame: {np.round(kept, 3)}"
    assert elsewhere > 8


def test_memeswap_swap_keeps_the_hand_in_front(hand_template, tmp_path, selfie):
    """The same through the command line, on the decoded MP4 (its compression moves pixels a
    little, hence the wider tolerance)."""
    path, masks = hand_template
    cv2.imwrite(str(tmp_path / "selfie.png"), selfie[:, :, ::-1])
    env = {**os.environ, "MEMESWAP_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-m", "memeswap", "swap", "selfie.png", "-t", str(path), "-o", "out.mp4"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    outputs = list(read_frames(tmp_path / "out.mp4"))
    templates = list(read_frames(path))
    assert len(outputs) == len(templates) == len(masks)
    for index in range(12, 24):
        on_hand = masks[index] & (cv2.erode(masks[index].astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
        difference = np.abs(outputs[index].astype(int) - templates[index]).max(axis=2)
        assert (difference[on_hand] <= 16).mean() >= 0.95, f"frame {index}"


@pytest.fixture(scope="module")
def group_template(ad_hoc_library):
    """t1.jpg as a one-frame template: six real faces, two of them turned far."""
    return ad_hoc_library.ad_hoc(group_photo_path())


def face_change(out, template, face) -> float:
    return float(np.abs(out.astype(int) - template)[face_oval(face, out.shape[:2])].mean())


def test_turned_faces_fade_and_then_are_left_alone(group_template, selfie, analyser, swapper, human_check):
    """The documented thresholds (composite.PoseRule): a full swap to a yaw of 25 degrees,
    fading to none at 35, skipped beyond. On t1.jpg: one face at 46 (skipped), one at 33
    (about a tenth of the swap shows), four under 21 (swapped)."""
    template = next(read_frames(group_photo_path(), max_side=MediaLimits().max_template_side))  # as the swap reads it
    faces = group_template.tracks.faces_at(0)
    yaws = [abs(mesh.head_yaw_degrees(f.landmarks)) for f in faces]
    skipped = [f for f, y in zip(faces, yaws) if y >= 35]
    faded = [f for f, y in zip(faces, yaws) if 25 < y < 35]
    full = [f for f, y in zip(faces, yaws) if y <= 25]
    assert len(skipped) == 1 and len(faded) == 1 and len(full) == 4, sorted(yaws)

    out = encoded_frames(selfie, group_template, analyser, swapper, human_check)[0]
    source = swapper.prepare_source(selfie, analyser.analyse(selfie)[0])
    everything = swapper.swap([template], [faces], source)[0]  # the swapper alone, on every face
    x0, y0, x1, y1 = skipped[0].box.astype(int)
    assert face_change(everything, template, skipped[0]) > 10  # a swap would change it ...
    assert np.array_equal(out[y0:y1, x0:x1], template[y0:y1, x0:x1])  # ... the job leaves it, bit for bit
    share = face_change(out, template, faded[0]) / face_change(everything, template, faded[0])
    assert 0.03 < share < 0.6, share
    for face in full:
        assert face_change(out, template, face) > 0.9 * face_change(everything, template, face)


def laplacian_variance(image: np.ndarray, inside: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(grey, cv2.CV_64F)[inside].var())


def degraded_template(compiled_builtins, folder, blur: float = 0.0, grain: float = 0.0):
    frames, _ = base_frames(compiled_builtins, "pan")
    rng = np.random.default_rng(5)
    made = []
    for frame in frames:
        out = cv2.GaussianBlur(frame, (0, 0), blur).astype(np.float32) if blur else frame.astype(np.float32)
        if grain:
            out += rng.normal(0, grain, out.shape[:2]).astype(np.float32)[..., None]
        made.append(np.clip(np.rint(out), 0, 255).astype(np.uint8))
    return write_template(made, folder / "degraded.mp4")


def test_a_blurred_template_face_gives_a_blurred_swap(tmp_path, compiled_builtins, ad_hoc_library, sharp_selfie,
                                                      analyser, swapper, human_check):
    """A sharp selfie into an out-of-focus face (Gaussian sigma 3): the swapped face is as soft
    as the template's, by the variance of the Laplacian (without matching: 60 times sharper)."""
    path = degraded_template(compiled_builtins, tmp_path, blur=3.0)
    compiled = ad_hoc_library.ad_hoc(path)
    outputs = encoded_frames(sharp_selfie, compiled, analyser, swapper, human_check)
    templates = list(read_frames(path))
    for index in range(0, len(templates), 5):
        face = compiled.tracks.faces_at(index)[0]
        inside = cv2.erode(face_oval(face, templates[index].shape[:2]).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        ratio = laplacian_variance(outputs[index], inside) / laplacian_variance(templates[index], inside)
        assert 0.5 <= ratio <= 2.0, f"frame {index}: sharpness ratio {ratio:.2f}"


def test_a_grainy_template_face_gives_a_grainy_swap(tmp_path, compiled_builtins, ad_hoc_library, selfie, analyser,
                                                    swapper, human_check):
    path = degraded_template(compiled_builtins, tmp_path, grain=8.0)
    compiled = ad_hoc_library.ad_hoc(path)
    outputs = encoded_frames(selfie, compiled, analyser, swapper, human_check)
    templates = list(read_frames(path))
    for index in range(0, len(templates), 5):
        face = compiled.tracks.faces_at(index)[0]
        template_grain = grain(templates[index], face)
        assert template_grain > 4  # what the stored template kept of the grain
        ratio = grain(outputs[index], face) / template_grain
        assert 0.7 <= ratio <= 1.3, f"frame {index}: grain ratio {ratio:.2f}"


def test_a_sharp_clean_template_is_neither_blurred_nor_grained(compiled_builtins, selfie, analyser, swapper,
                                                               human_check):
    """On a clean built-in, wherever nothing covers the face, the composited frame is the
    swapper's own."""
    compiled = compiled_builtins("pan")
    composited = encoded_frames(selfie, compiled, analyser, swapper, human_check)
    face = compiled.tracks.faces_at(0)[0]
    info = face.frame_info
    assert info.blur < 1.0 and info.noise < 1.0
    plain = swapper.swap([next(read_frames(compiled.template.media_path))], [[face]],
                         swapper.prepare_source(selfie, analyser.analyse(selfie)[0]))[0]
    height, width = plain.shape[:2]
    visible = cv2.warpAffine(info.visible, info.region.to_mask(info.visible.shape[0]), (width, height),
                             flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=255)
    clear = cv2.erode((visible == 255).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert (~clear).sum() > 0  # (the astronaut's fringe)
    assert np.array_equal(composited[0][clear], plain[clear])


def test_a_job_runs_no_hand_model_and_analyses_only_the_selfie(selfie, analyser, swapper, human_check,
                                                               ad_hoc_library, compiled_builtins):
    from memeswap.inference.faces.hand_landmarks import HandLandmarker

    calls = {"hands": 0}
    find = HandLandmarker.find

    def counted(self, image):
        calls["hands"] += 1
        return find(self, image)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HandLandmarker, "find", counted)
        compiled = ad_hoc_library.ad_hoc(compiled_builtins("shake").template.media_path)  # compile: looks for hands
        at_compile = dict(calls)
        counting = CountingAnalyser(analyser)
        run_swap(selfie, compiled, counting, swapper, human_check=human_check)
    assert at_compile["hands"] >= compiled.tracks.frame_count
    assert calls == at_compile  # the job itself: no hand model
    assert counting.calls == 1  # and the face analyser on the selfie only


def test_the_learned_swappers_paste_back_gets_the_same_masks_and_pose_rule(hand_template, group_template, tmp_path,
                                                                          ad_hoc_library, selfie, analyser,
                                                                          human_check):
    """inswapper's paste-back (here a stand-in graph that tints the whole aligned crop) is
    composited the same way: the hand stays in front, the far-turned face is left alone."""
    from memeswap.inference.faces.arcface import ArcFaceEmbedder
    from memeswap.inference.swappers.inswapper import InSwapper
    from tests.onnx_graphs import make_arcface, make_inswapper

    embedder = ArcFaceEmbedder(make_arcface(tmp_path / "w600k_r50.onnx"), providers="cpu")
    learned = InSwapper(make_inswapper(tmp_path / "tint.onnx", "tint"), embedder, providers="cpu")
    learned.prepare()
    path, masks = hand_template
    compiled = ad_hoc_library.ad_hoc(path)
    outputs = encoded_frames(selfie, compiled, analyser, learned, human_check)
    templates = list(read_frames(path))
    faces = [compiled.tracks.faces_at(i)[0] for i in range(len(templates))]
    kept = kept_inside_the_face(outputs, templates, masks, faces)
    assert len(kept) == 12 and min(kept) >= 0.95, np.round(kept, 3)
    assert min(swapped_elsewhere(outputs, templates, masks, faces)) > 8

    out = encoded_frames(selfie, group_template, analyser, learned, human_check)[0]
    template = next(read_frames(group_photo_path(), max_side=MediaLimits().max_template_side))
    turned = max(group_template.tracks.faces_at(0), key=lambda f: abs(mesh.head_yaw_degrees(f.landmarks)))
    x0, y0, x1, y1 = turned.box.astype(int)
    assert np.array_equal(out[y0:y1, x0:x1], template[y0:y1, x0:x1])
