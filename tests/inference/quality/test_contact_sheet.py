"""Which frames a contact sheet shows, and how it lays them out."""

import numpy as np

from memeswap.inference.quality.contact_sheet import (
    SheetPick,
    keep_frames,
    picks_from_tracks,
    render_sheet,
    sheet_layout,
    spread_picks,
)
from memeswap.inference.quality.head_turn import rotate_points
from memeswap.inference.templates.compile import TemplateTracks
from memeswap.inference.templates.tracks import FaceTrack


def _track(points: np.ndarray, frames: int, turned: dict[int, float], lost: set[int]) -> FaceTrack:
    landmarks = np.stack([rotate_points(points, turned.get(i, 0.0)) for i in range(frames)])
    boxes = np.concatenate([landmarks[:, :, :2].min(axis=1), landmarks[:, :, :2].max(axis=1)], axis=1)
    scores = np.array([0.0 if i in lost else 0.9 for i in range(frames)], np.float32)
    return FaceTrack(np.arange(frames), landmarks[:, [468, 473, 1, 61, 291], :2], landmarks, boxes, scores)


def test_the_most_turned_face_and_a_lost_one_are_among_evenly_spread_frames(astronaut_face):
    track = _track(astronaut_face.landmarks, 40, {13: 45.0, 12: 30.0}, {27})
    picks = picks_from_tracks(TemplateTracks(512, 512, 40, [track]), 5)
    indices = [p.index for p in picks]
    assert len(picks) == 5 and indices == sorted(indices)
    assert 13 in indices and 27 in indices and 0 in indices
    labels = {p.index: p.label for p in picks}
    assert labels[13].startswith("#13 most turned") and "yaw 4" in labels[13]
    assert labels[27].startswith("#27 face lost") and "face not detected" in labels[27]


def test_an_occlusion_mask_on_the_tracks_picks_the_most_hidden_frame(astronaut_face):
    track = _track(astronaut_face.landmarks, 20, {}, set())
    visible = np.full((20, 8, 8), 255, np.uint8)
    visible[6, :5] = 0  # 62 % of the face hidden in frame 6
    track.visible = visible  # the per-frame visibility the compiler may record
    picks = picks_from_tracks(TemplateTracks(512, 512, 20, [track]), 3)
    assert [p.index for p in picks if "most hidden" in p.label] == [6]
    assert "62% hidden" in next(p.label for p in picks if p.index == 6)


def test_spread_picks_never_repeats_a_frame_and_fits_short_clips():
    picks = spread_picks(3, 6, [SheetPick(1, "hard")], lambda i: "")
    assert [p.index for p in picks] == [0, 1, 2]
    picks = spread_picks(10, 3, [SheetPick(0, "a"), SheetPick(9, "b"), SheetPick(5, "c"), SheetPick(4, "d")],
                         lambda i: "")
    assert [p.index for p in picks] == [0, 5, 9]


def test_keep_frames_stops_and_closes_the_stream_after_the_last_wanted_frame():
    seen = []

    def stream():
        try:
            for i in range(100):
                seen.append(i)
                yield np.full((2, 2, 3), i, np.uint8)
        finally:
            seen.append("closed")

    kept = keep_frames(stream(), [2, 5])
    assert sorted(kept) == [2, 5] and kept[5][0, 0, 0] == 5
    assert seen == [0, 1, 2, 3, 4, 5, "closed"]


def test_a_sheet_puts_each_template_frame_above_its_output_frame():
    template = {i: np.full((60, 80, 3), 10 * i, np.uint8) for i in (0, 4)}
    output = {i: np.full((60, 80, 3), 200 + i, np.uint8) for i in (0, 4)}
    picks = [SheetPick(0, "#0"), SheetPick(4, "#4\nyaw 30°")]
    sheet = render_sheet("title", picks, template, output, cell_height=90)
    layout = sheet_layout(2, 80, 60, cell_height=90)
    assert sheet.shape == (layout.height, layout.width, 3) and layout.cell_width == 120
    for column, index in enumerate((0, 4)):
        x0, y0, x1, y1 = layout.cell(column, 0)
        assert (sheet[y0:y1, x0:x1] == 10 * index).all()
        x0, y0, x1, y1 = layout.cell(column, 1)
        assert (sheet[y0:y1, x0:x1] == 200 + index).all()
