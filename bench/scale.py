"""Benchmark: what a big install costs, on SQLite or PostgreSQL (synthetic data).

    python bench/scale.py --db sqlite
    python bench/scale.py --db postgresql --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    python bench/scale.py --parts search,size      # only some of the measures below

Prints one JSON object:

- ``poll_memory_kb_per_1000_sources``: the bot's resident memory added by one poll cycle over
  ``--sources`` sources (the real ``Poller``: claims in chunks, lease heartbeat, delta hashes
  loaded from and saved to the store; every feed answers 304, so no parsing is counted);
- ``routing_ms_per_story``: the router's time per new story at 10, 1,000 and 10,000 destinations
  (each channel follows one topic with its own keyword, so a story matches a handful of channels
  however many exist: what grows is the cost of looking, which must stay within 2x), and
  ``routing_rules_reload_ms``, the one route after the channels changed that re-reads their rules;
- ``digest_planning_s``: planning a daily digest for every one of those destinations at once;
- ``search_ms``: p50 / p95 / max of 200 queries (words, phrases, ``topic:``, ``since:``) over
  ``--stories`` stories;
- ``db_bytes_per_million_stories``;
- ``retention``: a pass over the old half of the stories while a writer commits a story every
  20 ms as ingest does: rows deleted, the pass's time, and the writer's longest wait.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import delete, func, insert, select, text, update  # noqa: E402

from bench.poll import NAMES  # noqa: E402
from bot.delivery.digests import DigestService  # noqa: E402
from bot.delivery.router import Router  # noqa: E402
from bot.domain import Classification, FetchResult  # noqa: E402
from bot.pipeline.ingest import NewStory  # noqa: E402
from bot.pipeline.poller import Poller  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import models as m  # noqa: E402
from bot.store.db import create_engine, migrate  # noqa: E402
from bot.store.outbox import Outbox  # noqa: E402
from bot.store.repo import Store  # noqa: E402
from bot.store.retention import Retention  # noqa: E402
from bot.store.search import parse_search, search_stories  # noqa: E402

TOPICS = ("distillation", "ip", "natsec", "release")
CHUNK = 5000
NOW = datetime.now(UTC)


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def vocabulary(rng: random.Random, size: int = 20000) -> list[str]:
    """Made-up words built from bench/poll.py's three-syllable names, shuffled so that a word's
    rank (how common it is) has nothing to do with its spelling."""
    words = sorted({a + b for a in NAMES[:64] for b in NAMES[: size // 64 + 1]})
    rng.shuffle(words)
    return words[:size]


def zipf_word(rng: random.Random, vocab: list[str]) -> str:
    # Rank r drawn with probability ~ 1/r: a few words are everywhere, most are rare, as in news.
    return vocab[min(int(len(vocab) ** rng.random()) - 1, len(vocab) - 1)]


def chunks(n: int, size: int = CHUNK) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


# ------------------------------------------------------------------------------------------ sources
class NotModified:
    """Every feed answers 304: the cycle's own cost, without network or parsing."""

    async def fetch(self, url: str, **_: Any) -> FetchResult:
        await asyncio.sleep(0)
        return FetchResult(url=url, final_url=url, status=304)


class NoIngest:
    async def refresh_index(self, now: datetime) -> None:
        return None


async def add_sources(store: Store, sources: int) -> None:
    rng = random.Random(1)
    hashes = [bytes(rng.getrandbits(8) for _ in range(12)) for _ in range(50)]
    packed = b"".join(sorted(hashes))  # a 50-item feed's delta hashes, as the poller saves them
    for part in chunks(sources):
        async with store.sessions.begin() as session:
            await session.execute(
                insert(m.Source),
                [
                    {
                        "key": f"feed:https://feeds{i % 97}.example/{i}",
                        "name": f"Feed {i}",
                        "kind": "feed",
                        "url": f"https://feeds{i % 97}.example/{i}",
                        "interval_minutes": 30,
                        "next_poll_at": NOW - timedelta(minutes=1),
                        "etag": f'"{i}"',
                        "item_hashes": packed,
                        "backlog_done": True,
                        "created_at": NOW,
                    }
                    for i in part
                ],
            )


