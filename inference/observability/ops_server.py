"""A tiny HTTP/1.1 server for operations endpoints: `/metrics` and `/healthz`.

Built on `asyncio.start_server` so it runs in the bot's or the worker's own event loop
without a web framework. Every response closes the connection, so there is no keep-alive,
no request body and no chunking to handle. Each request's headers are read under a time
and a size limit; whatever a client sends, the worst it gets is an error status, and the
server and the other connections carry on.
"""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from memeswap.inference.observability.metrics import JobMetrics

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[dict]]
"""Returns a JSON-able dict that holds at least "ok": bool."""

ALLOWED_METHODS = ("GET", "HEAD")
JSON_CONTENT_TYPE = "application/json"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"


class BadRequest(Exception):
    """The request cannot be parsed; answered with 400."""


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())[:300]


def _parse_head(head: bytes) -> tuple[str, str]:
    """Return (method, path) from the request line and headers, or raise BadRequest."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadRequest("request head is not ASCII") from exc
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest("request line must be METHOD TARGET VERSION")
    method, target, version = parts
    if not method.isalpha() or not method.isupper():
        raise BadRequest("bad method")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequest("unsupported HTTP version")
    if not target.startswith("/"):
        raise BadRequest("target must be an absolute path")
    for line in lines[1:]:
        if line and (":" not in line or line[0] in " \t"):
            raise BadRequest("malformed header line")
    path = target.split("?", 1)[0].split("#", 1)[0]
    return method, path


class OpsServer:
    """Serves `GET /metrics` and `GET /healthz` (and HEAD for both) on one host and port."""

    def __init__(self, metrics: JobMetrics, health: HealthCheck, host: str = "127.0.0.1", port: int = 0,
                 header_timeout_s: float = 5.0, max_header_bytes: int = 8192,
                 health_timeout_s: float = 2.0) -> None:
        self.metrics = metrics
        self.health = health
        self.host = host
        self.port = port
        self.header_timeout_s = header_timeout_s
        self.max_header_bytes = max_header_bytes
        self.health_timeout_s = health_timeout_s
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Bind and start serving; afterwards `self.port` holds the real port."""
        if self._server is not None:
            raise RuntimeError("OpsServer already started")
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=self.max_header_bytes,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("/metrics and /healthz on http://%s:%d", self.host, self.port)

    async def close(self) -> None:
        """Stop listening and cancel the connections still being served."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> "OpsServer":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._serve_one(reader, writer)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("ops server: connection failed", exc_info=True)
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except Exception:
                pass

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.header_timeout_s)
        except TimeoutError:
            await self._respond(writer, HTTPStatus.REQUEST_TIMEOUT, b"request timeout\n", TEXT_CONTENT_TYPE)
            return
        except asyncio.LimitOverrunError:
            await self._respond(writer, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, b"headers too large\n",
                                TEXT_CONTENT_TYPE)
            return
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                await self._respond(writer, HTTPStatus.BAD_REQUEST, b"incomplete request\n", TEXT_CONTENT_TYPE)
            return
        try:
            method, path = _parse_head(head[:-4])
        except BadRequest as exc:
            await self._respond(writer, HTTPStatus.BAD_REQUEST, f"{exc}\n".encode(), TEXT_CONTENT_TYPE)
            return
        head_only = method == "HEAD"
        if method not in ALLOWED_METHODS:
            await self._respond(writer, HTTPStatus.METHOD_NOT_ALLOWED, b"method not allowed\n", TEXT_CONTENT_TYPE,
                                extra_headers={"Allow": ", ".join(ALLOWED_METHODS)})
            return
        if path == "/metrics":
            status, body, content_type = self._metrics_response()
        elif path == "/healthz":
            status, body, content_type = await self._health_response()
        else:
            status, body, content_type = HTTPStatus.NOT_FOUND, b"not found\n", TEXT_CONTENT_TYPE
        await self._respond(writer, status, body, content_type, head_only=head_only)

    def _metrics_response(self) -> tuple[HTTPStatus, bytes, str]:
        try:
            body, content_type = self.metrics.exposition()
        except Exception as exc:
            log.warning("ops server: metrics exposition failed: %s", _one_line(exc))
            return HTTPStatus.INTERNAL_SERVER_ERROR, b"metrics unavailable\n", TEXT_CONTENT_TYPE
        return HTTPStatus.OK, body, content_type

    async def _health_response(self) -> tuple[HTTPStatus, bytes, str]:
        try:
            result = await asyncio.wait_for(self.health(), self.health_timeout_s)
            if not isinstance(result, dict) or not isinstance(result.get("ok"), bool):
                raise TypeError('health check must return a dict with "ok": bool')
            body = json.dumps(result).encode()
        except TimeoutError:
            result = {"ok": False, "error": f"health check took longer than {self.health_timeout_s:g} s"}
            body = json.dumps(result).encode()
        except Exception as exc:
            result = {"ok": False, "error": _one_line(exc)}
            body = json.dumps(result).encode()
        status = HTTPStatus.OK if result["ok"] else HTTPStatus.SERVICE_UNAVAILABLE
        return status, body, JSON_CONTENT_TYPE

    async def _respond(self, writer: asyncio.StreamWriter, status: HTTPStatus, body: bytes, content_type: str,
                       head_only: bool = False, extra_headers: dict[str, str] | None = None) -> None:
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "Connection": "close",
            **(extra_headers or {}),
        }
        lines = [f"HTTP/1.1 {status.value} {status.phrase}"] + [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        if not head_only:
            writer.write(body)
        await asyncio.wait_for(writer.drain(), self.header_timeout_s)
