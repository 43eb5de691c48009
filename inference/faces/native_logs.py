import contextlib
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
