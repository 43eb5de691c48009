"""`memeswap bench --load N`: N concurrent submitters push swap jobs of one template
through the job service and measure what a chat user would feel.

Each submitter sends a job, follows it to its final event and sends the next, until the
run's jobs are done. Reported per engine and worker count: jobs per second, the latency
from submit to final event (p50, p95), and how late the submitting process's event loop
woke up meanwhile (the figure that says whether a bot on that loop still answers chats).

The in-process engine runs its workers as threads of this process; the Redis engine runs
`memeswap worker` processes against a throwaway redis-server on loopback.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypedDict

import cv2
from pydantic import SecretStr
from redis import Redis

from memeswap.bot.assembly import build_blob_store, build_engine, build_meme_maker
from memeswap.bot.settings import Settings
from memeswap.inference.jobs.blobs import BlobStore, LocalBlobStore
from memeswap.inference.jobs.contract import Succeeded, SwapJob, new_job_id
from memeswap.inference.jobs.in_process import LagProbe
from memeswap.inference.jobs.local_redis import LocalRedisServer
from memeswap.inference.jobs.redis_protocol import StreamKeys
from memeswap.inference.meme_maker import MemeMaker
from memeswap.inference.samples import sample_selfie


# The bench measures throughput, not the per-user limits: each submitter is its own user.
class _Limits(TypedDict):
    max_queue: int
    per_user_concurrency: int
    per_user_rate: tuple[float, float]


UNLIMITED: _Limits = {"max_queue": 100_000, "per_user_concurrency": 100_000, "per_user_rate": (1e9, 1e9)}


@dataclass
class LoadResult:
    engine: str
    workers: int
    submitters: int
    jobs: int
    failed: int
    seconds: float
    jobs_per_s: float
    p50_s: float
    p95_s: float
    loop_lag_max_ms: float
    loop_lag_p99_ms: float


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


async def drive(engine, selfie_ref: str, template: str, submitters: int, jobs: int) -> tuple[list[float], int, float,
                                                                                             LagProbe]:
    """Run `jobs` jobs from `submitters` concurrent submitters; (latencies, failed, wall seconds, lag probe)."""
    remaining = [jobs]
    latencies: list[float] = []
    failed = [0]

    async def submitter(index: int) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            job = SwapJob(job_id=new_job_id(), user_key=f"bench:{index}", selfie_ref=selfie_ref, template=template)
            began = time.perf_counter()
            await engine.submit(job)
            final = [event async for event in engine.events(job.job_id)][-1]
            latencies.append(time.perf_counter() - began)
            if not isinstance(final, Succeeded):
                failed[0] += 1

    async with LagProbe() as probe:
        began = time.perf_counter()
        await asyncio.gather(*(submitter(i) for i in range(submitters)))
        wall = time.perf_counter() - began
    return latencies, failed[0], wall, probe


async def measure(label: str, engine, blobs: BlobStore, selfie: bytes, template: str, workers: int, submitters: int,
                  jobs: int) -> LoadResult:
    async with engine:
        selfie_ref = await asyncio.to_thread(blobs.put, selfie, 3600)
        await drive(engine, selfie_ref, template, workers, workers)  # warm-up: models, template, caches
        latencies, failed, wall, probe = await drive(engine, selfie_ref, template, submitters, jobs)
    lags = probe.samples or [0.0]
    return LoadResult(label, workers, submitters, jobs, failed, round(wall, 2), round(jobs / wall, 3),
                      round(percentile(latencies, 50), 2), round(percentile(latencies, 95), 2),
                      round(max(lags) * 1000, 1), round(percentile(lags, 99) * 1000, 1))


def selfie_png(maker: MemeMaker) -> bytes:
    image, _ = sample_selfie(maker.analyser)
    return cv2.imencode(".png", image[:, :, ::-1])[1].tobytes()


def bench_in_process(settings: Settings, maker: MemeMaker, selfie: bytes, template: str, workers: int,
                     submitters: int, jobs: int) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="memeswap-load-") as folder:
        blobs = LocalBlobStore(Path(folder))
        engine = build_engine(settings, blobs, maker=maker, workers=workers, **UNLIMITED)
        return asyncio.run(measure("in-process", engine, blobs, selfie, template, workers, submitters, jobs))


def bench_redis(settings: Settings, server: LocalRedisServer, selfie: bytes, template: str, workers: int,
                submitters: int, jobs: int) -> LoadResult:
    prefix = f"load{workers}-{os.getpid()}:"
    redis_settings = settings.model_copy(update={"redis_url": SecretStr(server.url), "redis_prefix": prefix,
                                                 "shard_name": "bench"})
    env = {**os.environ, "MEMESWAP_REDIS_URL": server.url, "MEMESWAP_REDIS_PREFIX": prefix, "MEMESWAP_OPS_PORT": "0",
           "MEMESWAP_DATA_DIR": str(settings.data_dir), "MEMESWAP_MODELS_DIR": str(settings.models_dir)}
    processes = [subprocess.Popen([sys.executable, "-m", "memeswap", "worker"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(workers)]
    try:
        wait_for_workers(server.url, StreamKeys(prefix), workers, processes)
        blobs = build_blob_store(redis_settings)
        engine = build_engine(redis_settings, blobs, **UNLIMITED)
        return asyncio.run(measure("redis", engine, blobs, selfie, template, workers, submitters, jobs))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for_workers(url: str, keys: StreamKeys, count: int, processes: list[subprocess.Popen],
                      timeout_s: float = 120.0) -> None:
    client = Redis.from_url(url)
    deadline = time.monotonic() + timeout_s
    try:
        while client.zcount(keys.workers, int(time.time() * 1000), "+inf") < count:
            if any(p.poll() is not None for p in processes):
                raise RuntimeError("a `memeswap worker` process exited at start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} workers did not start within {timeout_s:g} s")
            time.sleep(0.2)
    finally:
        client.close()


def run_load_benchmark(settings: Settings, submitters: int, jobs: int, template: str,
                       worker_counts: tuple[int, ...] = (1, 2), engines: tuple[str, ...] = ("in-process", "redis"),
                       maker: MemeMaker | None = None) -> list[LoadResult]:
    maker = maker or build_meme_maker(settings)
    maker.compile(template)  # compiled once, before any clock runs
    selfie = selfie_png(maker)
    results = []
    if "in-process" in engines:
        for workers in worker_counts:
            results.append(bench_in_process(settings, maker, selfie, template, workers, submitters, jobs))
    if "redis" in engines:
        with LocalRedisServer() as server:
            for workers in worker_counts:
                results.append(bench_redis(settings, server, selfie, template, workers, submitters, jobs))
    return results


def format_load_report(results: list[LoadResult], template: str, frames: int) -> str:
    first = results[0]
    lines = [f"load: {first.submitters} concurrent submitters, {first.jobs} jobs of '{template}' ({frames} frames), "
             f"{os.cpu_count()} CPU cores",
             f"{'engine':<11} {'workers':>7} {'jobs/s':>7} {'p50 s':>6} {'p95 s':>6} {'loop lag max/p99 ms':>20} "
             f"{'failed':>6}"]
    for r in results:
        lines.append(f"{r.engine:<11} {r.workers:>7} {r.jobs_per_s:>7.2f} {r.p50_s:>6.2f} {r.p95_s:>6.2f} "
                     f"{f'{r.loop_lag_max_ms:.0f} / {r.loop_lag_p99_ms:.0f}':>20} {r.failed:>6}")
    return "\n".join(lines)


def results_as_dicts(results: list[LoadResult]) -> list[dict]:
    return [asdict(r) for r in results]
