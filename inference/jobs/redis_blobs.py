"""Blobs in a shared Redis, so a selfie taken in by a bot shard on one host can be read by a
worker on another, and the result can go back the other way.

Redis connection and timeout errors are not caught here: they are infrastructure failures
for the caller's retry or alerting, not something the user can fix.
"""

from __future__ import annotations

import math
import secrets

import redis

from memeswap.inference.errors import InputError
from memeswap.inference.jobs.blobs import BlobNotFoundError, is_blob_ref
from memeswap.inference.sizes import human_bytes

_PUT_ATTEMPTS = 3

# Reserve room for one blob: forget the blobs whose time is up, then count the new one in
# if it fits. Redis's own clock (TIME) sets the expiry, and the caller stores the bytes with
# SET ... PXAT at exactly that millisecond, so a reservation leaves the books at the moment
# Redis drops the blob.
# KEYS: blob key, expiry sorted set, size hash, total bytes. ARGV: ref, size, ttl ms, max total.
# Returns {1, expiry ms} when reserved, {0, bytes in use} when full, {-1, 0} when the ref is taken.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cutoff = string.format('(%d', now)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
if #expired > 0 then
  local freed = 0
  for _, ref in ipairs(expired) do
    local size = redis.call('HGET', KEYS[3], ref)
    if size then
      freed = freed + tonumber(size)
      redis.call('HDEL', KEYS[3], ref)
    end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
  redis.call('DECRBY', KEYS[4], freed)
end
local used = tonumber(redis.call('GET', KEYS[4]) or '0')
local size = tonumber(ARGV[2])
if used + size > tonumber(ARGV[4]) then
  return {0, used}
end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return {-1, 0}
end
local expiry = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], string.format('%d', expiry), ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('INCRBY', KEYS[4], size)
return {1, expiry}
"""

# Take a blob out of the books and, when ARGV[2] is '1', delete its bytes too.
# KEYS: blob key, expiry sorted set, size hash, total bytes. ARGV: ref, delete bytes.
_RELEASE = """
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[1])
end
local size = redis.call('HGET', KEYS[3], ARGV[1])
if size then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('DECRBY', KEYS[4], tonumber(size))
end
return 0
"""


class BlobTooLargeError(InputError):
    """One blob is over the store's size cap; sending it again will not help."""

    code = "blob_too_large"


class BlobStoreFullError(InputError):
    """The store's total cap is reached; a retry can succeed once blobs expire or are deleted."""

    code = "blob_store_full"


