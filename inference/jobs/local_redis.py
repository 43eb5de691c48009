"""A throwaway `redis-server` on a free loopback port, for the test suite and the
benchmarks: its own temporary folder, no persistence unless asked for (then AOF, as
deploy/compose.yaml runs it), stopped (and the folder removed) on exit. `crash()` and
`start()` again give the same server back on the same port, for tests of an outage."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class RedisServerMissing(RuntimeError):
    """No `redis-server` binary on PATH."""


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalRedisServer:
    """`with LocalRedisServer() as server: server.url` — a fresh, empty Redis."""

    def __init__(self, binary: str = "redis-server", start_timeout_s: float = 10.0, append_only: bool = False) -> None:
        found = shutil.which(binary)
        if found is None:
            raise RedisServerMissing(f"{binary} is not installed (Debian: apt-get install redis-server)")
        self.binary = found
        self.start_timeout_s = start_timeout_s
        self.append_only = append_only
        self.port = 0
        self._folder: Path | None = None
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> LocalRedisServer:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="memeswap-redis-"))
            self.port = free_loopback_port()
        self._process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "yes" if self.append_only else "no", "--dir", str(self._folder),
             "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout_s
        while not self._answers_ping():
            if self._process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server exited at start (port {self.port})")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not answer within "
                                   f"{self.start_timeout_s:g} s (port {self.port})")
            time.sleep(0.02)
        return self

    def crash(self) -> None:
        """kill -9, keeping the folder and the port for the next `start()`."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def __enter__(self) -> LocalRedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
