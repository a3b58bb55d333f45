"""A small local HTTP server that serves canned feeds, for tests and benchmarks.

    async with FeedServer() as server:
        server.add("/feed.xml", body, etag='"v1"')
        server.redirect("/old", "/feed.xml")
        result = await fetcher.fetch(server.url("/old"))
        assert server.count("/feed.xml") == 1

It answers conditional requests with 304, can delay or trickle responses, gzip bodies, stream
them without a Content-Length, and records every request. :class:`StaticResolver` maps fake
public host names onto loopback addresses so SSRF checks can be exercised offline.
"""

from __future__ import annotations

import asyncio
import gzip as gzip_module
import socket
import time
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict

from tests.support.loopback import LoopbackServer

__all__ = ["FeedServer", "RecordedRequest", "StaticResolver"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str  # path with query string, as sent
    headers: CIMultiDict[str]
    at: float = field(default_factory=time.monotonic)  # when it arrived (monotonic clock)


@dataclass(slots=True)
class _Route:
    body: bytes = b""
    status: int = 200
    content_type: str | None = "application/rss+xml"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    gzip: bool = False
    chunk_delay: float = 0.0
    chunk_size: int = 1024
    chunked: bool = False
    location: str | None = None  # set for redirects


def _etag_matches(header: str, etag: str) -> bool:
    def bare(tag: str) -> str:
        return tag.strip().removeprefix("W/")

    candidates = [bare(t) for t in header.split(",")]
    return "*" in candidates or bare(etag) in candidates


class FeedServer(LoopbackServer):
    """Serves registered paths on loopback; unknown paths get 404."""

    def __init__(self) -> None:
        super().__init__()
        self._routes: dict[str, _Route] = {}
        self.requests: list[RecordedRequest] = []

    # --- lifecycle

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    # --- addresses

    @property
    def base(self) -> str:
        return self.base_for(self.host)

    def base_for(self, host: str) -> str:
        """Base URL reaching this server under another name (see StaticResolver)."""
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    def url(self, path: str, *, host: str | None = None) -> str:
        return self.base_for(host or self.host) + path

    # --- content

    def add(
        self,
        path: str,
        body: bytes,
        *,
        status: int = 200,
        content_type: str | None = "application/rss+xml",
        headers: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        delay: float = 0.0,
        gzip: bool = False,
        chunk_delay: float = 0.0,
        chunk_size: int = 1024,
        chunked: bool = False,
    ) -> None:
        """Serve `body` at `path`.

        `delay` waits before the headers; `chunk_delay` sends the (possibly gzipped) body in
        `chunk_size` pieces with that pause between them; `chunked` (implied by `chunk_delay`)
        omits Content-Length.
        """
        self._routes[path] = _Route(
            body=gzip_module.compress(body) if gzip else body,
            status=status,
            content_type=content_type,
            headers=dict(headers or {}),
            etag=etag,
            last_modified=last_modified,
            delay=delay,
            gzip=gzip,
            chunk_delay=chunk_delay,
            chunk_size=chunk_size,
            chunked=chunked or chunk_delay > 0,
        )

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        """Answer `path` with a redirect; `to` goes into Location verbatim (absolute or relative)."""
        self._routes[path] = _Route(status=status, content_type=None, location=to)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    # --- serving

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(RecordedRequest(request.method, request.path_qs, CIMultiDict(request.headers)))
        route = self._routes.get(request.path_qs) or self._routes.get(request.path)
        if route is None:
            return web.Response(status=404, text="not found")
        if route.delay:
            await asyncio.sleep(route.delay)
        if route.location is not None:
            return web.Response(status=route.status, headers={"Location": route.location})

        headers: dict[str, str] = dict(route.headers)
        if route.etag is not None:
            headers["ETag"] = route.etag
        if route.last_modified is not None:
            headers["Last-Modified"] = route.last_modified
        if self._not_modified(request, route):
            return web.Response(status=304, headers=headers)
        if route.content_type is not None:
            headers["Content-Type"] = route.content_type
        if route.gzip:
            headers["Content-Encoding"] = "gzip"

        if not route.chunked:
            return web.Response(status=route.status, body=route.body, headers=headers)
        response = web.StreamResponse(status=route.status, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(route.body), route.chunk_size):
            if start and route.chunk_delay:
                await asyncio.sleep(route.chunk_delay)
            await response.write(route.body[start : start + route.chunk_size])
        await response.write_eof()
        return response

    @staticmethod
    def _not_modified(request: web.Request, route: _Route) -> bool:
        if route.status != 200:
            return False
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None:
            # RFC 9110: If-None-Match, when present, decides alone.
            return route.etag is not None and _etag_matches(if_none_match, route.etag)
        since = request.headers.get("If-Modified-Since")
        return since is not None and route.last_modified is not None and since == route.last_modified


class StaticResolver(AbstractResolver):
    """Resolves only the names it was given; anything else fails like an unknown DNS name."""

    def __init__(self, names: dict[str, str | list[str]]) -> None:
        self._names = {host: [ips] if isinstance(ips, str) else list(ips) for host, ips in names.items()}
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        ips = self._names.get(host)
        if not ips:
            raise OSError(socket.EAI_NONAME, f"Name or service not known: {host}")
        return [
            {
                "hostname": host,
                "host": ip,
                "port": port,
                "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for ip in ips
        ]

    async def close(self) -> None:
        return None
