"""Keep user-supplied feed URLs from reaching private networks (SSRF guard).

Two layers, as aiohttp's client-middleware cookbook recommends:

* :class:`SSRFSafeConnector` checks every address the connector is about to dial, for every
  connection (redirect hops included) and for IP-literal hosts too. Checking the addresses the
  connector really dials, rather than a separate lookup, closes the DNS-rebinding gap.
* :func:`scheme_guard` refuses anything but http(s) on every hop.

:func:`check_url` gives the same verdict up front, when a channel adds a source, so the user gets
a readable reason immediately instead of a failing source later.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

if TYPE_CHECKING:
    from aiohttp.tracing import Trace

__all__ = [
    "BlockedDestination",
    "IPPolicy",
    "SSRFSafeConnector",
    "check_url",
    "describe_ip",
    "ip_allowed",
    "scheme_guard",
]

IPPolicy = Callable[[str], bool]

ALLOWED_SCHEMES = frozenset({"http", "https"})
DNS_TIMEOUT = 10.0

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# `is_global` tables differ between Python patch releases; these are refused whatever the
# interpreter thinks, so the policy does not depend on the exact 3.11.x in use.
_ALWAYS_BLOCKED: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible form
        "64:ff9b:1::/48",  # local-use NAT64: translates into the operator's private space
        "100::/64",
        "2001::/23",  # includes Teredo, whose embedded address the client cannot vet
        "2001:db8::/32",
        "3fff::/20",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})


def _parse(ip: str) -> _IPAddress | None:
    try:
        # A zone index ("fe80::1%eth0") names an interface, not a different address.
        return ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None


def _reached(ip: _IPAddress) -> tuple[_IPAddress, ...]:
    """The addresses a connection to `ip` really reaches, all of which must pass.

    IPv4-mapped and NAT64 addresses stand for their IPv4 address alone (the wrapper itself is
    never "global" to Python). A 6to4 address is judged both as itself and by its IPv4 relay.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return (ip.ipv4_mapped,)
        if ip in _NAT64:
            return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
        if ip.sixtofour is not None:
            return (ip, ip.sixtofour)
    return (ip,)


def ip_allowed(ip: str) -> bool:
    """True only for a globally routable unicast address; unparsable input is refused."""
    parsed = _parse(ip)
    if parsed is None:
        return False
    for candidate in _reached(parsed):
        if candidate in _METADATA or candidate.is_multicast or not candidate.is_global:
            return False
        if any(candidate in net for net in _ALWAYS_BLOCKED if net.version == candidate.version):
            return False
    return True


def describe_ip(ip: str) -> str:
    """A word or two saying what kind of address this is, for error messages."""
    parsed = _parse(ip)
    if parsed is None:
        return "invalid"
    if ip_allowed(ip):
        return "public"
    # The embedded IPv4 address is what the user will recognise, so it is described first.
    reached = (*_reached(parsed), parsed)
    if any(a in _METADATA for a in reached):
        return "cloud metadata"
    checks: tuple[tuple[str, Callable[[_IPAddress], bool]], ...] = (
        ("unspecified", lambda a: a.is_unspecified),
        ("loopback", lambda a: a.is_loopback),
        ("link-local", lambda a: a.is_link_local),
        ("multicast", lambda a: a.is_multicast),
        ("shared (CGNAT)", lambda a: a in ipaddress.ip_network("100.64.0.0/10")),
        ("broadcast", lambda a: a == ipaddress.IPv4Address("255.255.255.255")),
        (
            "documentation",
            lambda a: any(
                a in ipaddress.ip_network(n)
                for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")
                if ipaddress.ip_network(n).version == a.version
            ),
        ),
        ("unique-local", lambda a: a in ipaddress.ip_network("fc00::/7")),
        ("reserved", lambda a: a.is_reserved),
        ("private", lambda a: a.is_private),
    )
    for address in reached:
        for name, test in checks:
            if test(address):
                return name
    return "non-public"


