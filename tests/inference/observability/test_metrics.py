import logging
import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from memeswap.inference.observability.metrics import JobMetrics


def samples(metrics: JobMetrics) -> dict[tuple[str, frozenset], float]:
    body, _ = metrics.exposition()
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def key(name: str, **labels: str) -> tuple[str, frozenset]:
    return name, frozenset(labels.items())


def test_job_counters_carry_role_outcome_and_reason():
    m = JobMetrics(role="worker")
    m.job_finished("succeeded", "ok")
    m.job_finished("succeeded", "ok")
    m.job_finished("failed", "no_face")
    m.job_refused("busy")
    s = samples(m)
    assert s[key("memeswap_jobs_total", role="worker", outcome="succeeded", reason="ok")] == 2
    assert s[key("memeswap_jobs_total", role="worker", outcome="failed", reason="no_face")] == 1
    assert s[key("memeswap_jobs_total", role="worker", outcome="refused", reason="busy")] == 1
    assert not any(name == "memeswap_jobs_total" and ("role", "bot") in labels for name, labels in s)


def test_job_seconds_observed_only_when_given():
    m = JobMetrics()
    m.job_finished("failed", "deadline")
    assert key("memeswap_job_seconds_count", role="bot", outcome="failed") not in samples(m)
    m.job_finished("succeeded", "ok", seconds=4.0)
    m.job_finished("succeeded", "ok", seconds=0.1)
    s = samples(m)
    assert s[key("memeswap_job_seconds_count", role="bot", outcome="succeeded")] == 2
    assert s[key("memeswap_job_seconds_sum", role="bot", outcome="succeeded")] == pytest.approx(4.1)
    assert s[key("memeswap_job_seconds_bucket", role="bot", outcome="succeeded", le="0.25")] == 1
    assert s[key("memeswap_job_seconds_bucket", role="bot", outcome="succeeded", le="5.0")] == 2
    assert key("memeswap_job_seconds_bucket", role="bot", outcome="succeeded", le="300.0") in s


def test_stage_histogram():
    m = JobMetrics()
    m.stage("swap", 0.3)
    m.stage("swap", 2.0)
    m.stage("blob_put", 0.004)
    s = samples(m)
    assert s[key("memeswap_stage_seconds_count", role="bot", stage="swap")] == 2
    assert s[key("memeswap_stage_seconds_sum", role="bot", stage="swap")] == pytest.approx(2.3)
    assert s[key("memeswap_stage_seconds_bucket", role="bot", stage="blob_put", le="0.005")] == 1
    assert s[key("memeswap_stage_seconds_bucket", role="bot", stage="swap", le="60.0")] == 2


def test_bad_role_and_outcome_are_refused():
    with pytest.raises(ValueError):
        JobMetrics(role="admin")
    with pytest.raises(ValueError):
        JobMetrics().job_finished("refused", "busy")


def test_gauges_are_read_at_scrape_time():
    m = JobMetrics(role="worker")
    depth = [3]
    m.track_queue_depth(lambda: depth[0])
    m.track_workers(lambda: 4)
    assert samples(m)[key("memeswap_queue_depth", role="worker")] == 3
    depth[0] = 7
    s = samples(m)
    assert s[key("memeswap_queue_depth", role="worker")] == 7
    assert s[key("memeswap_workers", role="worker")] == 4


def test_raising_read_gives_nan_and_logs_once(caplog):
    m = JobMetrics()
    m.job_finished("succeeded", "ok")
    healthy = [False]

    def read() -> float:
        if not healthy[0]:
            raise ConnectionError("redis down")
        return 2

    m.track_queue_depth(read)
    with caplog.at_level(logging.DEBUG, logger="memeswap.inference.observability.metrics"):
        for _ in range(3):
            s = samples(m)
            assert math.isnan(s[key("memeswap_queue_depth", role="bot")])
            assert s[key("memeswap_jobs_total", role="bot", outcome="succeeded", reason="ok")] == 1
    failures = [r for r in caplog.records if r.name == "memeswap.inference.observability.metrics"]
    assert len(failures) == 1
    assert failures[0].levelno == logging.DEBUG
    healthy[0] = True
    assert samples(m)[key("memeswap_queue_depth", role="bot")] == 2


def test_two_objects_do_not_share_state():
    a, b = JobMetrics(), JobMetrics()
    assert a.registry is not b.registry
    a.job_finished("failed", "internal", seconds=1.0)
    a.track_queue_depth(lambda: 5)
    s = samples(b)
    assert not any(name.startswith("memeswap_jobs") and "failed" in dict(labels).values() for name, labels in s)
    assert key("memeswap_queue_depth", role="bot") not in s
    assert samples(a)[key("memeswap_jobs_total", role="bot", outcome="failed", reason="internal")] == 1


def test_exposition_content_type():
    body, content_type = JobMetrics().exposition()
    assert content_type.startswith("text/plain")
    assert b"# TYPE memeswap_jobs_total counter" in body
    assert b"# TYPE memeswap_stage_seconds histogram" in body
