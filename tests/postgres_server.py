"""A throwaway PostgreSQL server on a free loopback port, for the test suite: its own
temporary folder (data, unix socket, log), no fsync, stopped (and the folder removed) on
`stop()`, on `__exit__`, or at interpreter exit if the caller forgot.

PostgreSQL refuses to run as root, so when the suite runs as root (CI does) the folder is
handed to the `postgres` system user (created by Debian's `postgresql` package) and every
PostgreSQL program runs as that user: the child drops to its uid/gid before `exec`
(`subprocess`'s `user=`/`group=`/`extra_groups=`, no `runuser`/`su`/PAM needed). Run as a
normal user, they run as that user. Nothing outside the temporary folder changes: no
system service, no edits to /etc.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from memeswap.inference.jobs.local_redis import free_loopback_port

ROLE = "memeswap"
DATABASE = "memeswap"
_NEEDED = ("initdb", "pg_ctl", "postgres", "createdb", "pg_isready")
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries (initdb, pg_ctl, ...) found."""


def find_postgres_bin() -> Path:
    """The folder holding initdb, pg_ctl, postgres, createdb and pg_isready: PATH first,
    then /usr/lib/postgresql/<version>/bin, newest version first."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)

    def version(folder: str) -> tuple[int, ...]:
        name = Path(folder).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    candidates += [Path(folder) for folder in
                   sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for folder in candidates:
        if all(os.access(folder / tool, os.X_OK) for tool in _NEEDED):
            return folder
    raise PostgresMissing("PostgreSQL server binaries (initdb, pg_ctl) are not installed "
                          "(Debian: apt-get install postgresql)")


class LocalPostgresServer:
    """`with LocalPostgresServer() as server: server.url` — a fresh PostgreSQL with an empty
    `memeswap` database owned by the superuser `memeswap` (random password, scram-sha-256)."""

    def __init__(self, start_timeout_s: float = 30.0, port: int = 0) -> None:
        """`port`: listen there (for a test that points a client at it before it starts);
        0 takes a free one."""
        self.bin = find_postgres_bin()
        self.start_timeout_s = start_timeout_s
        self.port = port
        self._wanted_port = port
        self.password = secrets.token_urlsafe(24)
        self._folder: Path | None = None
        self._as_user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._as_user = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresMissing("running as root needs the 'postgres' system user to run the "
                                      "server as (Debian: apt-get install postgresql)") from None

    # -- public -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.database_url(DATABASE)

    def database_url(self, name: str) -> str:
        return f"postgresql+asyncpg://{ROLE}:{self.password}@127.0.0.1:{self.port}/{name}"

    @property
    def folder(self) -> Path | None:
        """The temporary folder (data/, the unix socket, server.log); None when stopped."""
        return self._folder

    @property
    def pid(self) -> int | None:
        """The postmaster's process id, from its pid file; None when not running."""
        return None if self._folder is None else self._read_pid(self._folder / "data")

    def start(self) -> LocalPostgresServer:
        if self._folder is not None:
            raise RuntimeError("this LocalPostgresServer is already started")
        self._folder = Path(tempfile.mkdtemp(prefix="memeswap-pg-", dir=self._temp_parent()))
        atexit.register(self.stop)
        try:
            if self._as_user is not None:
                os.chown(self._folder, self._as_user.pw_uid, self._as_user.pw_gid)
            self._initdb()
            for attempt in range(3):  # the free port may be taken between probe and bind
                self.port = self._wanted_port or free_loopback_port()
                self._configure()
                if self._pg_ctl_start():
                    break
                if attempt == 2 or self._wanted_port or "already in use" not in self._log_tail():
                    raise RuntimeError(f"postgres did not start (or answer within {self.start_timeout_s:g} s) "
                                       f"(port {self.port}); server log:\n{self._log_tail()}")
            self._run_client([self.bin / "createdb", *self._client_args(), DATABASE])
        except BaseException:
            self.stop()
            raise
        return self

    def create_database(self, name: str) -> str:
        """Create an extra, empty database and return its asyncpg URL."""
        if self._folder is None:
            raise RuntimeError("the server is not started")
        if not _NAME.fullmatch(name):
            raise ValueError(f"database name {name!r}: lowercase letters, digits and _ only")
        self._run_client([self.bin / "createdb", *self._client_args(), name])
        return self.database_url(name)

    def stop(self) -> None:
        atexit.unregister(self.stop)
        folder, self._folder = self._folder, None
        if folder is None:
            return
        data = folder / "data"
        pid = self._read_pid(data)
        if pid is not None:
            subprocess.run([self.bin / "pg_ctl", "stop", "-D", data, "-m", "immediate", "-w", "-t", "10"],
                           capture_output=True, **self._as_server_user(folder))
            self._kill_if_alive(pid)
        shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self) -> LocalPostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------

    def _temp_parent(self) -> str | None:
        """The server user must be able to reach the folder: as root, keep TMPDIR only if every
        folder above it is searchable by others, else use /tmp."""
        if self._as_user is None:
            return None
        parent = Path(tempfile.gettempdir()).resolve()
        if all(os.stat(p).st_mode & 0o001 for p in (parent, *parent.parents)):
            return str(parent)
        return "/tmp"

    def _as_server_user(self, folder: Path) -> dict:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(HOME=str(folder), LC_ALL="C", LANG="C")
        kwargs: dict = {"cwd": folder, "env": env}
        if self._as_user is not None:
            env.update(USER="postgres", LOGNAME="postgres")
            kwargs.update(user=self._as_user.pw_uid, group=self._as_user.pw_gid, extra_groups=[])
        return kwargs

    def _run(self, command: list, **extra_env: str) -> subprocess.CompletedProcess:
        assert self._folder is not None
        kwargs = self._as_server_user(self._folder)
        kwargs["env"].update(extra_env)
        done = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-2000:]}")
        return done

    def _initdb(self) -> None:
        assert self._folder is not None
        pwfile = self._folder / "pwfile"
        descriptor = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self.password + "\n")
        if self._as_user is not None:
            os.chown(pwfile, self._as_user.pw_uid, self._as_user.pw_gid)
        try:
            self._run([self.bin / "initdb", "-D", self._folder / "data", "-U", ROLE, f"--pwfile={pwfile}",
                       "-E", "UTF8", "--locale=C", "--auth=scram-sha-256", "--no-sync", "--no-instructions"])
        finally:
            pwfile.unlink(missing_ok=True)

    def _configure(self) -> None:
        """Append (later lines win) the settings of this run to postgresql.conf."""
        assert self._folder is not None
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self._folder),
            "max_connections": "50",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with open(self._folder / "data" / "postgresql.conf", "a") as conf:
            conf.write("\n# memeswap tests\n")
            for key, value in settings.items():
                conf.write(f"{key} = '{value}'\n")

    def _pg_ctl_start(self) -> bool:
        """Start the postmaster and wait until it answers on TCP; False if it did not."""
        assert self._folder is not None
        log = self._folder / "server.log"
        log.unlink(missing_ok=True)
        timeout = max(1, round(self.start_timeout_s))
        done = subprocess.run([str(self.bin / "pg_ctl"), "start", "-D", str(self._folder / "data"),
                               "-l", str(log), "-w", "-t", str(timeout)],
                              capture_output=True, text=True, **self._as_server_user(self._folder))
        if done.returncode != 0:
            pid = self._read_pid(self._folder / "data")
            if pid is not None:
                self._kill_if_alive(pid)
            return False
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            ready = subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
                                    "-t", "1"], **self._as_server_user(self._folder))
            if ready.returncode == 0:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def _client_args(self) -> list[str]:
        """createdb etc. over the unix socket in the private folder, as `memeswap`."""
        return ["-h", str(self._folder), "-p", str(self.port), "-U", ROLE, "-w"]

    def _run_client(self, command: list) -> subprocess.CompletedProcess:
        return self._run(command, PGPASSWORD=self.password)

    def _log_tail(self, lines: int = 30) -> str:
        if self._folder is None:
            return ""
        try:
            return "\n".join((self._folder / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    @staticmethod
    def _read_pid(data: Path) -> int | None:
        try:
            return int((data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    @staticmethod
    def _kill_if_alive(pid: int) -> None:
        """After `pg_ctl stop` the postmaster is gone; if it is not (pg_ctl failed), kill it."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    if b"postgres" not in handle.read():
                        return  # the pid is gone or was reused by something else
            except OSError:
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
