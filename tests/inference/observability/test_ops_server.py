import asyncio
import errno
import json
import logging
import socket

import pytest

from memeswap.inference.observability.metrics import JobMetrics
from memeswap.inference.observability.ops_server import OpsServer


async def healthy() -> dict:
    return {"ok": True, "queue": "up"}


async def unhealthy() -> dict:
    return {"ok": False, "queue": "down"}


async def broken() -> dict:
    raise RuntimeError("redis\nunreachable")


async def slow() -> dict:
    await asyncio.sleep(10)
    return {"ok": True}


async def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes, return (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, body


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()


def serve(scenario, health=healthy, metrics: JobMetrics | None = None, **kwargs):
    async def main():
        async with OpsServer(metrics or JobMetrics(), health, port=0, **kwargs) as server:
            assert server.port != 0
            return await scenario(server.port)

    return asyncio.run(main())


def test_metrics_endpoint():
    metrics = JobMetrics(role="worker")
    metrics.job_finished("succeeded", "ok", seconds=1.5)
    status, headers, body = serve(lambda port: exchange(port, get("/metrics")), metrics=metrics)
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert b'memeswap_jobs_total{outcome="succeeded",reason="ok",role="worker"} 1.0' in body


def test_healthz_ok_and_not_ok():
    status, headers, body = serve(lambda port: exchange(port, get("/healthz")))
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body) == {"ok": True, "queue": "up"}

    status, _, body = serve(lambda port: exchange(port, get("/healthz?verbose=1")), health=unhealthy)
    assert status == 503
    assert json.loads(body) == {"ok": False, "queue": "down"}


def test_healthz_raising_gives_503_one_line():
    status, _, body = serve(lambda port: exchange(port, get("/healthz")), health=broken)
    assert status == 503
    payload = json.loads(body)
    assert payload["ok"] is False
    assert "redis" in payload["error"] and "\n" not in payload["error"]


def test_healthz_too_slow_gives_503():
    status, _, body = serve(lambda port: exchange(port, get("/healthz")), health=slow, health_timeout_s=0.1)
    assert status == 503
    assert json.loads(body)["ok"] is False


def test_unknown_path_wrong_method_and_garbage():
    async def scenario(port):
        return (
            await exchange(port, get("/nope")),
            await exchange(port, get("/metrics", method="POST")),
            await exchange(port, b"garbage\r\n\r\n"),
            await exchange(port, b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n"),
            await exchange(port, get("/healthz")),
        )

    not_found, not_allowed, garbage, bad_header, after = serve(scenario)
    assert not_found[0] == 404
    assert not_allowed[0] == 405
    assert {method.strip() for method in not_allowed[1]["allow"].split(",")} == {"GET", "HEAD"}
    assert garbage[0] == 400
    assert bad_header[0] == 400
    assert after[0] == 200


def test_oversized_headers_are_refused():
    raw = b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n"

    async def scenario(port):
        return await exchange(port, raw), await exchange(port, get("/healthz"))

    refused, after = serve(scenario)
    assert refused[0] == 400
    assert after[0] == 200


def test_client_errors_are_logged_in_one_line(caplog):
    async def scenario(port):
        for raw in (b"garbage\r\n\r\n", b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n"):
            await exchange(port, raw)
        return await exchange(port, get("/healthz"))

    with caplog.at_level(logging.DEBUG):
        assert serve(scenario, health=broken)[0] == 503
    assert all(record.levelno < logging.ERROR and record.exc_info is None for record in caplog.records)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "ops server: health check failed: RuntimeError: redis unreachable"]


def test_head_sends_headers_only():
    status, headers, body = serve(lambda port: exchange(port, get("/healthz", method="HEAD")))
    assert status == 200
    assert body == b""
    assert int(headers["content-length"]) == len(json.dumps({"ok": True, "queue": "up"}))


def test_silent_client_does_not_block_others():
    async def scenario(port):
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        served = await exchange(port, get("/healthz"))
        timed_out = await asyncio.wait_for(idle_reader.read(), 2)
        idle_writer.close()
        await idle_writer.wait_closed()
        return served, timed_out, await exchange(port, get("/metrics"))

    served, timed_out, later = serve(scenario, header_timeout_s=0.2)
    assert served[0] == 200
    assert timed_out == b""
    assert later[0] == 200


def test_client_that_never_finishes_its_request_is_closed():
    async def scenario(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: loc")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 2)
        writer.close()
        await writer.wait_closed()
        return data

    assert serve(scenario, header_timeout_s=0.2) == b""


def test_client_that_hangs_up_early_does_not_kill_server():
    async def scenario(port):
        for raw in (b"", b"GET /met"):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            writer.close()
            await writer.wait_closed()
        return await exchange(port, get("/healthz"))

    assert serve(scenario)[0] == 200


def test_close_ends_open_connections():
    async def main():
        server = OpsServer(JobMetrics(), healthy)
        await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await asyncio.sleep(0.05)
        await asyncio.wait_for(server.close(), 2)
        data = await asyncio.wait_for(reader.read(), 2)
        writer.close()
        return data

    assert asyncio.run(main()) == b""


def test_port_in_use_raises_oserror_with_errno():
    async def main():
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            with pytest.raises(OSError) as raised:
                await OpsServer(JobMetrics(), healthy, port=holder.getsockname()[1]).start()
        return raised.value.errno

    assert asyncio.run(main()) == errno.EADDRINUSE
