"""What a GIF search provider is (`GifProvider`), what it finds (`GifResult`), and the one way
any of them asks its API (`ProviderApi.get_json`).

A provider's answer is not trusted: it is read with a time limit and a byte limit, without
following redirects, and every result in it is checked field by field; what does not fit is
left out. The API key travels as the provider wants it and is never logged: a failure is
logged by its kind ("HTTP 403", "no answer within 2 s"), never by its URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from memeswap.inference.errors import InputError

log = logging.getLogger("memeswap.gif_search")

# A result id as the providers make them (Tenor: digits; GIPHY: letters and digits): what a
# Discord choice or a Telegram button carries, checked before anything is asked.
RESULT_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
TITLE_CHARS = 40  # of a result's title, as shown
MAX_URL_CHARS = 2048
MAX_SIDE = 10_000  # pixels a result may claim per side
UNAVAILABLE = "GIF search isn't answering right now; try again in a moment, or pick a template"


class SearchUnavailable(InputError):
    """The provider did not answer usably: one line for the person, the reason in the log."""

    code = "gif_search"

    def __init__(self) -> None:
        super().__init__(UNAVAILABLE)


@dataclass(frozen=True)
class GifResult:
    id: str
    title: str  # at most TITLE_CHARS characters, printable
    media_url: str  # a small rendition; fetched only through the hardened downloader
    content_type: str  # "image/gif" or "video/mp4"
    width: int
    height: int

    @property
    def label(self) -> str:
        """How the result is offered: its title and size."""
        return f"{self.title} · {self.width}×{self.height}"


class GifProvider(Protocol):
    name: str

    async def search(self, query: str, limit: int) -> list[GifResult]:
        """At most `limit` results for `query`; `SearchUnavailable` when the API fails."""

    async def lookup(self, result_id: str) -> GifResult | None:
        """The result with this id, None when the provider has none; `SearchUnavailable`
        when the API fails."""

    async def close(self) -> None:
        ...


class ProviderApi:
    """GET requests to one provider's API, each bounded in time and bytes."""

    def __init__(self, name: str, base_url: str, timeout_s: float, max_bytes: int) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._session: aiohttp.ClientSession | None = None

    async def get_json(self, path: str, params: dict[str, str], missing: tuple[int, ...] = ()) -> Any:
        """The JSON the API answers at `path`; None when it answers a status in `missing`
        (an id it does not know). `SearchUnavailable` for anything else that is not a 200
        with a JSON body of at most `max_bytes`."""
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._client().get(f"{self.base_url}/{path}", params=params,
                                              allow_redirects=False) as response:
                    if response.status in missing:
                        return None
                    if response.status != 200:
                        raise self._failed(f"HTTP {response.status}")
                    if (response.content_length or 0) > self.max_bytes:
                        raise self._failed(f"an answer over {self.max_bytes} bytes")
                    body = await self._body(response)
        except TimeoutError:
            raise self._failed(f"no answer within {self.timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as error:  # its text may hold the URL, and so the key
            raise self._failed(type(error).__name__) from None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise self._failed("an answer that is not JSON") from None

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        body = bytearray()
        while chunk := await response.content.read(min(64 * 1024, self.max_bytes + 1 - len(body))):
            body += chunk
            if len(body) > self.max_bytes:
                raise self._failed(f"an answer over {self.max_bytes} bytes")
        return bytes(body)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=self.timeout_s,
                                            sock_read=self.timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout, trust_env=False,
                                                  headers={"Accept": "application/json"})
        return self._session

    def _failed(self, reason: str) -> SearchUnavailable:
        log.warning("gif search: %s gave %s", self.name, reason)
        return SearchUnavailable()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def result_id(value: Any) -> str | None:
    return value if isinstance(value, str) and RESULT_ID.fullmatch(value) else None


def title(*candidates: Any) -> str:
    """The first non-empty candidate as one printable line of at most `TITLE_CHARS`
    characters ("GIF" when there is none)."""
    for candidate in candidates:
        if isinstance(candidate, str):
            text = "".join(c if unicodedata.category(c)[0] not in "CZ" else " " for c in candidate[:500])
            text = " ".join(text.split())
            if text:
                return text if len(text) <= TITLE_CHARS else text[:TITLE_CHARS - 1] + "…"
    return "GIF"


def media_url(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_URL_CHARS else None


def side(value: Any) -> int | None:
    """A width or height, given as a number or (GIPHY) a string of digits."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 6:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_SIDE:
        return value
    return None
