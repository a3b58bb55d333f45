"""Sources: every source with its state, last result, next poll and last week's stories; pause,
resume and "poll now" (the same store methods as `frontierwatch sources disable|enable`)."""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from bot.console.auth import flash
from bot.console.pages import Action, Page
from bot.console.site import Console, redirect, render

PAUSED_BY = "the web console"


async def sources_page(request: web.Request, console: Console) -> web.StreamResponse:
    rows = await console.queries.sources(console.broken_after, console.now())
    wanted = request.query.get("state", "")
    counts = Counter(row.state for row in rows)
    shown = [row for row in rows if not wanted or row.state == wanted]
    return await render(
        request,
        "sources.html",
        {
            "title": "Sources",
            "sources": shown,
            "total": len(rows),
            "counts": counts,
            "states": ("healthy", "backing off", "broken", "paused", "disabled", "new"),
            "wanted": wanted,
            "now": console.now(),
        },
    )


def _source_id(request: web.Request) -> int:
    try:
        return int(request.match_info["source_id"])
    except ValueError:
        raise web.HTTPNotFound() from None


def _back(request: web.Request) -> str:
    state = request.query.get("state", "")
    return f"/sources?state={state}" if state else "/sources"


async def pause(request: web.Request, console: Console) -> web.StreamResponse:
    try:
        result = await console.store.pause_source(_source_id(request), PAUSED_BY)
    except LookupError:
        await flash(request, "That source no longer exists.")
        raise redirect(_back(request)) from None
    if result.changed:
        await flash(request, f"Paused {result.name}: not polled on any replica until resumed.")
    else:
        await flash(request, f"{result.name} was already paused by {result.paused_by}.")
    raise redirect(_back(request))


async def resume(request: web.Request, console: Console) -> web.StreamResponse:
    try:
        result = await console.store.resume_source(_source_id(request))
    except LookupError:
        await flash(request, "That source no longer exists.")
        raise redirect(_back(request)) from None
    message = (
        f"Resumed {result.name}: due for a poll now." if result.changed else f"{result.name} was not paused."
    )
    if not result.enabled:
        message += " The sources file disables it (enabled = false), so it is still not polled."
    elif result.channels:
        message += " Every channel that added it paused it too, so it is still not polled."
    await flash(request, message)
    raise redirect(_back(request))


async def poll_now(request: web.Request, console: Console) -> web.StreamResponse:
    try:
        result = await console.store.poll_now(_source_id(request))
    except LookupError:
        await flash(request, "That source no longer exists.")
        raise redirect(_back(request)) from None
    tick = console.settings.poll_tick_seconds
    messages = {
        "due": f"{result.name} is due now: the next poller tick (within {tick:g} s) polls it.",
        "paused": f"{result.name} is paused: resume it first.",
        "disabled": f"{result.name} is disabled by the sources file.",
        "polling": f"{result.name} is being polled right now.",
    }
    await flash(request, messages[result.outcome])
    raise redirect(_back(request))


PAGE = Page("/sources", "Sources", sources_page)
ACTIONS = (
    Action("/sources/{source_id}/pause", pause),
    Action("/sources/{source_id}/resume", resume),
    Action("/sources/{source_id}/poll-now", poll_now),
)
