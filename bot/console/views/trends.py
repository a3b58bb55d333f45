"""Trends: events (clusters of stories) per topic per day over the last 30 or 90 days, as a chart
(``render_chart_png``, the weekly digest's renderer, served by this page's own GET route) with its
numbers as a table, and each topic's top outlets and headline names (``TrendsStore.trends``)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.console.pages import Page
from bot.console.site import Console, render, secure_headers
from bot.store.trends import Trends
from bot.trends.chart import chart_alt_text, render_chart_png

DAY_CHOICES = (30, 90)
DEFAULT_DAYS = 90
TOP = 5  # outlets and names per topic: enough to see who drives a topic, short on a phone


def _days(request: web.Request) -> int:
    """The window asked for; anything but a listed choice is the default (no error: a bookmark
    with an old value still shows a chart)."""
    try:
        days = int(request.query.get("days", DEFAULT_DAYS))
    except ValueError:
        return DEFAULT_DAYS
    return days if days in DAY_CHOICES else DEFAULT_DAYS


def _title(days: int) -> str:
    return f"Events per topic per day, last {days} days"


async def _trends(console: Console, days: int) -> Trends:
    return await console.trends.trends(days=days, now=console.now(), topics=console.topics, top=TOP)


async def trends_page(request: web.Request, console: Console) -> web.StreamResponse:
    days = _days(request)
    trends = await _trends(console, days)
    daily = trends.daily
    rows = [(day, [daily.counts[t][i] for t in daily.topics]) for i, day in enumerate(daily.starts)]
    return await render(
        request,
        "trends.html",
        {
            "title": "Trends",
            "days": days,
            "choices": DAY_CHOICES,
            "trends": trends,
            "chart_title": _title(days),
            "alt": chart_alt_text(daily, _title(days)),
            "rows": list(reversed(rows)),  # newest day first: what changed lately is on top
            "totals": [(t, daily.total(t)) for t in daily.topics],
        },
    )


async def chart_png(request: web.Request, console: Console) -> web.StreamResponse:
    days = _days(request)
    # The day counts only: the page's outlets and names would read every story's text again.
    daily = await console.trends.daily(days=days, now=console.now(), topics=console.topics)
    # matplotlib takes a few hundred milliseconds: off the event loop, like the weekly digest's.
    png = await asyncio.to_thread(render_chart_png, daily, _title(days))
    response = web.Response(body=png, content_type="image/png")
    secure_headers(response)
    return response


PAGE = Page("/trends", "Trends", trends_page, extra_paths=(("/trends/chart.png", chart_png),))
