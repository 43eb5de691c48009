"""InsightFaceAnalyser on tiny graphs with the contracts of buffalo_l's det_10g, 2d106det
and w600k_r50: every graph goes through insightface's real router, SCRFD decoding, NMS,
landmark crop and ArcFace alignment."""

from pathlib import Path

import numpy as np
import pytest

from memeswap.inference.faces.arcface import ArcFaceEmbedder
from memeswap.inference.faces.insightface_analyser import InsightFaceAnalyser
from memeswap.inference.media.decode import load_image
from memeswap.inference.samples import group_photo_path
from tests.onnx_graphs import (
    landmark_106_layout,
    make_arcface,
    make_landmark_106,
    make_scrfd,
    scrfd_det_scale,
)

# Four of t1.jpg's faces (1280 x 886), image pixels: box and five keypoints in insightface
# order (left eye, right eye, nose, left and right mouth corner), as MediaPipe finds them.
T1_FACES = [
    ((53.4, 276.5, 171.2, 395.9),
     [[86.7, 328.8], [128.5, 309.0], [121.5, 341.1], [114.1, 371.5], [147.7, 351.4]]),
    ((273.2, 162.6, 374.1, 264.2),
     [[293.2, 210.9], [320.7, 193.7], [305.7, 231.0], [314.0, 247.1], [338.3, 234.0]]),
    ((463.5, 283.0, 573.8, 414.3),
     [[489.8, 319.0], [536.2, 331.5], [507.1, 368.6], [484.8, 369.9], [529.8, 380.8]]),
    ((905.7, 75.0, 1019.4, 205.8),
     [[920.2, 121.6], [943.2, 115.9], [919.3, 157.4], [936.3, 174.0], [958.5, 169.0]]),
]


@pytest.fixture(scope="module")
def t1() -> np.ndarray:
    return load_image(group_photo_path())


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("buffalo_l")
    make_landmark_106(folder / "2d106det.onnx")
    make_arcface(folder / "w600k_r50.onnx")
    return folder


def encode(path: Path, image_shape: tuple[int, ...], faces: list[tuple], size: int = 640, **kwargs) -> Path:
    """A detector graph that finds `faces` (image pixels, optional score last) in an image
    of `image_shape`, through insightface's aspect-preserving rescale."""
    scale = scrfd_det_scale(image_shape, size)
    scaled = [(*(np.array(box) * scale), np.array(kps) * scale, *rest) for box, kps, *rest in faces]
    return make_scrfd(path, scaled, size=size, **kwargs)


def analyser_for(detector: Path, models: Path | None = None, **kwargs) -> InsightFaceAnalyser:
    analyser = InsightFaceAnalyser(
        detector, models / "2d106det.onnx" if models else None, models / "w600k_r50.onnx" if models else None,
        providers="cpu", **kwargs)
    analyser.prepare()
    return analyser


def nearest(faces, box) -> object:
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    return min(faces, key=lambda f: np.linalg.norm(f.center - centre))


@pytest.mark.parametrize(("shape", "picked", "stride"), [
    ("wide", [1, 2, 3], None),  # 1280 x 886: the width becomes 640, det_scale 0.5
    ("tall", [0, 1, 2], None),  # 600 x 886: the height becomes 640, width truncated to 433
    ("wide", [1, 2, 3], 8),
    ("tall", [0, 1, 2], 32),
])
def test_finds_exactly_the_encoded_faces(tmp_path, t1, shape, picked, stride):
    image = t1 if shape == "wide" else np.ascontiguousarray(t1[:, :600])
    encoded = [T1_FACES[i] for i in picked]
    faces = analyser_for(encode(tmp_path / "det_10g.onnx", image.shape, encoded, stride=stride)).analyse(image)

    assert len(faces) == len(encoded)
    assert [f.area for f in faces] == sorted((f.area for f in faces), reverse=True)  # largest first
    for box, kps in encoded:
        face = nearest(faces, box)
        assert face.box.dtype == np.float32 and face.kps.dtype == np.float32 and face.kps.shape == (5, 2)
        np.testing.assert_allclose(face.box, box, atol=0.5)
        np.testing.assert_allclose(face.kps, kps, atol=0.5)  # same points, same (insightface) order
        assert face.score == pytest.approx(0.9, abs=1e-5)
        assert face.landmarks is None and face.embedding is None  # no landmark / recognition model


def test_keypoints_come_back_in_insightface_order(tmp_path, t1):
    (box, kps), = [T1_FACES[2]]  # the frontal face: eyes level, mouth below the nose
    face, = analyser_for(encode(tmp_path / "det_10g.onnx", t1.shape, [(box, kps)])).analyse(t1)
    left_eye, right_eye, nose, left_mouth, right_mouth = face.kps
    assert left_eye[0] < nose[0] < right_eye[0]
    assert left_mouth[0] < right_mouth[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(left_mouth[1], right_mouth[1])


def test_scores_below_min_score_are_dropped(tmp_path, t1):
    scored = [(*T1_FACES[1], 0.95), (*T1_FACES[2], 0.45), (*T1_FACES[3], 0.2)]
    detector = encode(tmp_path / "det_10g.onnx", t1.shape, scored)

    faces = analyser_for(detector, min_score=0.5).analyse(t1)
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].box, T1_FACES[1][0], atol=0.5)
    assert faces[0].score == pytest.approx(0.95, abs=1e-5)

    # the detector returns the 0.95 face first; the 0.45 one is larger, so it comes first here
    lower = analyser_for(detector, min_score=0.4).analyse(t1)
    assert [round(f.score, 3) for f in lower] == [0.45, 0.95]

    empty = analyser_for(encode(tmp_path / "empty.onnx", t1.shape, [])).analyse(t1)
    assert empty == []


