"""Operator mistakes in settings are refused at start-up with a message that names the
setting and never repeats a secret."""

import pytest
from pydantic import ValidationError

from memeswap.bot.settings import Settings


@pytest.mark.parametrize("field, value, expected", [
    ("redis_url", "http://:hunter2@cache:6379", "must start with redis://"),
    ("database_url", "postgresql://u:hunter2@db/x", "must start with postgresql+asyncpg://"),
    ("nsfw_blocked", ["NOT_A_LABEL"], "unknown label NOT_A_LABEL"),
    ("telegram_webhook_url", "https://me:hunter2@bot.example.com/hook", "without credentials"),
    ("telegram_webhook_url", "https://bot.example.com/hunter2(", "a path of letters, digits"),
    ("telegram_webhook_url", "http://10.0.0.5/hunter2", "must start with https://"),
    ("telegram_webhook_secret", "hunter2!", "1 to 256 characters of A-Z"),
])
def test_bad_values_are_refused_without_echoing_them(field, value, expected):
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, **{field: value})
    first = refused.value.errors()[0]
    assert first["loc"] == (field,) and expected in first["msg"]
    assert "hunter2" not in first["msg"]


def test_a_webhook_url_needs_its_secret_and_gives_its_path():
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, telegram_webhook_url="https://bot.example.com:8443/tg/hook")
    assert refused.value.errors()[0]["loc"] == ("telegram_webhook_secret",)
    settings = Settings(_env_file=None, telegram_webhook_url=" https://bot.example.com:8443/tg/hook ",
                        telegram_webhook_secret="a" * 256)
    assert (settings.telegram_webhook_url, settings.telegram_webhook_path) == (
        "https://bot.example.com:8443/tg/hook", "/tg/hook")
    assert Settings(_env_file=None, telegram_webhook_url="https://bot.example.com",
                    telegram_webhook_secret="s").telegram_webhook_path == "/"
    assert Settings(_env_file=None, telegram_webhook_url="").telegram_webhook_url is None  # blank in a .env: polling


def test_good_values_pass():
    settings = Settings(_env_file=None, redis_url="rediss://:pw@cache:6380/1",
                        database_url="postgresql+asyncpg://u:pw@db/memeswap", nsfw_blocked=["ANUS_EXPOSED"])
    assert settings.nsfw_screen().blocked == frozenset({"ANUS_EXPOSED"})
    assert sorted(Settings(_env_file=None).nsfw_blocked) == sorted(
        ["FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED",
         "ANUS_EXPOSED"])


@pytest.mark.parametrize("value, expected", [("3", [3]), ("[0, 2]", [0, 2])])
def test_discord_shard_ids_take_one_number_or_a_list(monkeypatch, value, expected):
    """One number is what a StatefulSet pod gets from its index label (deploy/kubernetes)."""
    monkeypatch.setenv("MEMESWAP_DISCORD_SHARD_IDS", value)
    assert Settings(_env_file=None).discord_shard_ids == expected


@pytest.mark.parametrize("value", ["true", "shard-3", "[\"a\"]"])
def test_discord_shard_ids_refuse_what_is_not_a_shard_number(monkeypatch, value):
    monkeypatch.setenv("MEMESWAP_DISCORD_SHARD_IDS", value)
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    assert refused.value.errors()[0]["loc"][0] == "discord_shard_ids"
