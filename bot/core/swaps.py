"""Asking for a swap: the one use case every adapter calls to make a meme.

The selfie (a photo sent for this job, or a copy of a saved face) goes into the blob
store for this job only and is deleted when the job ends; the job carries just its
reference.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from bot.core.faces import SavedFaces
from bot.core.protection import ProtectedFaceList
from bot.core.requesters import Requester
from bot.core.templates import CustomTemplates
from bot.core.usage import SwapQuota
from inference.jobs.blobs import BlobStore
from inference.jobs.contract import Event, InferenceEngine, JobOutputFormat, SwapJob, is_final, new_job_id

log = logging.getLogger("memeswap.swaps")


class Swaps:
    def __init__(self, engine: InferenceEngine, blobs: BlobStore, templates: CustomTemplates, faces: SavedFaces,
                 quota: SwapQuota, protected: ProtectedFaceList | None = None, selfie_ttl_s: float = 900.0) -> None:
        self.engine = engine
        self.blobs = blobs
        self.templates = templates
        self.faces = faces
        self.quota = quota
        self.protected = protected
        self.selfie_ttl_s = selfie_ttl_s

    async def start(self, requester: Requester, template: str, selfie: bytes | None = None,
                    saved_face: str = "default", format: JobOutputFormat = "gif", max_bytes: int | None = None,
                    reply_to: str | None = None) -> SwapJob:
        """Check, count and submit one swap; raises a one-line `InputError` (or `Busy`,
        `RateLimited`) when it cannot run, and then nothing is kept or counted."""
        resolved = await self.templates.resolve(requester, template)
        if selfie is None:
            selfie = await self.faces.load(requester, saved_face)
        elif self.protected is not None:
            await self.protected.check_selfie(requester.scope, selfie)
        counted_at = datetime.now(UTC)
        await self.quota.spend(requester, counted_at)
        ref = await asyncio.to_thread(self.blobs.put, selfie, self.selfie_ttl_s)
        job = SwapJob(job_id=new_job_id(), user_key=requester.user_key, selfie_ref=ref, template=resolved.ref,
                      format=format, max_bytes=max_bytes, reply_to=reply_to)
        try:
            await self.engine.submit(job)
        except BaseException:
            await asyncio.to_thread(self.blobs.delete, ref)
            await self.quota.refund(requester, counted_at)
            raise
        return job

    async def follow(self, job: SwapJob) -> AsyncIterator[Event]:
        """The job's events; once the final one is out, the selfie's blob is deleted."""
        async for event in self.engine.events(job.job_id):
            if is_final(event):
                await asyncio.to_thread(self.blobs.delete, job.selfie_ref)
            yield event
