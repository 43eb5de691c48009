"""A protocol-level fake of the two GIF search APIs memeswap speaks, for tests.

`FakeGifSearch` is an aiohttp server on 127.0.0.1:<free port> answering, with the providers'
own JSON shapes:

* Tenor API v2 under `tenor_url` (`/tenor/v2`): `GET search?q=&key=&client_key=&limit=
  &media_filter=&contentfilter=` -> `{"results": [RESPONSE_OBJECT...], "next": "N"}` and
  `GET posts?ids=A,B&key=` -> `{"results": [...]}` (unknown ids are left out). A response
  object: `id`, `title`, `content_description`, `created`, `itemurl`, `url`, `tags`,
  `flags`, `hasaudio`, `media_formats: {"tinygif": {"url", "dims": [w, h], "duration",
  "preview", "size"}}` (only the formats `media_filter` names). A wrong key answers 400 in
  Google's error envelope `{"error": {"code", "message", "status"}}`.
* GIPHY API v1 under `giphy_url` (`/giphy/v1`): `GET gifs/search?api_key=&q=&limit=&rating=`
  -> `{"data": [GIF_OBJECT...], "pagination": {...}, "meta": {"status", "msg",
  "response_id"}}` and `GET gifs/{id}?api_key=` -> `{"data": GIF_OBJECT, "meta": {...}}`
  (404 with `"data": []` for an unknown id). A GIF object: `type`, `id`, `url`, `slug`,
  `title`, `rating`, `images: {"fixed_height": {"url", "width", "height", "size"}}`, its
  numbers as strings, as GIPHY sends them. A wrong key answers 401.
* The media of every result under `/media/{id}/{name}.gif`, on the same origin.

A query matches a GIF when one of its words is in the GIF's title; a query matching nothing
gets no results. Faults for tests: `delay_s` (every API answer waits), `status` (every API
call answers it, e.g. 503), `huge_bytes` (search answers a valid JSON body this large,
chunked, no Content-Length), `raw` (search answers these bytes as JSON); per GIF, `media_url` (the result points elsewhere) and
`redirect_to` (its media answers 302 there). `requests` lists every call, the key left out.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

JSONDict = dict[str, Any]
DEFAULT_KEY = "fake-gif-search-key"


@dataclass
class FakeGif:
    id: str
    title: str
    data: bytes
    width: int
    height: int
    media_url: str | None = None  # where the result says its media is (default: this fake)
    redirect_to: str | None = None  # the media answers 302 to this


class FakeGifSearch:
    def __init__(self, key: str = DEFAULT_KEY) -> None:
        self.key = key
        self.gifs: dict[str, FakeGif] = {}
        self.requests: list[JSONDict] = []
        self.delay_s = 0.0
        self.status: int | None = None
        self.huge_bytes = 0
        self.raw: bytes | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def __aenter__(self) -> FakeGifSearch:
        app = web.Application()
        app.router.add_get("/tenor/v2/search", self._tenor_search)
        app.router.add_get("/tenor/v2/posts", self._tenor_posts)
        app.router.add_get("/giphy/v1/gifs/search", self._giphy_search)
        app.router.add_get("/giphy/v1/gifs/{id}", self._giphy_gif)
        app.router.add_get("/media/{id}/{name}", self._media)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:PORT`: the API roots and the media live here."""
        if self._port is None:
            raise RuntimeError("FakeGifSearch is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def tenor_url(self) -> str:
        return f"{self.origin}/tenor/v2"

    @property
    def giphy_url(self) -> str:
        return f"{self.origin}/giphy/v1"

    def add_gif(self, gif_id: str, title: str, data: bytes, width: int, height: int, *,
                media_url: str | None = None, redirect_to: str | None = None) -> FakeGif:
        gif = FakeGif(gif_id, title, data, width, height, media_url, redirect_to)
        self.gifs[gif_id] = gif
        return gif

    def media_of(self, gif: FakeGif) -> str:
        return gif.media_url or f"{self.origin}/media/{gif.id}/tinygif.gif"

    def calls(self, kind: str) -> list[JSONDict]:
        """The requests of one kind: "tenor", "giphy" or "media"."""
        return [r for r in self.requests if r["kind"] == kind]

    # ------------------------------------------------------------------ shared

    def _record(self, request: web.Request, kind: str) -> JSONDict:
        query = {k: v for k, v in request.query.items() if k not in ("key", "api_key")}
        entry: JSONDict = {"kind": kind, "path": request.path, "query": query, "status": 200,
                           "t": time.monotonic(),
                           "keyed": request.query.get("key" if kind == "tenor" else "api_key") == self.key}
        self.requests.append(entry)
        return entry

    def _matching(self, query: str, limit: str | None) -> list[FakeGif]:
        words = [w for w in query.lower().split() if w]
        found = [g for g in self.gifs.values() if any(w in g.title.lower() for w in words)]
        count = int(limit) if limit and limit.isdigit() else 20
        return found[:max(1, min(count, 50))]

    async def _fault(self, request: web.Request, entry: JSONDict) -> web.StreamResponse | None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.status is not None:
            entry["status"] = self.status
            return web.json_response({"error": {"code": self.status, "message": "unavailable"}}, status=self.status)
        if self.raw is not None and request.path.endswith("/search"):
            return web.Response(body=self.raw, content_type="application/json")
        return None

    async def _huge(self, request: web.Request, field: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            await response.write(b'{"%s": [], "next": "' % field.encode())
            left = self.huge_bytes
            while left > 0:
                await response.write(b"a" * min(left, 64 * 1024))
                left -= 64 * 1024
            await response.write(b'"}')
            await response.write_eof()
        except (ConnectionError, RuntimeError):  # the client hung up, as it should past its limit
            pass
        return response

    # ------------------------------------------------------------------ Tenor

    def _tenor_object(self, gif: FakeGif, formats: set[str]) -> JSONDict:
        media = {}
        if "tinygif" in formats:
            media["tinygif"] = {"url": self.media_of(gif), "duration": 0, "preview": "",
                                "dims": [gif.width, gif.height], "size": len(gif.data)}
        return {"id": gif.id, "title": gif.title, "content_description": f"{gif.title} GIF",
                "created": 1_700_000_000.0, "itemurl": f"https://tenor.com/view/{gif.id}", "hasaudio": False,
                "url": f"https://tenor.com/{gif.id}.gif", "tags": gif.title.lower().split(), "flags": [],
                "media_formats": media}

    def _tenor_key_error(self, entry: JSONDict) -> web.Response:
        entry["status"] = 400
        return web.json_response({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                            "status": "INVALID_ARGUMENT"}}, status=400)

    def _formats(self, request: web.Request) -> set[str]:
        named = request.query.get("media_filter")
        return set(named.split(",")) if named else {"tinygif"}

    async def _tenor_search(self, request: web.Request) -> web.StreamResponse:
        entry = self._record(request, "tenor")
        if (fault := await self._fault(request, entry)) is not None:
            return fault
        if not entry["keyed"]:
            return self._tenor_key_error(entry)
        if self.huge_bytes:
            return await self._huge(request, "results")
        found = self._matching(request.query.get("q", ""), request.query.get("limit"))
        formats = self._formats(request)
        return web.json_response({"results": [self._tenor_object(g, formats) for g in found], "next": str(len(found))})

    async def _tenor_posts(self, request: web.Request) -> web.StreamResponse:
        entry = self._record(request, "tenor")
        if (fault := await self._fault(request, entry)) is not None:
            return fault
        if not entry["keyed"]:
            return self._tenor_key_error(entry)
        ids = [i for i in request.query.get("ids", "").split(",") if i in self.gifs]
        formats = self._formats(request)
        return web.json_response({"results": [self._tenor_object(self.gifs[i], formats) for i in ids], "next": ""})

    # ------------------------------------------------------------------ GIPHY

    def _giphy_object(self, gif: FakeGif) -> JSONDict:
        rendition = {"url": self.media_of(gif), "width": str(gif.width), "height": str(gif.height),
                     "size": str(len(gif.data))}
        return {"type": "gif", "id": gif.id, "url": f"https://giphy.com/gifs/{gif.id}", "slug": gif.id,
                "title": gif.title, "rating": "g", "images": {"fixed_height": rendition, "original": dict(rendition)}}

    @staticmethod
    def _meta(status: int, msg: str) -> JSONDict:
        return {"status": status, "msg": msg, "response_id": "fake"}

    async def _giphy_search(self, request: web.Request) -> web.StreamResponse:
        entry = self._record(request, "giphy")
        if (fault := await self._fault(request, entry)) is not None:
            return fault
        if not entry["keyed"]:
            entry["status"] = 401
            return web.json_response({"data": [], "meta": self._meta(401, "Unauthorized")}, status=401)
        if self.huge_bytes:
            return await self._huge(request, "data")
        found = self._matching(request.query.get("q", ""), request.query.get("limit"))
        return web.json_response({"data": [self._giphy_object(g) for g in found],
                                  "pagination": {"total_count": len(found), "count": len(found), "offset": 0},
                                  "meta": self._meta(200, "OK")})

    async def _giphy_gif(self, request: web.Request) -> web.StreamResponse:
        entry = self._record(request, "giphy")
        if (fault := await self._fault(request, entry)) is not None:
            return fault
        if not entry["keyed"]:
            entry["status"] = 401
            return web.json_response({"data": [], "meta": self._meta(401, "Unauthorized")}, status=401)
        gif = self.gifs.get(request.match_info["id"])
        if gif is None:
            entry["status"] = 404
            return web.json_response({"data": [], "meta": self._meta(404, "Not Found")}, status=404)
        return web.json_response({"data": self._giphy_object(gif), "meta": self._meta(200, "OK")})

    # ------------------------------------------------------------------ media

    async def _media(self, request: web.Request) -> web.StreamResponse:
        entry = self._record(request, "media")
        gif = self.gifs.get(request.match_info["id"])
        if gif is None:
            entry["status"] = 404
            return web.Response(status=404, text="Not Found")
        if gif.redirect_to is not None:
            entry["status"] = 302
            return web.Response(status=302, headers={"Location": gif.redirect_to})
        return web.Response(body=gif.data, content_type="image/gif")
