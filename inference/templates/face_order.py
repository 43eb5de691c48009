"""The order a template's faces are numbered in, the same wherever a number is shown or
read: a face map's entries (`memeswap swap --face-map`, `/swap faces:`), a preview sheet's
numbers, `templates show` and `--face N` (which counts from 0).

Faces are numbered in reading order, as people read a meme: by where each face is in the
first frame it appears in, rows from the top, and left to right within a row (two faces are
in one row when their centres are less than half a face height apart). The compiled track
order (by first appearance, then size) would number the middle panel of a three-panel meme
first. The numbering depends only on the cached tracks, so it is stable for a template."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memeswap.inference.templates.tracks import FaceTrack

if TYPE_CHECKING:
    from memeswap.inference.templates.compile import TemplateTracks


def numbered_faces(tracks: TemplateTracks) -> list[FaceTrack]:
    """The template's face tracks in numbering order: the first is face 1 of a preview and
    a face map's first entry (and `--face 0`)."""
    return in_reading_order(tracks.tracks)


def in_reading_order(tracks: list[FaceTrack]) -> list[FaceTrack]:
    if len(tracks) < 2:
        return list(tracks)
    first_boxes = [track.boxes[0] for track in tracks]
    centres = [((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in first_boxes]
    row_gap = 0.5 * float(sorted(y1 - y0 for _, y0, _, y1 in first_boxes)[len(tracks) // 2])
    by_height = sorted(range(len(tracks)), key=lambda i: (centres[i][1], centres[i][0]))
    rows: list[list[int]] = []
    for i in by_height:
        if rows and centres[i][1] - centres[rows[-1][0]][1] < row_gap:
            rows[-1].append(i)
        else:
            rows.append([i])
    return [tracks[i] for row in rows for i in sorted(row, key=lambda i: centres[i][0])]
