"""Prometheus metrics for the bot and the workers.

Each `JobMetrics` owns its own `CollectorRegistry` rather than using prometheus_client's
global one, so two objects (a bot and a worker in one process, or two tests) never share
counters. prometheus_client has no constant labels, so every metric carries a `role` label
that is always filled with `self.role`.
"""

import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

ROLES = ("bot", "worker")
FINISHED_OUTCOMES = ("succeeded", "failed")
JOB_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300)
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def _safe_reader(name: str, read: Callable[[], float]) -> Callable[[], float]:
    """Wrap `read` so a failure shows as NaN instead of breaking the scrape.

    The error is logged at debug level once per run of failures, not on every scrape.
    """
    failing = False

    def wrapped() -> float:
        nonlocal failing
        try:
            value = float(read())
        except Exception:
            if not failing:
                log.debug("gauge %s: read() failed, reporting NaN", name, exc_info=True)
            failing = True
            return float("nan")
        failing = False
        return value

    return wrapped


class JobMetrics:
    """Job counters, job and stage durations, and scrape-time gauges for one role."""

    def __init__(self, role: str = "bot") -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        self.role = role
        self.registry = CollectorRegistry()
        self._jobs = Counter(
            "memeswap_jobs", "Jobs by outcome (succeeded, failed, refused) and reason.",
            ["role", "outcome", "reason"], registry=self.registry,
        )
        self._job_seconds = Histogram(
            "memeswap_job_seconds", "Wall time of finished jobs.",
            ["role", "outcome"], buckets=JOB_BUCKETS, registry=self.registry,
        )
        self._stage_seconds = Histogram(
            "memeswap_stage_seconds", "Wall time of one stage of a job.",
            ["role", "stage"], buckets=STAGE_BUCKETS, registry=self.registry,
        )
        self._queue_depth = Gauge(
            "memeswap_queue_depth", "Jobs waiting in the queue, read at scrape time.",
            ["role"], registry=self.registry,
        )
        self._workers = Gauge(
            "memeswap_workers", "Workers alive, read at scrape time.",
            ["role"], registry=self.registry,
        )

    def job_finished(self, outcome: str, reason: str, seconds: float | None = None) -> None:
        """Count a finished job; `reason` is a failure code or "ok"."""
        if outcome not in FINISHED_OUTCOMES:
            raise ValueError(f"outcome must be one of {FINISHED_OUTCOMES}, not {outcome!r}")
        self._jobs.labels(self.role, outcome, reason).inc()
        if seconds is not None:
            self._job_seconds.labels(self.role, outcome).observe(seconds)

    def job_refused(self, reason: str) -> None:
        """Count a job turned away before it ran ("busy", "rate_limited")."""
        self._jobs.labels(self.role, "refused", reason).inc()

    def stage(self, name: str, seconds: float) -> None:
        self._stage_seconds.labels(self.role, name).observe(seconds)

    def track_queue_depth(self, read: Callable[[], float]) -> None:
        """Report `read()` as the queue depth at each scrape; a later call replaces the reader."""
        self._queue_depth.labels(self.role).set_function(_safe_reader("memeswap_queue_depth", read))

    def track_workers(self, read: Callable[[], float]) -> None:
        """Report `read()` as the number of workers at each scrape; a later call replaces the reader."""
        self._workers.labels(self.role).set_function(_safe_reader("memeswap_workers", read))

    def exposition(self) -> tuple[bytes, str]:
        """The registry in Prometheus text format, and the content type to serve it with."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
