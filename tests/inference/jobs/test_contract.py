"""The job contract (versioned JSON, events, refusals) and the local blob store."""

import json
import os
import threading

import pytest

from memeswap.inference.errors import InputError
from memeswap.inference.jobs.blobs import BlobNotFoundError, BlobStore, LocalBlobStore
from memeswap.inference.jobs.contract import (
    Busy,
    CancelToken,
    Failed,
    JobCancelled,
    JobFormatError,
    Progress,
    Queued,
    RateLimited,
    Started,
    Succeeded,
    SwapJob,
    event_from_json,
    event_to_json,
    is_final,
    new_job_id,
)


def job(**changes) -> SwapJob:
    fields = dict(job_id="j1", user_key="telegram:42", selfie_ref="abc", template="deal-with-it")
    fields.update(changes)
    return SwapJob(**fields)


def test_job_round_trips_through_json():
    original = job(format="mp4", max_bytes=10 << 20, faces="largest", deadline_s=30)
    text = original.to_json()
    assert json.loads(text)["version"] == 1
    assert SwapJob.from_json(text) == original
    assert SwapJob.from_json(text.encode()) == original


def test_a_job_without_a_face_map_reads_as_before_and_one_with_a_map_round_trips():
    plain = json.loads(job().to_json())
    # A worker of an earlier build (which forbids unknown fields) reads a job without a map.
    assert "face_selfies" not in plain
    assert set(plain) == {"version", "job_id", "user_key", "selfie_ref", "template", "format", "max_bytes", "faces",
                          "created_at", "deadline_s", "reply_to"}
    mapped = job(selfie_ref="a", face_selfies=("a", None, "b", "a"))
    assert SwapJob.from_json(mapped.to_json()) == mapped
    assert mapped.selfie_refs == ["a", "b"]


@pytest.mark.parametrize("face_selfies", [(None, None), (), tuple(["a"] * 11), ("",), ("x" * 301,)])
def test_a_bad_face_map_is_refused(face_selfies):
    with pytest.raises(JobFormatError):
        SwapJob.from_json(json.dumps({**json.loads(job().to_json()), "face_selfies": face_selfies}))


def test_unknown_version_is_refused_clearly():
    raw = json.loads(job().to_json())
    raw["version"] = 2
    with pytest.raises(JobFormatError, match="unsupported job version 2; this build reads version 1"):
        SwapJob.from_json(json.dumps(raw))
    del raw["version"]
    with pytest.raises(JobFormatError, match="unsupported job version None"):
        SwapJob.from_json(json.dumps(raw))
    with pytest.raises(ValueError, match="unsupported job version 3"):
        job(version=3)


@pytest.mark.parametrize("text", ["not json", "[1, 2]"])
def test_non_job_messages_are_refused(text):
    with pytest.raises(JobFormatError):
        SwapJob.from_json(text)


@pytest.mark.parametrize("changes", [
    {"user_key": "42"},                 # no platform
    {"job_id": "../etc"},               # not a safe key
    {"faces": "everyone"},
    {"format": "bmp"},
    {"max_bytes": 0},
    {"deadline_s": -1},
])
def test_bad_fields_are_refused(changes):
    raw = json.loads(job().to_json())
    raw.update(changes)
    with pytest.raises(JobFormatError, match="invalid job message"):
        SwapJob.from_json(json.dumps(raw))


def test_unexpected_fields_and_bytes_are_refused():
    raw = json.loads(job().to_json())
    raw["selfie"] = "aGVsbG8="
    with pytest.raises(JobFormatError):
        SwapJob.from_json(json.dumps(raw))


def test_job_ids_are_unique_and_valid():
    ids = {new_job_id() for _ in range(100)}
    assert len(ids) == 100
    job(job_id=ids.pop())


@pytest.mark.parametrize("event", [
    Queued(position=3), Started(), Progress(done=4, total=48),
    Succeeded(result_ref="r", mime="image/gif", size=1234),
    Failed(code="no_face", message="no face found", retryable=False),
])
def test_events_round_trip_by_kind(event):
    text = event_to_json(event)
    assert json.loads(text)["kind"] == event.kind
    assert event_from_json(text) == event
    assert is_final(event) == isinstance(event, (Succeeded, Failed))


