"""Benchmark: one digest delivered to N Discord channels through the outbox.

    python bench/fanout.py --channels 1000

The Discord stand-in (``tests/support/discord_api.py``) enforces Discord's limits: 5 messages per
5 s per channel and 50 requests per second per bot (global), answering 429s the way Discord does
(``retry_after``, ``Via`` header) and honouring nonces. The real path runs: the digest clock plans
N digests into the outbox (SQLite), the worker claims destinations and sends with discord.py over
REST. Prints one JSON object: the achieved send rate against the allowed rate, 429s met, and the
duplicates and losses counted from what the stand-in stored (both must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from discord.http import Route  # noqa: E402

from bot.delivery.services import Delivery, build_senders  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import models as m  # noqa: E402
from tests.support.discord_api import DiscordAPI  # noqa: E402
from tests.support.newsdb import add_story, open_store  # noqa: E402

TOPICS = ("distillation", "ip", "natsec", "release")


async def run(channels: int, stories: int, concurrency: int, rate: float, validate: bool) -> dict[str, Any]:
    original_base = Route.BASE
    with tempfile.TemporaryDirectory(prefix="fw-fanout-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'fanout.sqlite3'}"
        store = await open_store(url)
        shared = REPO.parent / "shared" if validate else None
        async with DiscordAPI(shared=shared) as api:
            now = datetime.now(UTC)
            for i in range(stories):
                await add_story(
                    store,
                    f"Story {i}: export controls and model distillation headline number {i}",
                    topics={TOPICS[i % 4]: 0.6 + (i % 4) / 10},
                    summary="Officials described the move on Monday. Analysts expect more measures.",
                    first_seen=now - timedelta(minutes=30),
                )
            async with store.sessions.begin() as session:
                for n in range(channels):
                    dest = m.Destination(
                        platform="discord",
                        workspace_id="1",
                        channel_id=str(300000000000000000 + n),
                        name=f"c{n}",
                        timezone="UTC",
                        digest_time="08:00",
                        digest_frequency="daily",
                        digest_weekday="mon",
                        next_digest_at=now - timedelta(minutes=1),
                        alert_cap_per_hour=5,
                        quiet_day_notice=False,
                        repeat_alerted_in_digest=False,
                        active=True,
                        created_at=now,
                    )
                    session.add(dest)
                    await session.flush()
                    for topic in TOPICS:
                        session.add(
                            m.Subscription(
                                destination_id=dest.id,
                                topic=topic,
                                mode="digest",
                                min_score=0.0,
                                created_at=now,
                            )
                        )
            settings = Settings(
                database_url=url,
                DISCORD_TOKEN="bench-token",
                discord_api_base=api.api_base,
                delivery_concurrency=concurrency,
                discord_send_rate=rate,
                delivery_max_backoff_seconds=2.0,
            )
            delivery = Delivery.build(store, settings, TOPICS, senders=build_senders(settings))
            t0 = time.perf_counter()
            planned = []
            while batch := await delivery.digests.tick():  # the clock claims 100 per tick
                planned.extend(batch)
            t_plan = time.perf_counter() - t0
            t1 = time.perf_counter()
            await delivery.worker.drain(within=3600)
            elapsed = time.perf_counter() - t1
            await delivery.worker.stop()
            expected_parts = sum(p.parts for p in planned)
            expected_entries = sum(p.entries for p in planned)
            posted = sum(len(api.posted(str(300000000000000000 + n))) for n in range(channels))
            per_channel_entries = Counter(
                (n, e["title"])
                for n in range(channels)
                for msg in api.posted(str(300000000000000000 + n))
                for e in msg["embeds"]
            )
            duplicates = sum(c - 1 for c in per_channel_entries.values() if c > 1)
            # Every channel should hold every story once: count against that, not only the plan.
            losses = channels * stories - len(per_channel_entries)
            async with store.sessions() as session:
                from sqlalchemy import func, select

                unsent = await session.scalar(
                    select(func.count()).select_from(m.Delivery).where(m.Delivery.status != "sent")
                )
            await store.engine.dispose()
            Route.BASE = original_base
            allowed = min(api.global_limit, channels * api.channel_limit / api.channel_window)
            return {
                "channels": channels,
                "digests_planned": len(planned),
                "entries_per_digest": expected_entries // max(1, len(planned)),
                "messages_expected": expected_parts,
                "messages_posted": posted,
                "plan_seconds": round(t_plan, 2),
                "send_seconds": round(elapsed, 2),
                "achieved_rate_per_s": round(posted / elapsed, 1) if elapsed else None,
                "allowed_rate_per_s": allowed,
                "pace_setting_per_s": rate,
                "rate_limited_429s": api.rate_limited,
                "duplicates": duplicates,
                "losses": losses,
                "outbox_rows_not_sent": int(unsent or 0),
                "spec_errors": len(api.spec_errors) if validate else None,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--stories", type=int, default=8, help="entries in the digest")
    parser.add_argument("--concurrency", type=int, default=64, help="destinations served in parallel")
    parser.add_argument("--rate", type=float, default=45.0, help="our global pace (Discord allows 50/s)")
    parser.add_argument("--validate", action="store_true", help="validate every body against ../shared specs")
    args = parser.parse_args()
    result = asyncio.run(run(args.channels, args.stories, args.concurrency, args.rate, args.validate))
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["duplicates"] == 0 and result["losses"] == 0 else 1)


if __name__ == "__main__":
    main()
