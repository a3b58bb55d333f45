"""`/watch search <query>`: stored stories ranked by how well they match the words and phrases."""

from __future__ import annotations

from bot.store.search import SearchSyntaxError, parse_search
from handlers.context import HandlerDeps
from handlers.model import Command, Link, Reply, UsageError, info

MAX_RESULTS = 10
USAGE = (
    '`/watch search <words>` — e.g. `search deepseek distillation`, `search "export controls" since:2w` '
    "or `search nvidia topic:natsec`"
)


async def search(deps: HandlerDeps, command: Command) -> Reply:
    try:
        query = parse_search(command.invocation.rest, tuple(deps.topics), deps.clock())
    except SearchSyntaxError as exc:
        raise UsageError(f"Could not read the search: {exc}.", USAGE) from None
    if query.empty:
        raise UsageError("What should I search for? Give at least one word.", USAGE)
    hits = await deps.store.search(query, limit=MAX_RESULTS)
    shown = query.text.strip()
    if not hits:
        return info(
            f"No stored story matches {shown}.",
            "Search looks for whole words in the titles and summaries of stories already collected.",
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
    return info(f"Best {len(hits)} {'story' if len(hits) == 1 else 'stories'} matching {shown}", links=links)
