"""What handlers need from the rest of the bot, passed in explicitly (no globals, easy to fake)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from bot.services import DigestRunner
from bot.store.chat import ChannelKey, ChatStore
from bot.store.feedback import FeedbackStore
from handlers.model import Command


@dataclass(frozen=True, slots=True)
class FeedCheck:
    """Outcome of fetching and parsing a URL a channel wants to add."""

    ok: bool
    problem: str | None = None
    kind: Literal["refused", "invalid", "unreachable", "not_feed"] | None = None
    title: str | None = None
    entries: int = 0
    final_url: str = ""


FeedChecker = Callable[[str], Awaitable[FeedCheck]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _no_digests() -> DigestRunner | None:
    return None


@dataclass(slots=True)
class HandlerDeps:
    store: ChatStore
    topics: Mapping[str, str]  # topic name -> one-line description, in taxonomy order
    check_feed: FeedChecker
    # A getter, not a value: the delivery side may attach its runner after the platforms start.
    digests: Callable[[], DigestRunner | None] = _no_digests
    max_sources_per_channel: int = 10
    max_keywords_per_channel: int = 50
    clock: Callable[[], datetime] = field(default=_utcnow)
    feedback: FeedbackStore | None = None  # readers' clicks on alerts (None: not counted)


def channel_key(command: Command) -> ChannelKey:
    return ChannelKey(command.platform, command.workspace_id, command.channel_id, command.channel_name)
