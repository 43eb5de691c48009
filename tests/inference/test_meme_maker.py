"""A real swap job through `MemeMaker.job_runner` and the in-process engine: selfie in, animation out, by reference."""

import asyncio
import io

import cv2
import numpy as np
from PIL import Image

from memeswap.inference.jobs.blobs import LocalBlobStore
from memeswap.inference.jobs.contract import SwapJob, new_job_id
from memeswap.inference.jobs.in_process import InProcessEngine
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.meme_maker import MemeMaker
from memeswap.inference.samples import crop_face


def test_a_swap_job_runs_through_the_engine(tmp_path, group, analyser, swapper, library):
    image, faces = group
    blobs = LocalBlobStore(tmp_path / "blobs")
    selfie_ref = blobs.put(cv2.imencode(".png", crop_face(image, faces[2])[:, :, ::-1])[1].tobytes(), 600)
    runner = MemeMaker(analyser, swapper, library, MediaLimits()).job_runner(blobs)

    async def scenario():
        async with InProcessEngine(runner, blobs, workers=1) as engine:
            job = SwapJob(job_id=new_job_id(), user_key="test:1", selfie_ref=selfie_ref, template="bounce")
            await engine.submit(job)
            return [event async for event in engine.events(job.job_id)]

    events = asyncio.run(scenario())
    kinds = [e.kind for e in events]
    assert kinds[0] == "queued" and kinds[1] == "started" and kinds[-1] == "succeeded"
    progress = [e for e in events if e.kind == "progress"]
    assert progress and progress[-1].done == progress[-1].total == 36
    with Image.open(io.BytesIO(blobs.get(events[-1].result_ref))) as gif:
        assert gif.format == "GIF" and gif.n_frames == 36


def test_two_workers_share_one_analyser_safely(tmp_path, group, analyser, swapper, library):
    image, faces = group
    blobs = LocalBlobStore(tmp_path / "blobs")
    refs = [blobs.put(cv2.imencode(".png", crop_face(image, faces[i])[:, :, ::-1])[1].tobytes(), 600)
            for i in (0, 2, 3, 5)]
    runner = MemeMaker(analyser, swapper, library, MediaLimits()).job_runner(blobs)

    async def scenario():
        async with InProcessEngine(runner, blobs, workers=2, per_user_concurrency=4) as engine:
            jobs = [SwapJob(job_id=new_job_id(), user_key="test:1", selfie_ref=ref, template="wobble", format="mp4")
                    for ref in refs]
            for job in jobs:
                await engine.submit(job)
            return [[event async for event in engine.events(job.job_id)][-1] for job in jobs]

    finals = asyncio.run(scenario())
    assert [f.kind for f in finals] == ["succeeded"] * 4
    assert len({blobs.get(f.result_ref) for f in finals}) == 4  # four different faces, four results


def test_a_selfie_without_a_face_fails_with_the_users_message(tmp_path, analyser, swapper, library):
    blobs = LocalBlobStore(tmp_path / "blobs")
    blank = cv2.imencode(".png", np.full((200, 200, 3), 180, np.uint8))[1].tobytes()
    runner = MemeMaker(analyser, swapper, library, MediaLimits()).job_runner(blobs)

    async def scenario():
        async with InProcessEngine(runner, blobs, workers=1) as engine:
            job = SwapJob(job_id=new_job_id(), user_key="test:1", selfie_ref=blobs.put(blank, 600), template="pan")
            await engine.submit(job)
            return [event async for event in engine.events(job.job_id)]

    final = asyncio.run(scenario())[-1]
    assert final.kind == "failed" and final.code == "no_face" and not final.retryable
    assert "no face found in the photo" in final.message
