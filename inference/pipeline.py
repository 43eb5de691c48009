"""One swap job: the selfie's face into every frame of a compiled template.

Decoding runs in a thread, ffmpeg encodes in its own process, and the swap runs here in
between, so the three stages overlap on a multi-core machine. The face analyser runs
exactly once per job, on the selfie; template faces come from the compiled tracks, with
what the compile found about each (pose, blur, grain, occluders), which the compositing
stage (`inference.swappers.composite`) applies after the swapper and the enhancer.
"""

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from memeswap.inference.errors import InputError
from memeswap.inference.faces.analyser import FaceAnalyser
from memeswap.inference.faces.face import Face
from memeswap.inference.faces.human_check import HumanFaceCheck
from memeswap.inference.faces.selfie import pick_selfie_face
from memeswap.inference.media.badge import BadgeStamp, BadgeStyle
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import EncodedMedia, OutputFormat, StreamingEncoder
from memeswap.inference.media.formats.registry import media_format
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.media.overlay import caption_layer, composite, read_overlay
from memeswap.inference.media.sound import template_sound
from memeswap.inference.swappers.base import Swapper
from memeswap.inference.swappers.composite import Compositor, PoseRule, SourceLook
from memeswap.inference.templates.face_order import numbered_faces
from memeswap.inference.templates.library import CompiledTemplate
from memeswap.inference.templates.tracks import FaceTrack

if TYPE_CHECKING:
    from memeswap.inference.enhancers.gfpgan import FaceEnhancer
    from memeswap.inference.media.c2pa_manifest import ManifestSigner

AI_LABEL = "AI-generated face swap made with memeswap"


@dataclass(frozen=True)
class SwapOptions:
    format: OutputFormat = "gif"
    max_bytes: int | None = None
    faces: str = "all"  # "all", "largest" or a track number
    label: str | None = AI_LABEL  # metadata: the format's comment, and XMP with the digital source type
    signer: "ManifestSigner | None" = None  # a signed C2PA manifest too; None: none
    batch_size: int = 8
    badge: BadgeStyle | None = BadgeStyle()  # visible, drawn last on every frame; None: off
    pose: PoseRule = PoseRule()  # how far a template face may turn before its swap fades and is skipped


@dataclass(frozen=True)
class FaceMap:
    """Several selfies into one template: the template's face number i (`numbered_faces`
    order) gets `selfies[faces[i]]`, or keeps its own where `faces[i]` is None, as do the
    faces past the map's end. A selfie used for several faces is looked at once."""

    selfies: tuple[np.ndarray, ...]
    faces: tuple[int | None, ...]

    def __post_init__(self) -> None:
        if any(i is not None and not 0 <= i < len(self.selfies) for i in self.faces):
            raise ValueError("a face map's entry names no selfie of it")

    def tracks_for(self, template: CompiledTemplate) -> list[list[FaceTrack]]:
        """For each selfie, the template's face tracks it goes to; one line when the map
        names more faces than the template has, or none at all."""
        tracks = numbered_faces(template.tracks)
        if len(self.faces) > len(tracks):
            raise InputError(f"this template has {_faces(len(tracks))} and the face map names {len(self.faces)}; "
                             "use _ for a face to keep", code="bad_face_map")
        if all(i is None for i in self.faces):
            raise InputError("the face map keeps every face; give at least one a face", code="bad_face_map")
        return [[track for track, i in zip(tracks, self.faces) if i == k] for k in range(len(self.selfies))]


def _faces(count: int) -> str:
    return "1 face" if count == 1 else f"{count} faces"


