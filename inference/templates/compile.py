"""Compiling a template: analyse every frame once and keep the face tracks.

Compiling takes two passes over the frames: `analyse_frames` finds the faces and links them
into tracks, then `describe_faces` looks at each track's face in every frame again (pose,
blur, grain, what is in front of it; `inference.templates.face_frames`). Tracks are cached
with all of that by (media hash, analyser version, tracker version), so a swap job never
runs the face analyser, nor the hand model, on template frames.
"""

import contextlib
import dataclasses
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memeswap.inference.errors import InputError
from memeswap.inference.faces.analyser import FaceAnalyser
from memeswap.inference.faces.face import Face
from memeswap.inference.faces.human_check import HumanFaceCheck
from memeswap.inference.templates.face_frames import FaceFrameAnalysis
from memeswap.inference.templates.face_order import in_reading_order
from memeswap.inference.templates.tracks import FaceTrack, link_faces, match_faces

# v3: tracks of faces that are not human are dropped; v4: drawn people are human; v5: per-frame pose, blur,
# grain and visible masks; v6: hand outlines take in the forearm, hair is told by its darkness against the skin;
# v7: each face's light (skin tone, eye whites, black and white, shading)
TRACKER_VERSION = "tracks-v7"
# FaceTrack's optional per-frame arrays
_PER_FRAME = ("pose", "blur", "noise", "visible", "skin_tone", "eye_white", "greyscale", "shading")

Progress = Callable[[int, int | None], None]


@dataclass
class TemplateTracks:
    width: int
    height: int
    frame_count: int
    tracks: list[FaceTrack]

    def faces_at(self, frame_index: int, selection: str = "all") -> list[Face]:
        """Target faces of one frame: every track, the largest track, or track number N."""
        tracks = self.select(selection)
        return [face for track in tracks if (face := track.face_at(frame_index)) is not None]

    def select(self, selection: str = "all") -> list[FaceTrack]:
        if selection == "all" or not self.tracks:
            return self.tracks
        if selection == "largest":
            return [max(self.tracks, key=lambda t: t.mean_area() * len(t.frames))]
        index = int(selection)
        if not 0 <= index < len(self.tracks):
            choices = "0" if len(self.tracks) == 1 else f"0 to {len(self.tracks) - 1}"
            raise InputError(f"this template has {len(self.tracks)} face track(s); choose face {choices}")
        return [in_reading_order(self.tracks)[index]]


def media_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def analyse_frames(frames: Iterable[np.ndarray], analyser: FaceAnalyser,
                   progress: Progress | None = None, total: int | None = None,
                   human_check: HumanFaceCheck | None = None) -> TemplateTracks:
    """Every frame's faces, linked into tracks. With `human_check`, a track is kept only
    when at least one of its faces was confirmed human (an animal's face is not a
    template face)."""
    per_frame: list[list[Face]] = []
    confirmed = HumanTracks(human_check) if human_check is not None else None
    width = height = 0
    for index, frame in enumerate(frames):
        height, width = frame.shape[:2]
        faces = analyser.analyse(frame)
        if confirmed is not None:
            confirmed.look(index, frame, faces)
        per_frame.append(faces)
        if progress:
            progress(index + 1, total)
    keep = confirmed.any_human if confirmed is not None else None
    return TemplateTracks(width, height, len(per_frame), link_faces(per_frame, keep=keep))


def describe_faces(compiled: TemplateTracks, frames: Iterable[np.ndarray],
                   analysis: FaceFrameAnalysis) -> TemplateTracks:
    """The tracks with what each face shows in each frame (`FaceTrack.pose`, `blur`, `noise`,
    `visible`). `frames`: the template's frames once more, decoded as a swap decodes them."""
    if not compiled.tracks:
        return compiled
    return dataclasses.replace(compiled, tracks=analysis.analyse(frames, compiled.tracks))


