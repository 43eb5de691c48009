import numpy as np
import pytest
from insightface.app.common import Face as InsightFace
from insightface.model_zoo.arcface_onnx import ArcFaceONNX

from memeswap.inference.errors import NoFaceError
from memeswap.inference.faces.arcface import ArcFaceEmbedder
from memeswap.inference.faces.face import Face
from memeswap.inference.samples import crop_face
from tests.onnx_graphs import make_arcface


@pytest.fixture(scope="module")
def embedder(tmp_path_factory) -> ArcFaceEmbedder:
    e = ArcFaceEmbedder(make_arcface(tmp_path_factory.mktemp("arcface") / "w600k_r50.onnx"), providers="cpu")
    e.prepare()
    return e


@pytest.fixture(scope="module")
def selfie(group, analyser) -> tuple[np.ndarray, Face]:
    image, faces = group
    cropped = crop_face(image, faces[2])
    return cropped, analyser.analyse(cropped)[0]


def test_loads_through_insightfaces_model_zoo(embedder):
    assert isinstance(embedder.model, ArcFaceONNX)  # routed by input shape, offline, from a path
    assert embedder.model.input_size == (112, 112)
    assert (embedder.model.input_mean, embedder.model.input_std) == (127.5, 127.5)  # not the mxnet scaling
    assert embedder.version == "arcface-w600k_r50"


@pytest.mark.filterwarnings("ignore::FutureWarning")  # scikit-image's, inside insightface's alignment
def test_embedding_is_normalised_and_matches_insightface_on_bgr(embedder, selfie):
    image, face = selfie
    assert face.embedding is None
    embedding = embedder.embed(image, face)
    assert embedding.shape == (512,) and embedding.dtype == np.float32
    assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-5)
    # insightface's own route: a BGR image and its Face with .kps
    reference = embedder.model.get(np.ascontiguousarray(image[:, :, ::-1]), InsightFace(kps=face.kps))
    np.testing.assert_allclose(embedding, reference / np.linalg.norm(reference), atol=1e-5)
    # and the colour order matters to this graph, so the test would see a mix-up
    swapped = embedder.model.get(np.ascontiguousarray(image), InsightFace(kps=face.kps))
    assert not np.allclose(embedding, swapped / np.linalg.norm(swapped), atol=1e-3)


def test_different_faces_differ(embedder, group):
    image, faces = group
    a, b = (embedder.embed(image, f) for f in faces[:2])
    assert float(a @ b) < 0.999
    assert float(a @ embedder.embed(image, faces[0])) == pytest.approx(1.0, abs=1e-6)  # deterministic


def test_face_without_keypoints_is_refused(embedder, selfie):
    image, face = selfie
    with pytest.raises(NoFaceError, match="keypoints"):
        embedder.embed(image, Face(box=face.box, score=1.0, kps=None))


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        ArcFaceEmbedder(tmp_path / "nothing.onnx").prepare()
