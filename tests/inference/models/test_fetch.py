"""fetch_model against a real HTTP server on 127.0.0.1 (port 0, in a thread).

The server serves fake model bytes, honours `Range: bytes=N-` with 206 and Content-Range,
and can drop the connection part-way through the first response, ignore ranges, serve
corrupted bytes, or answer 404. It records every request it sees.
"""

import http.server
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from memeswap.inference.errors import InputError
from memeswap.inference.models.fetch import ModelDownloadError, fetch_model
from memeswap.inference.models.registry import ModelSpec, ModelStatus, ModelStore
from tests.model_specs import make_spec

PAYLOAD_BYTES = 600_000


def fake_model_bytes(seed: int, n: int = PAYLOAD_BYTES) -> bytes:
    return random.Random(seed).randbytes(n)


@dataclass
class ServedFile:
    payload: bytes
    drop_after: int | None = None  # first response: send only this many body bytes, then close
    ignore_range: bool = False  # answer 200 with the whole file even to a Range request
    delay_s: float = 0.0  # pause before the body (lets concurrent fetches overlap)
    responses_left: int | None = None  # answer this many requests, then 404
    dropped: bool = False


@dataclass
class SeenRequest:
    path: str
    range: str | None


@dataclass
class LoopbackModelServer:
    """What the handler serves (by URL path; anything else is 404) and what it has seen."""

    files: dict[str, ServedFile] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def url(self, path: str) -> str:
        return self.base_url + path

    def requests_for(self, path: str) -> list[SeenRequest]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


