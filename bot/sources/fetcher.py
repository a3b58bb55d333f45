"""HTTP fetching of feeds and tracker APIs: one shared aiohttp session, hardened for hostile URLs.

:meth:`FeedFetcher.fetch` never raises for network or HTTP trouble; it returns a
:class:`~bot.domain.FetchResult` whose ``error`` is a short reason a user can read in
``/watch status``. Only cancellation propagates, so one bad source cannot break a poll cycle.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bot.domain import FetchResult, clamp_server_delay
from bot.settings import Settings
from bot.sources.urlsafety import (
    ALLOWED_SCHEMES,
    BlockedDestination,
    IPPolicy,
    SSRFSafeConnector,
    ip_allowed,
    scheme_guard,
)

__all__ = ["FEED_ACCEPT", "FeedFetcher", "parse_retry_after"]

log = logging.getLogger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.8, application/json;q=0.5, */*;q=0.1"
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
# Credentials meant for the first origin must not leak to wherever a redirect points.
_ORIGIN_BOUND_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")


class _FetchProblem(Exception):
    """Internal: ends a fetch with a ready-made user-facing reason."""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), clamped to
    :data:`bot.domain.MAX_SERVER_DELAY_SECONDS`; None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return clamp_server_delay(seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return clamp_server_delay((when - current).total_seconds())


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    return f"{n / 1024:.0f} KB"


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _flat_headers(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """Lower-case names (feedparser needs them); repeated headers joined as HTTP allows."""
    flat: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        flat[key] = f"{flat[key]}, {value}" if key in flat else value
    return flat


def _status_reason(status: int, reason: str | None) -> str:
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    return f"HTTP {status} {reason}".rstrip()


class FeedFetcher:
    """Fetches URLs for the poller with one pooled, SSRF-guarded session.

    ``ip_policy`` and ``resolver`` exist for tests, which need fake public names that resolve to
    loopback addresses; production code passes neither.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        ip_policy: IPPolicy | None = None,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self._settings = settings
        self._ip_policy = ip_policy or ip_allowed
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def start(self) -> None:
        """Create the session now rather than on the first fetch."""
        self._get_session()

    async def close(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("FeedFetcher is closed")
        if self._session is None:
            self._session = self._new_session()
        return self._session

    def _new_session(self) -> aiohttp.ClientSession:
        s = self._settings
        connector = (
            aiohttp.TCPConnector(
                limit=s.fetch_concurrency,
                limit_per_host=s.fetch_per_host,
                ttl_dns_cache=300,
                resolver=self._resolver,
            )
            if s.allow_private_sources
            else SSRFSafeConnector(
                ip_policy=self._ip_policy,
                limit=s.fetch_concurrency,
                limit_per_host=s.fetch_per_host,
                ttl_dns_cache=300,
                resolver=self._resolver,
            )
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=s.total_timeout, sock_connect=s.connect_timeout, sock_read=s.read_timeout
            ),
            headers={"User-Agent": s.user_agent},
            middlewares=(scheme_guard,),
            # An environment proxy would be resolved instead of the target, bypassing the IP checks.
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
        )

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
        extra_headers: Mapping[str, str] | None = None,
    ) -> FetchResult:
        """GET `url`, following up to ``max_redirects`` redirects; see the module docstring."""
        session = self._get_session()
        result = FetchResult(url=url, final_url=url, status=0)
        headers: CIMultiDict[str] = CIMultiDict()
        headers["Accept"] = accept
        if extra_headers:
            headers.update(extra_headers)
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        started = time.monotonic()
        total = self._settings.total_timeout
        try:
            # aiohttp's `total` is per request; this bounds the whole redirect chain as well.
            async with asyncio.timeout(total):
                await self._follow(session, result, headers)
        except _FetchProblem as exc:
            result.error = str(exc)
        except TimeoutError as exc:
            result.error = self._timeout_reason(exc)
        except BlockedDestination as exc:
            result.error = str(exc)
        except Exception as exc:  # never let one source break the poll cycle
            result.error = self._describe(exc)
        result.elapsed = time.monotonic() - started
        if result.error is not None:
            result.body = None
            log.debug("fetch %s failed: %s", url, result.error)
        # 304 carries no body but the validators sent stay valid unless the server changed them.
        if result.status == 304:
            result.etag = result.etag or etag
            result.last_modified = result.last_modified or last_modified
        return result

    async def _follow(
        self, session: aiohttp.ClientSession, result: FetchResult, headers: CIMultiDict[str]
    ) -> None:
        """Walk the redirect chain by hand: aiohttp's counter refuses the Nth hop, not the N+1th,
        and it cannot tell a loop from a long chain."""
        max_redirects = self._settings.max_redirects
        current = self._initial_url(result.url)
        seen = {current}
        hops = 0
        while True:
            result.final_url = str(current)
            async with session.get(current, headers=headers, allow_redirects=False) as resp:
                result.status = resp.status
                result.headers = _flat_headers(resp.headers)
                result.etag = resp.headers.get("ETag")
                result.last_modified = resp.headers.get("Last-Modified")
                if resp.status in REDIRECT_STATUSES and "Location" in resp.headers:
                    target = self._redirect_target(current, resp.headers["Location"])
                    hops += 1
                    if target in seen:
                        raise _FetchProblem(f"redirect loop ({target} was already visited)")
                    if hops > max_redirects:
                        raise _FetchProblem(f"too many redirects (>{max_redirects})")
                    seen.add(target)
                    if target.origin() != current.origin():
                        for name in _ORIGIN_BOUND_HEADERS:
                            headers.popall(name, None)
                    current = target
                    continue
                if resp.status == 304:
                    return
                if resp.status in (429, 503):
                    result.retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                if not 200 <= resp.status < 300:
                    raise _FetchProblem(_status_reason(resp.status, resp.reason))
                result.body = await self._read_capped(resp)
                return

    @staticmethod
    def _initial_url(url: str) -> URL:
        try:
            parsed = URL(url.strip())
        except (ValueError, TypeError):
            raise _FetchProblem(f"invalid URL: {url!r}") from None
        if parsed.scheme not in ALLOWED_SCHEMES:
            raise _FetchProblem(f"refused: only http:// and https:// URLs are fetched ({url})")
        if not parsed.raw_host:
            raise _FetchProblem(f"invalid URL (no host): {url!r}")
        return parsed

    @staticmethod
    def _redirect_target(current: URL, location: str) -> URL:
        try:
            target = current.join(URL(location.strip()))
        except (ValueError, TypeError):
            raise _FetchProblem(f"redirect to an invalid URL: {location!r}") from None
        if target.scheme not in ALLOWED_SCHEMES or not target.raw_host:
            raise _FetchProblem(f"refused: redirect to a non-HTTP URL ({location})")
        # The fragment never reaches the server, so it must not defeat loop detection.
        return target.with_fragment(None)

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        cap = self._settings.max_body_bytes
        too_big = f"body larger than {_size(cap)}"
        if resp.content_length is not None and resp.content_length > cap:
            raise _FetchProblem(too_big)
        buf = bytearray()
        # iter_chunked yields decompressed bytes, so counting here also stops a gzip bomb early.
        async for chunk in resp.content.iter_chunked(_CHUNK):
            buf += chunk
            if len(buf) > cap:
                raise _FetchProblem(too_big)
        return bytes(buf)

    def _timeout_reason(self, exc: TimeoutError) -> str:
        s = self._settings
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return f"timed out after {_seconds(s.connect_timeout)} connecting"
        if isinstance(exc, aiohttp.SocketTimeoutError):
            return f"timed out after {_seconds(s.read_timeout)} reading"
        return f"timed out after {_seconds(s.total_timeout)} in total"

    def _describe(self, exc: Exception) -> str:
        """One short line for `/watch status`; full details go to the log."""
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return f"DNS lookup failed for {exc.host}"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            cert_err = exc.certificate_error
            detail = getattr(cert_err, "verify_message", None) or str(cert_err)
            return f"TLS error: certificate not trusted for {exc.host} ({detail})"
        if isinstance(exc, aiohttp.ClientSSLError):
            return f"TLS error with {exc.host}: {_ssl_detail(exc.os_error)}"
        if isinstance(exc, ssl.SSLError):
            return f"TLS error: {_ssl_detail(exc)}"
        if isinstance(exc, aiohttp.ClientConnectorError):
            why = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
            return f"cannot connect to {exc.host}:{exc.port}: {why}"
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return "server closed the connection without a complete response"
        if isinstance(exc, aiohttp.ClientPayloadError):
            return f"broken response body: {exc}"
        if isinstance(exc, aiohttp.NonHttpUrlClientError):
            return "refused: only http:// and https:// URLs are fetched"
        if isinstance(exc, aiohttp.InvalidURL):
            return f"invalid URL: {exc.url}"
        if isinstance(exc, aiohttp.ClientResponseError):
            return f"bad HTTP response: {exc.message}"
        if isinstance(exc, aiohttp.ClientError | OSError):
            return f"network error: {type(exc).__name__}: {exc}"
        log.warning("unexpected error while fetching", exc_info=exc)
        return f"unexpected error: {type(exc).__name__}: {exc}"


def _ssl_detail(err: BaseException) -> str:
    reason = getattr(err, "reason", None)
    return str(reason) if reason else (str(err) or type(err).__name__)
