"""Platform-neutral `/watch` command handlers: parsed command in, reply model out.

Nothing here imports discord or slack_bolt; `bot.platforms` translates both ways.
One module per command group: subscriptions, digest, sources, keywords, search, status (and help).
"""

from handlers.context import FeedCheck, FeedChecker, HandlerDeps
from handlers.dispatch import handle, is_write
from handlers.model import Command, Invocation, Link, Reply, Rights, UsageError
from handlers.parse import parse_text

__all__ = [
    "Command",
    "FeedCheck",
    "FeedChecker",
    "HandlerDeps",
    "Invocation",
    "Link",
    "Reply",
    "Rights",
    "UsageError",
    "handle",
    "is_write",
    "parse_text",
]