class RedisBlobStore:
    """Blobs in a shared Redis, for a deployment whose bot shards and workers run on several hosts.

    Each blob is one string key, `{prefix}blob:{ref}`, written with `SET ... NX` and an
    expiry of Redis's own, so a blob is gone `ttl_s` after `put` without any sweeper, and
    a reference collision can never overwrite another blob. A blob over `max_blob_bytes`
    is refused with `BlobTooLargeError` before any byte goes over the network.

    With `max_total_bytes` set, the sum of live blob sizes stays at or under it: a sorted
    set `{prefix}blobs` (ref scored by expiry in ms, from Redis's clock), a hash
    `{prefix}blob-sizes` (ref to size) and a counter `{prefix}blob-bytes` keep the books.
    A Lua script run at each `put` drops the expired entries and reserves room, or refuses
    with `BlobStoreFullError`; the bytes are then written with `PXAT` at the reserved
    expiry, so they never pass through Lua. `delete` takes a blob out of the books too.
    A reservation whose write failed is undone, and one left by a crashed process falls
    out of the books at its expiry, so the books cannot drift for longer than one TTL.

    The client must return bytes (no `decode_responses`). The keys of one store do not
    share a Redis Cluster hash slot unless `prefix` holds a hash tag such as "{memeswap}:".

    This sits behind the `BlobStore` seam (`inference.jobs.blobs`), so an S3-compatible
    object store can replace it without the queue or the workers changing.
    """

    def __init__(self, client: redis.Redis, prefix: str = "memeswap:", max_blob_bytes: int = 64 * 1024 * 1024,
                 max_total_bytes: int | None = None) -> None:
        if max_blob_bytes < 0:
            raise ValueError("max_blob_bytes must not be negative")
        if max_total_bytes is not None and max_total_bytes < 0:
            raise ValueError("max_total_bytes must not be negative")
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("RedisBlobStore needs a client that returns bytes (decode_responses=False)")
        self.client = client
        self.prefix = prefix
        self.max_blob_bytes = max_blob_bytes
        self.max_total_bytes = max_total_bytes
        self._owns_client = False
        self._books = [f"{prefix}blobs", f"{prefix}blob-sizes", f"{prefix}blob-bytes"]
        self._reserve = client.register_script(_RESERVE)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, **options) -> RedisBlobStore:
        """A store on a client of its own for `url` (e.g. "redis://host:6379/0");
        `options` go to the constructor. `close()` closes that client."""
        store = cls(redis.Redis.from_url(url), **options)
        store._owns_client = True
        return store

    def close(self) -> None:
        """Close the client if `from_url` made it; a client passed in stays its owner's."""
        if self._owns_client:
            self.client.close()

    def put(self, data: bytes, ttl_s: float) -> str:
        if not ttl_s > 0 or not math.isfinite(ttl_s):
            raise ValueError("ttl_s must be positive and finite")
        size = len(data)
        cap = self.max_blob_bytes if self.max_total_bytes is None else min(self.max_blob_bytes, self.max_total_bytes)
        if size > cap:
            raise BlobTooLargeError(f"this file is too large to store ({human_bytes(size)}; "
                                    f"the limit is {human_bytes(cap)})")
        ttl_ms = max(1, math.ceil(ttl_s * 1000))
        for _ in range(_PUT_ATTEMPTS):
            ref = secrets.token_hex(16)
            if self.max_total_bytes is None:
                if self.client.set(self._key(ref), data, px=ttl_ms, nx=True):
                    return ref
            elif self._put_counted(ref, data, ttl_ms, self.max_total_bytes):
                return ref
        raise RuntimeError(f"no free blob reference after {_PUT_ATTEMPTS} random tries")

    def get(self, ref: str) -> bytes:
        if not is_blob_ref(ref):
            raise BlobNotFoundError("the file for this job is gone; send it again")
        data = self.client.get(self._key(ref))
        if data is None:
            raise BlobNotFoundError("the file for this job is gone; send it again")
        assert isinstance(data, bytes), "the client returns bytes (no decode_responses), as __init__ checked"
        return data

    def delete(self, ref: str) -> None:
        if is_blob_ref(ref):
            # Always through the books, so a store without a total cap still frees the room
            # of a blob that a capped store on the same Redis counted.
            self._release(keys=[self._key(ref), *self._books], args=[ref, "1"])

    def _put_counted(self, ref: str, data: bytes, ttl_ms: int, max_total_bytes: int) -> bool:
        """Reserve room and write; False when `ref` is taken (the caller draws another)."""
        keys = [self._key(ref), *self._books]
        outcome, value = self._reserve(keys=keys, args=[ref, len(data), ttl_ms, max_total_bytes])
        if outcome == 0:
            raise BlobStoreFullError(f"the shared file store is full ({human_bytes(value)} of "
                                     f"{human_bytes(max_total_bytes)} used); try again in a minute")
        if outcome == -1:
            return False
        try:
            stored = self.client.set(keys[0], data, pxat=value, nx=True)
        except BaseException:
            # The write may or may not have landed: drop the bytes and the reservation both.
            try:
                self._release(keys=keys, args=[ref, "1"])
            except redis.RedisError:
                pass  # the reservation falls out of the books at its expiry
            raise
        if not stored:
            # Another writer took the key between the check and the write; its bytes stay.
            self._release(keys=keys, args=[ref, "0"])
            return False
        return True

    def _key(self, ref: str) -> str:
        return f"{self.prefix}blob:{ref}"

