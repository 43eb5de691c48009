"""The one place memeswap downloads anything: `memeswap models fetch NAME`.

Jobs never call this; they call `ModelStore.require`, which fails with the fetch command
in its message. A download goes to `<folder>/<filename>.part`, resumes with an HTTP Range
request when that file exists, and is renamed to its final name only after its size and
SHA-256 match the published values, so a final-named file written here has always been
verified (or, for a model with no published checksum, is reported as unverified).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from memeswap.inference.errors import InputError
from memeswap.inference.models.registry import USABLE_STATUSES, ModelSpec, ModelStore
from memeswap.inference.sizes import human_bytes

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; fetches there are not serialised
    fcntl = None  # type: ignore[assignment]

ProgressCallback = Callable[[int, int | None], None]

READ_BLOCK_BYTES = 256 * 1024
# A mirror that drops the connection is asked to resume this many times, as long as each
# attempt gets more bytes; then the next mirror is tried.
MAX_RESUMES_PER_URL = 5
USER_AGENT = "memeswap-model-fetch/1"

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class ModelDownloadError(InputError):
    """A fetch could not produce a verified file; the message is one line for people."""

    code = "model_download_failed"


class _TransferError(Exception):
    """One attempt against one URL failed in a way the next attempt or mirror may not."""


def fetch_model(
    store: ModelStore,
    name: str,
    accept_license: bool = False,
    progress: ProgressCallback | None = None,
    urls: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download model `name` into `store.folder` and return its verified path.

    Returns at once when the file is already there and verifies. `progress(done, total)`
    is called as bytes arrive (`total` is None when neither the spec nor the server says);
    `done` starts at the resumed offset and goes back to 0 if a server ignores the range
    request. `urls` replaces the spec's mirrors (tests point it at a loopback server).
    Two fetches of the same model, in threads or processes, are serialised by a lock file.
    """
    spec = store.spec(name)
    if spec.non_commercial and not accept_license:
        raise ModelDownloadError(
            f"{spec.name} is for {spec.licence}; pass --accept-license to fetch it",
            code="licence_not_accepted",
        )
    final_path = store.folder / spec.filename
    candidate_urls = tuple(urls) if urls is not None else spec.urls
    try:
        store.folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or error
        raise ModelDownloadError(f"cannot create the models folder {store.folder}: {reason}") from error

    with _exclusive_lock(store.folder / f"{spec.filename}.lock"):
        # Checked under the lock: a concurrent fetch may just have finished this model.
        if store.status(spec.name) in USABLE_STATUSES:
            return final_path
        if not candidate_urls:
            raise ModelDownloadError(
                f"no download URL known for {spec.name}; place {spec.filename} in {store.folder} yourself"
            )
        part_path = final_path.with_name(final_path.name + ".part")
        _discard_oversized_part(part_path, spec)
        # A .part left by an earlier run may come from another mirror or another release;
        # if it does not verify, it is thrown away and the download starts once more from 0.
        rounds = 2 if _file_size(part_path) > 0 else 1
        for round_index in range(rounds):
            if spec.size is None or _file_size(part_path) != spec.size:
                _download_from_mirrors(part_path, candidate_urls, spec, progress, timeout)
            problem, digest = _check_download(store, part_path, spec)
            if problem is None:
                break
            part_path.unlink(missing_ok=True)
            if round_index == rounds - 1:
                raise ModelDownloadError(problem)
        os.replace(part_path, final_path)
        if digest:
            store.record_sha256(final_path, digest)
        return final_path


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Holds an flock on `lock_path`; the lock file itself is left in place (deleting it
    would let a third fetch lock a different inode)."""
    with open(lock_path, "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _discard_oversized_part(part_path: Path, spec: ModelSpec) -> None:
    if spec.size is not None and _file_size(part_path) > spec.size:
        part_path.unlink(missing_ok=True)


def _check_download(store: ModelStore, part_path: Path, spec: ModelSpec) -> tuple[str | None, str]:
    """(None, digest) when the downloaded file matches the published size and SHA-256,
    else (one-line problem, "")."""
    size = _file_size(part_path)
    if spec.size is not None and size != spec.size:
        return (
            f"downloaded {spec.name} but it is {human_bytes(size)} ({size} bytes), not the published "
            f"{spec.size} bytes; the file was removed",
            "",
        )
    if not spec.pinned:
        return None, ""
    digest = store.file_sha256(part_path)
    if digest != spec.sha256:
        return f"downloaded {spec.name} but its SHA-256 does not match the published value; the file was removed", ""
    return None, digest


def _download_from_mirrors(
    part_path: Path,
    urls: Sequence[str],
    spec: ModelSpec,
    progress: ProgressCallback | None,
    timeout: float,
) -> None:
    """Fill `part_path` from the first URL that works, resuming after dropped connections."""
    failures: list[str] = []
    for url in urls:
        resumes = 0
        while True:
            size_before = _file_size(part_path)
            try:
                _transfer(url, part_path, spec, progress, timeout)
                return
            except _TransferError as error:
                if _file_size(part_path) > size_before and resumes < MAX_RESUMES_PER_URL:
                    resumes += 1
                    continue
                failures.append(f"{url} ({error})")
                break
    kept = _file_size(part_path)
    tail = f"; {human_bytes(kept)} kept in {part_path.name}, the next fetch resumes it" if kept else ""
    raise ModelDownloadError(f"could not download {spec.name}: {'; '.join(failures)}{tail}")


def _transfer(
    url: str,
    part_path: Path,
    spec: ModelSpec,
    progress: ProgressCallback | None,
    timeout: float,
) -> None:
    """One GET of `url` into `part_path`, appending from its current size when the server
    honours the range. Raises _TransferError when the attempt did not end with the whole body."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise _TransferError("only http and https URLs are fetched")
    offset = _file_size(part_path)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            # The server cannot serve from our offset: the .part is not a prefix of its file.
            part_path.unlink(missing_ok=True)
            return _transfer(url, part_path, spec, progress, timeout)
        raise _TransferError(f"HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise _TransferError(_describe(error)) from error

    with response:
        body_length = _int_header(response.headers.get("Content-Length"))
        if response.status == 206:
            start, full_size = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                if not offset:
                    raise _TransferError(f"the server sent bytes from {start} when asked for the whole file")
                response.close()
                part_path.unlink(missing_ok=True)
                return _transfer(url, part_path, spec, progress, timeout)
            mode = "ab"
        elif response.status == 200:
            # The server ignored the range (or none was sent): start again from byte 0.
            offset, mode = 0, "wb"
            full_size = body_length
        else:
            raise _TransferError(f"unexpected HTTP status {response.status}")
        expected_end = offset + body_length if body_length is not None else full_size
        total = spec.size if spec.size is not None else full_size
        done = offset
        try:
            with open(part_path, mode) as out:
                if progress is not None:
                    progress(done, total)
                while True:
                    try:
                        block = response.read(READ_BLOCK_BYTES)
                    except (http.client.HTTPException, OSError) as error:
                        raise _TransferError(_describe(error)) from error
                    if not block:
                        break
                    out.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
                    if spec.size is not None and done > spec.size:
                        break  # longer than published: the size check rejects it, no need to read on
                out.flush()
                os.fsync(out.fileno())
        except OSError as error:
            raise ModelDownloadError(f"cannot write {part_path}: {error.strerror or error}") from error
        if expected_end is not None and done < expected_end and (spec.size is None or done <= spec.size):
            raise _TransferError(f"connection closed after {done} of {expected_end} bytes")


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, full size) from `Content-Range: bytes 100-199/200`; None where absent."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if match is None:
        return None, None
    full = match.group(3)
    return int(match.group(1)), (int(full) if full != "*" else None)


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        reason = error.reason
        return str(getattr(reason, "strerror", None) or reason)
    return str(error) or type(error).__name__
