"""Ops ports as several processes on one host meet them: a port someone else holds, and the
port a `memeswap` process says (in its log) it serves /metrics and /healthz on."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from memeswap.bot.settings import Settings

DEFAULT_OPS_PORT: int = Settings.model_fields["ops_port"].default
SERVING = re.compile(r"/metrics and /healthz on http://127\.0\.0\.1:(\d+)")


@contextlib.contextmanager
def held(port: int = 0) -> Iterator[int]:
    """`port` (0: a free one) taken by a listening socket while the block runs, as another
    process would hold it. A port that something else holds already stays taken all the same."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            holder.bind(("127.0.0.1", port))
            holder.listen()
        except OSError:
            if port == 0:
                raise
        yield port or holder.getsockname()[1]
    finally:
        holder.close()


async def served_port(stderr: asyncio.StreamReader, seen: list[str], timeout: float = 120.0) -> int:
    """Read a process's log lines (kept in `seen`) until it says where it serves /metrics."""
    deadline = time.monotonic() + timeout
    while True:
        line = await asyncio.wait_for(stderr.readline(), max(0.1, deadline - time.monotonic()))
        if not line:
            raise AssertionError("the process ended before serving /metrics:\n" + "".join(seen)[-3000:])
        seen.append(line.decode())
        if match := SERVING.search(seen[-1]):
            return int(match.group(1))


def healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def healthy(port: int, timeout: float = 120.0) -> tuple[int, str]:
    """/healthz once it answers 200 (it says "starting" while the models load), or the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = await asyncio.to_thread(healthz, port)
        if status == 200 or time.monotonic() > deadline:
            return status, body
        await asyncio.sleep(0.2)
