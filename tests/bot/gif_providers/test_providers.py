"""Tenor's and GIPHY's providers, as the settings choose them, against the loopback fake of
their APIs: what they find, what they leave out of a hostile answer, and what they never say."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import pytest

from memeswap.bot.gif_providers.base import GifResult, SearchUnavailable
from memeswap.bot.gif_providers.registry import provider_for, search_enabled
from memeswap.bot.settings import Settings
from tests.fakes.gif_search_api import FakeGifSearch

GIF = b"GIF89a" + bytes(64)


def settings_for(kind: str, api: FakeGifSearch, key: str | None = None, **overrides) -> Settings:
    return Settings(_env_file=None, **{f"{kind}_api_key": key or api.key, f"{kind}_api_url": getattr(api, f"{kind}_url"),
                                       **overrides})


def test_no_key_no_provider_and_tenors_key_wins():
    assert provider_for(Settings(_env_file=None)) is None and not search_enabled(Settings(_env_file=None))
    both = Settings(_env_file=None, tenor_api_key="t", giphy_api_key="g")
    assert search_enabled(both) and provider_for(both).name == "tenor"
    assert provider_for(Settings(_env_file=None, giphy_api_key="g")).name == "giphy"
    assert not search_enabled(Settings(_env_file=None, tenor_api_key=" ", giphy_api_key=""))  # left blank


@pytest.mark.parametrize("kind", ["tenor", "giphy"])
def test_a_provider_finds_and_looks_up_results_in_its_own_shapes(kind):
    async def main():
        async with FakeGifSearch() as api:
            api.add_gif("Shake1", "Shake it off", GIF, 220, 180)
            api.add_gif("Lake2", "Calm lake", GIF, 200, 200)
            provider = provider_for(settings_for(kind, api))
            wrong = provider_for(settings_for(kind, api, key="not-the-key"))
            try:
                found = await provider.search("shake", 5)
                looked_up = await provider.lookup("Lake2")
                unknown = await provider.lookup("Nothing9")
                with pytest.raises(SearchUnavailable):
                    await wrong.search("shake", 5)
            finally:
                await provider.close()
                await wrong.close()
            return found, looked_up, unknown, api.requests

    found, looked_up, unknown, requests = asyncio.run(main())
    assert [(r.id, r.title, r.content_type, r.width, r.height) for r in found] == [
        ("Shake1", "Shake it off", "image/gif", 220, 180)]
    assert found[0].media_url.endswith("/media/Shake1/tinygif.gif")
    assert looked_up == GifResult("Lake2", "Calm lake", looked_up.media_url, "image/gif", 200, 200)
    assert unknown is None
    assert all(r["keyed"] for r in requests[:3]) and not requests[3]["keyed"]


def test_a_hostile_answer_keeps_only_well_formed_results_with_short_clean_titles():
    good = {"url": "https://media.tenor.com/x/tiny.gif", "dims": [220, 180]}
    items = [
        {"id": "100", "title": "Fine", "media_formats": {"tinygif": good}},
        {"id": "../../etc", "title": "a path", "media_formats": {"tinygif": good}},
        {"id": 101, "title": "a number", "media_formats": {"tinygif": good}},
        {"id": "102", "title": "negative", "media_formats": {"tinygif": {**good, "dims": [-1, 5]}}},
        {"id": "103", "title": "huge", "media_formats": {"tinygif": {**good, "dims": [10**9, 5]}}},
        {"id": "104", "title": "no url", "media_formats": {"tinygif": {"dims": [220, 180]}}},
        {"id": "105", "title": "long url", "media_formats": {"tinygif": {**good, "url": "https://a/" + "x" * 5000}}},
        {"id": "106", "title": "no formats"},
        {"id": "107", "title": "\u202eevil\x00 \n\t" + "w" * 300, "media_formats": {"tinygif": good}},
        {"id": "108", "title": "", "content_description": "", "media_formats": {"tinymp4": good}},
        "not an object",
    ]

    async def main():
        async with FakeGifSearch() as api:
            provider = provider_for(settings_for("tenor", api))
            try:
                api.raw = json.dumps({"results": items}).encode()
                kept = await provider.search("anything", 25)
                outcomes = []
                for raw in (b"[1, 2, 3]", b'{"results": {"id": "1"}}', b"<html>not json</html>", b"[" * 100_000):
                    api.raw = raw
                    try:
                        outcomes.append(await provider.search("anything", 25))
                    except SearchUnavailable:
                        outcomes.append("unavailable")
            finally:
                await provider.close()
            return kept, outcomes

    kept, outcomes = asyncio.run(main())
    assert [r.id for r in kept] == ["100", "107", "108"]
    assert kept[1].title == "evil " + "w" * 34 + "…" and len(kept[1].title) == 40
    assert kept[2].title == "GIF" and kept[2].content_type == "video/mp4"
    assert outcomes == [[], [], "unavailable", "unavailable"]


def test_failures_are_logged_by_their_kind_never_with_the_key(caplog):
    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]

    async def main():
        said = []
        async with FakeGifSearch(key="s3cret-key-42") as api:
            api.delay_s = 3.0
            for overrides in ({"tenor_api_url": f"http://127.0.0.1:{closed}/v2"}, {"gif_search_timeout_s": 0.5},
                              {"gif_search_max_response_bytes": 100}):
                if "gif_search_max_response_bytes" in overrides:
                    api.delay_s, api.huge_bytes = 0.0, 1000
                provider = provider_for(Settings(_env_file=None, tenor_api_key="s3cret-key-42",
                                                 **{"tenor_api_url": api.tenor_url, **overrides}))
                try:
                    await provider.search("shake", 5)
                except SearchUnavailable as error:
                    said.append(str(error))
                finally:
                    await provider.close()
        return said

    said = asyncio.run(main())
    assert len(said) == 3 and all("s3cret" not in line for line in said)
    logged = [r.getMessage() for r in caplog.records if r.name == "memeswap.gif_search"]
    assert logged == ["gif search: tenor gave ClientConnectorError", "gif search: tenor gave no answer within 0.5 s",
                      "gif search: tenor gave an answer over 100 bytes"]
    assert not any("s3cret" in r.getMessage() for r in caplog.records)
