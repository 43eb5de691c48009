"""Asking for a swap: the one use case every adapter calls to make a meme.

The selfie (a photo sent for this job, or a copy of a saved face) goes into the blob
store for this job only and is deleted when the job ends; the job carries just its
reference. A person who asks to be forgotten has their jobs stopped (`forget`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from memeswap.bot.core.faces import SavedFaces, face_name
from memeswap.bot.core.forgetting import FORGOTTEN_MESSAGE, ForgetMarks, ForgottenError
from memeswap.bot.core.reports import TemplateReports
from memeswap.bot.core.requesters import Requester
from memeswap.bot.core.templates import CustomTemplates, is_one_off
from memeswap.bot.core.usage import SwapQuota
from memeswap.inference.errors import InputError
from memeswap.inference.jobs.blobs import BlobStore
from memeswap.inference.jobs.contract import (
    Event,
    Failed,
    InferenceEngine,
    JobOutputFormat,
    Succeeded,
    SwapJob,
    is_final,
    new_job_id,
)
from memeswap.inference.templates.manifest import ONE_OFF_PREFIX

log = logging.getLogger("memeswap.swaps")

# How a job ends when its person asked to be forgotten; the code and message travel with the
# final event, so a bot process that did not take the /forget shows the same line.
FORGOTTEN = Failed(code=ForgottenError.code, message=FORGOTTEN_MESSAGE, retryable=False)
POSTING_WAIT_S = 10.0  # the longest /forget waits for a meme already on its way to the chat


@dataclass(eq=False)
class _Followed:
    """A job of this process, from its submit until its follower has handled the final event."""

    job: SwapJob
    forgotten: bool = False
    final_out: bool = False  # the follower has the final event: a meme to post, or why not
    handled: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class _Sources:
    """A job's selfies, each once, and with a face map, which of them each template face
    gets (an index into `selfies`, None: kept)."""

    selfies: list[bytes]
    faces: list[int | None] | None = None


class Swaps:
    def __init__(self, engine: InferenceEngine, blobs: BlobStore, templates: CustomTemplates, faces: SavedFaces,
                 quota: SwapQuota, selfie_ttl_s: float = 900.0, forget_marks: ForgetMarks | None = None,
                 reports: TemplateReports | None = None) -> None:
        self.reports = reports
        self.engine = engine
        self.blobs = blobs
        self.templates = templates
        self.faces = faces
        self.quota = quota
        self.selfie_ttl_s = selfie_ttl_s
        self.forget_marks = forget_marks or ForgetMarks()
        self._followed: dict[str, _Followed] = {}

    async def start(self, requester: Requester, template: str, selfie: bytes | None = None,
                    saved_face: str | None = None, format: JobOutputFormat = "gif", max_bytes: int | None = None,
                    reply_to: str | None = None, face_map: Sequence[str | None] | None = None) -> SwapJob:
        """Check, count and submit one swap; raises a one-line `InputError` (or `Busy`,
        `RateLimited`) when it cannot run, and then nothing is kept or counted.

        `face_map`: saved faces' names for the template's faces in their numbering order,
        None keeping a face (`bot.core.face_maps.parse_face_map`); instead of a selfie."""
        began = self.forget_marks.now()
        resolved = await self.templates.resolve(requester, template)
        if face_map is None:
            sources = _Sources([selfie if selfie is not None else await self.faces.load(requester, saved_face)])
        elif selfie is not None:
            raise InputError("send a selfie or name saved faces for the template's faces, not both",
                             code="bad_face_map")
        else:
            sources = await self._mapped(requester, face_map)
        return await self._submit(requester, resolved.ref, sources, format, max_bytes, reply_to, new_job_id(), began)

    async def start_one_off(self, requester: Requester, media: Path, selfie: bytes | None = None,
                            saved_face: str | None = None, format: JobOutputFormat = "gif",
                            max_bytes: int | None = None, reply_to: str | None = None) -> SwapJob:
        """A swap into media that is not a template (a GIF someone posted): screened like a
        new template and kept in the person's own space for this job only (`follow` removes
        it at the end; a start-up `reconcile` removes any a crash left)."""
        job_id, began = new_job_id(), self.forget_marks.now()
        if selfie is None:
            selfie = await self.faces.load(requester, saved_face)  # before the costly screening
        ref = await self.templates.add_one_off(requester, media, f"{ONE_OFF_PREFIX}{job_id[:16]}")
        try:
            return await self._submit(requester, ref, _Sources([selfie]), format, max_bytes, reply_to, job_id, began)
        except BaseException:
            await self.templates.remove_one_off(ref)
            raise

    async def _mapped(self, requester: Requester, face_map: Sequence[str | None]) -> _Sources:
        """The saved faces a face map names, each loaded once; the first unknown or invalid
        name is refused."""
        names = [None if name is None else face_name(name) for name in face_map]
        unique = list(dict.fromkeys(name for name in names if name is not None))
        if not unique:
            raise InputError("that face map keeps every face; name a face for at least one", code="bad_face_map")
        crops = await self.faces.load_named(requester, unique)
        return _Sources(list(crops), [None if name is None else unique.index(name) for name in names])

    async def _submit(self, requester: Requester, template_ref: str, sources: _Sources, format: JobOutputFormat,
                      max_bytes: int | None, reply_to: str | None, job_id: str, began: float) -> SwapJob:
        """Check, count and submit; `began` is when the request came, so that a /forget
        since then (during the checks) stops it before anything is queued."""
        # Where the swap happens: saved faces and a person's own template go wherever the
        # person goes, so all are checked against this place's protected list now.
        for selfie in sources.selfies:  # within the limits, a human face, not turned away, not protected
            await self.faces.check(requester, selfie)
        await self.templates.check_protected(requester, requester.scope, template_ref)
        counted_at = datetime.now(UTC)
        await self.quota.spend(requester, counted_at)
        refs: list[str] = []
        try:
            for selfie in sources.selfies:
                refs.append(await asyncio.to_thread(self.blobs.put, selfie, self.selfie_ttl_s))
            self.forget_marks.check(requester.user_key, began)  # nothing awaited from here to the record
        except BaseException:
            await self._delete_blobs(refs)
            await self.quota.refund(requester, counted_at)
            raise
        face_selfies = None if sources.faces is None else tuple(None if i is None else refs[i] for i in sources.faces)
        job = SwapJob(job_id=job_id, user_key=requester.user_key, selfie_ref=refs[0], template=template_ref,
                      format=format, max_bytes=max_bytes, reply_to=reply_to, face_selfies=face_selfies)
        record = self._followed[job.job_id] = _Followed(job)
        try:
            await self.engine.submit(job)
        except BaseException:
            del self._followed[job.job_id]
            await self._delete_blobs(refs)
            await self.quota.refund(requester, counted_at)
            raise
        if record.forgotten:  # /forget came while the job was being submitted
            await self.engine.cancel(job.job_id, FORGOTTEN)
        elif self.reports is not None:
            try:
                await self.reports.issue(job.job_id, template_ref, requester.scope)
            except Exception as error:  # the meme is made all the same; only its Report button will not find it
                log.warning("job %s: not recorded for reports: %s", job.job_id, error)
        return job

    async def _delete_blobs(self, refs: Sequence[str]) -> None:
        for ref in refs:
            await asyncio.to_thread(self.blobs.delete, ref)

    async def follow(self, job: SwapJob) -> AsyncIterator[Event]:
        """The job's events; once the final one is out, the selfie's blob is deleted.

        A job whose person asked to be forgotten ends with `FORGOTTEN`, also when it made a
        meme meanwhile: that meme is deleted unseen.
        """
        record = self._followed.get(job.job_id)
        try:
            async for event in self.engine.events(job.job_id):
                if not is_final(event):
                    if record is None or not record.forgotten:
                        yield event
                    continue
                await self._delete_blobs(job.selfie_refs)
                if is_one_off(job.template):
                    await self.templates.remove_one_off(job.template)
                forgotten = False
                if record is not None:  # decided with no await in between: `forget` sees one or the other
                    forgotten, record.final_out = record.forgotten, True
                if forgotten:
                    if isinstance(event, Succeeded):
                        await asyncio.to_thread(self.blobs.delete, event.result_ref)
                    event = FORGOTTEN
                yield event
        finally:
            if record is not None:
                self._followed.pop(job.job_id, None)
                record.handled.set()

    async def forget(self, requester: Requester) -> int:
        """Stop the requester's queued and running jobs: each ends with `FORGOTTEN`, its
        selfie is deleted, and a meme it made that is not yet out is deleted unseen.
        Returns how many were stopped.

        A final event this process's follower has already (a meme being posted) is waited
        for, up to `POSTING_WAIT_S`, so no meme arrives after the reply to /forget. With
        several bot processes on Redis the engine also finds the jobs the others submitted,
        and stops them; a meme another process has received already is still posted by it.
        """
        user_key = requester.user_key
        mine = [record for record in self._followed.values() if record.job.user_key == user_key]
        for record in mine:
            record.forgotten = True
        # The followers of these end them with FORGOTTEN, whether the engine still runs them or not.
        stopping = [record.job for record in mine if not record.final_out]
        for job in stopping:
            await self.engine.cancel(job.job_id, FORGOTTEN)
        followed = {record.job.job_id for record in mine}
        for job in await self.engine.unfinished_jobs(user_key):
            if job.job_id not in followed and await self.engine.cancel(job.job_id, FORGOTTEN):
                stopping.append(job)
        for job in stopping:
            await self._delete_blobs(job.selfie_refs)
        out = [asyncio.ensure_future(record.handled.wait()) for record in mine if record.final_out]
        if out:
            _, late = await asyncio.wait(out, timeout=POSTING_WAIT_S)
            for waiter in late:
                waiter.cancel()
            if late:
                log.warning("forget: %d meme(s) still being posted after %g s", len(late), POSTING_WAIT_S)
        return len(stopping)