def test_landmarks_and_embeddings(tmp_path, t1, models):
    encoded = [T1_FACES[i] for i in (0, 1, 2, 3)]
    faces = analyser_for(encode(tmp_path / "det_10g.onnx", t1.shape, encoded), models).analyse(t1)
    assert len(faces) == 4
    embedder = ArcFaceEmbedder(models / "w600k_r50.onnx", providers="cpu")
    for face in faces:
        assert face.landmarks.shape == (106, 3) and face.landmarks.dtype == np.float32
        assert not face.landmarks[:, 2].any()
        x, y = face.landmarks[:, 0], face.landmarks[:, 1]
        assert (x > face.box[0]).all() and (x < face.box[2]).all()
        assert (y > face.box[1]).all() and (y < face.box[3]).all()
        # Landmark.get crops 1.5 x the long side around the box centre: the graph's layout
        # comes back scaled to that crop, so the analyser handed over the right box.
        expected = face.center + landmark_106_layout() * 0.75 * max(face.width, face.height)
        np.testing.assert_allclose(face.landmarks[:, :2], expected, atol=0.5)

        assert face.embedding.shape == (512,) and face.embedding.dtype == np.float32
        assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
        # insightface's ArcFaceONNX.get on BGR == our own embedder on RGB, from the same kps
        np.testing.assert_allclose(face.embedding, embedder.embed(t1, face), atol=1e-5)
    embeddings = np.stack([f.embedding for f in faces])
    similarity = embeddings @ embeddings.T
    assert similarity[~np.eye(4, dtype=bool)].max() < 0.999  # different faces differ


def test_loading_the_pack_prints_nothing(tmp_path, t1, models, capsys):
    """insightface's router reports with print() (0.7 did on every model); none of it may
    reach stdout, which `--json` output shares."""
    detector = encode(tmp_path / "det_10g.onnx", t1.shape, T1_FACES[:1])
    analyser_for(detector, models)
    assert capsys.readouterr().out == ""


def test_graphs_of_the_wrong_kind_are_refused(tmp_path, t1, models):
    detector = encode(tmp_path / "det_10g.onnx", t1.shape, T1_FACES[:1])
    arcface, landmark = models / "w600k_r50.onnx", models / "2d106det.onnx"
    with pytest.raises(ValueError, match=r"w600k_r50.onnx is not an SCRFD/RetinaFace face detector "
                                         r"\(insightface routed it to ArcFaceONNX\)"):
        InsightFaceAnalyser(arcface, None, None, providers="cpu").prepare()
    with pytest.raises(ValueError, match="det_10g.onnx is not a 2d106 landmark model"):
        InsightFaceAnalyser(detector, detector, None, providers="cpu").prepare()
    with pytest.raises(ValueError, match="2d106det.onnx is not an ArcFace recognition model"):
        InsightFaceAnalyser(detector, None, landmark, providers="cpu").prepare()
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        InsightFaceAnalyser(tmp_path / "nothing.onnx", None, None).prepare()
    refused = InsightFaceAnalyser(arcface, None, None, providers="cpu")
    with pytest.raises(ValueError):
        refused.analyse(t1)  # nothing half-loaded stays behind
    with pytest.raises(ValueError, match="RGB image"):
        analyser_for(detector).analyse(t1[:, :, 0])


def test_version_names_the_models_and_changes_with_det_size(tmp_path, t1, models):
    detector = encode(tmp_path / "det_10g.onnx", t1.shape, T1_FACES[1:3])
    full = InsightFaceAnalyser(detector, models / "2d106det.onnx", models / "w600k_r50.onnx")
    assert full.name == "insightface"
    assert all(stem in full.version for stem in ("det_10g", "2d106det", "w600k_r50", "640"))
    assert InsightFaceAnalyser(detector, None, None).version != full.version
    assert InsightFaceAnalyser(detector, models / "2d106det.onnx", models / "w600k_r50.onnx",
                               det_size=320).version != full.version

    # det_10g's input is dynamic: the same kind of graph runs at 320 with outputs to match
    small = encode(tmp_path / "det_320.onnx", t1.shape, T1_FACES[1:3], size=320)
    faces = analyser_for(small, det_size=320).analyse(t1)
    assert len(faces) == 2
    for box, _ in T1_FACES[1:3]:
        np.testing.assert_allclose(nearest(faces, box).box, box, atol=0.5)


def test_a_fixed_input_detector_must_match_det_size(tmp_path, t1, capsys):
    fixed = encode(tmp_path / "det_fixed.onnx", t1.shape, T1_FACES[1:2], dynamic=False)
    face, = analyser_for(fixed).analyse(t1)
    assert capsys.readouterr().out == ""  # insightface's "det_size is already set" print is logged
    np.testing.assert_allclose(face.box, T1_FACES[1][0], atol=0.5)
    with pytest.raises(ValueError, match="fixed 640x640 input; set det_size to 640"):
        InsightFaceAnalyser(fixed, None, None, providers="cpu", det_size=320).prepare()
    with pytest.raises(ValueError, match="multiple of 32"):
        InsightFaceAnalyser(fixed, None, None, det_size=600)
