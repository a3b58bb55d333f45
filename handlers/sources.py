"""`/watch sources list | add <url> | remove <id> | pause <id|name> | resume <id|name>`, and the feed
check behind `add`.

Who may pause what: a channel pauses only the feeds it added itself. Built-in sources (the
sources file) serve every channel of the installation, so pausing one is the operator's call
(`frontierwatch sources disable NAME`); a channel that names one is told so. A feed several channels
added stays polled while any of them has not paused it: one channel, maybe in another server,
cannot stop a feed another relies on.
"""

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
from handlers.pause import describe_pause

USAGE = (
    "`/watch sources list`",
    "`/watch sources add <feed URL>`",
    "`/watch sources remove <id>`",
    "`/watch sources pause <id|name>` / `resume <id|name>`",
)


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
    if source.paused_here_at is not None:
        return f"{describe_pause(source.paused_here_by, source.paused_here_at)} (`/watch sources resume {source.id}`)"
    if source.paused_at is not None:
        return f"{describe_pause(source.paused_by, source.paused_at)} for the whole installation, by the operator"
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
    lines = [
        f"{url} — {check.entries} entries right now. New stories on this channel's topics will be posted here; "
        "the first poll stores its backlog quietly."
    ]
    if source.paused_at is not None:
        lines.append(
            f"The operator has {describe_pause(source.paused_by, source.paused_at)} for the whole "
            "installation: it is not polled until they resume it."
        )
    return done(f"Now watching {source.name} (id `{source.id}`).", *lines)


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


async def _target(deps: HandlerDeps, command: Command) -> SourceView:
    """The channel-added source a pause or resume names (by id or name), or a UsageError that says
    which ones this channel can pause, and who pauses a built-in source."""
    inv = command.invocation
    state = await deps.store.channel_state(channel_key(command))
    mine = ", ".join(f"`{s.id}` ({s.name})" for s in state.sources if s.origin == "channel") or "none"
    accepted = (
        f"Give the id or name of a feed this channel added: {mine}.",
        "`/watch sources list` shows them; `/watch pause` pauses the whole channel instead.",
    )
    given = inv.rest.strip().strip("`\"'")
    if not given:
        raise UsageError(f"Which source should `/watch sources {inv.action}` act on?", *accepted)
    digits = given.lstrip("#")
    by_id = digits.isdigit() and len(digits) <= 12  # longer would overflow the database's integer
    found = [
        s
        for s in state.sources
        if (by_id and s.id == int(digits)) or (not by_id and s.name.casefold() == given.casefold())
    ]
    if found and found[0].origin == "channel":
        return found[0]
    builtin = found[0] if found else await deps.store.builtin_source(given, int(digits) if by_id else None)
    if builtin is not None:
        raise UsageError(
            f"{builtin.name} (id `{builtin.id}`) is one of this installation's built-in sources.",
            "Pausing it would stop it for every channel, so only the operator can "
            f'(`frontierwatch sources disable "{builtin.name}"`).',
            *accepted[:1],
        )
    raise UsageError(f"This channel added no source `{given}`.", *accepted)


async def pause(deps: HandlerDeps, command: Command) -> Reply:
    source = await _target(deps, command)
    by = command.user_name or command.user_id
    result = await deps.store.set_channel_source_paused(
        channel_key(command), source.id, paused=True, by=by, now=deps.clock()
    )
    if result is None:  # removed between the lookup and the pause
        raise UsageError(
            f"This channel no longer has source `{source.id}`.", "`/watch sources list` shows them."
        )
    now = result.source
    if not result.changed:
        return info(
            f"{now.name} is already {describe_pause(now.paused_here_by, now.paused_here_at)} in this channel.",
            f"Resume it with `/watch sources resume {now.id}`.",
        )
    if result.others_polling:
        others = result.others_polling
        return done(
            f"Paused {now.name} (id `{now.id}`) for this channel.",
            f"{others} other {'channel' if others == 1 else 'channels'} also added it and did not pause it, "
            "so it is still polled for them (and its stories on this channel's topics can still reach it). "
            f"Resume with `/watch sources resume {now.id}`.",
        )
    return done(
        f"Paused {now.name} (id `{now.id}`): it is not polled until `/watch sources resume {now.id}`.",
        "This channel's other sources, alerts and digests carry on.",
    )


async def resume(deps: HandlerDeps, command: Command) -> Reply:
    source = await _target(deps, command)
    result = await deps.store.set_channel_source_paused(
        channel_key(command), source.id, paused=False, by="", now=deps.clock()
    )
    if result is None:
        raise UsageError(
            f"This channel no longer has source `{source.id}`.", "`/watch sources list` shows them."
        )
    now = result.source
    if not result.changed:
        return info(
            f"{now.name} (id `{now.id}`) is not paused in this channel.",
            f"Its state: {health(now, deps.clock())}.",
        )
    if now.paused_at is not None:
        return done(
            f"Resumed {now.name} (id `{now.id}`) for this channel.",
            f"The operator has {describe_pause(now.paused_by, now.paused_at)} for the whole installation, "
            "so it is still not polled until they resume it (`frontierwatch sources enable`).",
        )
    return done(f"Resumed {now.name} (id `{now.id}`): it is polled again now.")
