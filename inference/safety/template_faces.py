"""The people a template shows, as dlib descriptors, for protected-face checks at swap time.

A protected list belongs to a place (the deployment, a guild, a chat), while a template can
be used in many places (a person's own templates go wherever they go), so a template's
faces are compared with the list of the place where the swap happens, when it happens.
Each face track is described on a few of its frames (the best-detected frame of each part
of the track, so a head that turns is seen from more than one side); the descriptors are
kept in memory by media hash, so a template costs one pass however often it is used.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.limits import Deadline, MediaLimits
from memeswap.inference.safety.protected_faces import DESCRIPTOR_SIZE, DlibFaceDescriptor
from memeswap.inference.templates.compile import media_hash
from memeswap.inference.templates.library import CompiledTemplate


class TemplateFaces:
    """`describe(compiled)`: an (n, 128) array, `per_track` descriptors per face track."""

    def __init__(self, descriptor: DlibFaceDescriptor, limits: MediaLimits = MediaLimits(), per_track: int = 4,
                 remembered: int = 512) -> None:
        self.descriptor = descriptor
        self.limits = limits
        self.per_track = per_track
        self.remembered = remembered
        self._known: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def describe(self, compiled: CompiledTemplate, deadline: Deadline | None = None) -> np.ndarray:
        """`deadline` stops the decoding between frames (nothing is remembered then)."""
        key = media_hash(compiled.template.media_path)
        with self._lock:
            if key in self._known:
                self._known.move_to_end(key)
                return self._known[key]
        found = self._describe(compiled, deadline)
        with self._lock:
            self._known[key] = found
            while len(self._known) > self.remembered:
                self._known.popitem(last=False)
        return found

    def _describe(self, compiled: CompiledTemplate, deadline: Deadline | None) -> np.ndarray:
        wanted: dict[int, list] = {}
        for track in compiled.tracks.tracks:
            for index in _best_frames(track.frames, track.scores, self.per_track):
                wanted.setdefault(index, []).append(track.face_at(index))
        vectors = []
        if wanted:
            last = max(wanted)
            frames = read_frames(compiled.template.media_path, self.limits, max_side=self.limits.max_template_side,
                                 deadline=deadline)
            for index, frame in enumerate(frames):
                for face in wanted.get(index, ()):
                    vectors.append(self.descriptor.describe(frame, face))
                if index >= last:
                    frames.close()
                    break
        return np.stack(vectors) if vectors else np.zeros((0, DESCRIPTOR_SIZE), np.float32)


def _best_frames(frames: np.ndarray, scores: np.ndarray, count: int) -> list[int]:
    """The best-detected frame (interpolated frames score 0) of each of `count` equal parts
    of a track."""
    parts = np.array_split(np.arange(len(frames)), min(count, len(frames)))
    return sorted({int(frames[part[np.argmax(scores[part])]]) for part in parts if len(part)})
