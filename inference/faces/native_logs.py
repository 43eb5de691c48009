import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def silenced_native_stderr(enabled: bool = True) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while native code starts up.

    MediaPipe's C++ core (absl, glog, TensorFlow Lite) writes INFO and WARNING lines
    straight to the process's stderr, past Python's logging, when its graphs start.
    Only used around model construction and warm-up, never around user-facing work.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


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