@dataclass
class SwapResult:
    media: EncodedMedia
    notices: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def run_swap(
    selfie: np.ndarray | FaceMap,
    template: CompiledTemplate,
    analyser: FaceAnalyser,
    swapper: Swapper,
    options: SwapOptions = SwapOptions(),
    limits: MediaLimits = MediaLimits(),
    progress: Callable[[int, int], None] | None = None,
    enhancer: "FaceEnhancer | None" = None,
    *,
    human_check: HumanFaceCheck,
) -> SwapResult:
    """`selfie`: one photo whose face goes to the faces `options.faces` chooses, or a
    `FaceMap` of several (then `options.faces` must be "all"). `human_check`: the process's
    shared one (the template library's), whose models are loaded once; it picks each
    selfie's human face."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    # fail fast on a bad --face or face map before any work
    if isinstance(selfie, FaceMap):
        if options.faces != "all":
            raise InputError("choose the faces to swap with a face map or by number, not both", code="bad_face_map")
        selfies, tracks_per_selfie = selfie.selfies, selfie.tracks_for(template)
    else:
        selfies, tracks_per_selfie = (selfie,), [template.tracks.select(options.faces)]
    # the decoder starts first: ffmpeg's start-up overlaps the look at the selfies
    decoded = read_frames(template.template.media_path, limits, max_side=limits.max_template_side)
    with FramePrefetch(decoded) as frames:
        swaps: list[_FaceSwap] = []
        notices: list[str] = []
        for image, tracks in zip(selfies, tracks_per_selfie):
            if not tracks:
                continue
            swap, said = _prepare(image, tracks, analyser, swapper, options, human_check)
            swaps.append(swap)
            notices += [notice for notice in said if notice not in notices]
        timings["selfie_analysis"] = time.perf_counter() - started
        media, swap_time, finish_time = _swap_frames(frames, template, swaps, swapper, options, progress, enhancer)
    timings["encode_finish"] = finish_time
    timings["swap"] = swap_time
    timings["total"] = time.perf_counter() - started
    return SwapResult(media, notices, timings)


@dataclass(frozen=True)
class _FaceSwap:
    """One selfie's part of a job: the template face tracks it goes to, what the swapper
    prepared from it, and the compositing that matches it to those faces."""

    tracks: list[FaceTrack]
    source: object
    compositor: Compositor

    def targets(self, frame_index: int) -> list[Face]:
        faces = [face for track in self.tracks if (face := track.face_at(frame_index)) is not None]
        return self.compositor.faces_to_swap(faces)


def _prepare(selfie: np.ndarray, tracks: list[FaceTrack], analyser: FaceAnalyser, swapper: Swapper,
             options: SwapOptions, human_check: HumanFaceCheck) -> tuple[_FaceSwap, list[str]]:
    face, notices = pick_selfie_face(selfie, analyser, human_check)
    try:
        source = swapper.prepare_source(selfie, face)
    except InputError as refusal:
        if notices:  # say which face was refused
            raise InputError(f"{notices[0]}, but {refusal}", refusal.code) from refusal
        raise
    return _FaceSwap(tracks, source, Compositor(options.pose, SourceLook.measure(selfie, face))), notices


def _swap_frames(frames: Iterable[np.ndarray], template: CompiledTemplate, swaps: list[_FaceSwap],
                 swapper: Swapper, options: SwapOptions, progress: Callable[[int, int], None] | None,
                 enhancer: "FaceEnhancer | None") -> tuple[EncodedMedia, float, float]:
    """Swap, composite, overlay and encode every frame; returns the media and the seconds
    spent swapping and finishing the encode. Each selfie's faces are swapped and composited
    in turn, each on the frame as the one before left it."""
    manifest = template.template.manifest
    tracks = template.tracks
    total = tracks.frame_count
    caption = (caption_layer(tracks.width, tracks.height, manifest.caption, manifest.caption_position)
               if manifest.caption else None)
    overlays = read_overlay(template.template.overlay_path) if template.template.overlay_path else None
    badge: BadgeStamp | None = None  # drawn on the first frame, then for each new frame size
    # an MP4 keeps a video template's sound, looped or cut to the output's length
    sound = (template_sound(template.template.media_path, total / manifest.fps)
             if media_format(options.format).carries_sound else None)
    with StreamingEncoder(options.format, fps=manifest.fps, max_bytes=options.max_bytes,
                          loop=manifest.loop, comment=options.label, signer=options.signer,
                          sound=sound) as encoder, \
            ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="composite") as compositing, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="swap-ahead") as ahead:

        def swap_batch(batch: list[np.ndarray], first: int) -> tuple[list[np.ndarray], list[list[Face]]]:
            every_target: list[list[Face]] = [[] for _ in batch]
            for swap in swaps:
                targets = [swap.targets(first + i) for i in range(len(batch))]
                swapped = swapper.swap(batch, targets, swap.source)
                if enhancer is not None:
                    swapped = enhancer.enhance(swapped, targets)
                # compositing is per frame and releases the GIL (NumPy, OpenCV): spread it over the cores
                batch = list(compositing.map(swap.compositor.composite, batch, swapped, targets,
                                             range(first, first + len(batch))))
                for seen, faces in zip(every_target, targets):
                    seen += faces
            return batch, every_target

        def write(swapped: list[np.ndarray], targets: list[list[Face]]) -> None:
            nonlocal badge
            for frame, faces in zip(swapped, targets):
                if overlays is not None:
                    layer = next(overlays, None)
                    if layer is not None:
                        frame = composite(frame, layer)
                if caption is not None:
                    frame = composite(frame, caption)
                if options.badge is not None:
                    if badge is None or (badge.height, badge.width) != frame.shape[:2]:
                        badge = BadgeStamp.for_frame(frame.shape[1], frame.shape[0], options.badge)
                    frame = badge.apply(frame)
                encoder.write(frame, faces=[face.box for face in faces])  # a GIF keeps colours for them

        # The next batch is swapped while this one is written: a batch ahead, no more.
        t0 = time.perf_counter()
        pending: Future | None = None
        done = 0
        try:
            for batch in _batches(iter(frames), options.batch_size):
                following = ahead.submit(swap_batch, batch, done)
                done += len(batch)
                if pending is not None:
                    write(*pending.result())
                    if progress:
                        progress(done - len(batch), total)
                pending = following
            if pending is not None:
                write(*pending.result())
                if progress:
                    progress(done, total)
        except BaseException:  # a failed batch, or a cancel from `progress`: no batch after it runs
            ahead.shutdown(wait=False, cancel_futures=True)
            raise
        swap_time = time.perf_counter() - t0
        t0 = time.perf_counter()
        media = encoder.finish()
    return media, swap_time, time.perf_counter() - t0


def _batches(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


_DONE = object()


class FramePrefetch:
    """Frames decoded ahead in a thread, from the moment it is made (so a job's decoder
    starts while the selfie is looked at); errors surface in the consumer. Use as a
    context manager: leaving it stops the thread, which closes the decoder."""

    def __init__(self, frames: Iterator[np.ndarray], depth: int = 16) -> None:
        self._frames = frames
        self._buffer: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="decode", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for frame in self._frames:
                while not self._stop.is_set():
                    try:
                        self._buffer.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._buffer.put(_DONE)
        except BaseException as error:  # handed to the consumer, which re-raises it
            self._buffer.put(error)
        finally:
            close = getattr(self._frames, "close", None)
            if close:
                close()

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            item = self._buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def __enter__(self) -> "FramePrefetch":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()  # a producer waiting on a full buffer sees it within 0.1 s
        self._thread.join(timeout=5)