async def poll_memory(store: Store, settings: Settings, sources: int) -> dict[str, Any]:
    await add_sources(store, sources)
    poller = Poller(settings, store, NotModified(), None, NoIngest())  # type: ignore[arg-type]
    base, peak = rss_kb(), 0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kb())
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    report = await poller.poll_due(NOW)
    elapsed = time.perf_counter() - started
    done.set()
    await sampler
    peak = max(peak, rss_kb())
    return {
        "sources": sources,
        "polled": len(report.outcomes),
        "cycle_s": round(elapsed, 2),
        "rss_before_mb": round(base / 1024, 1),
        "rss_peak_mb": round(peak / 1024, 1),
        "poll_memory_kb_per_1000_sources": round((peak - base) / sources * 1000, 1),
    }


# ------------------------------------------------------------------------------------------ routing
async def add_destinations(store: Store, start: int, stop: int) -> None:
    for part in chunks(stop - start):
        async with store.sessions.begin() as session:
            rows = [
                {
                    "id": start + i + 1,
                    "platform": "console",
                    "workspace_id": "",
                    "channel_id": f"c{start + i}",
                    "alert_cap_per_hour": 1000,
                    "digest_frequency": "daily",
                    "created_at": NOW,
                }
                for i in part
            ]
            await session.execute(insert(m.Destination), rows)
            await session.execute(
                insert(m.Subscription),
                [
                    {
                        "destination_id": r["id"],
                        "topic": TOPICS[r["id"] % 4],
                        "mode": "both",
                        "created_at": NOW,
                    }
                    for r in rows
                ],
            )
            await session.execute(
                insert(m.ChannelKeyword),
                [
                    {"destination_id": r["id"], "kind": "include", "keyword": f"tag{r['id'] - 1}"}
                    for r in rows
                ],
            )


async def new_stories(store: Store, count: int, first_id: int) -> list[NewStory]:
    out = []
    async with store.sessions.begin() as session:
        for n in range(count):
            sid = first_id + n
            title = f"Routing story {sid} mentions tag{n % 10} and export controls"
            topic = TOPICS[n % 4]
            session.add(m.Cluster(id=sid, first_seen_at=NOW, last_seen_at=NOW, representative_story_id=sid))
            await session.flush()
            session.add(
                m.Story(
                    id=sid,
                    url_hash=f"r{sid}",
                    url=f"https://r.example/{sid}",
                    title=title,
                    summary="",
                    outlet="Wire",
                    source_id=1,
                    cluster_id=sid,
                    published_at=NOW,
                    first_seen_at=NOW,
                    extra={},
                )
            )
            out.append(
                NewStory(
                    story_id=sid,
                    cluster_id=sid,
                    title=title,
                    url=f"https://r.example/{sid}",
                    summary="",
                    outlet="Wire",
                    published_at=NOW,
                    classification=Classification({topic: 0.9}, (topic,), {topic: ("export",)}),
                    joined_cluster=False,
                    announce=True,
                )
            )
    return out


async def routing(store: Store, settings: Settings, sizes: list[int]) -> dict[str, Any]:
    router = Router(Outbox(store), settings, topics=TOPICS)
    per_story: dict[str, float] = {}
    reload_ms: dict[str, float] = {}
    have, next_story = 0, 10_000_000
    for size in sizes:
        await add_destinations(store, have, size)
        have = size
        stories = await new_stories(store, 101, next_story)
        next_story += 101
        # The first route after channels changed re-reads every channel's rules: timed apart.
        started = time.perf_counter()
        await router.route(stories[:1], NOW)
        reload_ms[str(size)] = round((time.perf_counter() - started) * 1000, 1)
        started = time.perf_counter()
        for story in stories[1:]:  # one feed at a time, as the poller hands them over
            await router.route([story], NOW)
        per_story[str(size)] = round((time.perf_counter() - started) / (len(stories) - 1) * 1000, 2)
    base = per_story[str(sizes[0])]
    return {
        "routing_ms_per_story": per_story,
        "routing_worst_vs_smallest": round(max(per_story.values()) / base, 2) if base else None,
        "routing_rules_reload_ms": reload_ms,
    }


