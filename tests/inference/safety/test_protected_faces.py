"""Protected faces with the real dlib models: the six people of insightface's t1.jpg, the
astronaut photo of scikit-image and a built-in template made from it. Each descriptor is
computed once per module."""


import cv2
import numpy as np
import pytest

from memeswap.inference.errors import InputError
from memeswap.inference.faces.face import Face
from memeswap.inference.safety.protected_faces import (
    SAME_PERSON_DISTANCE,
    SELFIE_MESSAGE,
    TEMPLATE_MESSAGE,
    DlibFaceDescriptor,
    ProtectedFace,
    ProtectedFaceError,
    ProtectedFaces,
    descriptor_from_bytes,
    descriptor_to_bytes,
    face_distance,
)
from memeswap.inference.safety.template_faces import TemplateFaces
from memeswap.inference.samples import crop_face

TEMPLATE = "dramatic-zoom"
ASTRONAUT_LABEL = "our CEO (the astronaut)"


class CountingDescriptor:
    """Wraps the descriptor and counts `describe` calls."""

    def __init__(self, inner: DlibFaceDescriptor) -> None:
        self.inner = inner
        self.calls = 0

    def prepare(self) -> None:
        self.inner.prepare()

    def describe(self, image: np.ndarray, face: Face) -> np.ndarray:
        self.calls += 1
        return self.inner.describe(image, face)


def largest_face(analyser, image: np.ndarray) -> Face:
    faces = analyser.analyse(image)
    assert faces, "the analyser found no face"
    return max(faces, key=lambda f: f.area)


@pytest.fixture(scope="module")
def descriptor() -> DlibFaceDescriptor:
    model = DlibFaceDescriptor()
    model.prepare()
    return model


@pytest.fixture(scope="module")
def group_descriptors(descriptor, group) -> np.ndarray:
    image, faces = group
    return np.stack([descriptor.describe(image, face) for face in faces])


@pytest.fixture(scope="module")
def crops(analyser, group) -> list[tuple[np.ndarray, Face]]:
    """Each person of t1.jpg cut out as a selfie, with the face the analyser finds in the cut."""
    image, faces = group
    result = []
    for face in faces:
        crop = crop_face(image, face)
        result.append((crop, largest_face(analyser, crop)))
    return result


@pytest.fixture(scope="module")
def crop_descriptors(descriptor, crops) -> np.ndarray:
    return np.stack([descriptor.describe(crop, face) for crop, face in crops])


@pytest.fixture(scope="module")
def distances(group_descriptors, crop_descriptors) -> np.ndarray:
    """Row i: person i in the group photo; column j: the crop of person j."""
    matrix = np.array([[face_distance(g, c) for c in crop_descriptors] for g in group_descriptors])
    print("\ngroup (rows) vs crops (columns):\n" + np.array2string(matrix, precision=3))
    return matrix


@pytest.fixture(scope="module")
def astronaut_entry(descriptor, astronaut, astronaut_face) -> ProtectedFace:
    return ProtectedFace(ASTRONAUT_LABEL, descriptor.describe(astronaut, astronaut_face))


@pytest.fixture(scope="module")
def group_entries(group_descriptors) -> list[ProtectedFace]:
    return [ProtectedFace(f"guild 42: t1 person {i}", d) for i, d in enumerate(group_descriptors)]


@pytest.fixture(scope="module")
def astronaut_selfie(analyser, astronaut, astronaut_face) -> tuple[np.ndarray, Face]:
    """The astronaut cut out as a selfie, scaled to 0.7x and turned by 5 degrees."""
    crop = crop_face(astronaut, astronaut_face)
    small = cv2.resize(crop, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    height, width = small.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 5, 1.0)
    selfie = cv2.warpAffine(small, turn, (width, height), borderMode=cv2.BORDER_REFLECT)
    return selfie, largest_face(analyser, selfie)


@pytest.fixture(scope="module")
def template_faces(descriptor, compiled_builtins) -> np.ndarray:
    """The descriptors of a built-in template's face tracks, as a swap-time check sees them."""
    described = TemplateFaces(descriptor).describe(compiled_builtins(TEMPLATE))
    assert len(described), "no face described in the template"
    return described


def test_same_person_matches_across_crops_and_scales(distances):
    assert (np.diag(distances) < SAME_PERSON_DISTANCE).all()
    for i in range(len(distances)):
        assert np.argmin(distances[i]) == i, f"row {i}: {distances[i]}"
        assert np.argmin(distances[:, i]) == i, f"column {i}: {distances[:, i]}"


