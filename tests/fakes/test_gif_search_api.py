"""The GIF search fake speaks Tenor's and GIPHY's shapes: a plain HTTP client against it."""

from __future__ import annotations

import asyncio

import aiohttp

from memeswap.inference.media.encode import encode_frames
from tests.bot.adapters.conftest import template_frames
from tests.fakes.gif_search_api import DEFAULT_KEY, FakeGifSearch


def test_tenor_and_giphy_answer_in_their_own_shapes_and_serve_the_media(library):
    gif = encode_frames(template_frames(library, "shake")[:4], "gif", fps=12).data

    async def main():
        async with FakeGifSearch() as fake, aiohttp.ClientSession() as http:
            fake.add_gif("1234567890", "Dancing Shake", gif, 220, 180)
            fake.add_gif("AbC9x", "Calm lake", gif, 220, 180)

            async def get(url: str, **params: str) -> tuple[int, dict]:
                async with http.get(url, params=params) as response:
                    return response.status, await response.json()

            tenor = await get(f"{fake.tenor_url}/search", q="dancing", key=DEFAULT_KEY, limit="5",
                              media_filter="tinygif")
            posts = await get(f"{fake.tenor_url}/posts", ids="1234567890,999", key=DEFAULT_KEY)
            unkeyed = await get(f"{fake.tenor_url}/search", q="dancing", key="wrong")
            giphy = await get(f"{fake.giphy_url}/gifs/search", q="lake", api_key=DEFAULT_KEY, limit="5")
            by_id = await get(f"{fake.giphy_url}/gifs/AbC9x", api_key=DEFAULT_KEY)
            unknown = await get(f"{fake.giphy_url}/gifs/nope", api_key=DEFAULT_KEY)
            async with http.get(tenor[1]["results"][0]["media_formats"]["tinygif"]["url"]) as response:
                media = await response.read()
            return tenor, posts, unkeyed, giphy, by_id, unknown, media, fake.requests

    tenor, posts, unkeyed, giphy, by_id, unknown, media, requests = asyncio.run(main())
    status, body = tenor
    [result] = body["results"]
    assert status == 200 and result["id"] == "1234567890" and result["title"] == "Dancing Shake"
    assert result["media_formats"]["tinygif"]["dims"] == [220, 180] and "next" in body
    assert [r["id"] for r in posts[1]["results"]] == ["1234567890"]
    assert unkeyed[0] == 400 and unkeyed[1]["error"]["status"] == "INVALID_ARGUMENT"
    [found] = giphy[1]["data"]
    assert found["id"] == "AbC9x" and found["images"]["fixed_height"]["width"] == "220"
    assert giphy[1]["meta"]["status"] == 200 and by_id[1]["data"]["title"] == "Calm lake"
    assert unknown[0] == 404 and unknown[1]["data"] == []
    assert media == gif
    assert all("key" not in r["query"] and "api_key" not in r["query"] for r in requests)
