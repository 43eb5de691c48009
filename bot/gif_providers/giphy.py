"""GIPHY's API v1: `GET {root}/gifs/search?api_key=&q=&limit=&rating=` answers
`{"data": [GIF_OBJECT, ...], "pagination": {...}, "meta": {"status", "msg", "response_id"}}`;
`GET {root}/gifs/{id}?api_key=` answers `{"data": GIF_OBJECT, "meta": {...}}`. A GIF object
has an `id`, a `title` and `images`: {rendition name: {"url", "width", "height", "size",
"mp4", ...}}, the numbers as strings. An unknown id is a 404; a synthetic answer (meta
status 200, the rest empty) means GIPHY is having trouble, and finds nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from memeswap.bot.gif_providers.base import GifResult, ProviderApi, media_url, result_id, side, title

RENDITION = "fixed_height"  # 200 px high: the GIF (`url`) first, else its MP4 (`mp4`)
RATING = "pg-13"  # GIPHY's content rating; screening still runs on what is picked


class GiphyProvider:
    name = "giphy"

    def __init__(self, api: ProviderApi, key: str) -> None:
        self.api = api
        self._key = key

    async def search(self, query: str, limit: int) -> list[GifResult]:
        answer = await self.api.get_json("gifs/search", {"api_key": self._key, "q": query, "limit": str(limit),
                                                         "rating": RATING})
        items = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            return []
        return [r for item in items[:100] if (r := _result(item)) is not None][:limit]

    async def lookup(self, result_id: str) -> GifResult | None:
        answer = await self.api.get_json(f"gifs/{quote(result_id, safe='')}", {"api_key": self._key},
                                         missing=(400, 404))
        found = _result(answer.get("data")) if isinstance(answer, dict) else None
        return found if found is not None and found.id == result_id else None

    async def close(self) -> None:
        await self.api.close()


def _result(item: Any) -> GifResult | None:
    if not isinstance(item, dict) or (found_id := result_id(item.get("id"))) is None:
        return None
    images = item.get("images")
    rendition = images.get(RENDITION) if isinstance(images, dict) else None
    if not isinstance(rendition, dict):
        return None
    width, height = side(rendition.get("width")), side(rendition.get("height"))
    if width is None or height is None:
        return None
    for field, content_type in (("url", "image/gif"), ("mp4", "video/mp4")):
        if (url := media_url(rendition.get(field))) is not None:
            return GifResult(found_id, title(item.get("title")), url, content_type, width, height)
    return None
