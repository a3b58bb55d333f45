"""Replicas starting together on an empty database (`docker compose up --scale run=3`): the
start-time syncs of the sources file and the webhooks file each insert rows every replica wants.
The losers of the race on the unique keys must sync again and find the winner's rows, not stop
the start with an integrity error (the container smoke test met both). The console destination's
twin is in test_delivery.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from bot.platforms.webhooks import load_webhooks
from bot.sources.config import load_sources
from bot.store import models as m
from bot.store.chat import ChatStore
from bot.store.repo import Store
from tests.support.newsdb import open_store

REPO = Path(__file__).resolve().parent.parent
TOPICS = ("distillation", "ip", "natsec", "release")


async def _replicas(database_url: str, n: int = 3) -> list[Store]:
    first = await open_store(database_url)  # migrated once, as the advisory lock makes it anyway
    return [first, *[Store((await open_store(database_url)).engine) for _ in range(n - 1)]]


async def test_replicas_sync_the_sources_file_together(database_url: str) -> None:
    specs = load_sources(REPO / "config/sources.toml", default_interval=30)
    stores = await _replicas(database_url)
    try:
        counts = await asyncio.gather(*(s.sync_sources(specs) for s in stores))
        assert sum(c["added"] for c in counts) == len(specs)
        async with stores[0].sessions() as session:
            assert await session.scalar(select(func.count()).select_from(m.Source)) == len(specs)
    finally:
        for s in stores:
            await s.engine.dispose()


async def test_replicas_sync_the_webhooks_file_together(database_url: str) -> None:
    specs = load_webhooks(REPO / "config/webhooks.example.toml", TOPICS)
    stores = await _replicas(database_url)
    try:
        counts = await asyncio.gather(*(ChatStore(s.engine).sync_webhooks(specs) for s in stores))
        assert sum(c["added"] for c in counts) == len(specs)
        async with stores[0].sessions() as session:
            assert await session.scalar(select(func.count()).select_from(m.Destination)) == len(specs)
    finally:
        for s in stores:
            await s.engine.dispose()
