from __future__ import annotations

import ipaddress
import os
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from memeswap.inference.safety.nsfw_labels import DEFAULT_BLOCKED, NUDENET_LABELS
from memeswap.inference.swappers.config import SwapperConfig
from memeswap.inference.swappers.registry import SWAPPERS

# What Telegram accepts: setWebhook's secret_token, the ports a webhook URL may name.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_WEBHOOK_PORTS = (443, 80, 88, 8443)
_WEBHOOK_PATH = re.compile(r"/[A-Za-z0-9/_.~-]*")  # PTB's webhook server routes on it as a regex

if TYPE_CHECKING:  # imported where used: `memeswap --help` should not wait for them
    from memeswap.inference.media.badge import BadgeStyle
    from memeswap.inference.media.limits import MediaLimits
    from memeswap.inference.safety.nsfw import NsfwScreen
    from memeswap.inference.templates.packs import PackLimits


def _loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every setting of memeswap, from `MEMESWAP_*` environment variables and `.env`.

    One instance is built at start-up and passed down; nothing reads the environment later.
    """

    model_config = SettingsConfigDict(env_prefix="MEMESWAP_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("memeswap")))
    models_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_cache_dir("memeswap")) / "models")
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_template_bytes: int = 50 * 1024 * 1024
    max_template_frames: int = 300
    max_template_seconds: float = 15.0
    max_template_side: int = 1024
    # Decode work a template may need, in pixels decoded over all its frames, checked before
    # decoding (see `MediaLimits`): GIF/WebP at their full canvas, video at its stored size.
    max_animation_decode_pixels: int = Field(default=650_000_000, gt=0)
    max_video_decode_pixels: int = Field(default=2_600_000_000, gt=0)
    # The bot process decodes and analyses uploads (template adds, one-off screening, selfie
    # checks, face saves) in a pool of its own, each piece of work under a deadline.
    heavy_work_threads: int = Field(default=2, ge=1)
    heavy_work_deadline_s: float = Field(default=120.0, gt=0)
    heavy_work_queue_s: float = Field(default=30.0, gt=0)  # the longest a piece waits for a thread
    # Compiled face tracks of templates, least recently used out beyond this.
    track_cache_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)
    max_selfie_yaw_degrees: float = 30.0
    # The swapped face's skin tone: 1 keeps the selfie's (the default keeps most of it, so a
    # dark-skinned face stays dark-skinned in any template), 0 takes the template person's.
    skin_tone_balance: float = Field(default=0.8, ge=0, le=1)
    label_outputs: bool = True
    # A signed C2PA manifest in every output: the signing certificate chain (PEM, the
    # signing certificate first) and its private key (PEM, unencrypted). Both or neither.
    c2pa_cert: Path | None = None
    c2pa_key: Path | None = None
    # A visible badge in a corner of every frame (metadata labels are stripped by chat apps).
    ai_badge: bool = True
    ai_badge_text: str = Field(default="AI", min_length=1, max_length=24)
    ai_badge_corner: Literal["bottom-right", "bottom-left", "top-right", "top-left"] = "bottom-right"
    # Nudity screening of new templates and one-off targets (nudenet's offline detector).
    nsfw_screening: bool = True
    nsfw_threshold: float = Field(default=0.6, gt=0, le=1)
    nsfw_blocked: list[str] = Field(default_factory=lambda: sorted(DEFAULT_BLOCKED))
    # The store: an SQLite file in the data folder unless a URL (PostgreSQL) is given.
    database_url: SecretStr | None = None
    swaps_per_user_per_day: int = Field(default=50, ge=1)
    saved_faces_per_user: int = Field(default=5, ge=1)
    templates_per_scope: int = Field(default=50, ge=0)
    template_bytes_per_scope: int = Field(default=200 * 1024 * 1024, ge=0)
    # Preview sheets (`/templates`, `memeswap templates preview`): templates per sheet (more
    # make further pages) and how many rendered sheets the data folder's cache keeps.
    preview_templates_per_sheet: int = Field(default=40, ge=1, le=100)
    preview_cached_sheets: int = Field(default=64, ge=1)
    # Template packs (`memeswap templates import`): the zip's size, what it may unpack to in
    # all and per entry (checked on the sizes it declares, then while reading), its entries.
    pack_max_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    pack_max_unpacked_bytes: int = Field(default=500 * 1024 * 1024, gt=0)
    pack_max_entries: int = Field(default=200, ge=2, le=10_000)
    pack_max_entry_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    # A template reported ("Report" under a meme) by this many different people in one server,
    # group or DM is hidden there until an admin or the operator decides (`memeswap reports`).
    reports_to_hide: int = Field(default=3, ge=1)
    swapper: str = "auto"  # auto or a name from inference.swappers.registry
    analyser: Literal["auto", "mediapipe", "insightface"] = "auto"
    onnx_provider: Literal["auto", "tensorrt", "cuda", "cpu"] = "auto"
    swap_batch_size: int = 16
    mouth_mask: bool = False
    enhancer: bool = False
    enhancer_blend: float = 0.7

    # --- the job service ---------------------------------------------------------------
    # Set: jobs go through Redis Streams to `memeswap worker` processes. Unset: they run in
    # a thread pool inside the bot's process. A secret, since the URL may hold a password.
    redis_url: SecretStr | None = None
    redis_prefix: str = "memeswap:"
    # Names this bot process's results stream; keep it stable across restarts of the same
    # shard (the default, the host name, is stable for one shard per host).
    shard_name: str = Field(default_factory=socket.gethostname)
    job_workers: int = Field(default_factory=lambda: max(1, min(4, (os.cpu_count() or 2) // 2)), ge=1)
    job_queue_max: int = Field(default=64, ge=1)
    job_deadline_s: float = Field(default=120.0, gt=0)
    per_user_jobs: int = Field(default=2, ge=1)
    per_user_jobs_per_minute: float = Field(default=10.0, gt=0)
    per_user_burst: float = Field(default=5.0, ge=1)
    result_ttl_s: float = Field(default=3600.0, gt=0)
    # How often the bot process deletes expired blobs from the data folder (once at start too).
    blob_sweep_interval_s: float = Field(default=300.0, gt=0)
    max_blob_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    max_blob_store_bytes: int | None = Field(default=1024 * 1024 * 1024, gt=0)
    worker_heartbeat_s: float = Field(default=2.0, gt=0)
    worker_stale_after_s: float = Field(default=15.0, gt=0)
    worker_max_deliveries: int = Field(default=6, ge=1)
    # On SIGTERM the bot takes no new swaps and gives the ones in flight this long to finish;
    # the rest end with "the bot is restarting". Keep it under the supervisor's stop timeout
    # (Docker: 10 s unless stop_grace_period says more; Kubernetes: 30 s).
    shutdown_grace_s: float = Field(default=8.0, ge=0)
    # At start, how long `memeswap serve` and `memeswap worker` keep trying a database or a
    # Redis that cannot be reached yet (a compose stack's first `up`); 0 tries once.
    startup_wait_s: float = Field(default=120.0, ge=0)
    # --- chat adapters (`memeswap serve` runs each one whose token is set) ------------------
    telegram_token: SecretStr | None = None
    # Where the Bot API lives; point these at a local Bot API server if you run one.
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_file_url: str = "https://api.telegram.org/file/bot"
    telegram_download_bytes: int = Field(default=20 * 1024 * 1024, gt=0)  # getFile's limit
    telegram_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0)  # sendAnimation's limit
    telegram_templates_per_page: int = Field(default=8, ge=2, le=50)
    # Updates handled at once: a swap waits on its job without holding up other chats.
    telegram_concurrent_updates: int = Field(default=64, ge=1)
    # Set: Telegram POSTs updates to this public https URL (the ingress forwards its path to
    # the webhook server on LISTEN:PORT), so several bot processes can share one token.
    # Unset: the bot long-polls getUpdates, which allows one process per token.
    telegram_webhook_url: str | None = None
    # Telegram sends it in X-Telegram-Bot-Api-Secret-Token; a POST without it is refused (403).
    telegram_webhook_secret: SecretStr | None = Field(default=None, validate_default=True)
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = Field(default=8443, ge=1, le=65535)

    discord_token: SecretStr | None = None
    # "off": one gateway connection; "auto": AutoShardedBot with Discord's recommended shard
    # count; a number: that many shards. `discord_shard_ids` splits them across processes:
    # a JSON list, or one number (a Kubernetes StatefulSet pod's index, one shard per pod).
    discord_shards: Literal["off", "auto"] | int = "off"
    discord_shard_ids: list[int] | None = None
    discord_cooldown_s: float = Field(default=10.0, ge=0)  # between one person's swaps
    # Discord's REST base and gateway; set only to go through a proxy (or a test server).
    discord_api_url: str | None = None
    discord_gateway_url: str | None = None

    # --- fetching what people point at (bot.safe_download) -----------------------------------
    # Media hosts a URL may name: exact hosts, or ".example.com" for it and its subdomains.
    # Downloads are https only, to public addresses, redirects checked hop by hop.
    download_hosts: list[str] = Field(default_factory=lambda: [
        "cdn.discordapp.com", "media.discordapp.net", "images-ext-1.discordapp.net", "images-ext-2.discordapp.net",
        ".tenor.com", ".giphy.com"])
    download_timeout_s: float = Field(default=10.0, gt=0)  # to connect, and between two reads
    download_total_s: float = Field(default=60.0, gt=0)  # one whole download, redirects included
    # For tests against local fakes only: exact origins (http://127.0.0.1:PORT) trusted on
    # loopback, over http. Empty in any real deployment.
    download_loopback_origins: list[str] = Field(default_factory=list)

    # --- GIF search (on when a key is set: Tenor's if given, else GIPHY's) -------------------
    # The keys are secrets: never logged, never in a message. Without one, Discord's /swap has
    # no `search:` option and Telegram has no /gif command.
    tenor_api_key: SecretStr | None = None
    giphy_api_key: SecretStr | None = None
    tenor_client_key: str = Field(default="memeswap", min_length=1, max_length=64)
    # The providers' API roots; set only to go through a proxy (or a test server).
    tenor_api_url: str = "https://tenor.googleapis.com/v2"
    giphy_api_url: str = "https://api.giphy.com/v1"
    # The media hosts a search result may be fetched from (exact hosts, or ".example.com"), in
    # place of MEMESWAP_DOWNLOAD_HOSTS: the providers' own CDNs.
    gif_search_hosts: list[str] = Field(default_factory=lambda: [
        "media.tenor.com", "media.giphy.com", "media0.giphy.com", "media1.giphy.com", "media2.giphy.com",
        "media3.giphy.com", "media4.giphy.com", "i.giphy.com"])
    gif_search_results: int = Field(default=10, ge=1, le=25)
    # A search must answer within this (Discord's autocomplete has 3 s in all).
    gif_search_timeout_s: float = Field(default=2.0, gt=0)
    gif_search_max_response_bytes: int = Field(default=512 * 1024, gt=0)

    ops_host: str = "127.0.0.1"
    # /metrics and /healthz; 0 picks a free port. Left unset, a process whose default port is
    # taken (another worker on this host) takes a free one instead; set, a taken port is an error.
    ops_port: int = Field(default=9464, ge=0, le=65535)
    log_format: Literal["text", "json"] = "text"

    # Operator mistakes here are one clear line at start-up, not a failure deep inside a
    # job. The messages never repeat the value: URLs may hold passwords.
    @field_validator("swapper")
    @classmethod
    def _known_swapper(cls, name: str) -> str:
        if name != "auto" and name not in SWAPPERS:
            raise ValueError(f"choose auto or one of {', '.join(SWAPPERS)}")
        return name

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _one_shard_id(cls, ids: object) -> object:
        """`MEMESWAP_DISCORD_SHARD_IDS=3` (what Kubernetes' downward API gives) is `[3]`."""
        return [ids] if isinstance(ids, int) and not isinstance(ids, bool) else ids

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return url

    @field_validator("database_url")
    @classmethod
    def _async_database(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("must start with postgresql+asyncpg:// or sqlite+aiosqlite://")
        return url

    @field_validator("telegram_webhook_url")
    @classmethod
    def _webhook_url(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise ValueError("is not a URL; set it to https://HOST/PATH") from None
        loopback = _loopback_host(parts.hostname or "")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError("must start with https:// (Telegram posts updates over TLS only)")
        if not parts.hostname or parts.username is not None or parts.fragment:
            raise ValueError("must be https://HOST/PATH, without credentials or a #fragment")
        if not loopback and port not in (None, *_WEBHOOK_PORTS):
            raise ValueError("may name port 443, 80, 88 or 8443 only (Telegram posts to no other)")
        if not _WEBHOOK_PATH.fullmatch(parts.path or "/"):
            raise ValueError("has a path of letters, digits and / _ . ~ - only")
        return url.strip()

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if secret is not None and not _WEBHOOK_SECRET.fullmatch(secret.get_secret_value()):
            raise ValueError("must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        if secret is None and info.data.get("telegram_webhook_url") is not None:
            raise ValueError("must be set when MEMESWAP_TELEGRAM_WEBHOOK_URL is (1 to 256 characters of "
                             "A-Z, a-z, 0-9, _ and -; e.g. `openssl rand -hex 32`)")
        return secret

    @field_validator("tenor_api_key", "giphy_api_key")
    @classmethod
    def _blank_key_is_none(cls, key: SecretStr | None) -> SecretStr | None:
        """`MEMESWAP_TENOR_API_KEY=` (left blank in a .env) leaves GIF search off."""
        return key if key is not None and key.get_secret_value().strip() else None

    @field_validator("download_loopback_origins")
    @classmethod
    def _loopback_origins(cls, origins: list[str]) -> list[str]:
        if origins:  # (the downloader imports aiohttp: not for every command's start)
            from memeswap.bot.safe_download import parsed_origin

            for origin in origins:
                parsed_origin(origin)
        return origins

    @field_validator("nsfw_blocked")
    @classmethod
    def _known_labels(cls, labels: list[str]) -> list[str]:
        unknown = sorted(set(labels) - set(NUDENET_LABELS))
        if unknown:
            raise ValueError(f"unknown label {unknown[0]}; known labels: {', '.join(NUDENET_LABELS)}")
        return labels

    @property
    def telegram_webhook_path(self) -> str:
        """The path of MEMESWAP_TELEGRAM_WEBHOOK_URL, where the webhook server takes updates."""
        return urlsplit(self.telegram_webhook_url or "").path or "/"

    @property
    def ops_port_chosen(self) -> bool:
        """Whether MEMESWAP_OPS_PORT was set (environment, `.env` or argument) rather than defaulted."""
        return "ops_port" in self.model_fields_set

    @property
    def templates_dir(self) -> Path:
        return self.data_dir / "templates"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache" / "tracks"

    @property
    def previews_dir(self) -> Path:
        return self.data_dir / "cache" / "previews"

    def secret_values(self) -> list[str]:
        """Every secret setting's value, for the logs to redact."""
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
        return values

    def badge(self) -> BadgeStyle | None:
        from memeswap.inference.media.badge import BadgeStyle

        return BadgeStyle(self.ai_badge_text, self.ai_badge_corner) if self.ai_badge else None

    def nsfw_screen(self) -> NsfwScreen | None:
        from memeswap.inference.safety.nsfw import NsfwScreen

        """Not loaded yet (`prepare()` does that, once, where it is used)."""
        return NsfwScreen(self.nsfw_threshold, self.nsfw_blocked) if self.nsfw_screening else None

    def swapper_config(self) -> SwapperConfig:
        return SwapperConfig(self.max_selfie_yaw_degrees, self.skin_tone_balance, self.onnx_provider,
                             self.swap_batch_size, self.mouth_mask)

    def pack_limits(self) -> PackLimits:
        from memeswap.inference.templates.packs import PackLimits

        return PackLimits(self.pack_max_bytes, self.pack_max_unpacked_bytes, self.pack_max_entries,
                          self.pack_max_entry_bytes)

    def media_limits(self) -> MediaLimits:
        from memeswap.inference.media.limits import MediaLimits

        return MediaLimits(
            max_upload_bytes=self.max_upload_bytes,
            max_image_pixels=self.max_image_pixels,
            max_template_bytes=self.max_template_bytes,
            max_frames=self.max_template_frames,
            max_seconds=self.max_template_seconds,
            max_template_side=self.max_template_side,
            max_animation_decode_pixels=self.max_animation_decode_pixels,
            max_video_decode_pixels=self.max_video_decode_pixels,
        )
