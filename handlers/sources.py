"""`/watch sources list | add <url> | remove <id>`, and the feed check behind `add`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver

from bot.domain import SourceSpec
from bot.sources.fetcher import FeedFetcher
from bot.sources.parser import parse_feed
from bot.sources.urlsafety import BlockedDestination, check_url
from bot.store.chat import SourceView, TooManySources
from handlers.context import FeedCheck, HandlerDeps, channel_key
from handlers.model import Command, Reply, UsageError, done, error, info

USAGE = ("`/watch sources list`", "`/watch sources add <feed URL>`", "`/watch sources remove <id>`")


class FeedValidator:
    """Fetches and parses a URL with the poller's own fetcher and parser, so what is accepted here
    is exactly what the poller can read later."""

    def __init__(
        self,
        fetcher: FeedFetcher,
        *,
        allow_private: bool,
        summary_chars: int = 400,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._allow_private = allow_private
        self._summary_chars = summary_chars
        self._resolver = resolver

    async def __call__(self, url: str) -> FeedCheck:
        try:
            await check_url(url, allow_private=self._allow_private, resolver=self._resolver)
        except BlockedDestination as exc:
            return FeedCheck(False, str(exc), "refused")
        except ValueError as exc:
            return FeedCheck(False, str(exc), "invalid")
        result = await self._fetcher.fetch(url.strip())
        if result.error is not None or result.body is None:
            problem = result.error or "no body"
            # The fetcher re-checks every redirect hop; a refusal there is still an SSRF refusal.
            if problem.startswith("refused"):
                return FeedCheck(False, problem, "refused", final_url=result.final_url)
            return FeedCheck(False, problem, "unreachable", final_url=result.final_url)
        parsed = await asyncio.to_thread(
            parse_feed, result.body, result.headers, result.final_url, summary_chars=self._summary_chars
        )
        if parsed.error is not None:
            return FeedCheck(False, parsed.error, "not_feed", final_url=result.final_url)
        return FeedCheck(True, None, None, parsed.title, len(parsed.entries), result.final_url)


def health(source: SourceView, now: datetime) -> str:
    if not source.enabled:
        return "disabled"
    if source.failure_count:
        return f"failing ×{source.failure_count}: {source.last_error or 'unknown error'}"
    if source.last_success_at is not None:
        return f"ok (last read {_ago(source.last_success_at, now)} ago)"
    return "waiting for its first poll"


def _ago(when: datetime, now: datetime) -> str:
    minutes = max(0, int((now - when).total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


async def list_sources(deps: HandlerDeps, command: Command) -> Reply:
    state = await deps.store.channel_state(channel_key(command))
    if not state.sources:
        return info(
            "This channel has added no sources of its own.",
            "The bot's built-in sources are always watched. Add a feed with `/watch sources add <URL>`.",
        )
    now = deps.clock()
    lines = [f"`{s.id}` {s.name} — {s.url} — {health(s, now)}" for s in state.sources]
    limit = deps.max_sources_per_channel
    lines.append(f"{len(state.sources)} of {limit} allowed. Remove one with `/watch sources remove <id>`.")
    return info("Sources added by this channel", *lines)


async def add(deps: HandlerDeps, command: Command) -> Reply:
    args = command.invocation.args
    if len(args) != 1:
        raise UsageError("Give exactly one feed URL.", *USAGE[1:2])
    url = args[0].strip().strip("<>")
    key = channel_key(command)
    limit = deps.max_sources_per_channel
    state = await deps.store.channel_state(key)
    # Checked before fetching too, so a full channel gets its answer without a network round trip.
    if len(state.sources) >= limit and not any(s.url == url for s in state.sources):
        raise _too_many(limit)
    check = await deps.check_feed(url)
    if not check.ok:
        return _refusal(url, check)
    name = (check.title or urlsplit(check.final_url or url).hostname or url).strip()[:200]
    spec = SourceSpec(name=name, url=url)
    try:
        source, linked = await deps.store.add_channel_source(
            key, spec, added_by=command.user_name or command.user_id, limit=limit, now=deps.clock()
        )
    except TooManySources as exc:
        raise _too_many(exc.limit) from None
    if not linked:
        return info(f"This channel already watches {source.name} (id `{source.id}`).")
    return done(
        f"Now watching {source.name} (id `{source.id}`).",
        f"{url} — {check.entries} entries right now. New stories on this channel's topics will be posted here; "
        "the first poll stores its backlog quietly.",
    )


def _too_many(limit: int) -> UsageError:
    return UsageError(
        f"This channel already has {limit} sources, the most allowed.",
        "Remove one first with `/watch sources remove <id>` (see `/watch sources list`).",
    )


def _refusal(url: str, check: FeedCheck) -> Reply:
    if check.kind == "refused":
        return error(
            f"That URL is refused: {(check.problem or '').removeprefix('refused: ')}.",
            "Only public http:// or https:// addresses are fetched; private, loopback, link-local and "
            "cloud-metadata addresses are refused, also after redirects.",
        )
    if check.kind == "invalid":
        return error(
            f"That is not a usable URL: {check.problem}.",
            "Give a full feed URL, e.g. `https://example.com/feed.xml`.",
        )
    if check.kind == "unreachable":
        return error(
            f"Could not fetch {url}: {check.problem}.",
            "Check the address; the site must answer with an RSS, Atom or JSON feed.",
        )
    return error(
        f"{url} is not a feed ({check.problem}).",
        "Give the address of an RSS, Atom or JSON feed (often linked as “RSS” on the site, "
        "or ending in /feed, /rss or .xml), not of a web page.",
    )


async def remove(deps: HandlerDeps, command: Command) -> Reply:
    args = command.invocation.args
    key = channel_key(command)
    if len(args) != 1 or not args[0].lstrip("#").isdigit():
        state = await deps.store.channel_state(key)
        ids = ", ".join(f"`{s.id}` ({s.name})" for s in state.sources) or "none"
        raise UsageError("Give the id of a source to remove.", *USAGE[2:], f"This channel's sources: {ids}.")
    digits = args[0].lstrip("#")
    if len(digits) > 12:  # no installation has a trillion sources; a longer id would overflow the database
        raise UsageError(f"There is no source `{args[0]}` here.", "`/watch sources list` shows the ids.")
    source_id = int(digits)
    removed = await deps.store.remove_channel_source(key, source_id)
    if removed is None:
        state = await deps.store.channel_state(key)
        ids = ", ".join(f"`{s.id}` ({s.name})" for s in state.sources) or "none"
        raise UsageError(
            f"This channel has no source with id `{source_id}`.", f"This channel's sources: {ids}."
        )
    return done(f"Stopped watching {removed.name} (id `{removed.id}`) in this channel.")
