"""What goes into a handler (a parsed command) and what comes out (a reply model).

Both are plain data; the Discord and Slack adapters translate from and to their platforms. Reply
text is plain text in which only `backticks` are markup, because that is the one syntax Discord
markdown and Slack mrkdwn share; links travel separately as :class:`Link`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "info", "error", "refused"]

GROUPS = (
    "subscribe",
    "unsubscribe",
    "topics",
    "digest",
    "alerts",
    "sources",
    "keywords",
    "search",
    "pause",
    "resume",
    "status",
    "help",
)
ACTIONS: dict[str, tuple[str, ...]] = {
    "digest": ("now", "time", "frequency", "quiet", "repeats"),
    # mention-list / mention-remove: Discord's names (three levels deep is its limit); on Slack
    # `alerts mention list|remove|off` reads better and parse_text maps it onto these.
    "alerts": ("cap", "mention", "mention-list", "mention-remove"),
    "sources": ("list", "add", "remove", "pause", "resume"),
    "keywords": ("add", "remove", "list"),
}


@dataclass(frozen=True, slots=True)
class Invocation:
    """`/watch <group> [action] args...`; ``rest`` is the raw text after group and action."""

    group: str
    action: str | None = None
    args: tuple[str, ...] = ()
    rest: str = ""


async def _granted() -> bool:
    return True


async def _denied() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Rights:
    """Whether the user may change this channel's configuration.

    ``check`` is lazy because on Slack it costs a ``users.info`` call, which reading commands
    should not pay. ``required`` names the right in words, for refusals.
    """

    required: str
    check: Callable[[], Awaitable[bool]]

    @classmethod
    def fixed(cls, granted: bool, required: str) -> Rights:
        return cls(required, _granted if granted else _denied)


@dataclass(frozen=True, slots=True)
class Command:
    platform: str  # "discord" | "slack"
    workspace_id: str  # guild id / team id
    channel_id: str
    user_id: str
    rights: Rights
    invocation: Invocation
    channel_name: str = ""
    user_name: str = ""


@dataclass(frozen=True, slots=True)
class Link:
    text: str
    url: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    status: Status
    title: str
    lines: tuple[str, ...] = ()
    links: tuple[Link, ...] = field(default_factory=tuple)
    ephemeral: bool = True

    @property
    def text(self) -> str:
        """Everything as plain text (console, notification fallback, tests)."""
        parts = [self.title, *self.lines]
        parts.extend(f"{link.text} {link.url} {link.detail}".strip() for link in self.links)
        return "\n".join(parts)


def error(title: str, *lines: str) -> Reply:
    return Reply("error", title, tuple(lines))


def info(title: str, *lines: str, links: tuple[Link, ...] = ()) -> Reply:
    return Reply("info", title, tuple(lines), links)


def done(title: str, *lines: str) -> Reply:
    """A configuration change: shown to the whole channel, so everyone sees what changed."""
    return Reply("ok", title, tuple(lines), ephemeral=False)


class UsageError(Exception):
    """Bad input; carries the reply that names the problem and shows what would be accepted."""

    def __init__(self, title: str, *lines: str) -> None:
        super().__init__(title)
        self.reply = error(title, *lines)