def test_bad_event_is_refused():
    with pytest.raises(JobFormatError):
        event_from_json('{"kind": "exploded"}')


def test_refusals_are_one_line_input_errors():
    busy = Busy(12.2)
    assert isinstance(busy, InputError) and busy.code == "busy"
    assert str(busy) == "busy, try again in about 13 s"
    assert busy.retry_after_s == pytest.approx(12.2)
    assert str(Busy(0.01)) == "busy, try again in about 1 s"
    limited = RateLimited(4.5)
    assert isinstance(limited, InputError) and limited.code == "rate_limited"
    assert "try again in about 5 s" in str(limited) and "\n" not in str(limited)
    assert str(RateLimited(3, "custom")) == "custom"


def test_cancel_token_first_reason_wins():
    token = CancelToken()
    token.raise_if_cancelled()
    assert not token.cancelled
    token.cancel("deadline")
    token.cancel("cancelled")
    assert token.cancelled and token.reason == "deadline"
    with pytest.raises(JobCancelled) as stopped:
        token.raise_if_cancelled()
    assert stopped.value.reason == "deadline"


# --- LocalBlobStore ---------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_blob_put_get_delete(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    assert isinstance(store, BlobStore)
    ref = store.put(b"hello", ttl_s=60)
    other = store.put(b"world", ttl_s=60)
    assert ref != other and "/" not in ref
    assert store.get(ref) == b"hello"
    store.delete(ref)
    store.delete(ref)  # deleting twice is fine
    with pytest.raises(BlobNotFoundError, match="gone"):
        store.get(ref)
    assert store.get(other) == b"world"
    assert not [p for p in os.listdir(tmp_path / "blobs") if p.endswith(".tmp")]


def test_expired_blob_is_refused_and_removed(tmp_path):
    clock = FakeClock()
    store = LocalBlobStore(tmp_path, clock=clock)
    short = store.put(b"a", ttl_s=10)
    long = store.put(b"b", ttl_s=100)
    clock.now += 11
    with pytest.raises(BlobNotFoundError, match="expired"):
        store.get(short)
    assert not (tmp_path / short).exists()
    assert store.get(long) == b"b"
    clock.now += 100
    assert store.sweep() == 1
    assert os.listdir(tmp_path) == []


def test_sweep_takes_temporary_files_a_crash_left_but_not_a_write_in_progress(tmp_path):
    clock = FakeClock()
    store = LocalBlobStore(tmp_path, clock=clock)
    left = tmp_path / f".{'a' * 32}.tmp"  # a put that died two hours ago
    left.write_bytes(b"half")
    os.utime(left, (clock.now - 7200, clock.now - 7200))
    writing = tmp_path / f".{'b' * 32}.tmp"  # a put writing now
    writing.write_bytes(b"half")
    os.utime(writing, (clock.now, clock.now))
    stamped = tmp_path / f".{'c' * 32}.tmp"  # a put about to rename: its mtime is the expiry
    stamped.write_bytes(b"whole")
    os.utime(stamped, (clock.now + 60, clock.now + 60))
    assert store.sweep() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [writing.name, stamped.name]


@pytest.mark.parametrize("ref", ["../secret", "", "ABC", "0" * 31, "/etc/passwd"])
def test_malformed_refs_never_become_paths(tmp_path, ref):
    (tmp_path / "secret").write_bytes(b"x")
    store = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(BlobNotFoundError):
        store.get(ref)
    store.delete(ref)
    assert (tmp_path / "secret").exists()


def test_concurrent_puts_do_not_collide(tmp_path):
    store = LocalBlobStore(tmp_path)
    refs: list[str] = []
    lock = threading.Lock()

    def put(i: int) -> None:
        ref = store.put(bytes([i]) * 1000, ttl_s=60)
        with lock:
            refs.append(ref)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(refs)) == 16
    assert sorted(store.get(r)[0] for r in refs) == list(range(16))
