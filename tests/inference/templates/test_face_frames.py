"""What a compile records about each template face in each frame, and that it is cached."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from memeswap.inference.faces.face import VISIBLE_SIDE, face_region
from memeswap.inference.faces.occluders import HandFinder, hand_mask
from memeswap.inference.media.decode import read_frames
from memeswap.inference.templates.catalog import builtin_templates_dir
from memeswap.inference.templates.face_frames import FaceFrameAnalysis
from memeswap.inference.templates.tracks import FaceTrack


def only_the_astronaut(manifest: Path) -> bool:
    sources = json.loads(manifest.read_text())["source"].split("; ")[:-1]  # the last one says what composed them
    return len(sources) == 1 and "astronaut Eileen Collins" in sources[0]


# The built-ins made from the astronaut's photo alone (the checks below are about her photo);
# compiling each costs seconds, so the rest of the library is not compiled here.
ASTRONAUT_BUILTINS = sorted(p.parent.name for p in builtin_templates_dir().glob("*/manifest.json")
                            if only_the_astronaut(p))


def test_a_compiled_track_carries_pose_blur_grain_and_what_is_seen(compiled_builtins):
    compiled = compiled_builtins("dramatic-zoom")
    track = compiled.tracks.tracks[0]
    n = len(track.frames)
    assert track.pose.shape == (n, 3) and track.blur.shape == (n,) and track.noise.shape == (n,)
    assert track.visible.shape == (n, VISIBLE_SIDE, VISIBLE_SIDE) and track.visible.dtype == np.uint8
    face = track.face_at(40)
    assert face.frame_info.region == face_region(face.box)
    assert np.array_equal(face.frame_info.visible, track.visible[40])
    # the zoom's last frames are the photo enlarged about 2.8 times: softer than its first ones
    assert track.blur[-1] > track.blur[0] + 0.8


def test_the_per_frame_arrays_survive_the_cache(compiled_builtins, analyser, track_cache):
    from memeswap.inference.templates.compile import media_hash

    compiled = compiled_builtins("shake")
    loaded = track_cache.load(media_hash(compiled.template.media_path), analyser.version)
    for stored, read in zip(compiled.tracks.tracks, loaded.tracks):
        for key in ("pose", "blur", "noise", "visible", "skin_tone", "eye_white", "greyscale", "shading"):
            assert np.array_equal(getattr(stored, key), getattr(read, key), equal_nan=key == "eye_white"), key


def test_a_compiled_face_carries_its_light_as_measured_on_its_frame(compiled_builtins):
    """The swap reads the template face's light from the cache: it is what `FaceLight`
    measures on that frame, less what the compile found in front of the face (the
    fringe; the grown `visible` mask stands in for it here), the shading as float16."""
    from memeswap.inference.faces.light import SHADING_GRID, FaceLight

    compiled = compiled_builtins("dramatic-zoom")
    track = compiled.tracks.tracks[0]
    n = len(track.frames)
    assert track.skin_tone.shape == (n, 2, 3) and track.shading.shape == (n, SHADING_GRID, SHADING_GRID, 3)
    frames = list(read_frames(compiled.template.media_path))
    for index in (0, n // 2, n - 1):
        face = track.face_at(index)
        cached = face.frame_info.light
        covered = 1.0 - face.frame_info.visible.astype(np.float32) / 255.0
        measured = FaceLight.measure(frames[index], face.landmarks, face.frame_info.region, covered)
        assert np.abs(cached.tone.median - measured.tone.median).max() < 1.0
        assert abs(cached.white - measured.white) < 1e-3 and cached.greyscale == measured.greyscale is False
        # the same field where the face is seen (up to the skin's median, which the grown mask moves)
        seen = cv2.erode(cv2.resize(face.frame_info.visible, (SHADING_GRID, SHADING_GRID),
                                    interpolation=cv2.INTER_AREA), np.ones((5, 5), np.uint8)) == 255
        seen[: SHADING_GRID // 6], seen[-SHADING_GRID // 6:], seen[:, : SHADING_GRID // 6] = False, False, False
        seen[:, -SHADING_GRID // 6:] = False  # (the region's margins are beyond the face)
        difference = (cached.shading.astype(np.float32) - measured.shading)[seen]
        assert seen.sum() > 150 and np.abs(difference).max() < 3.0 and difference.std(axis=0).max() < 1.0


@pytest.mark.parametrize("name", ASTRONAUT_BUILTINS)
def test_the_built_in_faces_are_seen_but_for_the_fringe(compiled_builtins, name):
    """Few false occluders on the library's own templates: what is marked covered is the
    astronaut's fringe over her forehead, 0 to 7% of the face region in most frames; the
    worst is "deep-fried", whose first frames are blocky from JPEG and whose zoom punch
    shakes the face: up to 24% there, for four frames."""
    for track in compiled_builtins(name).tracks.tracks:
        covered = (track.visible < 128).mean(axis=(1, 2))
        assert np.median(covered) <= 0.1 and covered.max() <= 0.25, (name, np.median(covered), covered.max())
        assert abs(track.pose[:, 0]).max() < 10  # the photo faces the camera


class OneHand(HandFinder):
    """Sees a hand (21 landmarks spread over a box) in front of every face's lower half."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def find(self, image, region, context=2.0):
        self.calls += 1
        x0, y0, side = region.x0, region.y0, region.side
        ys, xs = np.meshgrid(np.linspace(0.6, 0.9, 5), np.linspace(0.3, 0.7, 5))
        points = np.stack([x0 + xs.ravel() * side, y0 + ys.ravel() * side], axis=1)[:21]
        points[[0, 9]] = points[[4, 0]]  # the wrist lowest, the middle knuckle above it: the forearm runs down
        return [points.astype(np.float32)]


