"""The job contract between whoever asks for swaps (bot shards, the CLI) and whoever runs
them (an in-process thread pool, Redis Streams workers).

Jobs and events are versioned JSON, never pickles, so a shard and a worker of different
builds either understand each other or refuse clearly. Bytes never travel inside a job:
the selfie and the result are references into a `BlobStore`.

This module is deliberately light (pydantic only): a bot shard imports it without pulling
in OpenCV, ONNX Runtime or any model.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple, Protocol, runtime_checkable

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from memeswap.inference.errors import InputError, OutputTooLargeError
from memeswap.inference.media.formats.registry import FORMATS

if TYPE_CHECKING:  # prometheus_client stays out of what importing the contract loads
    from memeswap.inference.observability.metrics import JobMetrics

JOB_VERSION = 1

JobOutputFormat = str  # a name from inference.media.formats.registry (which imports no encoder)
MAX_MAPPED_FACES = 10  # entries of a job's face map
BlobRef = Annotated[str, Field(min_length=1, max_length=300)]


class JobFormatError(ValueError):
    """A job or event message this build cannot read: unknown version or bad fields."""


class UnknownJobError(LookupError):
    """No job with this id is known to the engine (never submitted, or long forgotten)."""


class SwapJob(BaseModel):
    """One request to swap a selfie's face into a template, as it travels between processes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = JOB_VERSION
    job_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    # "platform:user id", e.g. "telegram:12345"; the unit of per-user limits.
    user_key: str = Field(pattern=r"^[a-z][a-z0-9_-]*:\S+$", max_length=200)
    selfie_ref: str = Field(min_length=1, max_length=300)
    template: str = Field(min_length=1, max_length=200)
    format: JobOutputFormat = "gif"
    max_bytes: int | None = Field(default=None, gt=0)
    faces: str = Field(default="all", pattern=r"^(all|largest|\d+)$")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # None: the engine's default deadline applies.
    deadline_s: float | None = Field(default=None, gt=0)
    # Where the adapter posts the result ("telegram:chat:42:message:7"), opaque to engines.
    # It travels with the job so a bot shard restarted mid-job can still deliver the reply.
    reply_to: str | None = Field(default=None, max_length=300)
    # A face map: for each of the template's faces in their numbering order
    # (`inference.templates.face_order`), the blob of the selfie it gets, or None to keep the
    # template's own; faces past its end are kept too. `selfie_ref` is one of its blobs.
    # None: `faces` chooses the faces and all get `selfie_ref`. Left out of a job's JSON when
    # None, so a job without one reads the same to workers of earlier builds.
    face_selfies: tuple[BlobRef | None, ...] | None = Field(default=None, min_length=1, max_length=MAX_MAPPED_FACES)

    @field_validator("face_selfies")
    @classmethod
    def _swaps_a_face(cls, refs: tuple[str | None, ...] | None) -> tuple[str | None, ...] | None:
        if refs is not None and all(ref is None for ref in refs):
            raise ValueError("a face map keeps every face: give at least one a selfie")
        return refs

    @property
    def selfie_refs(self) -> list[str]:
        """Every selfie blob the job reads (and its end deletes), each once."""
        return list(dict.fromkeys([self.selfie_ref, *(ref for ref in self.face_selfies or () if ref is not None)]))

    @field_validator("format")
    @classmethod
    def _known_format(cls, name: str) -> str:
        if name not in FORMATS:
            raise ValueError(f"unknown output format; use one of {', '.join(FORMATS)}")
        return name

    @field_validator("version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != JOB_VERSION:
            raise ValueError(_version_message(version))
        return version

    def to_json(self) -> str:
        return self.model_dump_json(exclude={"face_selfies"} if self.face_selfies is None else None)

    @classmethod
    def from_json(cls, data: str | bytes) -> SwapJob:
        """Parse a job message; an unknown version or a bad field raises `JobFormatError`."""
        try:
            raw = json.loads(data)
        except ValueError as error:
            raise JobFormatError(f"job message is not JSON: {error}") from error
        if not isinstance(raw, dict):
            raise JobFormatError("job message is not a JSON object")
        if raw.get("version") != JOB_VERSION:
            raise JobFormatError(_version_message(raw.get("version")))
        try:
            return cls.model_validate(raw)
        except ValidationError as error:
            raise JobFormatError(f"invalid job message: {error}") from error


def _version_message(version: Any) -> str:
    return f"unsupported job version {version!r}; this build reads version {JOB_VERSION}"


def new_job_id() -> str:
    return uuid.uuid4().hex


# --- events ---------------------------------------------------------------------------

class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Queued(_Event):
    """Waiting for a worker; `position` is the number of jobs ahead (0: next to start).

    An engine may send several as the queue moves, with falling positions.
    """

    kind: Literal["queued"] = "queued"
    position: int = Field(ge=0)


class Started(_Event):
    kind: Literal["started"] = "started"


class Progress(_Event):
    kind: Literal["progress"] = "progress"
    done: int = Field(ge=0)
    total: int = Field(ge=0)


Notice = Annotated[str, Field(min_length=1, max_length=300)]


class Succeeded(_Event):
    """`notices`: what the user should know about how their meme was made, one line each
    (e.g. that the photo showed several faces and the largest was used)."""

    kind: Literal["succeeded"] = "succeeded"
    result_ref: str
    mime: str
    size: int = Field(ge=0)
    notices: tuple[Notice, ...] = Field(default=(), max_length=5)


class Failed(_Event):
    """`code` is stable (for metrics and adapters); `message` is one line for the user."""

    kind: Literal["failed"] = "failed"
    code: str
    message: str
    retryable: bool


Event = Annotated[Queued | Started | Progress | Succeeded | Failed, Field(discriminator="kind")]
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def is_final(event: Event) -> bool:
    return isinstance(event, (Succeeded, Failed))


def event_to_json(event: Event) -> str:
    return event.model_dump_json()


def event_from_json(data: str | bytes) -> Event:
    try:
        return _EVENT_ADAPTER.validate_json(data)
    except ValidationError as error:
        raise JobFormatError(f"invalid event message: {error}") from error


# --- refusals at submit time --------------------------------------------------------------

def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


class Busy(InputError):
    """The queue is full; the caller should try again later."""

    code = "busy"

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = float(retry_after_s)
        super().__init__(f"busy, try again in about {_seconds(retry_after_s)} s")


class ServiceUnavailable(Busy):
    """The job service cannot be reached just now (Redis is down or failing over)."""

    code = "unavailable"

    def __init__(self, retry_after_s: float = 30.0) -> None:
        super().__init__(retry_after_s)
        self.args = (f"the swap service is briefly unavailable; try again in about {_seconds(retry_after_s)} s",)


class Restarting(Busy):
    """This bot process is shutting down and takes no new jobs."""

    code = "restarting"

    def __init__(self) -> None:
        super().__init__(60.0)
        self.args = (RESTARTING_MESSAGE,)


class RateLimited(InputError):
    """This user has too many jobs in flight or has used up their rate."""

    code = "rate_limited"

    def __init__(self, retry_after_s: float, message: str | None = None) -> None:
        self.retry_after_s = float(retry_after_s)
        super().__init__(message or
                         f"too many swaps in a short time, try again in about {_seconds(retry_after_s)} s")


# --- what a worker runs -----------------------------------------------------------------

class JobCancelled(Exception):
    """Raised inside a job's worker at a progress check once the job was cancelled or ran
    past its deadline; `reason` is "cancelled", "deadline" or "shutdown"."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"job stopped: {reason}")
        self.reason = reason


class CancelToken:
    """Shared between the engine (on the event loop) and a job's worker thread.

    Cancellation is cooperative: the worker notices it at its next progress check.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._reason: str | None = None

    def cancel(self, reason: str = "cancelled") -> None:
        """The first reason wins."""
        with self._lock:
            if self._reason is None:
                self._reason = reason
                self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> str | None:
        return self._reason

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelled(self._reason or "cancelled")


class JobFailed(Exception):
    """A job's work ended with `event`, decided elsewhere (in the process that ran it)."""

    def __init__(self, event: Failed) -> None:
        super().__init__(event.message)
        self.event = event


INTERNAL_MESSAGE = "something went wrong while making your meme; please try again"


def failure_event(error: BaseException) -> Failed:
    """The `Failed` event a job ends with when its work raised `error`.

    The user's mistakes and stops keep their code and one-line message; anything else is
    our bug and gets a generic, retryable message (the details go to the log, not the user).
    """
    if isinstance(error, JobCancelled):
        return Failed(code=error.reason, message="the swap was stopped", retryable=False)
    if isinstance(error, JobFailed):
        return error.event
    if isinstance(error, (InputError, OutputTooLargeError)):
        return Failed(code=error.code, message=str(error), retryable=False)
    return Failed(code="internal", message=INTERNAL_MESSAGE, retryable=True)


CANCELLED = Failed(code="cancelled", message="the swap was cancelled", retryable=False)

RESTARTING_MESSAGE = "the bot is restarting — try again in a minute"
RESTARTED = Failed(code="shutdown", message=RESTARTING_MESSAGE, retryable=True)
"""How a job ends that its bot process could not finish before shutting down."""


def deadline_failure(deadline_s: float) -> Failed:
    return Failed(code="deadline", message=f"the swap took longer than {deadline_s:g} s; please try again",
                  retryable=True)


class JobOutput(NamedTuple):
    """What a job's work produces: the encoded media, how long each stage took, and the
    notices for the user (see `Succeeded.notices`)."""

    data: bytes
    mime: str
    stages: dict[str, float] = {}
    notices: tuple[str, ...] = ()


ProgressCallback = Callable[[int, int], None]
# Runs one job in a worker thread.
RunJob = Callable[[SwapJob, ProgressCallback, CancelToken], JobOutput]


@runtime_checkable
class InferenceEngine(Protocol):
    metrics: JobMetrics  # the engine's counters, exported on /metrics

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, job: SwapJob) -> None:
        """Accept a job, or raise `Busy` / `RateLimited`.

        Idempotent on `job.job_id`: submitting a known id again does nothing.
        """

    def events(self, job_id: str) -> AsyncIterator[Event]:
        """Every event of the job from its first, ending after the final one, whenever
        the caller subscribes. An id the engine does not know raises `UnknownJobError`
        (when called, or at the first step of the iteration)."""

    async def cancel(self, job_id: str, final: Failed = CANCELLED) -> bool:
        """Cancel a queued or running job, which ends with `final` (its followers learn why);
        False when it already ended or is unknown."""

    async def unfinished_jobs(self, user_key: str) -> list[SwapJob]:
        """The user's queued and running jobs, as far as this engine can see: the ones this
        process submitted, and on a shared queue those of every process."""

    async def drain(self, grace_s: float) -> None:
        """Before shutting down: refuse new jobs (`Restarting`), give the unfinished up to
        `grace_s` to end, and return once their followers have handled the final events, so
        the adapters still running can tell every user. What this engine cannot leave for a
        later process (in-process jobs) ends with `RESTARTED`."""

    async def health(self) -> dict:
        """{"ok": bool, ...}: whether the engine can take jobs, with what it knows of its queue."""
