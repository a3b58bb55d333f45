"""IP policy, the SSRF-safe connector and the add-time URL check; all offline."""

from __future__ import annotations

import re

import aiohttp
import pytest
from yarl import URL

from bot.sources.urlsafety import (
    BlockedDestination,
    SSRFSafeConnector,
    check_url,
    describe_ip,
    ip_allowed,
    scheme_guard,
)
from tests.support.feedserver import FeedServer, StaticResolver

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "2002:808:808::1",  # 6to4 wrapping a public address
]

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.1.1", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("240.0.0.1", "reserved"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fd00::1", "unique-local"),
    ("fd00:ec2::254", "cloud metadata"),
    ("2001:db8::1", "documentation"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("::7f00:1", "reserved"),  # deprecated IPv4-compatible form
]


@pytest.mark.parametrize("ip", ALLOWED)
def test_public_addresses_allowed(ip: str) -> None:
    assert ip_allowed(ip)
    assert describe_ip(ip) == "public"


@pytest.mark.parametrize(("ip", "kind"), REFUSED)
def test_non_public_addresses_refused(ip: str, kind: str) -> None:
    assert not ip_allowed(ip)
    assert describe_ip(ip) == kind


@pytest.mark.parametrize("junk", ["", "localhost", "256.1.1.1", "1.2.3", "::g", "example.com"])
def test_unparsable_is_refused(junk: str) -> None:
    assert not ip_allowed(junk)


def test_blocked_destination_message_names_host_and_address() -> None:
    exc = BlockedDestination.for_address("intranet.example", "10.1.2.3")
    assert str(exc) == "refused: intranet.example resolves to private address 10.1.2.3"
    assert (exc.host, exc.address) == ("intranet.example", "10.1.2.3")
    assert isinstance(exc, aiohttp.ClientError)
    literal = BlockedDestination.for_address("169.254.169.254", "169.254.169.254")
    assert str(literal) == "refused: cloud metadata address 169.254.169.254"


# --- check_url (used by "/watch sources add")

RESOLVER = StaticResolver(
    {
        "news.example": "93.184.216.34",
        "dual.example": ["10.0.0.5", "93.184.216.34"],
        "intranet.example": "10.0.0.5",
        "rebind.example": ["127.0.0.1", "::1"],
        "meta.example": "169.254.169.254",
    }
)


@pytest.mark.parametrize(
    "url",
    [
        "https://news.example/feed.xml",
        "http://news.example:8080/rss",
        "https://dual.example/",
        "https://8.8.8.8/x",
    ],
)
async def test_check_url_accepts_public(url: str) -> None:
    await check_url(url, allow_private=False, resolver=RESOLVER)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://127.0.0.1/secret", "refused: loopback address 127.0.0.1"),
        ("http://[::1]:8080/", "refused: loopback address ::1"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
        ("http://[fd00:ec2::254]/", "cloud metadata address"),
        ("http://0.0.0.0:80/", "unspecified address"),
        ("https://intranet.example/feed", "refused: intranet.example resolves to private address 10.0.0.5"),
        ("https://rebind.example/", "resolves to loopback address 127.0.0.1"),
        ("https://meta.example/", "resolves to cloud metadata address 169.254.169.254"),
    ],
)
async def test_check_url_refuses_private(url: str, needle: str) -> None:
    with pytest.raises(BlockedDestination, match="refused") as info:
        await check_url(url, allow_private=False, resolver=RESOLVER)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("", "empty"),
        ("news.example/feed", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("ftp://news.example/feed", "only http:// and https://"),
        ("gopher://news.example/", "only http:// and https://"),
        ("http:///nohost", "no host"),
        ("https://user:pw@news.example/feed", "user name or password"),
        ("http://2130706433/", "numeric host"),
        ("http://127.1/", "numeric host"),
        ("https://nowhere.example/feed", "DNS lookup failed for nowhere.example"),
    ],
)
async def test_check_url_rejects_bad_input(url: str, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        await check_url(url, allow_private=False, resolver=RESOLVER)
    assert needle in str(info.value)


async def test_check_url_allow_private_skips_address_checks() -> None:
    await check_url("http://127.0.0.1:8080/feed", allow_private=True)
    await check_url("http://intranet.example/feed", allow_private=True, resolver=RESOLVER)
    with pytest.raises(ValueError, match="only http"):
        await check_url("file:///etc/passwd", allow_private=True)


async def test_check_url_default_resolver_refuses_localhost() -> None:
    # "localhost" comes from /etc/hosts, so the system resolver needs no network here.
    with pytest.raises(BlockedDestination, match="localhost resolves to loopback"):
        await check_url("http://localhost/feed", allow_private=False)


# --- the connector and middleware on their own


async def test_connector_refuses_before_connecting_and_policy_is_pluggable() -> None:
    async with FeedServer() as server:
        server.add("/feed", b"<rss/>")
        strict = SSRFSafeConnector()
        async with aiohttp.ClientSession(connector=strict) as session:
            with pytest.raises(BlockedDestination, match=re.escape("refused: loopback address 127.0.0.1")):
                await session.get(server.url("/feed"))
        assert server.count("/feed") == 0

        lenient = SSRFSafeConnector(ip_policy=lambda ip: ip == "127.0.0.1")
        async with (
            aiohttp.ClientSession(connector=lenient) as session,
            session.get(server.url("/feed")) as resp,
        ):
            assert resp.status == 200
            assert await resp.read() == b"<rss/>"
        assert server.count("/feed") == 1


async def test_connector_drops_private_addresses_of_a_mixed_answer() -> None:
    async with FeedServer() as server:
        server.add("/feed", b"ok")
        resolver = StaticResolver({"mixed.example": ["10.9.9.9", "127.0.0.1"]})
        connector = SSRFSafeConnector(ip_policy=lambda ip: ip == "127.0.0.1", resolver=resolver)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(server.url("/feed", host="mixed.example")) as resp,
        ):
            assert await resp.read() == b"ok"


async def test_scheme_guard_refuses_other_schemes() -> None:
    calls: list[str] = []

    async def handler(req: aiohttp.ClientRequest) -> aiohttp.ClientResponse:
        calls.append(str(req.url))
        raise AssertionError("must not be reached")

    class FakeRequest:
        url = URL("ftp://news.example/feed")

    with pytest.raises(BlockedDestination, match="not ftp://"):
        await scheme_guard(FakeRequest(), handler)  # type: ignore[arg-type]
    assert calls == []
