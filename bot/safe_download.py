"""The one way memeswap fetches a URL: every download of something a person pointed at (a
Discord attachment, a link's GIF, later a GIF search result) goes through `SafeDownloader`.

A URL someone else chose must not make the bot a proxy into the network it runs in, nor
a way to exhaust its memory or hold it up, nor an oracle that tells open ports from
closed ones. So a fetch is:

* https only, on port 443, to an allow-list of media hosts (`MEMESWAP_DOWNLOAD_HOSTS`);
* redirects followed here, hop by hop, each hop checked like the first, at most
  `MAX_REDIRECTS` of them;
* connected only to public addresses: the resolver aiohttp connects through refuses a name
  with any address that is not (`public_address`), so the addresses checked are the ones
  the connection uses (no second lookup to race);
* direct: proxies named in the environment (`HTTPS_PROXY`, ...) are never used, as a proxy
  would connect wherever it is asked, past these checks;
* bounded in time (connect and each read: `MEMESWAP_DOWNLOAD_TIMEOUT_S`; the whole fetch:
  `MEMESWAP_DOWNLOAD_TOTAL_S`) and in bytes: the body is streamed and the fetch stops at
  the limit plus one byte;
* refused with one neutral line whatever went wrong (only "too big" says the limit, in the
  words of every other "too big": `bot.core.uploads.too_big`).

`MEMESWAP_DOWNLOAD_LOOPBACK_ORIGINS` lists exact origins (`http://127.0.0.1:PORT`) trusted
on loopback, for tests against local fakes; it is empty in any real deployment.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from memeswap.bot.core.uploads import too_big
from memeswap.inference.errors import InputError

if TYPE_CHECKING:
    from memeswap.bot.settings import Settings

log = logging.getLogger("memeswap.download")

MAX_REDIRECTS = 3
HTTPS_PORT = 443  # the only port of a listed host (a trusted loopback origin keeps its own)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
NOT_FETCHED = "I couldn't download that file; please try another one"


class DownloadRefused(InputError):
    """A URL that was not fetched, for whatever reason: the person sees `NOT_FETCHED`, the
    log says why."""

    code = "download"

    def __init__(self) -> None:
        super().__init__(NOT_FETCHED)


Origin = tuple[str, str, int]  # scheme, host, port


def parsed_origin(origin: str) -> Origin:
    """A trusted loopback origin, `http://127.0.0.1:PORT` and the like; ValueError for anything
    else (another host, no port, a path)."""
    url = URL(origin.strip())
    if url.scheme not in ("http", "https") or url.host not in LOOPBACK_NAMES or url.explicit_port is None:
        raise ValueError("a loopback origin is http(s)://127.0.0.1:PORT, http(s)://[::1]:PORT or "
                         "http(s)://localhost:PORT")
    if url.path not in ("", "/") or url.query_string or url.fragment or url.user or url.password:
        raise ValueError("a loopback origin has no path, query or credentials")
    return url.scheme, url.host, url.explicit_port


# Never connected to, whatever the interpreter's `ipaddress` thinks of them (its tables change
# between Python releases): the IANA special-purpose blocks that are not the public internet.
_NOT_PUBLIC = tuple(ipaddress.ip_network(block) for block in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",  # 240/4 holds the broadcast address
    "::/96",  # unspecified, loopback and the deprecated IPv4-compatible form: refused, never unwrapped
    "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16",
    "fc00::/7", "fe80::/10", "ff00::/8",  # 2001::/23 holds Teredo: refused, never unwrapped
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the IPv4 address is the last 32 bits


def public_address(address: str) -> bool:
    """An address on the public internet: not loopback, private, link-local, site-local,
    multicast, reserved, unspecified, shared (CGNAT), benchmarking or documentation. An IPv4
    address inside IPv6 (mapped, 6to4, NAT64) is judged as itself."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return False
        if (embedded := ip.ipv4_mapped or ip.sixtofour) is not None:
            ip = embedded
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback
                                 or ip.is_link_local or ip.is_private
                                 or any(ip in block for block in _NOT_PUBLIC if block.version == ip.version))