class HumanTracks:
    """Which faces of a clip belong to a human, looked at while the frames stream past.

    A face that continues one of the previous frame's faces (matched one to one, as the
    tracker matches them, so a pet's face next to a person's does not take the person's
    place) inherits its verdict: once confirmed human, a face is not looked at again, so a clip
    costs about one check per person. A face not confirmed yet is looked at again every
    `recheck_every` frames (it may turn towards the camera later); a new face at once.
    """

    def __init__(self, check: HumanFaceCheck, recheck_every: int = 8) -> None:
        self.check = check
        self.recheck_every = recheck_every
        self._human: set[int] = set()  # id() of faces confirmed human (the faces live in per_frame)
        self._looked_at: dict[int, int] = {}  # id() of a face -> frame of the last look along its chain
        self._previous: list[Face] = []

    def look(self, index: int, frame: np.ndarray, faces: list[Face]) -> None:
        continues = {j: self._previous[i] for i, j in match_faces(self._previous, faces)}
        for j, face in enumerate(faces):
            before = continues.get(j)
            if before is not None:
                if id(before) in self._human:
                    self._human.add(id(face))
                    continue
                if index - self._looked_at[id(before)] < self.recheck_every:
                    self._looked_at[id(face)] = self._looked_at[id(before)]
                    continue
            self._looked_at[id(face)] = index
            if self.check.is_human(frame, face):
                self._human.add(id(face))
        self._previous = faces

    def any_human(self, faces: list[Face]) -> bool:
        return any(id(face) in self._human for face in faces)


class TrackCache:
    """Compiled tracks on disk, one `<media hash>-<variant>.npz` per (media hash, analyser
    version, tracker version).

    An entry goes with its template (`remove`, by media hash), and all of them stay under
    `max_bytes`: storing one evicts the least recently used (by modification time, which a
    `load` refreshes). An evicted entry is recomputed when its template is next compiled."""

    def __init__(self, folder: Path, max_bytes: int | None = None) -> None:
        self.folder = folder
        self.max_bytes = max_bytes

    def path_for(self, digest: str, analyser_version: str) -> Path:
        variant = hashlib.sha256(f"{analyser_version}|{TRACKER_VERSION}".encode()).hexdigest()[:16]
        return self.folder / f"{digest}-{variant}.npz"

    def load(self, digest: str, analyser_version: str) -> TemplateTracks | None:
        path = self.path_for(digest, analyser_version)
        if not path.exists():
            return None
        try:
            with np.load(path) as data:
                width, height, count, n_tracks = (int(v) for v in data["meta"])
                tracks = [FaceTrack(data[f"frames{i}"], data[f"kps{i}"],
                                    data[f"landmarks{i}"] if f"landmarks{i}" in data else None,
                                    data[f"boxes{i}"], data[f"scores{i}"],
                                    **{k: data[f"{k}{i}"] if f"{k}{i}" in data else None for k in _PER_FRAME})
                          for i in range(n_tracks)]
        except (OSError, KeyError, ValueError):
            return None  # a damaged (or just evicted) cache entry is recomputed
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
        return TemplateTracks(width, height, count, tracks)

    def store(self, digest: str, analyser_version: str, compiled: TemplateTracks) -> None:
        arrays = {"meta": np.array([compiled.width, compiled.height, compiled.frame_count, len(compiled.tracks)])}
        for i, track in enumerate(compiled.tracks):
            arrays[f"frames{i}"] = track.frames
            arrays[f"kps{i}"] = track.kps
            arrays[f"boxes{i}"] = track.boxes
            arrays[f"scores{i}"] = track.scores
            if track.landmarks is not None:
                arrays[f"landmarks{i}"] = track.landmarks
            for key in _PER_FRAME:
                if getattr(track, key) is not None:
                    arrays[f"{key}{i}"] = getattr(track, key)
        buffer = io.BytesIO()
        # numpy's stubs match a **dict against savez's allow_pickle too; the names here are scores0, ...
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path_for(digest, analyser_version)
        fd, temp = tempfile.mkstemp(dir=self.folder, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
        os.replace(temp, path)
        self._evict(keep=path)

    def remove(self, digest: str) -> None:
        """Every entry of one media file (under any analyser version)."""
        for path in self.folder.glob(f"{digest}-*.npz"):
            path.unlink(missing_ok=True)

    def _evict(self, keep: Path) -> None:
        """Least recently used entries out until the rest fits `max_bytes` (`keep`, the entry
        just stored, stays even when it alone is larger)."""
        if self.max_bytes is None:
            return
        entries = []
        for path in self.folder.glob("*.npz"):
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed meanwhile
                continue
            entries.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size
