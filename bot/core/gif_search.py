"""GIF search: find GIFs with the operator's provider, and swap a person's face into one.

What a person picks is a result id, never a URL: the id is looked up among the results this
bot returned lately, else asked of the provider again, and only the provider's media URL is
fetched, through the hardened downloader with the providers' media hosts as its allow-list.
The GIF is then a one-off template, screened like any GIF someone posts
(`Swaps.start_one_off`).

Searches are bounded in time (Discord's autocomplete answers within 3 s) and recent ones are
kept for a minute, so typing a query does not ask the provider once per key press.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Generic, TypeVar

from memeswap.bot.core.requesters import Requester
from memeswap.bot.core.swaps import Swaps
from memeswap.bot.core.uploads import staged_upload
from memeswap.bot.gif_providers.base import RESULT_ID, GifProvider, GifResult, SearchUnavailable, log
from memeswap.bot.safe_download import SafeDownloader
from memeswap.inference.errors import InputError
from memeswap.inference.jobs.contract import JobOutputFormat, SwapJob
from memeswap.inference.templates.manifest import SHOWN_CHARS

MAX_QUERY_CHARS = 100
QUERY_TTL_S = 60.0
RESULT_TTL_S = 3600.0  # a Telegram keyboard is pressed later than an autocomplete choice is sent
CACHED_QUERIES = 256
CACHED_RESULTS = 2048

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


class _Recent(Generic[K, V]):
    """At most `size` entries, each for `ttl_s` seconds; the oldest go first."""

    def __init__(self, size: int, ttl_s: float) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (time.monotonic() + self.ttl_s, value)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def normalized(query: str) -> str:
    return " ".join(query.split())[:MAX_QUERY_CHARS]


def shown(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…")


class GifSearch:
    def __init__(self, provider: GifProvider, downloader: SafeDownloader, swaps: Swaps, max_template_bytes: int,
                 results: int = 10, timeout_s: float = 2.0) -> None:
        self.provider = provider
        self.downloader = downloader
        self.swaps = swaps
        self.max_template_bytes = max_template_bytes
        self.results = results
        self.timeout_s = timeout_s
        self._queries: _Recent[str, list[GifResult]] = _Recent(CACHED_QUERIES, QUERY_TTL_S)
        self._returned: _Recent[str, GifResult] = _Recent(CACHED_RESULTS, RESULT_TTL_S)

    async def search(self, query: str) -> list[GifResult]:
        """The provider's results for `query` (the same for a minute); a one-line refusal when
        the query is empty or the provider does not answer in time."""
        query = normalized(query)
        if not query:
            raise InputError("say what to search for, like “dancing cat”", code="usage")
        found = self._queries.get(query.lower())
        if found is None:
            found = await self._bounded(self.provider.search(query, self.results))
            self._queries.put(query.lower(), found)
        for result in found:
            self._returned.put(result.id, result)
        return found

    async def suggestions(self, query: str) -> list[GifResult]:
        """`search` for autocomplete: nothing rather than an error, within the time limit."""
        if not normalized(query):
            return []
        try:
            return await self.search(query)
        except InputError:
            return []

    async def resolve(self, chosen: str) -> GifResult:
        """The result a person chose: an id this bot offered lately, else one the provider
        knows; text that names no result is searched, and its first result taken."""
        chosen = chosen.strip()
        if RESULT_ID.fullmatch(chosen):
            found = self._returned.get(chosen)
            if found is None:
                found = await self._bounded(self.provider.lookup(chosen))
            if found is not None:
                self._returned.put(found.id, found)
                return found
        results = await self.search(chosen)
        if not results:
            raise InputError(f"no GIF found for {shown(chosen)}; try other words", code="no_gif")
        return results[0]

    async def start_swap(self, requester: Requester, chosen: str, selfie: bytes | None = None,
                         format: JobOutputFormat = "gif", max_bytes: int | None = None,
                         reply_to: str | None = None) -> SwapJob:
        """Swap the person's face (`selfie`, else their saved face) into the chosen GIF, a
        one-off template screened like any GIF someone posts."""
        result = await self.resolve(chosen)
        if selfie is None:
            selfie = await self.swaps.faces.load(requester)  # before the download
        data = await self.downloader.fetch(result.media_url, self.max_template_bytes)
        with staged_upload(data, result.content_type, "memeswap-gif-") as path:
            return await self.swaps.start_one_off(requester, path, selfie=selfie, format=format,
                                                  max_bytes=max_bytes, reply_to=reply_to)

    async def close(self) -> None:
        await self.provider.close()

    async def _bounded(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await call
        except TimeoutError:
            log.warning("gif search: %s gave no answer within %g s", self.provider.name, self.timeout_s)
            raise SearchUnavailable() from None