class BlockedDestination(aiohttp.ClientError):
    """A URL points (directly, via DNS or via a redirect) somewhere the bot must not fetch."""

    def __init__(self, reason: str, *, host: str | None = None, address: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.host = host
        self.address = address

    @classmethod
    def for_address(cls, host: str, address: str) -> BlockedDestination:
        kind = describe_ip(address)
        bare = address.split("%", 1)[0]
        shown = bare
        parsed = _parse(bare)
        if parsed is not None and _reached(parsed)[0] != parsed:
            # "::ffff:7f00:1" is how the URL library spells it; say which IPv4 address that is.
            shown = f"{bare} ({_reached(parsed)[0]})"
        if _parse(host) is not None:
            reason = f"refused: {kind} address {shown}"
        else:
            reason = f"refused: {host} resolves to {kind} address {shown}"
        return cls(reason, host=host, address=bare)

    def __str__(self) -> str:
        return self.reason


def _first_refused(host: str, addresses: Sequence[str], ip_policy: IPPolicy) -> BlockedDestination | None:
    """The error to raise when none of `addresses` may be dialled, else None."""
    if any(ip_policy(addr) for addr in addresses):
        return None
    # Name the first address: that is the one a user can look up and recognise.
    return BlockedDestination.for_address(host, addresses[0])


class SSRFSafeConnector(aiohttp.TCPConnector):
    """A TCPConnector that only dials addresses `ip_policy` accepts.

    Addresses the policy refuses are dropped; if none is left the connection fails with
    :class:`BlockedDestination` before any socket is opened.
    """

    def __init__(self, *, ip_policy: IPPolicy = ip_allowed, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ip_policy = ip_policy

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Trace] | None = None
    ) -> list[ResolveResult]:
        resolved = await super()._resolve_host(host, port, traces)
        allowed = [r for r in resolved if self._ip_policy(r["host"])]
        if not allowed:
            blocked = _first_refused(host, [r["host"] for r in resolved] or [host], self._ip_policy)
            raise blocked or BlockedDestination(f"refused: {host} has no allowed address", host=host)
        return allowed


async def scheme_guard(req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    """Client middleware: refuse any hop whose scheme is not http or https."""
    if req.url.scheme not in ALLOWED_SCHEMES:
        raise BlockedDestination(
            f"refused: only http:// and https:// URLs are fetched, not {req.url.scheme}://",
            host=req.url.raw_host,
        )
    return await handler(req)


def _parse_user_url(url: str) -> URL:
    """Syntactic checks shared by every caller; raises ValueError with a readable reason."""
    text = url.strip()
    if not text:
        raise ValueError("the URL is empty")
    try:
        parsed = URL(text)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a valid URL: {text!r}") from exc
    if parsed.scheme not in ALLOWED_SCHEMES:
        shown = f"{parsed.scheme}://" if parsed.scheme else "no scheme"
        raise ValueError(f"only http:// and https:// URLs can be watched (got {shown})")
    if not parsed.raw_host:
        raise ValueError(f"the URL has no host name: {text!r}")
    if parsed.user is not None or parsed.password is not None:
        raise ValueError("URLs with a user name or password are not accepted")
    try:
        parsed.port  # noqa: B018 - yarl validates the port lazily
    except ValueError as exc:
        raise ValueError(f"the URL has an invalid port: {text!r}") from exc
    host = parsed.raw_host
    if ":" not in host and all(part.isdigit() for part in host.split(".")) and _parse(host) is None:
        # "2130706433" or "127.1": socket maps these onto real addresses, so refuse the form.
        raise ValueError(f"numeric host {host!r} is not a normal IPv4 address")
    return parsed


async def check_url(
    url: str, *, allow_private: bool, resolver: AbstractResolver | None = None, resolve: bool = True
) -> None:
    """Vet a URL a user wants to watch; raises ValueError or BlockedDestination, else returns.

    The fetcher re-checks every hop at fetch time; this only gives early, readable feedback.
    ``resolve=False`` still judges an IP-address host but looks no host name up: an OPML import
    run offline (or in tests) must not depend on DNS, and the connector's check stays the guard.
    """
    parsed = _parse_user_url(url)
    if allow_private:
        return
    host = parsed.raw_host
    assert host is not None  # _parse_user_url guarantees it
    if _parse(host) is not None:
        if not ip_allowed(host):
            raise BlockedDestination.for_address(host, host)
        return
    if not resolve:
        return
    owned = resolver is None
    active = resolver if resolver is not None else aiohttp.ThreadedResolver()
    try:
        async with asyncio.timeout(DNS_TIMEOUT):
            results = await active.resolve(host, parsed.port or 0, family=socket.AF_UNSPEC)
    except TimeoutError as exc:
        raise ValueError(f"DNS lookup timed out for {host}") from exc
    except OSError as exc:
        raise ValueError(f"DNS lookup failed for {host}") from exc
    finally:
        if owned:
            await active.close()
    addresses = [r["host"] for r in results]
    if not addresses:
        raise ValueError(f"DNS lookup failed for {host}")
    blocked = _first_refused(host, addresses, ip_allowed)
    if blocked is not None:
        raise blocked
