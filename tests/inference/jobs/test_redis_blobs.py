"""RedisBlobStore against a real redis-server (the session's `redis_url`), each test under
a key prefix of its own."""

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from memeswap.inference.errors import InputError
from memeswap.inference.jobs.blobs import BlobNotFoundError, BlobStore
from memeswap.inference.jobs.redis_blobs import BlobStoreFullError, BlobTooLargeError, RedisBlobStore


@pytest.fixture
def client(redis_url):
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def store(client, redis_prefix) -> RedisBlobStore:
    return RedisBlobStore(client, prefix=redis_prefix)


def capped(client, prefix, total, blob=64 * 1024 * 1024) -> RedisBlobStore:
    return RedisBlobStore(client, prefix=prefix, max_blob_bytes=blob, max_total_bytes=total)


MALFORMED = ["../x", "", "A" * 32, "0" * 31 + "*", "*", "0" * 32 + "\n", "0" * 33, "g" * 32, None, 123]


def test_is_a_blob_store(store):
    assert isinstance(store, BlobStore)


def test_round_trip_and_delete(store, client, redis_prefix):
    ref = store.put(b"\x00selfie\xff", ttl_s=30)
    assert re.fullmatch(r"[0-9a-f]{32}", ref)
    assert store.get(ref) == b"\x00selfie\xff"
    assert client.exists(f"{redis_prefix}blob:{ref}")
    assert 0 < client.pttl(f"{redis_prefix}blob:{ref}") <= 30_000
    store.delete(ref)
    with pytest.raises(BlobNotFoundError, match="gone; send it again"):
        store.get(ref)
    store.delete(ref)  # a second delete is fine


def test_uncapped_put_keeps_no_books(store, client, redis_prefix):
    store.put(b"x", ttl_s=30)
    assert client.keys(f"{redis_prefix}*") != []
    assert all(k.startswith(f"{redis_prefix}blob:".encode()) for k in client.keys(f"{redis_prefix}*"))


def test_empty_blob_round_trips(store):
    ref = store.put(b"", ttl_s=30)
    assert store.get(ref) == b""


def test_delete_missing_is_fine(store):
    store.delete("0" * 32)


def test_unknown_ref(store):
    with pytest.raises(BlobNotFoundError) as caught:
        store.get("0" * 32)
    assert caught.value.code == "blob_missing"
    assert isinstance(caught.value, InputError)


def test_expiry(store):
    ref = store.put(b"short-lived", ttl_s=0.2)
    assert store.get(ref) == b"short-lived"
    time.sleep(0.3)
    with pytest.raises(BlobNotFoundError):
        store.get(ref)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf")])
def test_bad_ttl(store, ttl):
    with pytest.raises(ValueError):
        store.put(b"x", ttl_s=ttl)


@pytest.mark.parametrize("ref", MALFORMED)
def test_malformed_refs_are_not_found_and_never_reach_redis(client, redis_prefix, ref):
    store = capped(client, redis_prefix, total=1000)
    keep = store.put(b"keep", ttl_s=30)
    # A key that a pattern-style or path-style ref would hit if it were used unchecked.
    client.set(f"{redis_prefix}blob:{'0' * 31}*", b"planted")
    before = sorted(client.keys(f"{redis_prefix}*"))
    with pytest.raises(BlobNotFoundError):
        store.get(ref)
    store.delete(ref)
    assert sorted(client.keys(f"{redis_prefix}*")) == before
    assert store.get(keep) == b"keep"
    assert client.get(f"{redis_prefix}blob:{'0' * 31}*") == b"planted"


def test_per_blob_cap(client, redis_prefix):
    store = RedisBlobStore(client, prefix=redis_prefix, max_blob_bytes=10)
    assert store.get(store.put(b"x" * 10, ttl_s=30)) == b"x" * 10
    with pytest.raises(BlobTooLargeError) as caught:
        store.put(b"x" * 11, ttl_s=30)
    assert caught.value.code == "blob_too_large"
    assert isinstance(caught.value, InputError)
    assert "\n" not in str(caught.value) and "11 bytes" in str(caught.value) and "10 bytes" in str(caught.value)
    assert len(client.keys(f"{redis_prefix}*")) == 1  # only the blob that fitted


def test_blob_over_the_total_cap_is_too_large_not_full(client, redis_prefix):
    store = capped(client, redis_prefix, total=10)
    with pytest.raises(BlobTooLargeError):
        store.put(b"x" * 11, ttl_s=30)


