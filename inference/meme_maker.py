"""`MemeMaker`: everything a swap needs, held once per process.

The command line, the in-process job engine and `memeswap worker` all swap through one
`MemeMaker`, so a setting that reaches one (the enhancer, the batch size, the label, the
badge) reaches every one. It is built from settings by the bot's composition root
(`bot.assembly`); nothing here reads settings itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from memeswap.inference.faces.analyser import FaceAnalyser
from memeswap.inference.jobs.blobs import BlobStore
from memeswap.inference.jobs.contract import CancelToken, JobOutput, ProgressCallback, RunJob, SwapJob
from memeswap.inference.media.badge import BadgeStyle
from memeswap.inference.media.decode import load_image
from memeswap.inference.media.encode import OutputFormat
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.pipeline import AI_LABEL, FaceMap, SwapOptions, SwapResult, run_swap
from memeswap.inference.swappers.base import Swapper
from memeswap.inference.swappers.composite import PoseRule
from memeswap.inference.templates.library import CompiledTemplate, TemplateLibrary

if TYPE_CHECKING:
    from memeswap.inference.enhancers.gfpgan import FaceEnhancer
    from memeswap.inference.media.c2pa_manifest import ManifestSigner


@dataclass(frozen=True)
class MemeMaker:
    analyser: FaceAnalyser
    swapper: Swapper
    library: TemplateLibrary
    limits: MediaLimits = MediaLimits()
    enhancer: FaceEnhancer | None = None
    label: str | None = AI_LABEL  # metadata: the format's comment and XMP (digital source type); None: off
    signer: ManifestSigner | None = None  # a signed C2PA manifest in every output; None: none
    badge: BadgeStyle | None = BadgeStyle()  # visible, on every frame; None: off
    batch_size: int = 8  # frames handed to the swapper at once
    pose: PoseRule = PoseRule()
    # A template compiled on first use is compiled once, not by every job that wants it at once.
    _compiling: threading.Lock = field(default_factory=threading.Lock, init=False, compare=False, repr=False)

    def compile(self, name: str, progress: Callable[[int, int | None], None] | None = None) -> CompiledTemplate:
        """The named template of the library, compiled (its face tracks found) on first use."""
        with self._compiling:
            return self.library.compile(self.library.get(name), progress)

    def make(self, selfie: np.ndarray | FaceMap, template: CompiledTemplate, format: OutputFormat = "gif",
             max_bytes: int | None = None, faces: str = "all",
             progress: Callable[[int, int], None] | None = None) -> SwapResult:
        """The selfie's face (or a face map's faces) in every frame of `template`, encoded as
        `format` within `max_bytes`."""
        options = SwapOptions(format=format, max_bytes=max_bytes, faces=faces, label=self.label, signer=self.signer,
                              batch_size=self.batch_size, badge=self.badge, pose=self.pose)
        return run_swap(selfie, template, self.analyser, self.swapper, options, self.limits, progress=progress,
                        enhancer=self.enhancer, human_check=self.library.human_check)

    def job_runner(self, blobs: BlobStore) -> RunJob:
        """The function an engine's workers run: one `SwapJob`, bytes in and out through `blobs`."""

        def run_job(job: SwapJob, progress: ProgressCallback, cancel: CancelToken) -> JobOutput:
            selfie = self._selfies(job, blobs)
            cancel.raise_if_cancelled()
            template = self.compile(job.template)
            result = self.make(selfie, template, job.format, job.max_bytes, job.faces, progress)
            stages = {name: seconds for name, seconds in result.timings.items() if name != "total"}
            return JobOutput(result.media.data, result.media.mime, stages, tuple(result.notices))

        return run_job

    def _selfies(self, job: SwapJob, blobs: BlobStore) -> np.ndarray | FaceMap:
        """The job's selfie, or its face map with each selfie read once."""
        if job.face_selfies is None:
            return load_image(blobs.get(job.selfie_ref), self.limits)
        refs = [ref for ref in job.selfie_refs if ref in job.face_selfies]
        images = tuple(load_image(blobs.get(ref), self.limits) for ref in refs)
        return FaceMap(images, tuple(None if ref is None else refs.index(ref) for ref in job.face_selfies))
