"""A face map as people type it: `me,_,ana` puts the saved face `me` on a template's first
face, keeps its second, and puts `ana` on its third (the faces in the order previews number
them, `inference.templates.face_order`). The entries are saved faces' names in the bots and
image paths on the command line; this module only splits and bounds them."""

from __future__ import annotations

from memeswap.inference.errors import InputError
from memeswap.inference.jobs.contract import MAX_MAPPED_FACES
from memeswap.inference.templates.manifest import SHOWN_CHARS

KEEP = "_"  # an entry that keeps the template's own face
MAX_TYPED = 2000  # characters of a face map looked at


def parse_face_map(typed: str) -> list[str | None]:
    """The entries of a typed face map, None for each `_`; one line when it is too long,
    has an empty entry or keeps every face."""
    if len(typed) > MAX_TYPED:
        raise InputError(f"a face map has at most {MAX_MAPPED_FACES} entries", code="bad_face_map")
    entries = [entry.strip() for entry in typed.split(",")]
    if len(entries) > MAX_MAPPED_FACES:
        raise InputError(f"a face map has at most {MAX_MAPPED_FACES} entries, not {len(entries)}",
                         code="bad_face_map")
    if any(not entry for entry in entries):
        raise InputError(f"a face map is entries separated by commas, such as me,{KEEP},ana ({KEEP} keeps a face); "
                         "one of yours is empty", code="bad_face_map")
    if all(entry == KEEP for entry in entries):
        raise InputError(f"that face map keeps every face ({KEEP}); name a face for at least one",
                         code="bad_face_map")
    return [None if entry == KEEP else entry for entry in entries]


def shown(entry: str) -> str:
    """An entry quoted in a refusal, at most `SHOWN_CHARS` characters of it."""
    return repr(entry if len(entry) <= SHOWN_CHARS else entry[:SHOWN_CHARS] + "…")
