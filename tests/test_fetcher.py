"""FeedFetcher against a local FeedServer: statuses, caching, limits, redirects and SSRF."""

from __future__ import annotations

import gzip
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from bot.settings import Settings
from bot.sources.fetcher import FeedFetcher, parse_retry_after
from bot.sources.urlsafety import ip_allowed
from tests.support.feedserver import FeedServer, StaticResolver

RSS = b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title></channel></rss>'
LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"

FetcherFactory = Callable[..., FeedFetcher]


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "allow_private_sources": True,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "total_timeout": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as srv:
        yield srv


@pytest.fixture
async def make_fetcher() -> AsyncIterator[FetcherFactory]:
    made: list[FeedFetcher] = []

    def factory(*, ip_policy: Any = None, resolver: Any = None, **overrides: Any) -> FeedFetcher:
        fetcher = FeedFetcher(make_settings(**overrides), ip_policy=ip_policy, resolver=resolver)
        made.append(fetcher)
        return fetcher

    yield factory
    for fetcher in made:
        await fetcher.close()


@pytest.fixture
def fetcher(make_fetcher: FetcherFactory) -> FeedFetcher:
    return make_fetcher()


# --- plain responses


async def test_ok_response(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.add("/feed.xml", RSS, etag='"v1"', last_modified=LAST_MODIFIED)
    result = await fetcher.fetch(server.url("/feed.xml"))
    assert result.ok and result.error is None
    assert result.status == 200
    assert result.body == RSS
    assert result.etag == '"v1"'
    assert result.last_modified == LAST_MODIFIED
    assert result.final_url == server.url("/feed.xml")
    assert result.headers["content-type"] == "application/rss+xml"
    assert all(name == name.lower() for name in result.headers)
    assert result.elapsed > 0
    sent = server.requests[-1].headers
    assert sent["User-Agent"] == make_settings().user_agent
    assert "application/rss+xml" in sent["Accept"]
    assert "gzip" in sent["Accept-Encoding"]
    assert "If-None-Match" not in sent and "Cookie" not in sent


async def test_extra_headers_and_accept_are_sent(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.add("/api", b"[]", content_type="application/json")
    result = await fetcher.fetch(
        server.url("/api"), accept="application/json", extra_headers={"Authorization": "Bearer t"}
    )
    assert result.ok
    sent = server.requests[-1].headers
    assert sent["Accept"] == "application/json"
    assert sent["Authorization"] == "Bearer t"


async def test_etag_conditional_get_gives_304(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.add("/feed.xml", RSS, etag='"v1"')
    first = await fetcher.fetch(server.url("/feed.xml"))
    second = await fetcher.fetch(server.url("/feed.xml"), etag=first.etag)
    assert server.requests[-1].headers["If-None-Match"] == '"v1"'
    assert second.status == 304 and second.not_modified
    assert second.body is None and second.error is None and not second.ok
    assert second.etag == '"v1"'


async def test_last_modified_conditional_get_gives_304(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.add("/feed.xml", RSS, last_modified=LAST_MODIFIED)
    first = await fetcher.fetch(server.url("/feed.xml"))
    assert first.last_modified == LAST_MODIFIED and first.etag is None
    second = await fetcher.fetch(server.url("/feed.xml"), last_modified=first.last_modified)
    assert server.requests[-1].headers["If-Modified-Since"] == LAST_MODIFIED
    assert second.not_modified and second.body is None and second.error is None
    assert second.last_modified == LAST_MODIFIED


async def test_changed_etag_gives_full_body(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.add("/feed.xml", RSS, etag='"v2"')
    result = await fetcher.fetch(server.url("/feed.xml"), etag='"v1"')
    assert result.status == 200 and result.body == RSS and result.etag == '"v2"'


@pytest.mark.parametrize(
    ("status", "reason"), [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error")]
)
async def test_http_errors(server: FeedServer, fetcher: FeedFetcher, status: int, reason: str) -> None:
    server.add("/feed.xml", b"nope", status=status, content_type="text/plain")
    result = await fetcher.fetch(server.url("/feed.xml"))
    assert result.status == status
    assert result.error == reason
    assert result.body is None and not result.ok
    assert result.retry_after is None


async def test_unknown_path_is_404(server: FeedServer, fetcher: FeedFetcher) -> None:
    result = await fetcher.fetch(server.url("/missing"))
    assert (result.status, result.error) == (404, "HTTP 404 Not Found")


async def test_429_retry_after_seconds(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.add("/feed.xml", b"slow down", status=429, headers={"Retry-After": "120"})
    result = await fetcher.fetch(server.url("/feed.xml"))
    assert result.status == 429
    assert result.error == "HTTP 429 Too Many Requests"
    assert result.retry_after == 120.0


async def test_503_retry_after_http_date(server: FeedServer, fetcher: FeedFetcher) -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    server.add("/feed.xml", b"", status=503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    result = await fetcher.fetch(server.url("/feed.xml"))
    assert result.error == "HTTP 503 Service Unavailable"
    assert result.retry_after is not None and 80 <= result.retry_after <= 91


def test_parse_retry_after_forms() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("30", now=now) == 30.0
    assert parse_retry_after(" 2.5 ", now=now) == 2.5
    assert parse_retry_after("-5", now=now) == 0.0
    assert parse_retry_after("Wed, 01 Jan 2025 00:01:00 GMT", now=now) == 60.0
    assert parse_retry_after("Tue, 31 Dec 2024 23:00:00 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("nan", now=now) is None
    assert parse_retry_after("", now=now) is None
    assert parse_retry_after(None, now=now) is None


# --- slow and large


async def test_slow_headers_time_out(server: FeedServer, make_fetcher: FetcherFactory) -> None:
    server.add("/slow", RSS, delay=1.0)
    fetcher = make_fetcher(read_timeout=0.2)
    started = time.monotonic()
    result = await fetcher.fetch(server.url("/slow"))
    assert result.status == 0
    assert result.error == "timed out after 0.2s reading"
    assert time.monotonic() - started < 0.9


async def test_total_timeout_bounds_a_trickling_body(
    server: FeedServer, make_fetcher: FetcherFactory
) -> None:
    server.add("/trickle", RSS * 20, chunk_size=100, chunk_delay=0.1)
    fetcher = make_fetcher(read_timeout=1.0, total_timeout=0.4)
    result = await fetcher.fetch(server.url("/trickle"))
    assert result.error == "timed out after 0.4s in total"
    assert result.body is None


async def test_body_too_large_by_content_length(server: FeedServer, make_fetcher: FetcherFactory) -> None:
    server.add("/big", b"x" * 5000)
    result = await make_fetcher(max_body_bytes=4096).fetch(server.url("/big"))
    assert result.status == 200
    assert result.error == "body larger than 4 KB"
    assert result.body is None and not result.ok


async def test_body_too_large_while_streaming(server: FeedServer, make_fetcher: FetcherFactory) -> None:
    server.add("/big", b"x" * 50_000, chunked=True, chunk_size=4096)
    result = await make_fetcher(max_body_bytes=16 * 1024).fetch(server.url("/big"))
    assert "content-length" not in result.headers
    assert result.error == "body larger than 16 KB"


async def test_default_cap_is_reported_in_megabytes(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.add("/huge", b"x" * (10 * 1024 * 1024 + 1))
    result = await fetcher.fetch(server.url("/huge"))
    assert result.error == "body larger than 10.0 MB"


async def test_body_exactly_at_cap_is_accepted(server: FeedServer, make_fetcher: FetcherFactory) -> None:
    server.add("/edge", b"y" * 4096, chunked=True, chunk_size=1000)
    result = await make_fetcher(max_body_bytes=4096).fetch(server.url("/edge"))
    assert result.ok and result.body == b"y" * 4096


async def test_gzip_body_is_decoded(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.add("/feed.xml.gz", RSS * 10, gzip=True)
    result = await fetcher.fetch(server.url("/feed.xml.gz"))
    assert result.ok and result.body == RSS * 10
    assert result.headers["content-encoding"] == "gzip"


async def test_gzip_bomb_stopped_early(server: FeedServer, make_fetcher: FetcherFactory) -> None:
    inflated = 32 * 1024 * 1024
    wire = gzip.compress(b"\0" * inflated)
    chunk = 1024
    pieces = -(-len(wire) // chunk)
    # Reading the whole bomb would take pieces * 0.1 s (> 3 s); stopping at the cap takes a few.
    assert pieces >= 30
    server.add("/bomb", b"\0" * inflated, gzip=True, chunk_size=chunk, chunk_delay=0.1)
    fetcher = make_fetcher(max_body_bytes=64 * 1024)
    started = time.monotonic()
    result = await fetcher.fetch(server.url("/bomb"))
    assert result.error == "body larger than 64 KB"
    assert result.body is None
    assert time.monotonic() - started < 1.5


async def test_wrong_charset_passes_bytes_through(server: FeedServer, fetcher: FeedFetcher) -> None:
    latin1 = '<?xml version="1.0"?><rss><channel><title>Caf\xe9 \xfcber</title></channel></rss>'.encode(
        "latin-1"
    )
    server.add("/latin.xml", latin1, content_type="application/rss+xml; charset=utf-8")
    result = await fetcher.fetch(server.url("/latin.xml"))
    assert result.ok and result.body == latin1
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"


# --- redirects


def chain(server: FeedServer, hops: int) -> str:
    for i in range(hops):
        server.redirect(f"/r{i}", f"/r{i + 1}" if i % 2 else server.url(f"/r{i + 1}"))
    server.add(f"/r{hops}", RSS)
    return server.url("/r0")


async def test_five_redirects_are_followed(server: FeedServer, fetcher: FeedFetcher) -> None:
    result = await fetcher.fetch(chain(server, 5), etag='"old"')
    assert result.ok and result.body == RSS
    assert result.final_url == server.url("/r5")
    assert result.url == server.url("/r0")
    assert server.count("/r5") == 1
    assert server.requests[-1].headers["If-None-Match"] == '"old"'


async def test_six_redirects_are_refused(server: FeedServer, fetcher: FeedFetcher) -> None:
    result = await fetcher.fetch(chain(server, 6))
    assert result.error == "too many redirects (>5)"
    assert result.status == 302 and result.body is None
    assert server.count("/r6") == 0


async def test_max_redirects_setting_is_honoured(server: FeedServer, make_fetcher: FetcherFactory) -> None:
    url = chain(server, 2)
    assert (await make_fetcher(max_redirects=2).fetch(url)).ok
    result = await make_fetcher(max_redirects=1).fetch(url)
    assert result.error == "too many redirects (>1)"


@pytest.mark.parametrize("status", [301, 303, 307, 308])
async def test_other_redirect_statuses(server: FeedServer, fetcher: FeedFetcher, status: int) -> None:
    server.redirect("/old", "/new", status=status)
    server.add("/new", RSS)
    result = await fetcher.fetch(server.url("/old"))
    assert result.ok and result.final_url == server.url("/new")


async def test_redirect_loop(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.redirect("/a", "/b")
    server.redirect("/b", server.url("/a"))
    result = await fetcher.fetch(server.url("/a"))
    assert result.error is not None and result.error.startswith("redirect loop")
    assert server.count("/a") == 1 and server.count("/b") == 1


async def test_self_redirect_is_a_loop(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.redirect("/self", "/self#top")
    result = await fetcher.fetch(server.url("/self"))
    assert result.error is not None and "redirect loop" in result.error


async def test_redirect_to_other_scheme_refused(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.redirect("/ftp", "ftp://example.org/feed")
    result = await fetcher.fetch(server.url("/ftp"))
    assert result.error == "refused: redirect to a non-HTTP URL (ftp://example.org/feed)"


async def test_cross_origin_redirect_drops_credentials(
    server: FeedServer, make_fetcher: FetcherFactory
) -> None:
    async with FeedServer() as other:
        other.add("/feed", RSS)
        resolver = StaticResolver({"a.example": "127.0.0.1", "b.example": "127.0.0.1"})
        server.redirect("/go", other.url("/feed", host="b.example"))
        fetcher = make_fetcher(resolver=resolver)
        result = await fetcher.fetch(
            server.url("/go", host="a.example"), extra_headers={"Authorization": "Bearer secret"}
        )
        assert result.ok
        assert server.requests[-1].headers["Authorization"] == "Bearer secret"
        assert "Authorization" not in other.requests[-1].headers


# --- network failures


async def test_connection_refused(fetcher: FeedFetcher) -> None:
    async with FeedServer() as gone:
        url = gone.url("/feed")
    result = await fetcher.fetch(url)
    assert result.status == 0
    assert result.error is not None and result.error.startswith("cannot connect to 127.0.0.1:")


async def test_dns_failure(make_fetcher: FetcherFactory) -> None:
    fetcher = make_fetcher(resolver=StaticResolver({}))
    result = await fetcher.fetch("http://nowhere.example/feed")
    assert (result.status, result.error) == (0, "DNS lookup failed for nowhere.example")


async def test_tls_error(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.add("/feed", RSS)
    # Speaking TLS to a plain-HTTP port fails the handshake, without needing a certificate.
    result = await fetcher.fetch(server.url("/feed").replace("http://", "https://"))
    assert result.status == 0
    assert result.error is not None and result.error.startswith("TLS error")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "refused: only http:// and https:// URLs are fetched (file:///etc/passwd)"),
        ("not a url", "refused: only http:// and https:// URLs are fetched (not a url)"),
        ("http://", "invalid URL (no host): 'http://'"),
        ("http://2130706433/", "invalid URL: 2130706433"),
    ],
)
async def test_bad_urls_do_not_raise(fetcher: FeedFetcher, url: str, reason: str) -> None:
    result = await fetcher.fetch(url)
    assert (result.status, result.error) == (0, reason)


async def test_closed_fetcher_refuses_use(server: FeedServer) -> None:
    async with FeedFetcher(make_settings()) as fetcher:
        server.add("/feed", RSS)
        assert (await fetcher.fetch(server.url("/feed"))).ok
    with pytest.raises(RuntimeError, match="closed"):
        await fetcher.fetch(server.url("/feed"))


async def test_one_session_is_shared(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.add("/feed", RSS)
    for _ in range(3):
        assert (await fetcher.fetch(server.url("/feed"))).ok
    assert fetcher._session is not None
    session = fetcher._session
    await fetcher.fetch(server.url("/feed"))
    assert fetcher._session is session


# --- SSRF


@pytest.fixture
def strict(make_fetcher: FetcherFactory) -> FeedFetcher:
    """Production policy, with the system resolver (only "localhost" is looked up, from /etc/hosts)."""
    return make_fetcher(allow_private_sources=False)


@pytest.mark.parametrize(
    ("host", "needle"),
    [
        ("127.0.0.1", "refused: loopback address 127.0.0.1"),
        ("localhost", "refused: localhost resolves to loopback address"),
        ("[::1]", "refused: loopback address ::1"),
        ("0.0.0.0", "refused: unspecified address 0.0.0.0"),
        ("[::ffff:127.0.0.1]", "refused: loopback address ::ffff:7f00:1 (127.0.0.1)"),
    ],
)
async def test_ssrf_direct_private_targets(
    server: FeedServer, strict: FeedFetcher, host: str, needle: str
) -> None:
    server.add("/secret", b"secret")
    result = await strict.fetch(f"http://{host}:{server.port}/secret")
    assert result.status == 0 and result.body is None
    assert result.error is not None and result.error.startswith(needle)
    assert server.count("/secret") == 0


async def test_ssrf_metadata_refused_before_connecting(make_fetcher: FetcherFactory) -> None:
    # A connect attempt would show up as a timeout or connection error, not this reason.
    fetcher = make_fetcher(allow_private_sources=False, connect_timeout=0.5, total_timeout=1.0)
    result = await fetcher.fetch("http://169.254.169.254/latest/meta-data/")
    assert result.error == "refused: cloud metadata address 169.254.169.254"
    assert result.elapsed < 0.4


@pytest.fixture
async def public_server() -> AsyncIterator[FeedServer]:
    """A server standing in for an internet host: 127.0.0.2, which the test policy calls public."""
    async with FeedServer() as srv:
        await srv.stop()
        await srv.start(host="127.0.0.2")
        yield srv


def public_policy(ip: str) -> bool:
    return ip == "127.0.0.2" or ip_allowed(ip)


async def test_ssrf_public_name_is_fetched(public_server: FeedServer, make_fetcher: FetcherFactory) -> None:
    public_server.add("/feed", RSS)
    resolver = StaticResolver({"news.example": "127.0.0.2"})
    fetcher = make_fetcher(allow_private_sources=False, ip_policy=public_policy, resolver=resolver)
    result = await fetcher.fetch(public_server.url("/feed", host="news.example"))
    assert result.ok and result.body == RSS


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("http://127.0.0.1:{port}/secret", "refused: loopback address 127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "refused: cloud metadata address 169.254.169.254"),
        (
            "http://intranet.example:{port}/secret",
            "refused: intranet.example resolves to loopback address 127.0.0.1",
        ),
        ("http://[::ffff:127.0.0.1]:{port}/secret", "refused: loopback address ::ffff:7f00:1 (127.0.0.1)"),
    ],
)
async def test_ssrf_redirect_to_private_refused(
    public_server: FeedServer, server: FeedServer, make_fetcher: FetcherFactory, target: str, needle: str
) -> None:
    server.add("/secret", b"internal only")
    public_server.redirect("/go", target.format(port=server.port))
    resolver = StaticResolver({"news.example": "127.0.0.2", "intranet.example": "127.0.0.1"})
    fetcher = make_fetcher(allow_private_sources=False, ip_policy=public_policy, resolver=resolver)
    result = await fetcher.fetch(public_server.url("/go", host="news.example"))
    assert result.error == needle
    assert result.body is None
    assert public_server.count("/go") == 1
    assert server.count("/secret") == 0


async def test_allow_private_sources_lets_loopback_through(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.add("/secret", b"internal feed")
    result = await fetcher.fetch(server.url("/secret"))
    assert result.ok and result.body == b"internal feed"
