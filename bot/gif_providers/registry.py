"""The GIF search providers, in the order a key chooses them: the first whose key is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memeswap.bot.gif_providers.base import GifProvider, ProviderApi
from memeswap.bot.gif_providers.giphy import GiphyProvider
from memeswap.bot.gif_providers.tenor import TenorProvider

if TYPE_CHECKING:
    from memeswap.bot.settings import Settings


def search_enabled(settings: Settings) -> bool:
    """Whether GIF search is offered: an operator set a provider's key."""
    return settings.tenor_api_key is not None or settings.giphy_api_key is not None


def provider_for(settings: Settings) -> GifProvider | None:
    """The provider whose key is set (Tenor's first), None when neither is."""
    def api(name: str, url: str) -> ProviderApi:
        return ProviderApi(name, url, settings.gif_search_timeout_s, settings.gif_search_max_response_bytes)

    if settings.tenor_api_key is not None:
        return TenorProvider(api("tenor", settings.tenor_api_url), settings.tenor_api_key.get_secret_value(),
                             settings.tenor_client_key)
    if settings.giphy_api_key is not None:
        return GiphyProvider(api("giphy", settings.giphy_api_url), settings.giphy_api_key.get_secret_value())
    return None
