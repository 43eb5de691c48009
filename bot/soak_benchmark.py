"""`memeswap bench --soak MINUTES`: steady load through the bot's own path for a long while,
to find what grows and what is left behind.

A bot shard (the `BotServices` every adapter uses: store, quota, selfie blobs, the Redis
engine) and `memeswap worker` processes run against a throwaway redis-server with AOF, in a
data folder and a temp folder of their own. Submitters each start a swap, follow it, fetch
and discard the meme as an adapter does after posting it, and start the next, until the time
is up. Printed: throughput, p50/p95 latency, every process's RSS at the end of the warm-up
(the first fifth of the run) and at the end, Redis's memory, and what
is left once the load stops: blobs, consumers, pending and unfinished entries, temp files
and the track cache's bytes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr
from redis import Redis

from memeswap.bot.assembly import open_services
from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.load_benchmark import UNLIMITED, percentile, selfie_png, wait_for_workers
from memeswap.bot.ops import steady_malloc
from memeswap.bot.services import BotServices
from memeswap.bot.settings import Settings
from memeswap.inference.jobs.contract import Failed, Succeeded
from memeswap.inference.jobs.local_redis import LocalRedisServer
from memeswap.inference.jobs.redis_protocol import WORKER_GROUP, StreamKeys
from memeswap.inference.meme_maker import MemeMaker
from memeswap.inference.sizes import human_bytes

SETTLE_S = 5.0  # after the load stops: the last finals, blob deletes and heartbeats land


@dataclass
class SoakReport:
    minutes: float
    workers: int
    submitters: int
    template: str
    jobs: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    rss_warm_mb: dict[str, float] = field(default_factory=dict)
    rss_samples_mb: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # (minute, MB) after warm-up
    rss_end_mb: dict[str, float] = field(default_factory=dict)
    redis_warm_bytes: int = 0
    redis_end_bytes: int = 0
    track_cache_warm_bytes: int = 0
    leftovers: dict[str, int] = field(default_factory=dict)
    temp_left: list[str] = field(default_factory=list)  # the first few names, to find who left them


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc); 0 where there is none to read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) if folder.exists() else 0


def run_soak_benchmark(settings: Settings, maker: MemeMaker, minutes: float, workers: int, submitters: int,
                       template: str) -> SoakReport:
    steady_malloc()  # this process plays the bot shard, as `memeswap serve` runs it
    selfie = selfie_png(maker)
    report = SoakReport(minutes, workers, submitters, template)
    with tempfile.TemporaryDirectory(prefix="memeswap-soak-") as folder, \
            LocalRedisServer(append_only=True) as server:
        root = Path(folder)
        scratch = root / "tmp"
        scratch.mkdir()
        prefix = "soak:"
        soak_settings = settings.model_copy(update={
            "redis_url": SecretStr(server.url), "redis_prefix": prefix, "shard_name": "soak", "data_dir": root / "data",
            "swaps_per_user_per_day": 10**9, "job_queue_max": UNLIMITED["max_queue"],
            "per_user_jobs": UNLIMITED["per_user_concurrency"],
            "per_user_jobs_per_minute": UNLIMITED["per_user_rate"][0], "per_user_burst": UNLIMITED["per_user_rate"][1],
        })
        env = {**os.environ, "MEMESWAP_REDIS_URL": server.url, "MEMESWAP_REDIS_PREFIX": prefix,
               "MEMESWAP_OPS_PORT": "0", "MEMESWAP_DATA_DIR": str(root / "data"),
               "MEMESWAP_MODELS_DIR": str(settings.models_dir), "TMPDIR": str(scratch)}
        processes = {f"worker {i + 1}": subprocess.Popen([sys.executable, "-m", "memeswap", "worker"], env=env,
                                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for i in range(workers)}
        tempfile.tempdir = str(scratch)  # this process's own temp files land there too
        try:
            wait_for_workers(server.url, StreamKeys(prefix), workers, list(processes.values()))
            asyncio.run(_soak(soak_settings, maker, selfie, report, processes))
            report.leftovers.update(_leftovers(server.url, StreamKeys(prefix), workers))
            report.temp_left = sorted(str(path.relative_to(scratch)) for path in scratch.rglob("*"))[:20]
            report.leftovers["temp files"] = len(report.temp_left)
            report.leftovers["track cache growth bytes"] = (folder_bytes(soak_settings.cache_dir)
                                                            - report.track_cache_warm_bytes)
        finally:
            tempfile.tempdir = None
            for process in processes.values():
                process.terminate()
            for process in processes.values():
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    return report


async def _soak(settings: Settings, maker: MemeMaker, selfie: bytes, report: SoakReport,
                processes: dict[str, subprocess.Popen]) -> None:
    duration_s = report.minutes * 60
    warm_up_s = duration_s / 5
    async with open_services(settings, maker=maker) as services:
        began = time.monotonic()
        stop_at = began + duration_s
        one_done = asyncio.Event()
        warm = asyncio.get_running_loop().call_later(warm_up_s, lambda: asyncio.ensure_future(
            _note_warm(settings, report, processes, one_done)))
        sampler = asyncio.create_task(_sample_rss(report, processes, began + warm_up_s, stop_at, began))
        await asyncio.gather(*(_submitter(services, selfie, report, index, stop_at, began + warm_up_s, one_done)
                               for index in range(report.submitters)))
        warm.cancel()
        await sampler
        await asyncio.sleep(SETTLE_S)
        report.rss_end_mb = _all_rss(processes)
        report.redis_end_bytes = _redis_memory(settings)


async def _note_warm(settings: Settings, report: SoakReport, processes: dict[str, subprocess.Popen],
                     one_done: asyncio.Event) -> None:
    """What the warm-up ends with; not before one job has finished, since the first job
    compiles the template's tracks (a short soak on a busy machine can outlast its warm-up
    with its first job)."""
    await one_done.wait()
    report.rss_warm_mb = _all_rss(processes)
    report.redis_warm_bytes = _redis_memory(settings)
    report.track_cache_warm_bytes = folder_bytes(settings.cache_dir)


async def _sample_rss(report: SoakReport, processes: dict[str, subprocess.Popen], start: float, stop: float,
                      began: float) -> None:
    """Every process's RSS, 40 times between the end of the warm-up and the end: a single
    reading moves by tens of MB with the job in hand, so growth is judged by the trend."""
    step = (stop - start) / 40
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    while time.monotonic() <= stop:
        minute = (time.monotonic() - began) / 60
        for name, mb in _all_rss(processes).items():
            report.rss_samples_mb.setdefault(name, []).append((minute, mb))
        await asyncio.sleep(step)


def trend_mb_per_minute(samples: list[tuple[float, float]]) -> float:
    """The least-squares slope of (minute, MB) samples."""
    if len(samples) < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / len(samples)
    mean_mb = sum(mb for _, mb in samples) / len(samples)
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    return sum((t - mean_t) * (mb - mean_mb) for t, mb in samples) / spread if spread else 0.0


def _all_rss(processes: dict[str, subprocess.Popen]) -> dict[str, float]:
    return {"bot shard": rss_mb(os.getpid()), **{name: rss_mb(p.pid) for name, p in processes.items()}}


def _redis_memory(settings: Settings) -> int:
    assert settings.redis_url is not None
    with Redis.from_url(settings.redis_url.get_secret_value()) as client:
        return int(client.info("memory")["used_memory"])


async def _submitter(services: BotServices, selfie: bytes, report: SoakReport, index: int, stop_at: float,
                     counts_from: float, one_done: asyncio.Event) -> None:
    """One person after another (a new user every ten swaps), as the adapters start,
    follow and post a swap."""
    n = 0
    while time.monotonic() < stop_at:
        user = f"{index}x{n // 10}"
        n += 1
        requester = Requester("soak", user, Scope("user", "soak", user))
        began = time.monotonic()
        try:
            job = await services.swaps.start(requester, report.template, selfie=selfie)
            final: Succeeded | Failed | None = None
            async for event in services.swaps.follow(job):
                if isinstance(event, Succeeded | Failed):
                    final = event
            if isinstance(final, Succeeded):
                await services.result(final)
                await services.discard_result(final)
            code = "ok" if isinstance(final, Succeeded) else (final.code if final else "no final")
        except Exception as error:  # noqa: BLE001 (a refusal is a result of the soak too)
            code = getattr(error, "code", type(error).__name__)
        one_done.set()
        if began >= counts_from:
            report.jobs += 1
            report.latencies.append(time.monotonic() - began)
            if code != "ok":
                report.failures[code] = report.failures.get(code, 0) + 1


def _leftovers(url: str, keys: StreamKeys, workers: int) -> dict[str, int]:
    with Redis.from_url(url) as client:
        consumers = client.xinfo_consumers(keys.jobs, WORKER_GROUP)
        return {
            "blobs": int(client.zcard(f"{keys.prefix}blobs")),
            "blob keys": sum(1 for _ in client.scan_iter(f"{keys.prefix}blob:*", count=1000)),
            "consumers beyond the live workers": max(0, len(consumers) - workers),
            "pending entries": int(client.xpending(keys.jobs, WORKER_GROUP)["pending"]),
            "jobs-stream entries": int(client.xlen(keys.jobs)),
            "jobs counted as waiting": int(client.get(keys.waiting) or 0),
            "users counted as active": sum(1 for _ in client.scan_iter(f"{keys.prefix}active:*", count=1000)),
            "unacknowledged results": int(client.xpending(keys.results("soak"), "shard")["pending"]),
        }


def format_soak_report(report: SoakReport) -> str:
    lat = report.latencies or [0.0]
    per_minute = report.jobs / (report.minutes * 0.8)
    lines = [f"soak: {report.minutes:g} min of '{report.template}', {report.submitters} submitters, "
             f"{report.workers} workers, {os.cpu_count()} CPU cores (figures after the warm-up)",
             f"jobs {report.jobs}  ({per_minute:.1f}/min)  p50 {percentile(lat, 50):.2f} s  "
             f"p95 {percentile(lat, 95):.2f} s  failed {sum(report.failures.values())}"
             + (f" {report.failures}" if report.failures else ""),
             f"{'process':<12} {'RSS warm MB':>12} {'min':>6} {'max':>6} {'end':>6} {'trend MB/min':>13}"]
    for name, end in report.rss_end_mb.items():
        samples = report.rss_samples_mb.get(name, [])
        low, high = (min(mb for _, mb in samples), max(mb for _, mb in samples)) if samples else (0.0, 0.0)
        lines.append(f"{name:<12} {report.rss_warm_mb.get(name, 0.0):>12.0f} {low:>6.0f} {high:>6.0f} {end:>6.0f} "
                     f"{trend_mb_per_minute(samples):>+13.2f}")
    redis_warm, redis_end = report.redis_warm_bytes / 2**20, report.redis_end_bytes / 2**20
    lines.append(f"{'redis':<12} {redis_warm:>12.1f} {'':>6} {'':>6} {redis_end:>6.1f}")
    lines.append("left over: " + ", ".join(f"{name} {human_bytes(value) if 'bytes' in name else value}"
                                           for name, value in report.leftovers.items()))
    if report.temp_left:
        lines.append("temp files left: " + ", ".join(report.temp_left))
    return "\n".join(lines)