async def digest_planning(store: Store, settings: Settings, destinations: int) -> dict[str, Any]:
    async with store.sessions.begin() as session:
        await session.execute(update(m.Destination).values(next_digest_at=NOW - timedelta(minutes=1)))
    service = DigestService(Outbox(store), settings, TOPICS)
    started = time.perf_counter()
    planned = 0
    while True:
        batch = await service.tick(NOW)
        planned += len(batch)
        if not batch:
            break
    return {
        "digests_planned": planned,
        "destinations": destinations,
        "digest_planning_s": round(time.perf_counter() - started, 1),
    }


# ------------------------------------------------------------------------------------------- search
async def fill_stories(store: Store, count: int, vocab: list[str]) -> list[str]:
    rng = random.Random(7)
    titles: list[str] = []
    for part in chunks(count):
        stories, clusters, classes = [], [], []
        for i in part:
            sid = i + 1
            age = timedelta(days=rng.uniform(0, 800))  # half older than the default 400 days
            title = " ".join(zipf_word(rng, vocab) for _ in range(rng.randint(6, 12)))
            summary = " ".join(zipf_word(rng, vocab) for _ in range(25))
            if len(titles) < 2000:
                titles.append(title)
            clusters.append(
                {"id": sid, "first_seen_at": NOW - age, "last_seen_at": NOW - age, "sources_count": 1}
            )
            stories.append(
                {
                    "id": sid,
                    "url_hash": f"{sid:040d}",
                    "url": f"https://news.example/{sid}",
                    "title": title,
                    "summary": summary,
                    "outlet": f"Outlet {sid % 300}",
                    "source_id": 1 + sid % 1000,
                    "cluster_id": sid,
                    "published_at": NOW - age,
                    "first_seen_at": NOW - age,
                    "backlog": False,
                    "routed": True,
                    "extra": {},
                }
            )
            topic = TOPICS[sid % 4]
            classes.append(
                {"story_id": sid, "topic": topic, "score": 0.8, "passed": sid % 3 == 0, "evidence": {}}
            )
        async with store.sessions.begin() as session:
            await session.execute(insert(m.Cluster), clusters)
            await session.execute(insert(m.Story), stories)
            await session.execute(insert(m.Classification), classes)
    return titles


