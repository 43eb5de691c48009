"""The job function an engine's workers run: one `SwapJob` through the real swap pipeline.

It is built once from loaded parts (analyser, swapper, library), so models load once, not
per job. Bytes come and go through the `BlobStore`; the job itself carries only references.
A template compiled on first use is compiled once, not by every worker that wants it at
the same moment.
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


def make_swap_runner(analyser: FaceAnalyser, swapper: Swapper, library: TemplateLibrary, limits: MediaLimits,
                     blobs: BlobStore, label: str | None = None, badge: BadgeStyle | None = BadgeStyle()) -> RunJob:
    compiling = threading.Lock()

    def run_job(job: SwapJob, progress: ProgressCallback, cancel: CancelToken) -> JobOutput:
        selfie = load_image(blobs.get(job.selfie_ref), limits)
        cancel.raise_if_cancelled()
        with compiling:
            template = library.compile(library.get(job.template))
        options = SwapOptions(format=job.format, max_bytes=job.max_bytes, faces=job.faces, label=label,
                              badge=badge)
        result = run_swap(selfie, template, analyser, swapper, options, limits, progress=progress,
                          human_check=library.human_check)
        stages = {name: seconds for name, seconds in result.timings.items() if name != "total"}
        return JobOutput(result.media.data, result.media.mime, stages, tuple(result.notices))

    return run_job
