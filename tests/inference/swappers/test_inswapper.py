import logging
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from memeswap.inference.errors import InputError, NoFaceError
from memeswap.inference.faces import mesh
from memeswap.inference.faces.arcface import ArcFaceEmbedder, estimate_norm
from memeswap.inference.faces.face import Face
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.onnx_graph import make_batch_symbolic
from memeswap.inference.samples import crop_face
from memeswap.inference.swappers.inswapper import InSwapper
from tests.onnx_graphs import emap_matrix, make_arcface, make_inswapper, tint_weight


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    make_arcface(folder / "w600k_r50.onnx")
    for mode in ("identity", "tint", "batch1"):
        make_inswapper(folder / f"{mode}.onnx", mode)
    make_inswapper(folder / "tint_symbolic.onnx", "tint", fixed_batch=False)
    return folder


@pytest.fixture(scope="module")
def embedder(models) -> ArcFaceEmbedder:
    return ArcFaceEmbedder(models / "w600k_r50.onnx", providers="cpu")


@pytest.fixture(scope="module")
def make(models, embedder):
    def build(model: str, **options) -> InSwapper:
        swapper = InSwapper(models / f"{model}.onnx", embedder, providers="cpu", **options)
        swapper.prepare()
        return swapper
    return build


@pytest.fixture(scope="module")
def target(astronaut_face) -> Face:
    return astronaut_face


def identity_face(seed: int = 1) -> Face:
    """A selfie face known only by its (unnormalised) embedding."""
    embedding = 3 * np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    return Face(box=np.array([0, 0, 10, 10], np.float32), score=1.0, kps=None, embedding=embedding)


