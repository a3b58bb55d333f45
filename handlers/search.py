"""`/watch search <words>`: stored stories whose title or summary contain every word."""

from __future__ import annotations

from bot.classify import KeywordFilter
from handlers.context import HandlerDeps
from handlers.model import Command, Link, Reply, UsageError, info

MAX_RESULTS = 10
USAGE = '`/watch search <words>` — e.g. `search deepseek distillation` or `search "export controls"`'


async def search(deps: HandlerDeps, command: Command) -> Reply:
    try:
        words = KeywordFilter.parse(command.invocation.rest)
    except ValueError as exc:
        raise UsageError(f"Could not read the search words: {exc}.", USAGE) from None
    words = [w for w in words if len(w) >= 2]
    if not words:
        raise UsageError("What should I search for? Give at least one word of two or more letters.", USAGE)
    hits = await deps.store.search(words, limit=MAX_RESULTS)
    shown = " ".join(f'"{w}"' if " " in w else w for w in words)
    if not hits:
        return info(
            f"No stored story matches {shown}.",
            "Search looks at titles and summaries of stories already collected.",
        )
    links = tuple(
        Link(
            hit.title[:200],
            hit.url,
            f"{hit.outlet} · {hit.published_at:%Y-%m-%d}"
            + (f" · {', '.join(hit.topics)}" if hit.topics else ""),
        )
        for hit in hits
    )
    return info(
        f"Newest {len(hits)} {'story' if len(hits) == 1 else 'stories'} matching {shown}", links=links
    )
