"""The job function an engine's workers run: one `SwapJob` through the real swap pipeline.

It is built once from loaded parts (analyser, swapper, library), so models load once, not
per job. Bytes come and go through the `BlobStore`; the job itself carries only references.
MediaPipe's graphs must not run on two threads at once, so when an engine runs several
workers, every use of the analyser (the selfie, and compiling a template on first use)
takes one lock; the swap and the encode, where the time goes, run in parallel.
"""

import threading

from inference.faces.analyser import FaceAnalyser
from inference.jobs.blobs import BlobStore
from inference.jobs.contract import CancelToken, JobOutput, ProgressCallback, RunJob, SwapJob
from inference.media.badge import BadgeStyle
from inference.media.decode import load_image
from inference.media.limits import MediaLimits
from inference.pipeline import SwapOptions, run_swap
from inference.swappers.base import Swapper
from inference.templates.library import TemplateLibrary


class SerialAnalyser:
    """An analyser that runs one image at a time, whichever thread asks."""

    def __init__(self, inner: FaceAnalyser) -> None:
        self.inner = inner
        self.name = inner.name
        self.version = inner.version
        self.lock = threading.RLock()

    def prepare(self) -> None:
        with self.lock:
            self.inner.prepare()

    def analyse(self, image):
        with self.lock:
            return self.inner.analyse(image)


def make_swap_runner(analyser: FaceAnalyser, swapper: Swapper, library: TemplateLibrary, limits: MediaLimits,
                     blobs: BlobStore, label: str | None = None, badge: BadgeStyle | None = BadgeStyle()) -> RunJob:
    serial = SerialAnalyser(analyser)

    def run_job(job: SwapJob, progress: ProgressCallback, cancel: CancelToken) -> JobOutput:
        selfie = load_image(blobs.get(job.selfie_ref), limits)
        cancel.raise_if_cancelled()
        with serial.lock:
            template = library.compile(library.get(job.template))
        options = SwapOptions(format=job.format, max_bytes=job.max_bytes, faces=job.faces, label=label,
                              badge=badge)
        result = run_swap(selfie, template, serial, swapper, options, limits, progress=progress)
        stages = {name: seconds for name, seconds in result.timings.items() if name != "total"}
        return JobOutput(result.media.data, result.media.mime, stages)

    return run_job
