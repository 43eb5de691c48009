import numpy as np

from memeswap.inference.faces import mesh
from memeswap.inference.faces.face import Face
from memeswap.inference.templates.tracks import FaceTrack, link_faces, smooth_track

RNG = np.random.default_rng(7)
SHAPE = RNG.normal(size=(478, 3)).astype(np.float32) * 30


def face_at(x: float, y: float, scale: float = 1.0, angle: float = 0.0) -> Face:
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = SHAPE.copy()
    points[:, :2] = points[:, :2] @ rotation.T * scale + [x, y]
    box = np.array([*points[:, :2].min(0), *points[:, :2].max(0)], np.float32)
    return Face(box=box, score=0.9, kps=points[list(mesh.KEYPOINTS), :2], landmarks=points)


def test_two_faces_become_two_tracks_and_gaps_are_filled():
    frames = []
    for i in range(20):
        faces = [face_at(100 + 3 * i, 200), face_at(500 - 3 * i, 220)]
        if i in (7, 8):
            faces = faces[1:]  # the first face is missed for two frames
        frames.append(faces)
    tracks = link_faces(frames)
    assert len(tracks) == 2
    left = min(tracks, key=lambda t: t.landmarks[0, :, 0].mean())
    assert list(left.frames) == list(range(20))
    assert left.scores[7] == 0 and left.scores[8] == 0  # interpolated, not detected
    expected = face_at(100 + 3 * 7, 200).landmarks[:, :2].mean(0)
    assert np.allclose(left.face_at(7).landmarks[:, :2].mean(0), expected, atol=1.0)


def test_a_long_gap_splits_the_track_and_blips_are_dropped():
    frames = [[face_at(100, 100)] if i < 5 or i > 14 else [] for i in range(20)]
    frames[10] = [face_at(400, 400)]  # a one-frame false detection
    tracks = link_faces(frames, max_gap=4)
    assert [(t.first, t.last) for t in tracks] == [(0, 4), (15, 19)]


def test_smoothing_removes_jitter_but_follows_shake_and_zoom():
    truth, noisy = [], []
    for i in range(30):
        sign = (-1) ** i
        face = face_at(200 + 25 * sign, 200 + 10 * i, scale=1 + 0.04 * i, angle=0.15 * sign)
        truth.append(face.landmarks)
        noisy.append(face.landmarks + RNG.normal(scale=1.0, size=face.landmarks.shape).astype(np.float32))
    truth, noisy = np.stack(truth), np.stack(noisy)
    kps = noisy[:, list(mesh.KEYPOINTS), :2]
    boxes = np.concatenate([noisy[:, :, :2].min(axis=1), noisy[:, :, :2].max(axis=1)], axis=1)
    smoothed = smooth_track(FaceTrack(np.arange(30), kps, noisy, boxes, np.ones(30, np.float32)))
    before = np.abs(noisy - truth)[:, :, :2].mean()
    after = np.abs(smoothed.landmarks - truth)[:, :, :2].mean()
    assert after < 0.7 * before


def test_a_hard_cut_keeps_one_track():
    frames = [[face_at(100, 100)] for _ in range(8)] + [[face_at(300, 320, scale=2.0)] for _ in range(8)]
    tracks = link_faces(frames)
    assert [(t.first, t.last) for t in tracks] == [(0, 15)]


def test_keypoints_only_faces_make_tracks_too():
    """An analyser without dense landmarks (SCRFD) still gives tracks with keypoints."""
    frames = []
    for i in range(10):
        face = face_at(100 + 5 * i, 200)
        frames.append([Face(box=face.box, score=0.9, kps=face.kps)] if i != 4 else [])
    (track,) = link_faces(frames)
    assert track.landmarks is None and track.kps.shape == (10, 5, 2)
    middle = track.face_at(4)
    assert middle.landmarks is None
    assert np.allclose(middle.kps, face_at(120, 200).kps, atol=1.0)
