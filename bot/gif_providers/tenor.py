"""Tenor's API v2: `GET {root}/search?q=&key=&client_key=&limit=&media_filter=&contentfilter=`
answers `{"results": [RESPONSE_OBJECT, ...], "next": "..."}`; `GET {root}/posts?ids=&key=`
answers `{"results": [...]}` for the ids it knows. A response object has an `id`, a `title`,
a `content_description` and `media_formats`: {format name: {"url", "dims": [w, h],
"duration", "size"}}. An unknown key is a 400 (Google's error envelope)."""

from __future__ import annotations

from typing import Any

from memeswap.bot.gif_providers.base import GifResult, ProviderApi, media_url, result_id, side, title

# Small renditions, the GIF first (what the search asks for, and in this order of preference).
RENDITIONS = (("tinygif", "image/gif"), ("tinymp4", "video/mp4"))
CONTENT_FILTER = "medium"  # Tenor's content rating; screening still runs on what is picked


class TenorProvider:
    name = "tenor"

    def __init__(self, api: ProviderApi, key: str, client_key: str) -> None:
        self.api = api
        self._key = key
        self.client_key = client_key

    async def search(self, query: str, limit: int) -> list[GifResult]:
        answer = await self.api.get_json("search", self._params(
            q=query, limit=str(limit), media_filter=",".join(name for name, _ in RENDITIONS),
            contentfilter=CONTENT_FILTER))
        return results_in(answer)[:limit]

    async def lookup(self, result_id: str) -> GifResult | None:
        answer = await self.api.get_json("posts", self._params(
            ids=result_id, media_filter=",".join(name for name, _ in RENDITIONS)), missing=(400, 404))
        found = [r for r in results_in(answer) if r.id == result_id]
        return found[0] if found else None

    async def close(self) -> None:
        await self.api.close()

    def _params(self, **params: str) -> dict[str, str]:
        return {**params, "key": self._key, "client_key": self.client_key}


def results_in(answer: Any) -> list[GifResult]:
    """The usable results of an answer, in its order; anything malformed is left out."""
    items = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        return []
    return [r for item in items[:100] if (r := _result(item)) is not None]


def _result(item: Any) -> GifResult | None:
    if not isinstance(item, dict) or (found_id := result_id(item.get("id"))) is None:
        return None
    formats = item.get("media_formats")
    if not isinstance(formats, dict):
        return None
    for name, content_type in RENDITIONS:
        media = formats.get(name)
        if not isinstance(media, dict) or (url := media_url(media.get("url"))) is None:
            continue
        dims = media.get("dims")
        if not isinstance(dims, list) or len(dims) != 2:
            continue
        width, height = side(dims[0]), side(dims[1])
        if width is not None and height is not None:
            return GifResult(found_id, title(item.get("title"), item.get("content_description")), url,
                             content_type, width, height)
    return None
