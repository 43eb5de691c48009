"""Log formatting for the bot and the workers: human text, or one JSON object per line.

The JSON formatter writes a fixed set of keys and never the record's whole `__dict__`, so
whatever a caller passes in `extra` (a token, a file path) stays out of the logs unless its
key is on the whitelist below.
"""

import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

EXTRA_KEYS = ("job_id", "user_key", "worker", "shard", "outcome", "code", "seconds")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_MARKER = "_memeswap_handler"


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, whitelisted extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in EXTRA_KEYS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextLogFormatter(logging.Formatter):
    """The plain text format, with " job=<id>" after the message when the record has a job_id."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        job_id = getattr(record, "job_id", None)
        return text if job_id is None else f"{text} job={job_id}"


class RedactingFormatter(logging.Formatter):
    """Replaces each secret (a bot token, a URL with a password) wherever it shows up in a
    formatted line, tracebacks included: libraries log request URLs, and Telegram's carry
    the token."""

    def __init__(self, inner: logging.Formatter, secrets: list[str]) -> None:
        super().__init__()
        self.inner = inner
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


def configure_logging(format: str = "text", level: int = logging.INFO, stream: TextIO | None = None,
                      secrets: Sequence[str] = ()) -> None:
    """Give the root logger one handler of ours, replacing the one an earlier call added;
    `secrets` never appear in what it writes.

    Handlers that other code added to the root logger are left alone.
    """
    if format == "json":
        formatter: logging.Formatter = JsonLogFormatter()
    elif format == "text":
        formatter = TextLogFormatter()
    else:
        raise ValueError(f'format must be "text" or "json", not {format!r}')
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARKER, False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(RedactingFormatter(formatter, list(secrets)) if secrets else formatter)
    setattr(handler, _MARKER, True)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request's URL at INFO, and Telegram's URLs carry the bot's token.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