class RangeHandler(http.server.BaseHTTPRequestHandler):
    server_state: LoopbackModelServer  # set on the subclass made per server

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        state = self.server_state
        with state.lock:
            state.requests.append(SeenRequest(self.path, self.headers.get("Range")))
            served = state.files.get(self.path)
            if served is not None and served.responses_left is not None:
                if served.responses_left <= 0:
                    served = None
                else:
                    served.responses_left -= 1
            drop_after = None
            if served is not None and served.drop_after is not None and not served.dropped:
                served.dropped = True
                drop_after = served.drop_after
        if served is None:
            self.send_error(404)
            return
        data = served.payload
        start = 0
        requested = self.headers.get("Range")
        if requested and not served.ignore_range:
            match = re.fullmatch(r"bytes=(\d+)-", requested)
            assert match, requested
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if served.delay_s:
            time.sleep(served.delay_s)
        if drop_after is not None:
            self.wfile.write(body[:drop_after])
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch) -> None:
    """urllib honours proxy variables; the loopback server must be reached directly."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture()
def server() -> Iterator[LoopbackModelServer]:
    state = LoopbackModelServer()
    handler = type("BoundRangeHandler", (RangeHandler,), {"server_state": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def payload() -> bytes:
    return fake_model_bytes(7)


@pytest.fixture()
def spec(payload) -> ModelSpec:
    return make_spec("fake_swapper", payload)


@pytest.fixture()
def store(tmp_path: Path, spec, payload) -> ModelStore:
    others = (
        make_spec("fake_sizeless", payload, known_size=False),
        make_spec("fake_unpinned", payload, pinned=False, non_commercial=False),
        make_spec("fake_free", payload, non_commercial=False),
    )
    # A folder that does not exist yet: fetch creates it.
    return ModelStore(tmp_path / "cache" / "models", (spec,) + others)


def leftovers(store: ModelStore) -> list[str]:
    """Files in the folder other than lock files."""
    if not store.folder.exists():
        return []
    return sorted(p.name for p in store.folder.iterdir() if not p.name.endswith(".lock"))


def test_full_download_verifies_and_lands_under_its_final_name(server, store, payload):
    server.files["/m.onnx"] = ServedFile(payload)
    path = fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")])
    assert path == store.folder / "fake_swapper.onnx"
    assert path.read_bytes() == payload
    assert leftovers(store) == ["fake_swapper.onnx"], "no .part left behind"
    assert [r.range for r in server.requests] == [None]
    assert store.status("fake_swapper") is ModelStatus.PRESENT


def test_progress_is_reported_with_increasing_counts(server, store, payload):
    server.files["/m.onnx"] = ServedFile(payload)
    calls: list[tuple[int, int | None]] = []
    fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")], progress=lambda d, t: calls.append((d, t)))
    done = [d for d, _ in calls]
    assert len(calls) >= 3
    assert done == sorted(done)
    assert all(total == len(payload) for _, total in calls)
    assert calls[-1] == (len(payload), len(payload))


def test_total_comes_from_the_server_when_the_spec_has_no_size(server, store, payload):
    server.files["/m.onnx"] = ServedFile(payload)
    calls: list[tuple[int, int | None]] = []
    fetch_model(store, "fake_sizeless", accept_license=True, urls=[server.url("/m.onnx")], progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (len(payload), len(payload))
    assert store.status("fake_sizeless") is ModelStatus.PRESENT


def test_interrupted_download_resumes_with_a_range_request(server, store, payload):
    cut = 150_000
    server.files["/m.onnx"] = ServedFile(payload, drop_after=cut)
    path = fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")])
    assert [r.range for r in server.requests] == [None, f"bytes={cut}-"]
    assert path.read_bytes() == payload
    assert leftovers(store) == ["fake_swapper.onnx"]


def test_part_left_by_an_earlier_run_is_resumed(server, store, payload):
    cut = 200_000
    store.folder.mkdir(parents=True)
    (store.folder / "fake_swapper.onnx.part").write_bytes(payload[:cut])
    server.files["/m.onnx"] = ServedFile(payload)
    calls: list[tuple[int, int | None]] = []
    path = fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")], progress=lambda d, t: calls.append((d, t)))
    assert [r.range for r in server.requests] == [f"bytes={cut}-"]
    assert calls[0][0] == cut
    assert path.read_bytes() == payload
    assert leftovers(store) == ["fake_swapper.onnx"]


def test_server_that_ignores_range_restarts_from_zero(server, store, payload):
    store.folder.mkdir(parents=True)
    (store.folder / "fake_swapper.onnx.part").write_bytes(payload[:100_000])
    server.files["/m.onnx"] = ServedFile(payload, ignore_range=True)
    path = fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")])
    assert [r.range for r in server.requests] == ["bytes=100000-"]
    assert path.read_bytes() == payload, "the 200 body replaced the part instead of being appended"


def test_stale_part_from_another_file_is_discarded_and_fetched_again(server, store, payload):
    store.folder.mkdir(parents=True)
    (store.folder / "fake_swapper.onnx.part").write_bytes(fake_model_bytes(99, 100_000))
    server.files["/m.onnx"] = ServedFile(payload)
    path = fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")])
    assert [r.range for r in server.requests] == ["bytes=100000-", None]
    assert path.read_bytes() == payload


def test_part_longer_than_the_served_file_starts_again(server, store, payload):
    store.folder.mkdir(parents=True)
    (store.folder / "fake_sizeless.onnx.part").write_bytes(payload + b"junk")
    server.files["/m.onnx"] = ServedFile(payload)
    path = fetch_model(store, "fake_sizeless", accept_license=True, urls=[server.url("/m.onnx")])
    assert [r.range for r in server.requests] == [f"bytes={len(payload) + 4}-", None]
    assert path.read_bytes() == payload


def test_corrupt_download_is_removed(server, store, payload):
    server.files["/m.onnx"] = ServedFile(payload[:-1] + bytes([payload[-1] ^ 1]))
    with pytest.raises(InputError) as raised:
        fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")])
    assert str(raised.value) == (
        "downloaded fake_swapper but its SHA-256 does not match the published value; the file was removed"
    )
    assert leftovers(store) == []


def test_download_of_the_wrong_size_is_removed(server, store, payload):
    server.files["/m.onnx"] = ServedFile(payload + b"x" * 1000)
    with pytest.raises(ModelDownloadError) as raised:
        fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")])
    assert "not the published" in str(raised.value)
    assert leftovers(store) == []


def test_licence_must_be_accepted_for_non_commercial_models(server, store, payload):
    server.files["/m.onnx"] = ServedFile(payload)
    with pytest.raises(InputError) as raised:
        fetch_model(store, "fake_swapper", urls=[server.url("/m.onnx")])
    assert str(raised.value) == (
        "fake_swapper is for non-commercial research only (test); pass --accept-license to fetch it"
    )
    assert server.requests == []
    assert leftovers(store) == []
    # A model without that restriction needs no acceptance.
    path = fetch_model(store, "fake_free", urls=[server.url("/m.onnx")])
    assert path.read_bytes() == payload


def test_known_inswapper_needs_the_licence_accepted(tmp_path):
    with pytest.raises(InputError) as raised:
        fetch_model(ModelStore(tmp_path), "inswapper_128")
    assert str(raised.value).startswith("inswapper_128 is for non-commercial research only")
    assert str(raised.value).endswith("; pass --accept-license to fetch it")
    assert list(tmp_path.iterdir()) == []


def test_present_file_returns_without_a_request(server, store, payload):
    store.folder.mkdir(parents=True)
    (store.folder / "fake_swapper.onnx").write_bytes(payload)
    server.files["/m.onnx"] = ServedFile(payload)
    path = fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")])
    assert path == store.folder / "fake_swapper.onnx"
    assert server.requests == []


def test_corrupt_final_file_is_replaced(server, store, payload):
    store.folder.mkdir(parents=True)
    final = store.folder / "fake_swapper.onnx"
    final.write_bytes(bytes(len(payload)))
    assert store.status("fake_swapper") is ModelStatus.CORRUPT
    server.files["/m.onnx"] = ServedFile(payload)
    fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")])
    assert final.read_bytes() == payload
    assert store.status("fake_swapper") is ModelStatus.PRESENT


def test_second_url_is_used_when_the_first_fails(server, store, payload):
    server.files["/good.onnx"] = ServedFile(payload)
    path = fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/gone.onnx"), server.url("/good.onnx")])
    assert [r.path for r in server.requests] == ["/gone.onnx", "/good.onnx"]
    assert path.read_bytes() == payload


def test_all_urls_failing_is_one_line_naming_each(server, store):
    refused = "http://127.0.0.1:9/m.onnx"  # discard port: nothing listens there
    with pytest.raises(ModelDownloadError) as raised:
        fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/gone.onnx"), refused], timeout=5)
    message = str(raised.value)
    assert message.startswith("could not download fake_swapper: ")
    assert "HTTP 404" in message and server.url("/gone.onnx") in message and refused in message
    assert "\n" not in message
    assert leftovers(store) == []


def test_failed_mirrors_keep_the_part_for_the_next_fetch(server, store, payload):
    cut = 250_000
    # Drops the first response part-way, then answers 404: the resume fails.
    server.files["/m.onnx"] = ServedFile(payload, drop_after=cut, responses_left=1)
    with pytest.raises(ModelDownloadError) as raised:
        fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")])
    assert "the next fetch resumes it" in str(raised.value)
    assert (store.folder / "fake_swapper.onnx.part").read_bytes() == payload[:cut]
    assert not (store.folder / "fake_swapper.onnx").exists()

    server.files = {"/m.onnx": ServedFile(payload)}
    fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")])
    assert server.requests[-1].range == f"bytes={cut}-"
    assert leftovers(store) == ["fake_swapper.onnx"]


def test_no_url_known_says_where_to_place_the_file(tmp_path):
    store = ModelStore(tmp_path / "models")
    with pytest.raises(InputError) as raised:
        fetch_model(store, "det_10g", accept_license=True)
    assert str(raised.value) == f"no download URL known for det_10g; place det_10g.onnx in {store.folder} yourself"


def test_non_http_urls_are_not_fetched(store, tmp_path, payload):
    source = tmp_path / "local.onnx"
    source.write_bytes(payload)
    with pytest.raises(ModelDownloadError):
        fetch_model(store, "fake_swapper", accept_license=True, urls=[source.as_uri()])
    assert leftovers(store) == []


def test_unpinned_model_is_fetched_and_reported_unverified(server, store, payload):
    server.files["/m.onnx"] = ServedFile(payload)
    path = fetch_model(store, "fake_unpinned", urls=[server.url("/m.onnx")])
    assert path.read_bytes() == payload
    assert store.status("fake_unpinned") is ModelStatus.UNVERIFIED
    # Already there: no second request.
    fetch_model(store, "fake_unpinned", urls=[server.url("/m.onnx")])
    assert len(server.requests) == 1


def test_concurrent_fetches_download_once(server, store, payload):
    server.files["/m.onnx"] = ServedFile(payload, delay_s=0.3)
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(fetch_model(store, "fake_swapper", accept_license=True, urls=[server.url("/m.onnx")]))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert results[0].read_bytes() == payload
    assert len(server.requests) == 1
    assert leftovers(store) == ["fake_swapper.onnx"]