def test_total_cap_refuses_when_full_and_delete_frees_room(client, redis_prefix):
    store = capped(client, redis_prefix, total=100)
    first = store.put(b"a" * 60, ttl_s=30)
    second = store.put(b"b" * 40, ttl_s=30)
    with pytest.raises(BlobStoreFullError) as caught:
        store.put(b"c", ttl_s=30)
    assert caught.value.code == "blob_store_full"
    assert isinstance(caught.value, InputError)
    assert str(caught.value) == "the shared file store is full (100 bytes of 100 bytes used); try again in a minute"
    assert int(client.get(f"{redis_prefix}blob-bytes")) == 100

    store.delete(first)
    assert int(client.get(f"{redis_prefix}blob-bytes")) == 40
    third = store.put(b"c" * 60, ttl_s=30)
    assert store.get(second) == b"b" * 40 and store.get(third) == b"c" * 60
    store.delete(second)
    store.delete(third)
    store.delete(third)  # a second delete does not count the room twice
    assert int(client.get(f"{redis_prefix}blob-bytes")) == 0
    assert client.zcard(f"{redis_prefix}blobs") == 0 and client.hlen(f"{redis_prefix}blob-sizes") == 0


def test_total_cap_frees_room_after_expiry(client, redis_prefix):
    store = capped(client, redis_prefix, total=100)
    store.put(b"a" * 100, ttl_s=0.2)
    lasting = store.put(b"", ttl_s=30)
    with pytest.raises(BlobStoreFullError):
        store.put(b"b", ttl_s=30)
    time.sleep(0.3)
    ref = store.put(b"b" * 100, ttl_s=30)
    assert store.get(ref) == b"b" * 100 and store.get(lasting) == b""
    assert int(client.get(f"{redis_prefix}blob-bytes")) == 100
    assert client.zcard(f"{redis_prefix}blobs") == 2


def test_counted_blob_expires_with_its_reservation(client, redis_prefix):
    store = capped(client, redis_prefix, total=100)
    ref = store.put(b"x", ttl_s=30)
    expiry_ms = client.pexpiretime(f"{redis_prefix}blob:{ref}")
    assert client.zscore(f"{redis_prefix}blobs", ref) == expiry_ms


def test_failed_write_undoes_its_reservation(client, redis_prefix, monkeypatch):
    store = capped(client, redis_prefix, total=100)

    def broken_set(*args, **kwargs):
        raise redis.exceptions.ConnectionError("connection lost")

    monkeypatch.setattr(client, "set", broken_set)
    with pytest.raises(redis.exceptions.ConnectionError):
        store.put(b"x" * 100, ttl_s=30)
    monkeypatch.undo()
    assert int(client.get(f"{redis_prefix}blob-bytes")) == 0
    assert client.zcard(f"{redis_prefix}blobs") == 0 and client.hlen(f"{redis_prefix}blob-sizes") == 0
    assert store.get(store.put(b"y" * 100, ttl_s=30)) == b"y" * 100


def test_taken_refs_are_retried_then_given_up(client, redis_prefix, monkeypatch):
    store = capped(client, redis_prefix, total=100)
    monkeypatch.setattr(client, "set", lambda *args, **kwargs: None)  # as if every ref were taken
    with pytest.raises(RuntimeError, match="3 random tries"):
        store.put(b"x", ttl_s=30)
    assert int(client.get(f"{redis_prefix}blob-bytes")) == 0
    assert client.zcard(f"{redis_prefix}blobs") == 0


def test_from_url(redis_url, redis_prefix):
    store = RedisBlobStore.from_url(redis_url, prefix=redis_prefix, max_total_bytes=1000)
    try:
        assert store.max_total_bytes == 1000
        ref = store.put(b"from url", ttl_s=30)
        assert store.get(ref) == b"from url"
        store.delete(ref)
    finally:
        store.close()


def test_decoding_client_is_refused(redis_url):
    c = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            RedisBlobStore(c)
    finally:
        c.close()


@pytest.mark.parametrize("total", [None, 20 * 1000])
def test_concurrent_puts(client, redis_prefix, total):
    store = capped(client, redis_prefix, total=total)
    payloads = [bytes([i]) * 1000 for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        refs = list(pool.map(lambda data: store.put(data, ttl_s=30), payloads))
    assert len(set(refs)) == 20
    assert [store.get(ref) for ref in refs] == payloads
    if total is not None:
        assert int(client.get(f"{redis_prefix}blob-bytes")) == total
        with pytest.raises(BlobStoreFullError):
            store.put(b"x", ttl_s=30)


def test_connection_errors_propagate(redis_prefix):
    from memeswap.inference.jobs.local_redis import free_loopback_port

    # No retries: redis-py 8 otherwise retries with backoff for seconds.
    c = redis.Redis(host="127.0.0.1", port=free_loopback_port(), socket_connect_timeout=0.5,
                    retry=Retry(NoBackoff(), 0))
    try:
        store = RedisBlobStore(c, prefix=redis_prefix, max_total_bytes=100)
        with pytest.raises(redis.exceptions.ConnectionError):
            store.put(b"x", ttl_s=30)
        with pytest.raises(redis.exceptions.ConnectionError):
            store.get("0" * 32)
    finally:
        c.close()
