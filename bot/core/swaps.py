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
from pathlib import Path

from bot.core.faces import SavedFaces
from bot.core.requesters import Requester
from bot.core.templates import ONE_OFF_PREFIX, CustomTemplates, is_one_off
from bot.core.usage import SwapQuota
from inference.jobs.blobs import BlobStore
from inference.jobs.contract import (
    Event,
    InferenceEngine,
    JobOutputFormat,
    SwapJob,
    is_final,
    new_job_id,
)

log = logging.getLogger("memeswap.swaps")


class Swaps:
    def __init__(self, engine: InferenceEngine, blobs: BlobStore, templates: CustomTemplates, faces: SavedFaces,
                 quota: SwapQuota, selfie_ttl_s: float = 900.0) -> None:
        self.engine = engine
        self.blobs = blobs
        self.templates = templates
        self.faces = faces
        self.quota = quota
        self.selfie_ttl_s = selfie_ttl_s

    async def start(self, requester: Requester, template: str, selfie: bytes | None = None,
                    saved_face: str = "default", format: JobOutputFormat = "gif", max_bytes: int | None = None,
                    reply_to: str | None = None) -> SwapJob:
        """Check, count and submit one swap; raises a one-line `InputError` (or `Busy`,
        `RateLimited`) when it cannot run, and then nothing is kept or counted."""
        resolved = await self.templates.resolve(requester, template)
        return await self._submit(requester, resolved.ref, selfie, saved_face, format, max_bytes, reply_to,
                                  new_job_id())

    async def start_one_off(self, requester: Requester, media: Path, selfie: bytes | None = None,
                            saved_face: str = "default", format: JobOutputFormat = "gif",
                            max_bytes: int | None = None, reply_to: str | None = None) -> SwapJob:
        """A swap into media that is not a template (a GIF someone posted): screened like a
        new template and kept in the person's own space for this job only (`follow` removes
        it at the end; a start-up `reconcile` removes any a crash left)."""
        job_id = new_job_id()
        if selfie is None:
            selfie = await self.faces.load(requester, saved_face)  # before the costly screening
        ref = await self.templates.add_one_off(requester, media, f"{ONE_OFF_PREFIX}{job_id[:16]}")
        try:
            return await self._submit(requester, ref, selfie, saved_face, format, max_bytes, reply_to, job_id)
        except BaseException:
            await self.templates.remove_one_off(ref)
            raise

    async def _submit(self, requester: Requester, template_ref: str, selfie: bytes | None, saved_face: str,
                      format: JobOutputFormat, max_bytes: int | None, reply_to: str | None, job_id: str) -> SwapJob:
        if selfie is None:
            selfie = await self.faces.load(requester, saved_face)
        # Where the swap happens: a saved face and a person's own template go wherever the
        # person goes, so both are checked against this place's protected list now.
        await self.faces.check(requester, selfie)  # within the limits, a human face, not turned away, not protected
        await self.templates.check_protected(requester.scope, template_ref)
        counted_at = datetime.now(UTC)
        await self.quota.spend(requester, counted_at)
        ref = await asyncio.to_thread(self.blobs.put, selfie, self.selfie_ttl_s)
        job = SwapJob(job_id=job_id, user_key=requester.user_key, selfie_ref=ref, template=template_ref,
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
                if is_one_off(job.template):
                    await self.templates.remove_one_off(job.template)
            yield event
