import numpy as np

from memeswap.inference.faces import mesh


def test_finds_all_six_faces_of_the_group_photo(group):
    image, faces = group
    assert len(faces) == 6
    for face in faces:
        assert face.landmarks.shape == (478, 3)
        assert face.kps.shape == (5, 2)
        assert 60 < face.width < 200
        assert face.score >= 0.6
    centres = np.array([f.center for f in faces])
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=2) + np.eye(6) * 1e9
    assert gaps.min() > 80, "two detections of the same person"


def test_finds_the_one_face_of_astronaut(analyser, astronaut):
    faces = analyser.analyse(astronaut)
    assert len(faces) == 1
    face = faces[0]
    # Eileen Collins' face sits around x 180..270, y 70..180 in the 512 px photo.
    assert 170 < face.box[0] < 200 and 255 < face.box[2] < 290
    assert 55 < face.box[1] < 90 and 165 < face.box[3] < 200


def test_keypoints_follow_insightface_order(analyser, astronaut):
    kps = analyser.analyse(astronaut)[0].kps
    left_eye, right_eye, nose, left_mouth, right_mouth = kps
    assert left_eye[0] < right_eye[0]
    assert left_mouth[0] < right_mouth[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(left_mouth[1], right_mouth[1])


def test_blank_and_tiny_images_have_no_faces(analyser):
    assert analyser.analyse(np.full((300, 300, 3), 200, np.uint8)) == []
    noise = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert analyser.analyse(noise) == []


def test_finds_a_small_face_in_a_large_image(analyser, astronaut):
    canvas = np.full((1400, 1800, 3), 90, np.uint8)
    small = astronaut[40:220, 150:300]  # the head, about 90 px wide
    canvas[900:1080, 1500:1650] = small
    faces = analyser.analyse(canvas)
    assert len(faces) == 1 and faces[0].box[0] > 1450


def test_mesh_topology():
    triangles = mesh.skin_triangles()
    assert triangles.shape == (852, 3)
    assert len(np.unique(triangles)) == 468  # every non-iris point is in the mesh
    assert len(mesh.MOUTH_FILL) == 18 and len(mesh.LEFT_EYE_FILL) == 14


def test_frontal_and_turned_faces_by_yaw(group):
    _, faces = group
    yaws = sorted(abs(mesh.head_yaw_degrees(f.landmarks)) for f in faces)
    assert yaws[0] < 10  # someone in the photo faces the camera
    assert yaws[-1] > 30  # and someone looks well to the side
