"""How people number the faces of a template: face 1, 2, 3, ... in the order of its compiled
tracks.

`link_faces` orders a template's tracks by the frame each face first appears in, then the
larger face first; that order is stored with the tracks, so it is the same in every process
and for as long as the cached tracks live. The preview sheet draws these numbers on its
thumbnails, and anything that lets people pick faces by number (a face map such as
`me,_,ana`) must read them from here too, so that "face 2" is the same face everywhere.
(`--face N` and `templates show` count the same tracks from 0.)
"""

from memeswap.inference.templates.compile import TemplateTracks
from memeswap.inference.templates.tracks import FaceTrack


def numbered_faces(tracks: TemplateTracks) -> list[tuple[int, FaceTrack]]:
    """(face number from 1, its track), in numbering order."""
    return list(enumerate(tracks.tracks, start=1))
