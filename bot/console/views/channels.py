"""Channels: every destination with its subscriptions, keywords, schedule and state; a channel's
page previews its next digest exactly as it would post (bot/delivery/preview.py, which
`frontierwatch digest --preview` uses too)."""

from __future__ import annotations

from aiohttp import web

from bot.console.pages import Page
from bot.console.site import Console, render
from bot.delivery.preview import next_digest_preview


async def channels_page(request: web.Request, console: Console) -> web.StreamResponse:
    channels = await console.queries.channels()
    return await render(
        request, "channels.html", {"title": "Channels", "channels": channels, "now": console.now()}
    )


async def channel_page(request: web.Request, console: Console) -> web.StreamResponse:
    try:
        destination_id = int(request.match_info["destination_id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    channel = await console.queries.channel(destination_id)
    if channel is None:
        raise web.HTTPNotFound()
    now = console.now()
    preview = await next_digest_preview(console.store.sessions, destination_id, console.topics, now)
    if preview is None:  # deleted between the two reads
        raise web.HTTPNotFound()
    return await render(
        request,
        "channel.html",
        {"title": channel.label, "channel": channel, "preview": preview, "now": now},
    )


PAGE = Page(
    "/channels",
    "Channels",
    channels_page,
    extra_paths=(("/channels/{destination_id}", channel_page),),
)