def test_a_face_without_a_mesh_gets_pose_blur_grain_and_hands(compiled_builtins):
    """A keypoints-only track (insightface's analyser): pose from the keypoints, and hands."""
    compiled = compiled_builtins("pan")
    full = compiled.tracks.tracks[0]
    bare = FaceTrack(full.frames, full.kps, None, full.boxes, full.scores)
    hands = OneHand()
    frames = read_frames(compiled.template.media_path)
    [track] = FaceFrameAnalysis(hands).analyse(frames, [bare])
    assert hands.calls == len(full.frames)
    assert np.all(np.abs(track.pose[:, 0]) < 10) and np.all(track.pose[:, 1] == 0)
    assert np.all(track.blur < 1.5) and track.noise.shape == (len(full.frames),)
    lower, upper = track.visible[:, 90:110, 50:80], track.visible[:, 10:40, 50:80]
    assert lower.max() == 0 and upper.min() == 255


def test_a_hand_mask_covers_the_hand_and_its_fingers_edges():
    region = face_region(np.array([100, 100, 200, 200], np.float32))
    hand = np.array([[150, 190], [130, 180], [125, 165], [122, 150], [120, 138],
                     [138, 160], [137, 140], [136, 128], [135, 118],
                     [150, 158], [150, 136], [150, 122], [150, 110],
                     [162, 160], [163, 140], [164, 128], [165, 118],
                     [174, 164], [176, 150], [177, 140], [178, 132]], np.float32)
    mask = hand_mask([hand], region, VISIBLE_SIDE)
    to_mask = region.to_mask(VISIBLE_SIDE)
    inside = hand @ to_mask[:, :2].T + to_mask[:, 2]
    for x, y in np.round(inside).astype(int):
        assert mask[y, x] == 1
    tip = np.round(inside[12]).astype(int)
    assert mask[tip[1] - 2, tip[0]] == 1  # grown past the fingertip landmark
    assert mask[5:20, 5:20].max() == 0


def test_a_hand_mask_takes_in_the_forearm_below_the_wrist():
    """The landmarks stop at the wrist; the arm behind the hand covers the face too."""
    region = face_region(np.array([100, 100, 200, 200], np.float32))
    hand = np.array([[150, 160], [130, 150], [125, 135], [122, 120], [120, 108],
                     [138, 130], [137, 110], [136, 98], [135, 88],
                     [150, 128], [150, 106], [150, 92], [150, 80],
                     [162, 130], [163, 110], [164, 98], [165, 88],
                     [174, 134], [176, 120], [177, 110], [178, 102]], np.float32)
    mask = hand_mask([hand], region, VISIBLE_SIDE)
    to_mask = region.to_mask(VISIBLE_SIDE)
    for y in (175, 195, 215):  # frame pixels below the wrist, on the arm's line
        x, row = np.round(np.array([150, y]) @ to_mask[:, :2].T + to_mask[:, 2]).astype(int)
        assert mask[row, x] == 1
    beside = np.round(np.array([95, 210]) @ to_mask[:, :2].T + to_mask[:, 2]).astype(int)
    assert mask[beside[1], beside[0]] == 0  # the arm is a wrist wide, not the whole lower face
