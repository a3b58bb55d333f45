"""Route a parsed command to its handler, enforcing rights first and turning bad input into replies."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import IntegrityError

from handlers import alerts, digest, keywords, mentions, pause, search, sources, status, subscriptions
from handlers.context import HandlerDeps
from handlers.model import Command, Reply, UsageError, error

log = logging.getLogger(__name__)

Handler = Callable[[HandlerDeps, Command], Awaitable[Reply]]

# (group, action) -> (handler, changes configuration?)
ROUTES: dict[tuple[str, str | None], tuple[Handler, bool]] = {
    ("subscribe", None): (subscriptions.subscribe, True),
    ("unsubscribe", None): (subscriptions.unsubscribe, True),
    ("topics", None): (subscriptions.topics, False),
    ("digest", None): (digest.show, False),
    ("digest", "now"): (digest.now, True),
    ("digest", "time"): (digest.set_time, True),
    ("digest", "frequency"): (digest.set_frequency, True),
    ("digest", "quiet"): (digest.set_quiet, True),
    ("digest", "repeats"): (digest.set_repeats, True),
    ("alerts", None): (alerts.show, False),
    ("alerts", "cap"): (alerts.set_cap, True),
    ("alerts", "mention"): (mentions.add, True),
    ("alerts", "mention-list"): (mentions.list_rules, False),
    ("alerts", "mention-remove"): (mentions.remove, True),
    ("sources", None): (sources.list_sources, False),
    ("sources", "list"): (sources.list_sources, False),
    ("sources", "add"): (sources.add, True),
    ("sources", "remove"): (sources.remove, True),
    ("sources", "pause"): (sources.pause, True),
    ("sources", "resume"): (sources.resume, True),
    ("keywords", None): (keywords.list_keywords, False),
    ("keywords", "list"): (keywords.list_keywords, False),
    ("keywords", "add"): (keywords.add, True),
    ("keywords", "remove"): (keywords.remove, True),
    ("search", None): (search.search, False),
    ("pause", None): (pause.pause, True),
    ("resume", None): (pause.resume, True),
    ("status", None): (status.status, False),
    ("help", None): (status.help_, False),
}


def is_write(group: str, action: str | None) -> bool:
    route = ROUTES.get((group, action))
    return bool(route and route[1])


def refusal(command: Command) -> Reply:
    inv = command.invocation
    name = " ".join(p for p in (inv.group, inv.action) if p)
    return Reply(
        "refused",
        f"You can't run `/watch {name}` here: it needs {command.rights.required}.",
        (
            "Ask someone who has that right, or use the reading commands, which are open to everyone: "
            "`status`, `topics`, `search`, `sources list`, `keywords list`, `alerts mention list`, `help`.",
        ),
    )


async def handle(deps: HandlerDeps, command: Command) -> Reply:
    """Run one command. Never raises for user mistakes; unexpected errors become a short reply."""
    inv = command.invocation
    route = ROUTES.get((inv.group, inv.action))
    if route is None:
        return error(f"Unknown command `{inv.group}`.", "Try `/watch help`.")
    handler, writes = route
    try:
        if writes and not await command.rights.check():
            return refusal(command)
        try:
            return await handler(deps, command)
        except IntegrityError:
            # A concurrent command on the same channel wrote the same row a moment earlier (two
            # clicks, two replicas). Its transaction rolled back; run once more against what it wrote.
            return await handler(deps, command)
    except UsageError as exc:
        return exc.reply
    except Exception:
        log.exception("/watch %s %s failed", inv.group, inv.action or "")
        return error("Something went wrong on our side; nothing was changed. The error was logged.")
