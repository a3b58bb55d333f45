"""Stories: filter by topic, official, dates and search words; each story with its topic scores and
evidence, its cluster's outlets and where it was delivered."""

from __future__ import annotations

import urllib.parse
from datetime import date

from aiohttp import web

from bot.console.pages import Page
from bot.console.site import Console, render
from bot.store.console import StoryFilter
from bot.store.search import SEARCH_SYNTAX, SearchSyntaxError, parse_search

PER_PAGE = 25


def _day(text: str, label: str, problems: list[str]) -> date | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        problems.append(f"{label} {text!r} is not a date: use YYYY-MM-DD.")
        return None
    if not 1970 <= day.year <= 9000:  # the filter adds a day; 9999-12-31 would overflow
        problems.append(f"{label} {text!r} is out of range: use a year from 1970 to 9000.")
        return None
    return day


async def stories_page(request: web.Request, console: Console) -> web.StreamResponse:
    query = request.query
    problems: list[str] = []
    topic = query.get("topic", "")
    if topic and topic not in console.topics:
        problems.append(f"Unknown topic {topic!r}.")
        topic = ""
    official = {"yes": True, "no": False}.get(query.get("official", ""))
    since = _day(query.get("from", ""), "From", problems)
    until = _day(query.get("to", ""), "To", problems)
    words = query.get("q", "").strip()
    search = None
    if words:
        try:
            search = parse_search(words, console.topics, console.now())
        except SearchSyntaxError as exc:
            problems.append(str(exc))
        else:
            # topic: and since: typed in the box count like the form's own fields.
            if search.topics and not topic:
                topic = search.topics[0]
            if search.since is not None and since is None:
                since = search.since.date()
    try:
        page = min(max(1, int(query.get("page", "1"))), 100_000)  # an offset the database can take
    except ValueError:
        page = 1
    wanted = StoryFilter(topic=topic or None, official=official, since=since, until=until, search=search)
    result = await console.queries.stories(wanted, page=page, per_page=PER_PAGE)
    kept = {k: v for k, v in query.items() if k != "page" and v}

    def page_link(number: int) -> str:
        return "/stories?" + urllib.parse.urlencode({**kept, "page": str(number)})

    return await render(
        request,
        "stories.html",
        {
            "title": "Stories",
            "result": result,
            "topics": console.topics,
            "form": {
                "topic": topic,
                "official": query.get("official", ""),
                "from": query.get("from", ""),
                "to": query.get("to", ""),
                "q": words,
            },
            "problems": problems,
            "syntax": SEARCH_SYNTAX,
            "page_link": page_link,
            "now": console.now(),
        },
    )


PAGE = Page("/stories", "Stories", stories_page)
