"""Head pose from the mesh and from five keypoints, on real turned faces (insightface's
t1.jpg) and on the astronaut re-rendered at known turns."""

import numpy as np
import pytest

from memeswap.inference.faces.pose import head_pose, keypoint_pose, mesh_pose
from tests.inference.faces.turned_faces import turned


def test_the_turned_faces_of_the_group_photo_read_as_turned(group):
    _, faces = group
    yaws = sorted(float(mesh_pose(f.landmarks)[0]) for f in faces)
    assert yaws[0] < -40  # the man on the right looks far to the image's left
    assert -40 < yaws[1] < -25
    assert min(abs(y) for y in yaws) < 8  # someone faces the camera


def test_keypoints_alone_read_about_the_mesh_yaw(group):
    """What a face from an analyser without depth (insightface's) is measured by."""
    _, faces = group
    for face in faces:
        mesh_yaw, keypoint_yaw = mesh_pose(face.landmarks)[0], keypoint_pose(face.kps)[0]
        assert abs(mesh_yaw - keypoint_yaw) < 6, (mesh_yaw, keypoint_yaw)


def test_a_mirrored_face_turns_the_other_way_and_rolls_back(analyser, astronaut):
    face = analyser.analyse(turned(astronaut, analyser.analyse(astronaut)[0], 30))[0]
    mirrored = analyser.analyse(np.ascontiguousarray(turned(astronaut, analyser.analyse(astronaut)[0], 30)[:, ::-1]))[0]
    yaw, _, roll = head_pose(face)
    mirror_yaw, _, mirror_roll = head_pose(mirrored)
    assert yaw < -10 and mirror_yaw > 10
    assert abs(yaw + mirror_yaw) < 5 and abs(roll + mirror_roll) < 3


@pytest.mark.parametrize("degrees, low, high", [(20, 0.6, 0.72), (50, 0.5, 0.6)])
def test_a_rendered_turn_reads_at_about_two_thirds_of_its_angle(analyser, astronaut, degrees, low, high):
    """The scale the compositing thresholds are stated on (inference.faces.pose's docstring)."""
    face = analyser.analyse(astronaut)[0]
    seen = analyser.analyse(turned(astronaut, face, degrees))[0]
    yaw = -float(head_pose(seen)[0])
    assert low * degrees <= yaw <= high * degrees, yaw


def test_a_face_without_depth_is_read_from_its_keypoints(group):
    from dataclasses import replace

    _, faces = group
    turned_most = min(faces, key=lambda f: mesh_pose(f.landmarks)[0])
    flat = replace(turned_most, landmarks=np.concatenate([turned_most.landmarks[:, :2],
                                                          np.zeros((478, 1), np.float32)], axis=1))
    assert head_pose(flat)[0] == keypoint_pose(turned_most.kps)[0] < -35
