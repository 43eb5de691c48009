"""`memeswap worker` as an operator runs it: a real process that takes real swap jobs from
Redis, serves /metrics and /healthz, logs JSON lines with the job id and stops cleanly on
SIGTERM; the bot side's own metrics are served the same way."""

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import cv2
from PIL import Image

from memeswap.inference.jobs.contract import Succeeded, SwapJob
from memeswap.inference.jobs.local_redis import LocalRedisServer, free_loopback_port
from memeswap.inference.jobs.redis_blobs import RedisBlobStore
from memeswap.inference.jobs.redis_engine import RedisStreamsEngine
from memeswap.inference.jobs.redis_protocol import StreamKeys
from memeswap.inference.observability.ops_server import OpsServer
from memeswap.inference.samples import crop_face
from tests.bot.ops_ports import DEFAULT_OPS_PORT, healthy, held, served_port
from tests.inference.jobs.engine_harness import collect


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_memeswap_worker_swaps_jobs_from_redis_and_serves_metrics(tmp_path, redis_url, redis_prefix, group):
    image, faces = group
    blobs = RedisBlobStore.from_url(redis_url, prefix=redis_prefix)
    selfie_ref = blobs.put(cv2.imencode(".png", crop_face(image, faces[2])[:, :, ::-1])[1].tobytes(), 600)
    port = free_loopback_port()
    env = {**os.environ, "MEMESWAP_REDIS_URL": redis_url, "MEMESWAP_REDIS_PREFIX": redis_prefix,
           "MEMESWAP_OPS_PORT": str(port), "MEMESWAP_DATA_DIR": str(tmp_path / "data"), "MEMESWAP_LOG_FORMAT": "json"}
    worker = subprocess.Popen([sys.executable, "-m", "memeswap", "worker"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    async def scenario():
        engine = RedisStreamsEngine.from_url(redis_url, "shard-cli", keys=StreamKeys(redis_prefix))
        async with engine, OpsServer(engine.metrics, engine.health) as bot_ops:
            job = SwapJob(job_id="cli-1", user_key="telegram:77", selfie_ref=selfie_ref, template="bounce")
            await engine.submit(job)
            events = await collect(engine, job.job_id, timeout=240)
            worker_side = [await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/{path}")
                           for path in ("metrics", "healthz")]
            bot_side = await asyncio.to_thread(fetch, f"http://127.0.0.1:{bot_ops.port}/metrics")
            return events, worker_side, bot_side

    try:
        events, (worker_metrics, worker_health), bot_metrics = asyncio.run(scenario())
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr[-2000:]

    final = events[-1]
    assert isinstance(final, Succeeded) and final.mime == "image/gif"
    progress = [e for e in events if e.kind == "progress"]
    assert progress[-1].done == progress[-1].total == 36
    with Image.open(io.BytesIO(blobs.get(final.result_ref))) as gif:
        assert gif.format == "GIF" and gif.n_frames == 36

    status, text = worker_metrics
    assert status == 200
    assert 'memeswap_jobs_total{outcome="succeeded",reason="ok",role="worker"} 1.0' in text
    assert 'memeswap_stage_seconds_count{role="worker",stage="swap"} 1.0' in text
    status, text = worker_health
    assert status == 200 and json.loads(text)["ok"] is True
    status, text = bot_metrics
    assert status == 200 and 'memeswap_jobs_total{outcome="succeeded",reason="ok",role="bot"} 1.0' in text

    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(line.get("job_id") == "cli-1" and line.get("outcome") == "ok" for line in lines), stderr[-2000:]
    assert redis_url not in stderr


def test_worker_without_a_redis_url_is_one_clear_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MEMESWAP_REDIS_URL"}
    env["MEMESWAP_DATA_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "memeswap", "worker"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: memeswap worker needs MEMESWAP_REDIS_URL; without Redis the bot runs jobs itself"]


def test_worker_with_an_unreachable_redis_is_one_clear_line(tmp_path):
    """MEMESWAP_STARTUP_WAIT_S=0: one try (tests/bot/test_startup_wait.py has the waiting)."""
    env = {**os.environ, "MEMESWAP_DATA_DIR": str(tmp_path), "MEMESWAP_OPS_PORT": "0", "MEMESWAP_STARTUP_WAIT_S": "0",
           "MEMESWAP_REDIS_URL": f"redis://:hunter2@127.0.0.1:{free_loopback_port()}/0"}
    result = subprocess.run([sys.executable, "-m", "memeswap", "worker"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 2
    served, error = result.stderr.strip().splitlines()  # /healthz is up (saying "starting") before Redis is tried
    assert "/metrics and /healthz on http://127.0.0.1:" in served, result.stderr
    assert error.startswith("error: cannot reach Redis (MEMESWAP_REDIS_URL): "), result.stderr
    assert "hunter2" not in result.stderr


def test_two_workers_on_one_host_both_come_up_and_answer_healthz(tmp_path, redis_url, redis_prefix):
    """The default ops port is taken (by the first worker, or anything else on this host): a
    worker whose MEMESWAP_OPS_PORT is unset serves on a free port and says which, once."""
    env = {k: v for k, v in os.environ.items() if k != "MEMESWAP_OPS_PORT"}
    env.update({"MEMESWAP_REDIS_URL": redis_url, "MEMESWAP_REDIS_PREFIX": redis_prefix,
                "MEMESWAP_DATA_DIR": str(tmp_path / "data")})

    async def main():
        workers = [await asyncio.create_subprocess_exec(sys.executable, "-m", "memeswap", "worker", cwd=tmp_path, env=env,
                                                        stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.PIPE)
                   for _ in range(2)]
        logs: list[list[str]] = [[], []]
        try:
            ports = [await served_port(worker.stderr, seen) for worker, seen in zip(workers, logs)]
            health = [await healthy(port) for port in ports]
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker, seen in zip(workers, logs):
                seen.extend(line.decode() for line in (await asyncio.wait_for(worker.communicate(), 60))[1]
                            .splitlines(keepends=True))
        return ports, health, [w.returncode for w in workers], logs

    with held(DEFAULT_OPS_PORT):
        ports, health, codes, logs = asyncio.run(main())
    assert codes == [0, 0], logs
    assert len(set(ports)) == 2 and DEFAULT_OPS_PORT not in ports
    for (status, body), port in zip(health, ports):
        assert status == 200 and json.loads(body)["ok"] is True, (port, body)
    for seen, port in zip(logs, ports):
        moved = [line for line in seen if f"port {DEFAULT_OPS_PORT} is taken" in line]
        assert len(moved) == 1 and f"on port {port} instead" in moved[0], seen


def test_worker_with_a_busy_ops_port_it_was_given_is_one_clear_line(tmp_path, redis_url, redis_prefix):
    with held() as port:
        env = {**os.environ, "MEMESWAP_REDIS_URL": redis_url, "MEMESWAP_REDIS_PREFIX": redis_prefix,
               "MEMESWAP_OPS_PORT": str(port), "MEMESWAP_DATA_DIR": str(tmp_path / "data")}
        result = subprocess.run([sys.executable, "-m", "memeswap", "worker"], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=180)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot serve /metrics and /healthz on 127.0.0.1:{port} (MEMESWAP_OPS_HOST, MEMESWAP_OPS_PORT): "
        "address already in use"]


def wait_for_health(port: int, status: str, timeout: float = 120) -> dict:
    """Poll /healthz until it answers with `status` ("ok" or "degraded")."""
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        try:
            _, body = fetch(f"http://127.0.0.1:{port}/healthz")
            answer = json.loads(body)
            if answer.get("status", "ok" if answer["ok"] else "") == status:
                return answer
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"/healthz never said {status}; last: {body}")


def test_memeswap_worker_rides_out_a_redis_crash_and_an_empty_restart(tmp_path, group):
    """Redis killed with kill -9 and started again without its data: the worker stays up,
    says "degraded" on /healthz meanwhile, creates its consumer group again, and swaps the
    next job."""
    image, faces = group
    port = free_loopback_port()
    with LocalRedisServer() as server:
        env = {**os.environ, "MEMESWAP_REDIS_URL": server.url, "MEMESWAP_OPS_PORT": str(port),
               "MEMESWAP_DATA_DIR": str(tmp_path / "data"), "MEMESWAP_LOG_FORMAT": "json"}
        worker = subprocess.Popen([sys.executable, "-m", "memeswap", "worker"], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_health(port, "ok")
            server.crash()
            degraded = wait_for_health(port, "degraded", timeout=30)
            server.start()
            wait_for_health(port, "ok", timeout=30)
            blobs = RedisBlobStore.from_url(server.url)
            selfie_ref = blobs.put(cv2.imencode(".png", crop_face(image, faces[2])[:, :, ::-1])[1].tobytes(), 600)

            async def one_job():
                async with RedisStreamsEngine.from_url(server.url, "shard-crash") as engine:
                    await engine.submit(SwapJob(job_id="after-crash", user_key="telegram:5", selfie_ref=selfie_ref,
                                                template="bounce"))
                    return await collect(engine, "after-crash", timeout=240)

            events = asyncio.run(one_job())
            alive_after = worker.poll() is None
        finally:
            worker.send_signal(signal.SIGTERM)
            _, stderr = worker.communicate(timeout=60)
    assert alive_after, stderr[-2000:]
    assert degraded["ok"] is False and "redis unreachable for" in degraded["error"]
    assert isinstance(events[-1], Succeeded), events[-1]
    assert worker.returncode == 0, stderr[-2000:]
    messages = [json.loads(line)["message"] for line in stderr.splitlines() if line.startswith("{")]
    assert sum(message.startswith("lost Redis") for message in messages) == 1, messages
    assert any(message.startswith("Redis is back after") for message in messages), messages
    assert any("group is gone" in message for message in messages), messages
