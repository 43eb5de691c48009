"""A PostgreSQL or a Redis that is still starting up, in front of a real one, for tests.

`StartingUp` listens on a free loopback port. Until `open()` it answers every connection as
a server that is up but not ready does, at the protocol level: PostgreSQL with the
ErrorResponse "the database system is starting up" (SQLSTATE 57P03, what asyncpg raises as
`CannotConnectNowError`), Redis with "-LOADING" (redis-py's `BusyLoadingError`). After
`open()` each new connection is forwarded, byte for byte, to the real server behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Literal

SSL_REQUEST = 80877103  # PostgreSQL: the code a client sends to ask for TLS before its startup message


def _postgres_starting_up() -> bytes:
    fields = b"".join(code + text + b"\0" for code, text in (
        (b"S", b"FATAL"), (b"V", b"FATAL"), (b"C", b"57P03"), (b"M", b"the database system is starting up")))
    body = fields + b"\0"
    return b"E" + struct.pack("!i", len(body) + 4) + body


class StartingUp:
    """`async with StartingUp("postgresql", host, port) as gate:` then `gate.port`, `gate.open()`."""

    def __init__(self, kind: Literal["postgresql", "redis"], upstream_host: str, upstream_port: int) -> None:
        self.kind = kind
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.refused = 0  # connections answered "starting up"
        self._open = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    def open(self) -> None:
        """From now on, connections reach the real server."""
        self._open = True

    async def __aenter__(self) -> StartingUp:
        self._server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self._open:
                await self._forward(reader, writer)
            elif self.kind == "postgresql":
                await self._postgres_refuse(reader, writer)
            else:
                await reader.read(65536)  # the first command, whatever it is
                writer.write(b"-LOADING Redis is loading the dataset in memory\r\n")
                self.refused += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                writer.close()
            self._tasks.discard(task)

    async def _postgres_refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            length, code = struct.unpack("!ii", await reader.readexactly(8))
            await reader.readexactly(length - 8)
            if code != SSL_REQUEST:
                break
            writer.write(b"N")  # no TLS here; the client goes on in the clear
            await writer.drain()
        writer.write(_postgres_starting_up())
        await writer.drain()
        self.refused += 1

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            finally:
                with contextlib.suppress(ConnectionError):
                    sink.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()
