import io
import json
import logging
import sys
from datetime import UTC, datetime

import pytest

from memeswap.inference.observability.logs import JsonLogFormatter, configure_logging


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def json_logger(name: str) -> tuple[logging.Logger, io.StringIO]:
    """A non-propagating logger writing JSON lines to a buffer, so the root logger is untouched."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_have_the_base_keys():
    log, stream = json_logger("memeswap.test.base")
    log.info("job %s queued", "abc")
    log.warning("second")
    first, second = lines(stream)
    assert set(first) == {"ts", "level", "logger", "message"}
    assert first["message"] == "job abc queued"
    assert first["level"] == "INFO"
    assert first["logger"] == "memeswap.test.base"
    ts = datetime.fromisoformat(first["ts"])
    assert ts.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - ts).total_seconds()) < 60
    assert second["level"] == "WARNING"


def test_whitelisted_extras_are_kept():
    log, stream = json_logger("memeswap.test.extras")
    log.info("done", extra={"job_id": "j-1", "worker": 2, "outcome": "failed", "code": "no_face", "seconds": 1.25})
    (entry,) = lines(stream)
    assert entry["job_id"] == "j-1"
    assert entry["worker"] == 2
    assert entry["outcome"] == "failed"
    assert entry["code"] == "no_face"
    assert entry["seconds"] == 1.25
    assert "user_key" not in entry and "shard" not in entry


def test_other_extras_never_appear():
    log, stream = json_logger("memeswap.test.secret")
    log.info("connecting", extra={"token": "s3cr3t-value", "job_id": "j-2"})
    output = stream.getvalue()
    assert "s3cr3t-value" not in output
    assert "token" not in output
    assert lines(stream)[0]["job_id"] == "j-2"


def test_exception_is_one_string():
    log, stream = json_logger("memeswap.test.exc")
    try:
        raise ValueError("bad frame")
    except ValueError:
        log.exception("swap failed", extra={"job_id": "j-3"})
    (entry,) = lines(stream)
    assert entry["message"] == "swap failed"
    assert isinstance(entry["exc"], str)
    assert "Traceback" in entry["exc"] and "ValueError: bad frame" in entry["exc"]
    assert len(stream.getvalue().splitlines()) == 1


def ours(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if getattr(h, "_memeswap_handler", False)]


def test_configure_logging_twice_keeps_one_handler():
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    first, second = io.StringIO(), io.StringIO()
    configure_logging("text", stream=first)
    configure_logging("json", level=logging.DEBUG, stream=second)
    assert len(ours(root)) == 1
    assert foreign in root.handlers
    assert root.level == logging.DEBUG
    logging.getLogger("memeswap.test.twice").debug("hello", extra={"job_id": "j-4"})
    assert first.getvalue() == ""
    entry = json.loads(second.getvalue())
    assert entry["message"] == "hello" and entry["job_id"] == "j-4"


def test_text_format_appends_job_id():
    stream = io.StringIO()
    configure_logging("text", stream=stream)
    log = logging.getLogger("memeswap.test.text")
    log.info("started", extra={"job_id": "j-5"})
    log.info("idle")
    with_job, without_job = stream.getvalue().splitlines()
    assert with_job.endswith(" INFO memeswap.test.text started job=j-5")
    assert without_job.endswith(" INFO memeswap.test.text idle")


def test_configure_logging_defaults_to_stderr():
    configure_logging()
    (handler,) = ours(logging.getLogger())
    assert handler.stream is sys.stderr
    assert logging.getLogger().level == logging.INFO


def test_unknown_format_is_refused():
    with pytest.raises(ValueError):
        configure_logging("yaml")


@pytest.mark.parametrize("format", ["text", "json"])
def test_secrets_are_redacted_in_messages_arguments_and_tracebacks(format):
    stream = io.StringIO()
    token = "123456:AAE-secret-token"
    configure_logging(format, level=logging.DEBUG, stream=stream, secrets=[token, ""])
    log = logging.getLogger("memeswap.test.secrets")
    log.debug("POST https://api.telegram.org/bot%s/getMe", token)
    try:
        raise ConnectionError(f"cannot reach https://api.telegram.org/bot{token}/getUpdates")
    except ConnectionError:
        log.exception("polling failed")
    written = stream.getvalue()
    assert token not in written
    assert written.count("[redacted]") == 2  # in the message and in the exception's line
    assert "getMe" in written and "polling failed" in written
