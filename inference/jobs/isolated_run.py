"""One job run in a process of its own, so that a job which kills the process running it
(a native crash, the kernel's OOM killer) takes down that process and not the worker.

A worker runs a job this way only when the job's previous delivery ended with its worker
gone mid-run: from outside, a worker that the job crashed and a worker that was killed
(a deploy, a node drained, kill -9) look the same. Run isolated, the two come apart: the
child dying is the job's doing, and the worker, still alive, says so; the worker dying
again is not the job's doing and does not count against it.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection

from memeswap.inference.jobs.contract import (
    CancelToken,
    JobFailed,
    JobOutput,
    ProgressCallback,
    RunJob,
    SwapJob,
    failure_event,
)

log = logging.getLogger("memeswap.worker")

POLL_S = 0.1


class JobKilledItsProcess(Exception):
    """The process running the job ended without an answer."""

    def __init__(self, exit_code: int | None) -> None:
        self.exit_code = exit_code
        if exit_code is not None and exit_code < 0:
            try:
                how = f"was killed by {signal.Signals(-exit_code).name}"
            except ValueError:
                how = f"was killed by signal {-exit_code}"
        else:
            how = f"exited with code {exit_code}"
        super().__init__(f"the process running the job {how}")


class ChildProcessRunner:
    """A `RunJob` that runs each job in a fresh child process (spawned, not forked: the
    parent's ONNX Runtime thread pools do not survive a fork).

    `make_run_job` is called in the child to load what the job needs; it must pickle (a
    module-level function, or a `functools.partial` of one with picklable arguments).
    Progress and cancellation cross the process boundary; a cancelled job's child is killed.
    """

    def __init__(self, make_run_job: Callable[[], RunJob]) -> None:
        self.make_run_job = make_run_job

    def __call__(self, job: SwapJob, progress: ProgressCallback, cancel: CancelToken) -> JobOutput:
        context = multiprocessing.get_context("spawn")
        answers, child_end = context.Pipe(duplex=False)
        child = context.Process(target=_run_in_child, args=(self.make_run_job, job.to_json(), child_end, os.getpid()),
                                name=f"memeswap-job-{job.job_id[:40]}", daemon=True)
        child.start()
        child_end.close()
        try:
            while True:
                cancel.raise_if_cancelled()
                if not answers.poll(POLL_S):
                    continue
                try:
                    kind, payload = answers.recv()
                except EOFError:  # the child is gone without a word
                    child.join()
                    raise JobKilledItsProcess(child.exitcode) from None
                if kind == "progress":
                    progress(*payload)
                elif kind == "output":
                    return JobOutput(*payload)
                else:
                    raise JobFailed(payload)
        finally:
            if child.is_alive():
                child.kill()
            child.join()
            answers.close()


PR_SET_PDEATHSIG = 1


def _die_with_the_worker(worker_pid: int) -> None:
    """On Linux the kernel sends this process SIGKILL when the worker that started it dies
    (kill -9 included), instead of leaving it to run on, orphaned, on a job another worker
    will take over. A worker that died before this line ran is caught by its pid."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != worker_pid:
        os._exit(0)


def _run_in_child(make_run_job: Callable[[], RunJob], job_json: str, answers: Connection, worker_pid: int) -> None:
    _die_with_the_worker(worker_pid)
    job = SwapJob.from_json(job_json)
    try:
        try:
            output = make_run_job()(job, lambda done, total: answers.send(("progress", (done, total))),
                                    CancelToken())
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception as error:  # noqa: BLE001 (every failure goes back as its Failed event)
            failed = failure_event(error)
            if failed.code == "internal":
                log.error("job %s crashed in its own process", job.job_id, exc_info=error)
            answers.send(("failed", failed))
        else:
            answers.send(("output", tuple(output)))
        answers.close()
    except (BrokenPipeError, ConnectionResetError):  # the worker is gone: nobody to answer
        os._exit(0)
