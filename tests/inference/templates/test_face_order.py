"""Faces are numbered in reading order: rows from the top, left to right within a row."""

import numpy as np

from memeswap.inference.templates.face_order import in_reading_order
from memeswap.inference.templates.tracks import FaceTrack


def track(x: float, y: float, size: float = 40, first: int = 0) -> FaceTrack:
    box = np.array([[x - size / 2, y - size / 2, x + size / 2, y + size / 2]], np.float32)
    return FaceTrack(frames=np.array([first]), kps=np.zeros((1, 5, 2), np.float32), landmarks=None,
                     boxes=box, scores=np.ones(1, np.float32))


def test_rows_from_the_top_then_left_to_right():
    right_top, left_top = track(300, 52), track(100, 40)  # one row: centres 12 px apart
    middle, bottom = track(200, 200), track(120, 330)
    order = in_reading_order([middle, bottom, right_top, left_top])
    assert order == [left_top, right_top, middle, bottom]


def test_a_face_that_comes_in_later_is_numbered_by_where_it_is():
    early_right, late_left = track(300, 100, first=0), track(100, 100, first=30)
    assert in_reading_order([early_right, late_left]) == [late_left, early_right]


def test_one_face_or_none():
    only = track(10, 10)
    assert in_reading_order([only]) == [only] and in_reading_order([]) == []
