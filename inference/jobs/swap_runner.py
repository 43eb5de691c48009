"""The job function an engine's workers run: one `SwapJob` through the real swap pipeline.

It is built once per worker from loaded parts (analyser, swapper, library), so models load
once per worker, not per job. Bytes come and go through the `BlobStore`; the job itself
carries only references.
"""

from inference.faces.analyser import FaceAnalyser
from inference.jobs.blobs import BlobStore
from inference.jobs.contract import CancelToken, ProgressCallback, RunJob, SwapJob
from inference.media.decode import load_image
from inference.media.limits import MediaLimits
from inference.pipeline import SwapOptions, run_swap
from inference.swappers.base import Swapper
from inference.templates.library import TemplateLibrary


def make_swap_runner(analyser: FaceAnalyser, swapper: Swapper, library: TemplateLibrary, limits: MediaLimits,
                     blobs: BlobStore, label: str | None = None) -> RunJob:
    def run_job(job: SwapJob, progress: ProgressCallback, cancel: CancelToken) -> tuple[bytes, str]:
        selfie = load_image(blobs.get(job.selfie_ref), limits)
        cancel.raise_if_cancelled()
        template = library.compile(library.get(job.template))
        options = SwapOptions(format=job.format, max_bytes=job.max_bytes, faces=job.faces, label=label)
        result = run_swap(selfie, template, analyser, swapper, options, limits, progress=progress)
        return result.media.data, result.media.mime

    return run_job