def box_mask(shape, face: Face) -> np.ndarray:
    x0, y0 = (max(0, int(np.floor(v))) for v in face.box[:2])
    x1, y1 = (int(np.ceil(v)) for v in face.box[2:])
    mask = np.zeros(shape[:2], bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_emap_is_the_last_initializer_and_the_latent_uses_it(make, models):
    assert onnx.load(str(models / "tint.onnx")).graph.initializer[-1].name == "emap"
    swapper = make("tint")
    assert np.array_equal(swapper.emap, emap_matrix())
    face = identity_face()
    source = swapper.prepare_source(np.zeros((8, 8, 3), np.uint8), face)
    normed = face.embedding / np.linalg.norm(face.embedding)
    expected = normed @ emap_matrix()
    expected /= np.linalg.norm(expected)
    assert source.latent.shape == (1, 512) and source.latent.dtype == np.float32
    np.testing.assert_allclose(source.latent[0], expected, atol=1e-6)
    np.testing.assert_allclose(source.embedding, normed, atol=1e-6)


def test_selfie_without_embedding_gets_one_from_arcface(make, embedder, group, analyser):
    swapper = make("tint")
    image, faces = group
    selfie = crop_face(image, faces[2])
    face = analyser.analyse(selfie)[0]
    assert face.embedding is None
    source = swapper.prepare_source(selfie, face)
    np.testing.assert_allclose(source.embedding, embedder.embed(selfie, face), atol=1e-6)
    assert face.embedding is None  # the Face is not modified
    other = crop_face(image, faces[4])
    assert not np.allclose(swapper.prepare_source(other, analyser.analyse(other)[0]).latent, source.latent)


def test_unusable_source_faces_are_refused(make):
    swapper = make("tint")
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(NoFaceError, match="keypoints"):
        swapper.prepare_source(image, Face(box=np.array([0, 0, 9, 9]), score=1.0, kps=None))
    with pytest.raises(InputError, match="512"):
        swapper.prepare_source(image, Face(box=np.array([0, 0, 9, 9]), score=1.0, kps=None,
                                           embedding=np.ones(128, np.float32)))


def test_identity_graph_leaves_the_frame_as_it_was(make, target, astronaut):
    """Alignment and paste-back are exact inverses up to interpolation: on a slightly
    smoothed frame the face box comes back within a fraction of a level (a half-pixel
    misalignment gives over 2 levels here), and nothing outside the box changes."""
    swapper = make("identity")
    assert swapper.batched
    frame = cv2.GaussianBlur(astronaut, (0, 0), 1.5)
    before = frame.copy()
    out = swapper.swap([frame], [[target]], swapper.prepare_source(frame, identity_face()))[0]
    assert np.array_equal(frame, before)  # the input is not modified
    assert out.shape == frame.shape and out.dtype == np.uint8
    inside = box_mask(frame.shape, target)
    error = np.abs(out.astype(int) - frame)
    assert error[inside].mean() < 1.0
    assert np.array_equal(out[~inside], frame[~inside])


def test_identity_on_the_raw_astronaut_at_half_size(make, analyser, astronaut):
    swapper = make("identity")
    frame = cv2.resize(astronaut, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    face = analyser.analyse(frame)[0]
    out = swapper.swap([frame], [[face]], swapper.prepare_source(frame, identity_face()))[0]
    inside = box_mask(frame.shape, face)
    assert np.abs(out.astype(int) - frame)[inside].mean() < 2.0
    assert np.array_equal(out[~inside], frame[~inside])


def test_face_cut_by_the_frame_edge(make, target, astronaut):
    swapper = make("identity")
    frame = np.ascontiguousarray(cv2.GaussianBlur(astronaut, (0, 0), 1.5)[:, 200:])
    face = Face(box=target.box - [200, 0, 200, 0], score=1.0, kps=target.kps - [200, 0])
    assert face.box[0] < 0
    out = swapper.swap([frame], [[face]], swapper.prepare_source(frame, identity_face()))[0]
    inside = box_mask(frame.shape, face)
    assert np.abs(out.astype(int) - frame)[inside].mean() < 1.0
    assert np.array_equal(out[~inside], frame[~inside])


@pytest.fixture(scope="module")
def duo(compiled_builtins):
    """Six frames of the two-face template with their faces."""
    compiled = compiled_builtins("duo")
    limits = MediaLimits()
    frames = list(islice(read_frames(compiled.template.media_path, limits, max_side=limits.max_template_side), 6))
    targets = [compiled.tracks.faces_at(i) for i in range(len(frames))]
    assert all(len(faces) == 2 for faces in targets)
    return frames, targets


def test_batched_run_equals_one_face_per_run(make, duo):
    frames, targets = duo
    batched = make("tint", batch_size=5)  # 12 faces: runs of 5, 5 and 2
    symbolic = make("tint_symbolic", batch_size=16)  # already symbolic: used as it is
    single = make("tint", batch_size=1)
    fallback = make("batch1", batch_size=16)  # the rewrite fails its dry run
    assert batched.batched and symbolic.batched
    assert not single.batched and not fallback.batched
    source = batched.prepare_source(frames[0], identity_face(seed=5))
    reference = single.swap(frames, targets, source)
    for swapper in (batched, symbolic, fallback):
        for got, want in zip(swapper.swap(frames, targets, source), reference):
            assert np.abs(got.astype(int) - want).max() <= 1

    # the faces took the latent's tint; pixels outside both face boxes are untouched
    for frame, faces, out in zip(frames, targets, reference):
        inside = box_mask(frame.shape, faces[0]) | box_mask(frame.shape, faces[1])
        for face in faces:
            assert np.abs(out.astype(int) - frame)[box_mask(frame.shape, face)].mean() > 10
        assert np.array_equal(out[~inside], frame[~inside])


def test_colour_order_reaches_the_model_as_rgb(make, target, astronaut):
    """insightface feeds BGR frames with swapRB=True and flips the output back: the model
    sees and returns RGB. Our RGB frames must give the same tint in the same channels."""
    swapper = make("tint")
    frame = cv2.GaussianBlur(astronaut, (0, 0), 2.0)
    source = swapper.prepare_source(frame, identity_face())
    out = swapper.swap([frame], [[target]], source)[0].astype(np.float32)
    tint = 255 / (1 + np.exp(-(source.latent[0] @ tint_weight())))  # R, G, B
    cx, cy = target.center.astype(int)
    centre = (slice(cy - 5, cy + 5), slice(cx - 5, cx + 5))
    expected = (frame[centre].astype(np.float32) + tint) / 2
    assert np.abs(out[centre] - expected).mean() < 1.5
    assert np.ptp(tint) > 40  # the channels differ enough for a swap to show


@pytest.mark.filterwarnings("ignore::FutureWarning")  # scikit-image's, inside insightface's alignment
def test_matches_insightfaces_own_inswapper(make, models, target, astronaut):
    """insightface's INSwapper.get on the BGR frame gives the same crop, the same swapped
    crop (it truncates where we round: at most one level) and the same face centre."""
    from insightface.app.common import Face as InsightFace
    from insightface.model_zoo.inswapper import INSwapper

    ours = make("tint")
    theirs = INSwapper(model_file=str(models / "tint.onnx"))
    face = identity_face()
    source = ours.prepare_source(astronaut, face)
    bgr = np.ascontiguousarray(astronaut[:, :, ::-1])
    their_target, their_source = InsightFace(kps=target.kps), InsightFace(embedding=face.embedding)
    their_fake, their_matrix = theirs.get(bgr, their_target, their_source, paste_back=False)
    matrix = estimate_norm(target.kps, 128)
    np.testing.assert_allclose(matrix, their_matrix, atol=1e-6)
    crop = cv2.warpAffine(astronaut, matrix, (128, 128), borderValue=0.0)
    our_fake = ours._generate(crop[None], source.latent)[0]
    assert np.abs(our_fake.astype(int) - their_fake[:, :, ::-1]).max() <= 1

    their_frame = theirs.get(bgr, their_target, their_source)[:, :, ::-1].astype(int)
    our_frame = ours.swap([astronaut], [[target]], source)[0].astype(int)
    cx, cy = target.center.astype(int)
    centre = (slice(cy - 20, cy + 20), slice(cx - 20, cx + 20))
    differences = np.abs(our_frame[centre] - their_frame[centre])
    assert differences.max() <= 3 and (differences > 2).mean() < 0.001  # their truncation, blended twice


def test_the_latent_decides_the_colour(make, target, astronaut):
    swapper = make("tint")
    a, b = (swapper.swap([astronaut], [[target]], swapper.prepare_source(astronaut, identity_face(seed)))[0]
            for seed in (1, 2))
    inside = box_mask(astronaut.shape, target)
    assert np.abs(a.astype(int) - b)[inside].mean() > 5


def test_fallback_is_logged(models, embedder, caplog):
    with caplog.at_level(logging.INFO, logger="memeswap.onnx"):
        InSwapper(models / "batch1.onnx", embedder, providers="cpu").prepare()
    messages = [r.getMessage() for r in caplog.records]
    assert any("cannot run batched" in m for m in messages)
    assert "batch1.onnx: one face per run" in messages


def test_make_batch_symbolic(models):
    model = onnx.load(str(models / "tint.onnx"))
    assert make_batch_symbolic(model)
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "N"
    assert not model.graph.value_info
    onnx.checker.check_model(model)
    other = onnx.load(str(models / "tint.onnx"))
    other.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4
    assert not make_batch_symbolic(other)
    assert other.graph.input[1].type.tensor_type.shape.dim[0].dim_value == 1  # untouched


def test_inputs_are_found_by_shape_not_by_name(make, models, embedder, tmp_path, target, astronaut):
    model = onnx.load(str(models / "tint.onnx"))
    renames = {"target": "img", "source": "latent_in"}
    for value in model.graph.input:
        value.name = renames[value.name]
    for node in model.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
    model.graph.input.reverse()
    onnx.save(model, str(tmp_path / "renamed.onnx"))
    renamed = InSwapper(tmp_path / "renamed.onnx", embedder, providers="cpu")
    renamed.prepare()
    assert (renamed.target_name, renamed.source_name) == ("img", "latent_in")
    reference = make("tint")
    source = reference.prepare_source(astronaut, identity_face())
    assert np.array_equal(renamed.swap([astronaut], [[target]], source)[0],
                          reference.swap([astronaut], [[target]], source)[0])


def test_faces_without_keypoints_are_skipped(make, target, astronaut):
    swapper = make("tint")
    source = swapper.prepare_source(astronaut, identity_face())
    blank = Face(box=target.box, score=1.0, kps=None)
    outs = swapper.swap([astronaut, astronaut], [[blank], []], source)
    assert all(out is not astronaut and np.array_equal(out, astronaut) for out in outs)


def test_greyscale_frame_stays_greyscale(make, target, astronaut):
    swapper = make("tint")
    grey = np.repeat(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    out = swapper.swap([grey], [[target]], swapper.prepare_source(grey, identity_face()))[0].astype(int)
    assert np.abs(out - out.mean(axis=2, keepdims=True)).max() <= 1
    assert np.abs(out - grey)[box_mask(grey.shape, target)].mean() > 5


def open_mouth(astronaut: np.ndarray, target: Face) -> tuple[np.ndarray, Face, np.ndarray]:
    """The template face with its jaw dropped and a dark open mouth, and that mouth's mask."""
    points = target.landmarks.copy()
    lower = list(mesh.LIPS_INNER_LOWER[1:-1])
    points[lower, 1] += 14
    frame = astronaut.copy()
    polygon = points[list(mesh.LIPS_INNER_UPPER) + list(reversed(lower)), :2].astype(np.int32)
    cv2.fillPoly(frame, [polygon], (30, 10, 10))
    mouth = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(mouth, [polygon], 1)
    mouth = cv2.erode(mouth, np.ones((3, 3), np.uint8)).astype(bool)
    return frame, Face(box=target.box, score=1.0, kps=target.kps, landmarks=points), mouth


def test_mouth_mask_keeps_the_templates_open_mouth(make, target, astronaut):
    frame, laughing, mouth = open_mouth(astronaut, target)
    assert mouth.sum() > 100
    plain, masked = make("tint"), make("tint", mouth_mask=True)
    source = plain.prepare_source(frame, identity_face())
    without = plain.swap([frame], [[laughing]], source)[0].astype(int)
    kept = masked.swap([frame], [[laughing]], source)[0].astype(int)
    assert np.abs(without - frame)[mouth].mean() > 20
    assert np.abs(kept - frame)[mouth].max() <= 1
    face_only = box_mask(frame.shape, laughing) & ~cv2.dilate(mouth.astype(np.uint8), np.ones((31, 31))).astype(bool)
    assert np.array_equal(kept[face_only], without[face_only])  # the rest of the face is swapped as before
    # without dense landmarks there is no mouth to keep
    sparse = Face(box=target.box, score=1.0, kps=target.kps)
    assert np.array_equal(masked.swap([frame], [[sparse]], source)[0], plain.swap([frame], [[sparse]], source)[0])
