"""Asking for a swap: the template is resolved in the requester's scope, the swap is
counted, the selfie lives only as long as its job, and a refused job costs nothing."""

import asyncio
import os
import time

import cv2
import pytest
from sqlalchemy import func, select

from memeswap.bot.core.faces import SavedFaces
from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.core.swaps import FORGOTTEN, Swaps
from memeswap.bot.core.usage import SwapQuota
from memeswap.bot.store.models import UsageEvent
from memeswap.inference.errors import InputError
from memeswap.inference.jobs.blobs import BlobNotFoundError, LocalBlobStore
from memeswap.inference.jobs.contract import Busy, JobOutput, Succeeded
from memeswap.inference.jobs.in_process import InProcessEngine
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.meme_maker import MemeMaker
from memeswap.inference.samples import crop_face

GROUP = Scope("chat", "telegram", "-100900")
ADMIN = Requester("telegram", "11", GROUP, is_scope_admin=True)
MEMBER = Requester("telegram", "12", GROUP)


@pytest.fixture
def selfie(group) -> bytes:
    image, faces = group
    return cv2.imencode(".png", crop_face(image, faces[2])[:, :, ::-1])[1].tobytes()


def test_a_swap_from_a_groups_template_runs_and_its_selfie_is_deleted(tmp_path, database, templates, template_media,
                                                                      analyser, swapper, selfie):
    blobs = LocalBlobStore(tmp_path / "blobs")
    runner = MemeMaker(analyser, swapper, templates.library, MediaLimits()).job_runner(blobs)
    faces = SavedFaces(database, analyser)

    async def main():
        await templates.add(ADMIN, template_media, "group-meme")
        async with InProcessEngine(runner, blobs) as engine:
            swaps = Swaps(engine, blobs, templates, faces, SwapQuota(database, per_day=5))
            job = await swaps.start(MEMBER, "group-meme", selfie=selfie, reply_to="telegram:chat:-100900:message:3")
            events = [event async for event in swaps.follow(job)]
            await faces.save(MEMBER, selfie)
            saved_job = await swaps.start(MEMBER, "bounce")  # the saved face, a built-in template
            saved_events = [event async for event in swaps.follow(saved_job)]
        return job, events, saved_job, saved_events

    job, events, saved_job, saved_events = asyncio.run(main())
    assert job.template == "telegram-chat--100900/group-meme" and job.user_key == "telegram:12"
    assert isinstance(events[-1], Succeeded) and isinstance(saved_events[-1], Succeeded)
    for done in (job, saved_job):
        with pytest.raises(BlobNotFoundError):
            blobs.get(done.selfie_ref)  # gone with its job
    assert blobs.get(events[-1].result_ref)[:6] == b"GIF89a"


def test_a_refused_swap_keeps_nothing_and_counts_nothing(tmp_path, database, templates, analyser, selfie):
    blobs = LocalBlobStore(tmp_path / "blobs")

    def stuck(job, progress, token):
        while not token.cancelled:
            progress(0, 1)
            token.raise_if_cancelled()
        return JobOutput(b"", "image/gif")

    async def main():
        async with InProcessEngine(stuck, blobs, max_queue=1, per_user_concurrency=5) as engine:
            swaps = Swaps(engine, blobs, templates, SavedFaces(database, analyser), SwapQuota(database, per_day=5))
            first = await swaps.start(MEMBER, "bounce", selfie=selfie)  # runs
            second = await swaps.start(MEMBER, "bounce", selfie=selfie)  # waits
            with pytest.raises(Busy):
                await swaps.start(MEMBER, "bounce", selfie=selfie)  # no room to wait
            with pytest.raises(InputError) as unknown:
                await swaps.start(MEMBER, "not-here", selfie=selfie)
            await engine.cancel(first.job_id)
            await engine.cancel(second.job_id)
        async with database.transaction() as session:
            counted = await session.scalar(select(func.count()).select_from(UsageEvent))
        return counted, unknown.value, sorted(p.name for p in (tmp_path / "blobs").iterdir())

    counted, unknown, blob_files = asyncio.run(main())
    assert counted == 2  # only the swaps that were accepted
    assert unknown.code == "unknown_template"
    assert len(blob_files) == 2  # the accepted jobs' selfies (nobody followed them); the refused one's went


def test_a_one_off_template_serves_one_job_and_is_gone_after_it(tmp_path, database, templates, template_media,
                                                                 analyser, swapper, selfie):
    """A GIF someone posted, used once: screened and compiled like a template, invisible to
    listings and picks, removed when the job ends; a start-up reconcile keeps a young one
    (another process's job may use it) and removes an old one."""
    blobs = LocalBlobStore(tmp_path / "blobs")
    runner = MemeMaker(analyser, swapper, templates.library, MediaLimits()).job_runner(blobs)
    faces = SavedFaces(database, analyser)
    own = Scope("user", "telegram", "12").key

    async def main():
        async with InProcessEngine(runner, blobs) as engine:
            swaps = Swaps(engine, blobs, templates, faces, SwapQuota(database, per_day=5))
            job = await swaps.start_one_off(MEMBER, template_media, selfie=selfie)
            during = templates.library.scoped_names(own)
            listed = [t.name for t in await templates.visible(MEMBER)]
            events = [event async for event in swaps.follow(job)]
            after = templates.library.scoped_names(own)
            young = await templates.add_one_off(MEMBER, template_media, "one-off-0000000000000001")
            old = await templates.add_one_off(MEMBER, template_media, "one-off-0000000000000002")
            hour_ago = time.time() - 2 * 3600
            os.utime(templates.library.get(old).folder, (hour_ago, hour_ago))
            removed = await templates.reconcile()
        return job, during, listed, events, after, young, removed, templates.library.scoped_names(own)

    job, during, listed, events, after, young, removed, kept = asyncio.run(main())
    assert job.template == f"{own}/{during[0]}" and during[0].startswith("one-off-")
    assert not any(name.startswith("one-off-") for name in listed)
    assert isinstance(events[-1], Succeeded) and after == []
    assert removed == 1 and kept == ["one-off-0000000000000001"] and young.endswith("/one-off-0000000000000001")