def test_different_people_do_not_match(distances, group_descriptors):
    different = ~np.eye(len(distances), dtype=bool)
    assert (distances[different] >= SAME_PERSON_DISTANCE).all(), distances
    within_group = np.array([[face_distance(a, b) for b in group_descriptors] for a in group_descriptors])
    assert (within_group[different] >= SAME_PERSON_DISTANCE).all(), within_group


def test_descriptor_is_float32_128(group_descriptors):
    assert group_descriptors.dtype == np.float32 and group_descriptors.shape == (6, 128)
    assert np.isfinite(group_descriptors).all()


def test_protected_selfie_is_refused_with_a_neutral_message(descriptor, astronaut_entry, astronaut_selfie):
    protected = ProtectedFaces(descriptor, [astronaut_entry])
    selfie, face = astronaut_selfie
    with pytest.raises(ProtectedFaceError) as refused:
        protected.check_selfie(selfie, [face])
    message = str(refused.value)
    assert isinstance(refused.value, InputError)
    assert refused.value.code == "protected_face"
    assert message == SELFIE_MESSAGE
    assert "\n" not in message and "astronaut" not in message and "CEO" not in message


def test_match_returns_the_closest_entry(descriptor, astronaut_entry, group_entries, astronaut_selfie, group):
    protected = ProtectedFaces(descriptor, [*group_entries, astronaut_entry])
    selfie, face = astronaut_selfie
    assert protected.match(selfie, [face]) is astronaut_entry
    image, faces = group
    only_third = ProtectedFaces(descriptor, [group_entries[3]])
    assert only_third.match(image, faces) is group_entries[3]  # any face of a group photo counts
    assert only_third.match(image, faces[:3] + faces[4:]) is None


def test_unprotected_selfies_pass(descriptor, astronaut_entry, crops):
    protected = ProtectedFaces(descriptor, [astronaut_entry])
    for crop, face in crops:
        protected.check_selfie(crop, [face])


def test_template_with_a_protected_face_is_refused(descriptor, astronaut_entry, template_faces):
    protected = ProtectedFaces(descriptor, [astronaut_entry])
    with pytest.raises(ProtectedFaceError) as refused:
        protected.check_template_faces(template_faces)
    assert str(refused.value) == TEMPLATE_MESSAGE
    assert refused.value.code == "protected_face"


def test_template_without_protected_faces_passes(descriptor, group_entries, template_faces):
    ProtectedFaces(descriptor, group_entries).check_template_faces(template_faces)


def test_with_entries_does_not_mutate(descriptor, astronaut_entry, group_entries, astronaut_selfie):
    deployment = ProtectedFaces(descriptor, group_entries, threshold=0.5)
    guild = deployment.with_entries([astronaut_entry])
    assert deployment.entries == tuple(group_entries)
    assert guild.entries == (*group_entries, astronaut_entry)
    assert guild.threshold == 0.5 and guild.descriptor is descriptor
    selfie, face = astronaut_selfie
    assert deployment.match(selfie, [face]) is None
    assert guild.match(selfie, [face]) is astronaut_entry


def test_empty_list_computes_nothing(descriptor, astronaut_selfie, template_faces, group):
    counting = CountingDescriptor(descriptor)
    empty = ProtectedFaces(counting)
    selfie, face = astronaut_selfie
    assert empty.match(selfie, [face]) is None
    empty.check_selfie(selfie, [face])
    empty.check_template_faces(template_faces)
    empty.with_entries([]).check_selfie(*group)
    assert counting.calls == 0


def test_descriptor_bytes_round_trip(group_descriptors):
    data = descriptor_to_bytes(group_descriptors[0])
    assert isinstance(data, bytes) and len(data) == 512
    assert data == group_descriptors[0].astype("<f4").tobytes()
    back = descriptor_from_bytes(data)
    assert back.dtype == np.float32 and back.shape == (128,)
    assert np.array_equal(back, group_descriptors[0])
    assert ProtectedFace("stored", descriptor_from_bytes(bytearray(data))).descriptor.shape == (128,)


@pytest.mark.parametrize("size", [0, 511, 513, 1024])
def test_wrong_length_bytes_are_refused(size):
    with pytest.raises(ValueError, match="512 bytes"):
        descriptor_from_bytes(bytes(size))


def test_malformed_descriptors_are_refused():
    with pytest.raises(ValueError):
        descriptor_to_bytes(np.zeros(127, np.float32))
    with pytest.raises(ValueError):
        ProtectedFace("bad", np.full(128, np.nan, np.float32))
    with pytest.raises(ValueError):
        ProtectedFaces(DlibFaceDescriptor(), threshold=0)
