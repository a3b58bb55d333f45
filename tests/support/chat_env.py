"""A ready-to-use environment for the `/watch` handlers: a migrated store, topics, a feed checker.

Shared by the handler, Discord and Slack tests so that all three drive the same handlers the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bot.services import DigestRunner
from bot.settings import Settings
from bot.sources.fetcher import FeedFetcher
from bot.store import models as m
from bot.store.chat import ChatStore
from bot.store.db import create_engine, migrate
from handlers import HandlerDeps
from handlers.sources import FeedValidator

TOPICS = {
    "distillation": "Knowledge distillation of AI models and model extraction.",
    "ip": "Intellectual property in AI: model theft, copyright suits, trade secrets.",
    "natsec": "National-security side of AI: export controls, espionage, bans, hearings.",
    "release": "A new AI model or model version released.",
}
NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # a Saturday, the day before Europe's DST switch

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Policy Wire</title><link>https://wire.example/</link>
<item><title>Export controls tightened on AI chips</title><link>https://wire.example/1</link>
<guid>1</guid><pubDate>Sat, 28 Mar 2026 10:00:00 GMT</pubDate></item>
<item><title>Lab accuses rival of distillation</title><link>https://wire.example/2</link>
<guid>2</guid><pubDate>Sat, 28 Mar 2026 09:00:00 GMT</pubDate></item>
</channel></rss>"""
HTML = b"<!doctype html><html><head><title>Not a feed</title></head><body><p>Hello</p></body></html>"


@dataclass
class FakeDigests:
    """Records digest_now calls; answers with ``entries``."""

    entries: int = 3
    calls: list[int] = field(default_factory=list)

    async def digest_now(self, destination_id: int) -> int:
        self.calls.append(destination_id)
        return self.entries


@dataclass
class ChatEnv:
    deps: HandlerDeps
    store: ChatStore
    fetcher: FeedFetcher
    digests: FakeDigests

    def enable_digests(self) -> None:
        runner: DigestRunner = self.digests
        self.deps.digests = lambda: runner

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        async with self.store.sessions() as session:
            return list((await session.scalars(select(model).where(*where))).all())

    async def destination(self, channel_id: str) -> m.Destination | None:
        found = await self.rows(m.Destination, m.Destination.channel_id == channel_id)
        return found[0] if found else None


@asynccontextmanager
async def chat_env(
    database_url: str, *, allow_private: bool = True, max_sources: int = 3, resolver: Any = None
) -> AsyncIterator[ChatEnv]:
    engine = create_engine(database_url)
    await migrate(engine)
    settings = Settings(database_url=database_url, allow_private_sources=allow_private)
    fetcher = FeedFetcher(settings, resolver=resolver)
    store = ChatStore(engine)
    deps = HandlerDeps(
        store=store,
        topics=TOPICS,
        check_feed=FeedValidator(fetcher, allow_private=allow_private, resolver=resolver),
        max_sources_per_channel=max_sources,
        clock=lambda: NOW,
    )
    try:
        yield ChatEnv(deps, store, fetcher, FakeDigests())
    finally:
        await fetcher.close()
        await engine.dispose()