async def search_latency(
    store: Store, vocab: list[str], titles: list[str], queries: int = 200
) -> dict[str, Any]:
    rng = random.Random(3)
    texts = []
    for n in range(queries):
        if n % 5 == 0:
            words = rng.choice(titles).split()
            start = rng.randrange(len(words) - 1)
            query = f'"{words[start]} {words[start + 1]}"'
        else:
            query = " ".join(zipf_word(rng, vocab) for _ in range(rng.randint(1, 2)))
        if n % 4 == 1:
            query += f" topic:{TOPICS[n % 4]}"
        if n % 4 == 2:
            query += " since:30d"
        texts.append(query)
    times = []
    hits = 0
    async with store.sessions() as session:
        for query in texts:
            started = time.perf_counter()
            found = await search_stories(session, parse_search(query, TOPICS, NOW), 10)
            times.append((time.perf_counter() - started) * 1000)
            hits += bool(found)
    times.sort()
    return {
        "search_ms": {
            "p50": round(times[len(times) // 2], 1),
            "p95": round(times[int(len(times) * 0.95)], 1),
            "max": round(times[-1], 1),
        },
        "search_queries_with_hits": hits,
    }


async def database_bytes(store: Store, url: str) -> int:
    async with store.sessions() as session:
        if url.startswith("sqlite"):
            path = Path(url.split("///", 1)[1])
            await session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        size = await session.scalar(
            text(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            )
        )
        return int(size or 0)


# ---------------------------------------------------------------------------------------- retention
async def retention_under_writes(store: Store, total: int) -> dict[str, Any]:
    waits: list[float] = []
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            sid = 50_000_000 + n
            n += 1
            started = time.perf_counter()
            async with store.sessions.begin() as session:
                await session.execute(
                    insert(m.Cluster), [{"id": sid, "first_seen_at": NOW, "last_seen_at": NOW}]
                )
                await session.execute(
                    insert(m.Story),
                    [
                        {
                            "id": sid,
                            "url_hash": f"w{sid}",
                            "url": f"https://w.example/{sid}",
                            "title": "Writer story",
                            "summary": "",
                            "outlet": "Wire",
                            "source_id": 1,
                            "cluster_id": sid,
                            "published_at": NOW,
                            "first_seen_at": NOW,
                            "extra": {},
                        }
                    ],
                )
            waits.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)

    async with store.sessions() as session:
        old = await session.scalar(
            select(func.count()).select_from(m.Story).where(m.Story.first_seen_at < NOW - timedelta(days=400))
        )
    task = asyncio.create_task(writer())
    started = time.perf_counter()
    report = await Retention(store, 400).prune(NOW)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    waits.sort()
    return {
        "retention": {
            "old_stories": old,
            "rows_deleted": report.stories * 2 + report.clusters,  # stories, their classifications, clusters
            "stories_deleted": report.stories,
            "pass_s": round(elapsed, 1),
            "writer_commits": len(waits),
            "writer_wait_p99_ms": round(waits[int(len(waits) * 0.99)] * 1000, 1) if waits else None,
            "writer_wait_max_ms": round(waits[-1] * 1000, 1) if waits else None,
        }
    }


# --------------------------------------------------------------------------------------------- main
PARTS = ("memory", "routing", "digests", "size", "search", "retention")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fw-scale-") as tmp:
        url, cleanup = await database(args, Path(tmp))
        try:
            engine = create_engine(url)
            await migrate(engine)
            store = Store(engine)
            settings = Settings(database_url=url, fetch_concurrency=256)
            result: dict[str, Any] = {"db": args.db, "stories": args.stories}
            parts = set(args.parts.split(","))
            if "memory" in parts:
                result.update(await poll_memory(store, settings, args.sources))
            else:  # the stories below belong to 1,000 sources
                await add_sources(store, 1000)
            sizes = [int(s) for s in args.destinations.split(",")]
            if "routing" in parts:
                result.update(await routing(store, settings, sizes))
            if "digests" in parts:
                result.update(await digest_planning(store, settings, sizes[-1]))
                async with store.sessions.begin() as session:  # digests are not what the rest measures
                    await session.execute(delete(m.Delivery))
            if parts & {"size", "search", "retention"}:
                vocab = vocabulary(random.Random(5))
                started = time.perf_counter()
                before = await database_bytes(store, url)
                titles = await fill_stories(store, args.stories, vocab)
                if args.db == "postgresql":
                    # What autovacuum does to a year of stories long before a search: the planner's
                    # statistics, hint bits and the visibility map (a just-loaded table has none).
                    async with engine.connect() as conn:
                        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                        await auto.execute(text("VACUUM (ANALYZE) stories, classifications"))
                result["fill_s"] = round(time.perf_counter() - started, 1)
                grown = await database_bytes(store, url) - before
                result["db_bytes_per_million_stories"] = int(grown / args.stories * 1_000_000)
                if "search" in parts:
                    result.update(await search_latency(store, vocab, titles))
                if "retention" in parts:
                    result.update(await retention_under_writes(store, args.stories))
            await engine.dispose()
        finally:
            await cleanup()
    return result


async def database(args: argparse.Namespace, tmp: Path) -> tuple[str, Any]:
    if args.db == "sqlite":

        async def nothing() -> None:
            return None

        return f"sqlite+aiosqlite:///{tmp / 'scale.sqlite3'}", nothing
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    dsn = args.pg_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.close()

    async def drop() -> None:
        c = await asyncpg.connect(dsn)
        await c.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await c.close()

    sep = "&" if "?" in args.pg_url else "?"
    return f"{args.pg_url}{sep}options=-csearch_path%3D{schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sources", type=int, default=100_000)
    parser.add_argument("--stories", type=int, default=1_000_000)
    parser.add_argument("--destinations", default="10,1000,10000")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated measures to run (default all): {', '.join(PARTS)}",
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
