"""A `StreamWorker` in a process of its own with a fake job, for the tests that kill
workers: `python -m tests.inference.jobs.stream_worker_process REDIS_URL PREFIX NAME`.

The fake job sleeps in steps and returns "<job id>|<selfie ref>" so a test can tell every
result apart. A job for the template "kills-its-worker" ends the process with SIGKILL,
the way a segfault in native code would. Jobs whose last worker vanished mid-run run in a
child process, as `memeswap worker` runs them.
"""

import asyncio
import os
import signal
import sys
import time

from memeswap.inference.jobs.contract import JobOutput, RunJob
from memeswap.inference.jobs.isolated_run import ChildProcessRunner
from memeswap.inference.jobs.redis_blobs import RedisBlobStore
from memeswap.inference.jobs.redis_protocol import StreamKeys, connect
from memeswap.inference.jobs.redis_worker import StreamWorker

HEARTBEAT_S = 0.1
STALE_AFTER_S = 0.6
# The kill test SIGKILLs one of three workers every 0.4-1.2 s, far more often than any
# deployment sees; a job's run in a spawned child takes a second or more on a busy machine,
# so one job can lose several workers in a row (7 once, with another suite running beside
# it). The cap on deliveries is a safety valve, not what tells a killed worker from a poison
# job, so here it is set where only a job that never finishes would reach it.
MAX_DELIVERIES = 20


def run_job(job, progress, token) -> JobOutput:
    if job.template == "kills-its-worker":
        os.kill(os.getpid(), signal.SIGKILL)
    steps = 20 if job.template == "slow" else 3
    for i in range(steps):
        time.sleep(0.02)
        progress(i + 1, steps)
    return JobOutput(f"{job.job_id}|{job.selfie_ref}".encode(), "image/gif")


def make_run_job() -> RunJob:
    return run_job


async def main(url: str, prefix: str, name: str) -> None:
    blobs = RedisBlobStore.from_url(url, prefix=prefix)
    worker = StreamWorker(connect(url), run_job, blobs, StreamKeys(prefix), name=name,
                          heartbeat_s=HEARTBEAT_S, stale_after_s=STALE_AFTER_S, max_deliveries=MAX_DELIVERIES,
                          run_isolated=ChildProcessRunner(make_run_job))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await worker.run(stop)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
