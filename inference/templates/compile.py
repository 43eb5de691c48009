"""Compiling a template: analyse every frame once and keep the face tracks.

Tracks are cached by (media hash, analyser version, tracker version), so a swap job
never runs the face analyser on template frames.
"""

import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.errors import InputError
from inference.faces.analyser import FaceAnalyser
from inference.faces.face import Face
from inference.templates.tracks import FaceTrack, link_faces

TRACKER_VERSION = "tracks-v2"

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
        return [self.tracks[index]]


def media_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def analyse_frames(frames: Iterable[np.ndarray], analyser: FaceAnalyser,
                   progress: Progress | None = None, total: int | None = None) -> TemplateTracks:
    per_frame: list[list[Face]] = []
    width = height = 0
    for index, frame in enumerate(frames):
        height, width = frame.shape[:2]
        per_frame.append(analyser.analyse(frame))
        if progress:
            progress(index + 1, total)
    return TemplateTracks(width, height, len(per_frame), link_faces(per_frame))


class TrackCache:
    """Compiled tracks on disk, one `.npz` per (media hash, analyser version)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, digest: str, analyser_version: str) -> Path:
        key = hashlib.sha256(f"{digest}|{analyser_version}|{TRACKER_VERSION}".encode()).hexdigest()[:40]
        return self.folder / f"{key}.npz"

    def load(self, digest: str, analyser_version: str) -> TemplateTracks | None:
        path = self.path_for(digest, analyser_version)
        if not path.exists():
            return None
        try:
            data = np.load(path)
            width, height, count, n_tracks = (int(v) for v in data["meta"])
            tracks = [FaceTrack(data[f"frames{i}"], data[f"kps{i}"],
                                data[f"landmarks{i}"] if f"landmarks{i}" in data else None,
                                data[f"boxes{i}"], data[f"scores{i}"])
                      for i in range(n_tracks)]
        except (OSError, KeyError, ValueError):
            return None  # a damaged cache entry is recomputed
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
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path_for(digest, analyser_version)
        fd, temp = tempfile.mkstemp(dir=self.folder, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
        os.replace(temp, path)
