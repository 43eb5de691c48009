"""Head pose of a face from its landmarks: yaw, pitch and roll in degrees.

With MediaPipe's 478-point mesh (x, y in pixels, z its depth in the same scale) the angles
come from two vectors of the mesh: across the face (cheek 234 to cheek 454) and up it
(chin 152 to the top of the forehead 10). Yaw is how far the across vector leaves the image
plane, as `mesh.head_yaw_degrees` measures a selfie, so a template face and a selfie turn
on one scale; pitch is how far the up vector leaves it; roll is the across vector's angle
in the image. Signs: yaw > 0 when the face looks towards the image's right, pitch > 0 when
it looks up, roll > 0 when it tilts clockwise (image y points down).

Without depth (insightface's 106 points, or five keypoints), yaw comes from how far the
nose tip sits off the line from between the eyes to between the mouth corners, in eye
distances: `atan(offset / NOSE_DEPTH)`. NOSE_DEPTH was fitted so that both agree on the
real faces of insightface's `t1.jpg` (mesh yaw -46 to +6 degrees; the keypoint reading is
within 5 degrees of the mesh's on each); pitch is 0 there (the keypoints cannot tell it
reliably).

How the mesh reads turns (measured, tests/inference/faces/test_pose.py): the astronaut's
face re-rendered from her mesh rotated by a known yaw reads 0.66 of it up to 30 degrees and
0.55 at 50 (a real face's turn hides the far cheek, which a re-rendered face cannot show
the way a real one does, so these renders read low); the real faces of t1.jpg read -46 at
most. Thresholds on these angles (the compositing stage's fade and skip) are stated on this
scale, not on a geometric one.
"""

import numpy as np

from memeswap.inference.faces.face import Face

NOSE_DEPTH = 0.8  # nose-tip protrusion over eye distance, for the keypoint-only yaw
FRONTAL_PITCH = 8.0  # degrees the mesh's up vector leans back on a face looking straight ahead


def head_pose(face: Face) -> np.ndarray:
    """(yaw, pitch, roll) in degrees, float32."""
    points = face.landmarks
    if points is not None and points.shape[0] >= 478 and points.shape[1] == 3 and np.ptp(points[:, 2]) > 0:
        return mesh_pose(points)
    return keypoint_pose(face.kps)


def mesh_pose(points: np.ndarray) -> np.ndarray:
    across = points[454].astype(np.float64) - points[234]
    up = points[10].astype(np.float64) - points[152]
    yaw = np.degrees(np.arcsin(np.clip(across[2] / (np.linalg.norm(across) + 1e-6), -1, 1)))
    pitch = np.degrees(np.arcsin(np.clip(up[2] / (np.linalg.norm(up) + 1e-6), -1, 1))) + FRONTAL_PITCH
    roll = np.degrees(np.arctan2(across[1], across[0]))
    return np.array([yaw, pitch, roll], np.float32)


def keypoint_pose(kps: np.ndarray) -> np.ndarray:
    left_eye, right_eye, nose, left_mouth, right_mouth = kps.astype(np.float64)
    eyes, mouth = (left_eye + right_eye) / 2, (left_mouth + right_mouth) / 2
    eye_distance = float(np.linalg.norm(right_eye - left_eye)) + 1e-6
    axis = mouth - eyes
    axis /= np.linalg.norm(axis) + 1e-6
    across = np.array([-axis[1], axis[0]])  # points to the image's left on an upright face
    offset = float((nose - eyes) @ across) / eye_distance
    yaw = -np.degrees(np.arctan(offset / NOSE_DEPTH))
    roll = np.degrees(np.arctan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0]))
    return np.array([yaw, 0.0, roll], np.float32)