def loopback_address(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class DownloadPolicy:
    """Which URLs and which addresses a download may use."""

    hosts: tuple[str, ...]
    loopback_origins: frozenset[Origin] = frozenset()

    def refusal(self, url: URL) -> str | None:
        """Why `url` may not be fetched, or None when it may be."""
        host = (url.host or "").rstrip(".").lower()
        if not url.absolute or not host:
            return "not an absolute URL"
        if url.user or url.password:
            return "credentials in the URL"
        if self._trusted_host_port(host, url.port):
            if (url.scheme, host, url.port) not in self.loopback_origins:
                return "another scheme on a trusted loopback origin"
            return None if not _is_ip(host) or loopback_address(host) else "not a loopback address"
        if url.scheme != "https":
            return f"scheme {url.scheme!r} is not https"
        if not self._listed(host):
            return "host not on the allow-list"
        if url.port != HTTPS_PORT:
            return f"port {url.port} is not {HTTPS_PORT}"
        if _is_ip(host) and not public_address(host):
            return "not a public address"
        return None

    def addresses_allowed(self, host: str, port: int, addresses: Iterable[str]) -> bool:
        """Every address a name resolved to may be connected to: loopback ones for a trusted
        loopback origin, public ones for anything else."""
        check = loopback_address if self._trusted_host_port(host.rstrip(".").lower(), port) else public_address
        addresses = list(addresses)
        return bool(addresses) and all(check(a) for a in addresses)

    def _listed(self, host: str) -> bool:
        for entry in self.hosts:
            entry = entry.lower()
            if entry.startswith("."):
                if host == entry[1:] or host.endswith(entry):
                    return True
            elif host == entry:
                return True
        return False

    def _trusted_host_port(self, host: str, port: int | None) -> bool:
        return any((host, port) == (origin_host, origin_port) for _, origin_host, origin_port in self.loopback_origins)


class _CheckedResolver(AbstractResolver):
    """aiohttp's resolver, refusing names that resolve to an address the policy forbids.
    aiohttp connects only to the addresses this returns."""

    def __init__(self, policy: DownloadPolicy) -> None:
        self.policy = policy
        self._resolver = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        if not self.policy.addresses_allowed(host, port, [entry["host"] for entry in found]):
            raise OSError(errno.EACCES, f"{host} resolves to an address this bot does not connect to")
        return found

    async def close(self) -> None:
        await self._resolver.close()


class SafeDownloader:
    """Fetches a URL someone else chose, within the policy, the timeouts and a byte limit."""

    def __init__(self, hosts: Iterable[str], timeout_s: float = 10.0, total_s: float = 60.0,
                 loopback_origins: Iterable[str] = ()) -> None:
        self.policy = DownloadPolicy(tuple(hosts), frozenset(parsed_origin(o) for o in loopback_origins))
        self.timeout_s = timeout_s
        self.total_s = total_s

    @classmethod
    def from_settings(cls, settings: Settings) -> SafeDownloader:
        return cls(settings.download_hosts, settings.download_timeout_s, settings.download_total_s,
                   settings.download_loopback_origins)

    async def fetch(self, url: str, limit: int) -> bytes:
        """The body of `url`, at most `limit` bytes; `DownloadRefused` (or "too large")
        otherwise."""
        try:
            target = URL(url)
        except (TypeError, ValueError):
            raise self._refused(None, "not a URL") from None
        try:
            async with asyncio.timeout(self.total_s):
                return await self._fetch(target, limit)
        except TimeoutError:
            raise self._refused(target, f"no answer within {self.total_s:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as error:
            raise self._refused(target, f"{type(error).__name__}: {error}") from None

    async def _fetch(self, url: URL, limit: int) -> bytes:
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout_s, sock_connect=self.timeout_s,
                                        sock_read=self.timeout_s)
        connector = aiohttp.TCPConnector(resolver=_CheckedResolver(self.policy), use_dns_cache=False)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                         trust_env=False, headers={"Accept-Encoding": "identity"}) as session:
            for _ in range(MAX_REDIRECTS + 1):
                if (reason := self.policy.refusal(url)) is not None:
                    raise self._refused(url, reason)
                async with session.get(url, allow_redirects=False) as response:
                    if response.status in REDIRECT_STATUSES and "Location" in response.headers:
                        url = url.join(URL(response.headers["Location"]))
                        continue
                    if response.status != 200:
                        raise self._refused(url, f"HTTP {response.status}")
                    if (response.content_length or 0) > limit:
                        raise too_big(limit)  # the size a server claims is not repeated
                    return await _body_within(response, limit)
        raise self._refused(url, f"more than {MAX_REDIRECTS} redirects")

    @staticmethod
    def _refused(url: URL | None, reason: str) -> DownloadRefused:
        log.info("download from %s refused: %s", (url.host if url is not None else None) or "?", reason)
        return DownloadRefused()


async def _body_within(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, read until its end or until it is one byte over `limit` (then refused)."""
    body = bytearray()
    while chunk := await response.content.read(min(CHUNK_BYTES, limit + 1 - len(body))):
        body += chunk
        if len(body) > limit:
            raise too_big(limit)
    return bytes(body)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
