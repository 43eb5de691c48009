"""`/metrics` and `/healthz` for operations, served by `aiohttp.web` in the bot's or the worker's own event loop.

Every response closes its connection. aiohttp parses the requests: one it cannot parse, or with a header line
over the size limit, is answered 400, and a connection that has not sent a whole request within
`header_timeout_s` is closed (aiohttp's keep-alive timer runs from the connection's start, since 3.14.4).
Whatever a client sends, the server and the other connections carry on, and nothing it sends is logged as
more than one line.
"""

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from memeswap.inference.observability.metrics import JobMetrics

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[dict]]
"""Returns a JSON-able dict that holds at least "ok": bool."""

JSON_CONTENT_TYPE = "application/json"
MAX_HEADERS = 32


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())[:300]


class _OneLineServerLog(logging.LoggerAdapter):
    """The logger handed to aiohttp's request handler, which logs a request it cannot parse with a traceback (at
    ERROR, or DEBUG for a bad method): anyone who reaches the port could fill the log. Here every record is one
    line, a malformed request's at DEBUG and any other error's at WARNING."""

    def log(self, level: int, msg: object, *args: object, exc_info: Any = None, **kwargs: Any) -> None:
        exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
        if exc is True:
            exc = sys.exc_info()[1]
        if not isinstance(exc, BaseException):
            super().log(level, msg, *args, **kwargs)
            return
        level = min(level, logging.DEBUG if isinstance(exc, HttpProcessingError) else logging.WARNING)
        super().log(level, f"ops server: {msg}: %s", *args, _one_line(exc), **kwargs)


async def _close_connection(request: web.Request, response: web.StreamResponse) -> None:
    """One request per connection, errors included. aiohttp has already chosen its headers when this hook
    runs, hence the Connection header as well as `force_close`."""
    response.force_close()
    response.headers[hdrs.CONNECTION] = "close"


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
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and start serving; afterwards `self.port` holds the real port. A port that cannot be had
        raises the `OSError` of the bind, errno included."""
        if self._runner is not None:
            raise RuntimeError("OpsServer already started")
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.on_response_prepare.append(_close_connection)
        # A request in progress at close() has until health_timeout_s to finish; idle connections close at once.
        runner = web.AppRunner(
            app, access_log=None, logger=_OneLineServerLog(log), shutdown_timeout=self.health_timeout_s,
            keepalive_timeout=self.header_timeout_s, max_line_size=self.max_header_bytes,
            max_field_size=self.max_header_bytes, max_headers=MAX_HEADERS,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("/metrics and /healthz on http://%s:%d", self.host, self.port)

    async def close(self) -> None:
        """Stop listening and close the connections."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> "OpsServer":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            body, content_type = self.metrics.exposition()
        except Exception as exc:
            log.warning("ops server: metrics exposition failed: %s", _one_line(exc))
            return web.Response(status=500, text="metrics unavailable\n")
        # Passed as a header: `content_type=` refuses the charset parameter that Prometheus's type carries.
        return web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type})

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            result = await asyncio.wait_for(self.health(), self.health_timeout_s)
            if not isinstance(result, dict) or not isinstance(result.get("ok"), bool):
                raise TypeError('health check must return a dict with "ok": bool')
            body = json.dumps(result)
        except TimeoutError:
            result = {"ok": False, "error": f"health check took longer than {self.health_timeout_s:g} s"}
            log.warning("ops server: %s", result["error"])
            body = json.dumps(result)
        except Exception as exc:
            result = {"ok": False, "error": _one_line(exc)}
            log.warning("ops server: health check failed: %s", result["error"])
            body = json.dumps(result)
        return web.Response(status=200 if result["ok"] else 503, body=body.encode(), content_type=JSON_CONTENT_TYPE)
