import contextlib
import io
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def printed_to_debug_log(log: logging.Logger) -> Iterator[None]:
    """insightface reports with print(); keep stdout clean and log it at DEBUG instead."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            yield
    finally:
        if printed.getvalue().strip():
            log.debug("insightface: %s", printed.getvalue().strip())
