import cv2
import numpy as np
import pytest

from memeswap.inference.enhancers.gfpgan import FFHQ_TEMPLATE, FaceEnhancer, to_frame_scale
from memeswap.inference.faces.face import Face
from memeswap.inference.swappers.paste_back import paste_back
from tests.onnx_graphs import RESTORER_BRIGHTEN, make_arcface, make_face_restorer

LIFT = RESTORER_BRIGHTEN * 127.5  # the brighten graph's change in pixel levels


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("restorers")
    for mode in ("identity", "brighten"):
        make_face_restorer(folder / f"{mode}.onnx", mode)
    make_face_restorer(folder / "brighten_symbolic.onnx", "brighten", fixed_batch=False)
    make_face_restorer(folder / "brighten_256.onnx", "brighten", size=256)
    make_arcface(folder / "arcface.onnx")
    return folder


@pytest.fixture(scope="module")
def make(models):
    def build(model: str, **options) -> FaceEnhancer:
        enhancer = FaceEnhancer(models / f"{model}.onnx", providers="cpu", **options)
        enhancer.prepare()
        return enhancer
    return build


@pytest.fixture(scope="module")
def face(astronaut_face) -> Face:
    return astronaut_face


class SpySession:
    """Records the batches a session is run with."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.blobs: list[np.ndarray] = []

    def run(self, names, feeds):
        (blob,) = feeds.values()
        self.blobs.append(blob.copy())
        return self.inner.run(names, feeds)

    @property
    def batches(self) -> list[int]:
        return [len(blob) for blob in self.blobs]


def spy(enhancer: FaceEnhancer) -> SpySession:
    enhancer.session = SpySession(enhancer.session)
    return enhancer.session


def box_mask(shape, face: Face) -> np.ndarray:
    x0, y0 = (max(0, int(np.floor(v))) for v in face.box[:2])
    x1, y1 = (int(np.ceil(v)) for v in face.box[2:])
    mask = np.zeros(shape[:2], bool)
    mask[y0:y1, x0:x1] = True
    return mask


def centre(face: Face, fraction: float = 0.15) -> tuple[slice, slice]:
    cx, cy = face.center.astype(int)
    r = max(2, int(face.width * fraction))
    return slice(cy - r, cy + r), slice(cx - r, cx + r)


def test_reads_the_contract_from_the_model(make, models):
    enhancer = make("identity")
    assert (enhancer.input_name, enhancer.output_name, enhancer.input_size) == ("input", "output", 512)
    assert not enhancer.batched
    assert make("brighten_symbolic").batched
    assert make("brighten_256").input_size == 256
    assert enhancer.name == "gfpgan" and enhancer.version == "gfpgan-identity-blend0.7"
    with pytest.raises(ValueError, match="face restorer"):
        FaceEnhancer(models / "arcface.onnx", providers="cpu").prepare()  # 112 px in, 512-d out
    with pytest.raises(FileNotFoundError):
        FaceEnhancer(models / "missing.onnx", providers="cpu").prepare()
    with pytest.raises(ValueError, match="blend"):
        FaceEnhancer(models / "identity.onnx", blend=1.5)


def test_alignment_puts_the_keypoints_on_the_ffhq_template(make, face):
    enhancer = make("identity")
    matrix = enhancer.align(face.kps)
    assert np.linalg.det(matrix[:, :2]) > 0  # a similarity, not a mirror
    mapped = np.c_[face.kps, np.ones(5)] @ matrix.T
    template = np.array(FFHQ_TEMPLATE) * 512
    assert np.linalg.norm(mapped - template, axis=1).mean() < 15  # of a 512 px crop
    assert np.allclose(mapped.mean(axis=0), template.mean(axis=0), atol=8)


def test_alignment_and_paste_back_are_inverses(make, face, astronaut):
    """The aligned crop pasted straight back (no model) gives the face box back within a
    couple of levels on the raw photo; a half-pixel slip would show here."""
    matrix = make("identity").align(face.kps)
    crop = cv2.warpAffine(astronaut, matrix, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = astronaut.copy()
    paste_back(out, crop, face.box, matrix)
    inside = box_mask(astronaut.shape, face)
    assert np.abs(out.astype(int) - astronaut)[inside].mean() < 2.0
    assert np.array_equal(out[~inside], astronaut[~inside])


def test_shrunk_crop_lands_where_the_full_crop_would(make, face):
    """Area averaging and bilinear warps are exact on a linear ramp, so the shrunk crop
    with its rescaled matrix must give the same frame pixels as the full crop (a missing
    half-pixel correction is off by about a third of a level per pixel of slope here)."""
    matrix = make("identity").align(face.kps)
    ys, xs = np.mgrid[0:512, 0:512].astype(np.float32)
    ramp = np.dstack([xs * 0.4, ys * 0.4, (xs + ys) * 0.2])
    small, scaled = to_frame_scale(ramp, matrix)
    assert small.shape[0] < 200 and np.linalg.det(scaled[:, :2]) == pytest.approx(1.0, rel=0.05)
    x0, y0 = (int(v) + 20 for v in face.box[:2])  # well inside the crop, away from its border
    shift = np.float64([[0, 0, 0], [0, 0, 0]])
    shift[:, 2] = np.array([x0, y0], np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    full = cv2.warpAffine(ramp, matrix + matrix[:, :2] @ shift, (40, 40), flags=flags)
    shrunk = cv2.warpAffine(small, scaled + scaled[:, :2] @ shift, (40, 40), flags=flags)
    assert np.abs(full - shrunk).max() < 0.05


def test_a_structured_change_is_pasted_in_place(make, face, astronaut):
    """A fake model that halves the crop must halve the face (its centre, where the mask
    is 1): the change is warped back to the right pixels at the right scale."""
    frame = cv2.GaussianBlur(astronaut, (0, 0), 1.0)
    enhancer = make("identity", blend=1.0)
    enhancer._restore = lambda crops: crops // 2
    out = enhancer.enhance([frame], [[face]])[0].astype(int)
    expected = frame.astype(int) - frame // 2
    assert np.abs(out - expected)[centre(face)].mean() < 1.0
    inside = box_mask(frame.shape, face)
    assert np.array_equal(out[~inside], frame[~inside])


def test_identity_model_leaves_the_face_as_it_was(make, face, astronaut):
    enhancer = make("identity", blend=1.0)
    frame = astronaut.copy()
    calls = spy(enhancer)
    out = enhancer.enhance([frame], [[face]])[0]
    assert calls.batches == [1]
    assert np.array_equal(frame, astronaut)  # the input is not modified
    assert out is not frame and out.shape == frame.shape and out.dtype == np.uint8
    inside = box_mask(frame.shape, face)
    assert np.abs(out.astype(int) - frame)[inside].mean() < 2.0
    assert np.array_equal(out[~inside], frame[~inside])
    assert np.array_equal(out, frame)  # only the model's change is pasted: here none


def test_model_sees_rgb_in_minus_one_to_one(make, face, astronaut):
    enhancer = make("identity")
    calls = spy(enhancer)
    enhancer.enhance([astronaut], [[face]])
    (blob,) = calls.blobs
    assert blob.shape == (1, 3, 512, 512) and blob.dtype == np.float32
    matrix = enhancer.align(face.kps)
    crop = cv2.warpAffine(astronaut, matrix, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    expected = crop.transpose(2, 0, 1)[None].astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(blob, expected, atol=1e-5)  # channel 0 is the frame's red


@pytest.mark.parametrize("blend", [1.0, 0.7])
def test_brighter_model_brightens_the_face_by_blend(make, face, astronaut, blend):
    out = make("brighten", blend=blend).enhance([astronaut], [[face]])[0].astype(int)
    change = out - astronaut
    inside = box_mask(astronaut.shape, face)
    assert abs(change[centre(face)].mean() - blend * LIFT) < 1.5
    assert np.array_equal(out[~inside], astronaut[~inside])
    assert change[inside].min() >= 0
    assert change[inside].mean() > 0.4 * blend * LIFT  # the face, not a corner of the box


def test_input_size_comes_from_the_model(make, face, astronaut):
    small = make("brighten_256", blend=1.0)
    calls = spy(small)
    out = small.enhance([astronaut], [[face]])[0].astype(int)
    assert calls.blobs[0].shape == (1, 3, 256, 256)
    assert abs((out - astronaut)[centre(face)].mean() - LIFT) < 1.5


def test_blend_zero_gives_the_input_back(models, face, astronaut):
    enhancer = FaceEnhancer(models / "brighten.onnx", providers="cpu", blend=0.0)
    out = enhancer.enhance([astronaut], [[face]])[0]
    assert out is not astronaut and np.array_equal(out, astronaut)
    assert enhancer.session is None  # the model never ran


def test_faces_without_keypoints_are_skipped(make, face, astronaut):
    enhancer = make("brighten")
    calls = spy(enhancer)
    blank = Face(box=face.box, score=1.0, kps=None)
    outs = enhancer.enhance([astronaut, astronaut], [[blank], []])
    assert calls.batches == []
    assert all(out is not astronaut and np.array_equal(out, astronaut) for out in outs)
    mixed = enhancer.enhance([astronaut], [[blank, face]])[0]
    assert calls.batches == [1]
    assert np.array_equal(mixed, make("brighten").enhance([astronaut], [[face]])[0])
    with pytest.raises(ValueError, match="frames"):
        enhancer.enhance([astronaut], [])


def test_batched_and_per_face_runs_agree(make, analyser, astronaut, face):
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    small = cv2.resize(astronaut, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    frames = [astronaut, flipped, small]
    targets = [[face], analyser.analyse(flipped)[:1], analyser.analyse(small)[:1]]
    assert all(len(faces) == 1 for faces in targets)
    per_face, batched, capped = make("brighten"), make("brighten_symbolic"), make("brighten_symbolic", max_batch=2)
    runs = [spy(e) for e in (per_face, batched, capped)]
    reference = per_face.enhance(frames, targets)
    for enhancer in (batched, capped):
        for got, want in zip(enhancer.enhance(frames, targets), reference):
            assert np.array_equal(got, want)
    assert [r.batches for r in runs] == [[1, 1, 1], [3], [2, 1]]
    for frame, faces, out in zip(frames, targets, reference):
        assert (out.astype(int) - frame)[centre(faces[0])].mean() > 0.5 * LIFT


def test_face_cut_by_the_frame_edge(make, face, astronaut):
    frame = np.ascontiguousarray(astronaut[:, 200:])
    cut = Face(box=face.box - [200, 0, 200, 0], score=1.0, kps=face.kps - [200, 0])
    assert cut.box[0] < 0
    out = make("brighten").enhance([frame], [[cut]])[0].astype(int)
    inside = box_mask(frame.shape, cut)
    assert np.array_equal(out[~inside], frame[~inside])
    assert (out - frame)[inside].mean() > 5