def test_forget_after_the_meme_was_made_but_before_it_was_taken_deletes_it_unseen(tmp_path, database, templates,
                                                                                   analyser, selfie):
    """The job finished in the meantime: its follower gets FORGOTTEN, never the meme, and
    neither the meme nor the selfie is kept."""
    blobs = LocalBlobStore(tmp_path / "blobs")

    async def main():
        async with InProcessEngine(lambda job, progress, token: JobOutput(b"GIF89a", "image/gif"), blobs) as engine:
            swaps = Swaps(engine, blobs, templates, SavedFaces(database, analyser), SwapQuota(database, per_day=5))
            job = await swaps.start(MEMBER, "bounce", selfie=selfie)
            engine_final = [event async for event in engine.events(job.job_id)][-1]  # done; not yet followed
            stopped = await swaps.forget(MEMBER)
            followed = [event async for event in swaps.follow(job)]
        return engine_final, stopped, followed, sorted(p.name for p in (tmp_path / "blobs").iterdir())

    engine_final, stopped, followed, blob_files = asyncio.run(main())
    assert isinstance(engine_final, Succeeded)
    assert stopped == 1
    assert followed[-1] == FORGOTTEN and not any(isinstance(event, Succeeded) for event in followed)
    assert blob_files == []


def test_forget_waits_for_a_meme_already_being_posted(tmp_path, database, templates, analyser, selfie):
    """A meme the follower has in hand goes out before /forget is answered, not after it."""
    blobs = LocalBlobStore(tmp_path / "blobs")

    async def main():
        async with InProcessEngine(lambda job, progress, token: JobOutput(b"GIF89a", "image/gif"), blobs) as engine:
            swaps = Swaps(engine, blobs, templates, SavedFaces(database, analyser), SwapQuota(database, per_day=5))
            job = await swaps.start(MEMBER, "bounce", selfie=selfie)
            following = swaps.follow(job)
            async for event in following:
                if isinstance(event, Succeeded):
                    break  # the adapter is posting the meme now
            forgetting = asyncio.create_task(swaps.forget(MEMBER))
            await asyncio.sleep(0.2)
            waited = not forgetting.done()
            await following.aclose()  # posted
            return waited, await asyncio.wait_for(forgetting, 1.0)

    waited, stopped = asyncio.run(main())
    assert waited and stopped == 0


def test_a_face_map_swap_gives_each_face_its_saved_face_and_deletes_every_selfie(tmp_path, database, templates,
                                                                                  analyser, swapper, selfie, group):
    blobs = LocalBlobStore(tmp_path / "blobs")
    runner = MemeMaker(analyser, swapper, templates.library, MediaLimits()).job_runner(blobs)
    faces = SavedFaces(database, analyser)
    image, found = group
    friend = cv2.imencode(".png", crop_face(image, found[3])[:, :, ::-1])[1].tobytes()

    async def main():
        await faces.save(MEMBER, selfie)
        await faces.save(MEMBER, friend, "ana")
        async with InProcessEngine(runner, blobs) as engine:
            swaps = Swaps(engine, blobs, templates, faces, SwapQuota(database, per_day=5))
            job = await swaps.start(MEMBER, "duo", face_map=["ANA", None])
            stored = [blobs.get(ref) for ref in job.selfie_refs]
            events = [event async for event in swaps.follow(job)]
            with pytest.raises(InputError) as unknown:
                await swaps.start(MEMBER, "duo", face_map=["me", "zed", "bob"])
            with pytest.raises(InputError) as keeps_all:
                await swaps.start(MEMBER, "duo", face_map=[None, None])
            with pytest.raises(InputError) as both:
                await swaps.start(MEMBER, "duo", selfie=selfie, face_map=["me"])
            async with database.transaction() as session:
                counted = await session.scalar(select(func.count()).select_from(UsageEvent))
        return job, stored, events, unknown.value, keeps_all.value, both.value, counted

    job, stored, events, unknown, keeps_all, both, counted = asyncio.run(main())
    assert job.face_selfies == (job.selfie_ref, None) and len(stored) == 1
    assert isinstance(events[-1], Succeeded)
    for ref in job.selfie_refs:
        with pytest.raises(BlobNotFoundError):
            blobs.get(ref)  # gone with its job
    assert unknown.code == "unknown_face" and "'zed'" in str(unknown) and "bob" not in str(unknown)
    assert keeps_all.code == both.code == "bad_face_map"
    assert counted == 1  # the refused ones cost nothing
