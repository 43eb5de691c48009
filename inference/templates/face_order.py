"""The order a template's faces are numbered in, the same wherever a number is shown or
read: a face map's entries (`memeswap swap --face-map`, `/swap faces:`), a preview sheet's
numbers, `--face N`.

It is the order of the compiled template's face tracks: by the frame each face first
appears in, and among faces that appear together, the larger first (`link_faces`). It is
stable for a template, since its tracks are compiled once and cached."""

from memeswap.inference.templates.compile import TemplateTracks
from memeswap.inference.templates.tracks import FaceTrack


def numbered_faces(tracks: TemplateTracks) -> list[FaceTrack]:
    """The template's face tracks in numbering order: the first is face 1 of a preview and
    a face map's first entry (and `--face 0`)."""
    return list(tracks.tracks)
