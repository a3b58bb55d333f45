"""The store and the ingest stage, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from bot.domain import Classification, Entry, SourceSpec
from bot.pipeline.cluster import ClusterIndex
from bot.pipeline.cluster_eval import cluster_items, load_coverage
from bot.pipeline.ingest import Ingestor, _finish_in_thread
from bot.sources.delta import pack_hashes, unpack_hashes
from bot.store import models as m
from bot.store.db import SchemaTooNewError, create_engine, current_revision, head_revision, migrate
from bot.store.repo import Store

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class KeywordClassifier:
    """A stand-in classifier: 'export' → natsec. The real one has its own tests."""

    topics = ("natsec", "release")

    def classify(self, title: str, summary: str = "", url: str | None = None) -> Classification:
        hit = "export" in title.lower()
        scores = {"natsec": 0.9 if hit else 0.0, "release": 0.0}
        return Classification(scores, ("natsec",) if hit else (), {"natsec": ("export",)} if hit else {})


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield Store(engine)
    await engine.dispose()


def entry(guid: str, title: str, url: str, outlet: str | None = None, hours_ago: float = 1) -> Entry:
    return Entry(
        guid=guid,
        url=url,
        title=title,
        summary="s",
        published=NOW - timedelta(hours=hours_ago),
        outlet=outlet,
    )


async def test_migrate_is_idempotent_and_reports_revision(store: Store) -> None:
    await migrate(store.engine)
    assert await current_revision(store.engine) == head_revision()


async def test_a_database_a_newer_release_migrated_is_refused_in_one_line(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(SchemaTooNewError, match="revision 0099, which this release does not know"):
        await migrate(store.engine)
    assert await current_revision(store.engine) == "0099"  # refused before touching anything


async def test_sync_sources_adopts_a_feed_a_channel_added_first(store: Store) -> None:
    # Importing an OPML export that carried the channels' feeds puts them in the sources file: the
    # next start must take the channel's row over, not insert a second row with the same key.
    from bot.store.chat import ChannelKey, ChatStore

    chat = ChatStore(store.engine)
    key = ChannelKey("discord", "1", "2")
    spec = SourceSpec(name="Lawfare", url="https://lawfare.example/feed")
    await chat.add_channel_source(key, spec, added_by="u", limit=5, now=NOW)
    assert await store.sync_sources([spec], NOW) == {"added": 0, "updated": 0, "disabled": 0}
    [row] = await store.list_sources()
    assert (row.origin, row.enabled) == ("config", True)
    # Now the file's: a channel that stops watching it no longer disables it.
    source_id = row.id
    assert await chat.remove_channel_source(key, source_id) is not None
    assert [s.enabled for s in await store.list_sources()] == [True]


async def test_a_feed_that_leaves_the_file_stays_for_the_channels_that_added_it(store: Store) -> None:
    from bot.store.chat import ChannelKey, ChatStore

    chat = ChatStore(store.engine)
    spec = SourceSpec(name="Lawfare", url="https://lawfare.example/feed")
    await chat.add_channel_source(ChannelKey("discord", "1", "2"), spec, added_by="u", limit=5, now=NOW)
    await store.sync_sources([spec], NOW)  # the file adopts it
    assert await store.sync_sources([], NOW) == {"added": 0, "updated": 0, "disabled": 0}
    [row] = await store.list_sources()
    assert (row.origin, row.enabled) == ("channel", True)  # back to the channel, still polled


async def test_sync_sources_adds_updates_and_disables(store: Store) -> None:
    a = SourceSpec(name="A", url="https://a.example/feed")
    b = SourceSpec(name="B", url="https://b.example/feed")
    hf = SourceSpec(name="DeepSeek", url="", kind="hf_models", org="deepseek-ai")
    assert await store.sync_sources([a, b, hf], NOW) == {"added": 3, "updated": 0, "disabled": 0}
    renamed = SourceSpec(name="A renamed", url="https://a.example/feed", interval_minutes=10)
    assert await store.sync_sources([renamed, hf], NOW) == {"added": 0, "updated": 1, "disabled": 1}
    rows = {s.key: s for s in await store.list_sources()}
    assert rows["feed:https://a.example/feed"].name == "A renamed"
    assert rows["feed:https://a.example/feed"].interval_minutes == 10
    assert rows["feed:https://b.example/feed"].enabled is False
    assert rows["hf_models:deepseek-ai"].org == "deepseek-ai"


async def test_claim_leases_each_due_source_once(store: Store) -> None:
    specs = [SourceSpec(name=f"S{i}", url=f"https://s{i}.example/feed") for i in range(40)]
    await store.sync_sources(specs, NOW)
    # Several "replicas" claim at once: every source is claimed exactly once.
    claims = await asyncio.gather(*(store.claim_due_sources(timedelta(minutes=5), NOW) for _ in range(4)))
    ids = [c.id for claim in claims for c in claim]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 40
    assert await store.claim_due_sources(timedelta(minutes=5), NOW) == []
    # A lease that expired (crashed replica) is claimable again.
    again = await store.claim_due_sources(timedelta(minutes=5), NOW + timedelta(minutes=6))
    assert len(again) == 40


async def test_fetch_state_is_saved_and_lease_released(store: Store) -> None:
    await store.sync_sources([SourceSpec(name="A", url="https://a.example/feed")], NOW)
    [claimed] = await store.claim_due_sources(timedelta(minutes=5), NOW)
    await store.save_fetch_states(
        [
            {
                "id": claimed.id,
                "etag": '"v1"',
                "last_error": "HTTP 500",
                "failure_count": 1,
                "next_poll_at": NOW,
            }
        ]
    )
    [again] = await store.claim_due_sources(timedelta(minutes=5), NOW)
    assert again.etag == '"v1"' and again.failure_count == 1


async def test_item_hashes_are_kept_in_the_store_by_the_lease_owner(store: Store) -> None:
    """Delta parsing's item hashes live in the source row: every replica (and a restart) skips the
    items already stored, and no process keeps a set per source."""
    await store.sync_sources([SourceSpec(name="A", url="https://a.example/feed")], NOW)
    [claimed] = await store.claim_due_sources(timedelta(minutes=5), NOW, owner="me")
    assert claimed.item_hashes is None
    hashes = frozenset({b"a" * 12, b"b" * 12, b"c" * 12})
    state = {"id": claimed.id, "next_poll_at": NOW, "backlog_done": True, "item_hashes": pack_hashes(hashes)}
    assert await store.save_fetch_states([state], owner="me") == 1
    [again] = await store.claim_due_sources(timedelta(minutes=5), NOW, owner="other")
    assert unpack_hashes(again.item_hashes) == hashes
    # A poller that lost its lease writes nothing, hashes included.
    stale = dict(state, item_hashes=pack_hashes(frozenset({b"z" * 12})))
    assert await store.save_fetch_states([stale], owner="me") == 0
    assert await store.save_fetch_states([dict(state, item_hashes=None)], owner="other") == 1
    [third] = await store.claim_due_sources(timedelta(minutes=5), NOW, owner="me")
    assert third.item_hashes is None and unpack_hashes(third.item_hashes) == frozenset()


async def test_renewing_leases_while_saving_results_never_deadlocks(store: Store) -> None:
    """The lease heartbeat and a save of poll results lock the same rows at once; in different
    orders PostgreSQL aborts one with "deadlock detected" (seen with 100,000 sources)."""
    await store.sync_sources(
        [SourceSpec(name=f"S{i}", url=f"https://s{i}.example/feed") for i in range(1500)], NOW
    )
    claimed = await store.claim_due_sources(timedelta(minutes=5), NOW, owner="me")
    ids = [c.id for c in claimed]
    states = [{"id": i, "next_poll_at": NOW, "backlog_done": True} for i in reversed(ids)]
    for _ in range(6):
        async with store.sessions.begin() as session:
            await session.execute(
                update(m.Source).values(lease_owner="me", lease_until=NOW + timedelta(minutes=5))
            )
        await asyncio.gather(
            store.save_fetch_states(states, owner="me"),
            store.renew_source_leases(ids, timedelta(minutes=5), "me"),
        )
        async with store.sessions() as session:
            left = await session.scalar(
                select(func.count()).select_from(m.Source).where(m.Source.lease_owner.is_not(None))
            )
        assert left == 0  # every result saved (and its lease released), whichever ran first


async def _ingestor(store: Store) -> tuple[Ingestor, list[int]]:
    specs = [SourceSpec(name=n, url=f"https://{n.lower()}.example/feed") for n in ("Reuters", "Guardian")]
    await store.sync_sources(specs, NOW)
    claimed = await store.claim_due_sources(timedelta(minutes=5), NOW)
    return Ingestor(store, KeywordClassifier(), ClusterIndex()), [c.id for c in claimed]


async def test_ingest_dedups_entries_urls_and_clusters_outlets(store: Store) -> None:
    ingestor, _ = await _ingestor(store)
    claimed = await store.claim_due_sources(timedelta(minutes=5), NOW + timedelta(hours=1))
    reuters, guardian = sorted(claimed, key=lambda c: c.name, reverse=True)
    first = [
        entry("r1", "US tightens chip export rules for China AI labs", "https://reuters.example/chips"),
        entry("r2", "Unrelated sports result", "https://reuters.example/sport"),
    ]
    result = await ingestor.ingest(reuters, first, NOW, default_outlet="Reuters")
    assert len(result.new_stories) == 2
    # Re-polling the same feed stores nothing new.
    again = await ingestor.ingest(reuters, first, NOW, default_outlet="Reuters")
    assert again.new_stories == [] and again.new_sightings == 0

    second = [
        # same URL as Reuters' story: one story, seen by two outlets
        entry("g1", "Chip export rules tightened", "https://reuters.example/chips"),
        # near-identical headline, different URL and outlet: same cluster
        entry("g2", "US tightens chip export rules for Chinese AI labs", "https://guardian.example/chips"),
    ]
    result = await ingestor.ingest(guardian, second, NOW, default_outlet="Guardian")
    assert result.new_sightings == 1
    assert len(result.new_stories) == 1 and result.new_stories[0].joined_cluster
    rows = await store.list_stories(since=NOW - timedelta(days=1), relevant_only=True)
    chips = [r for r in rows if "chip" in r.title.lower()]
    assert {r.cluster_id for r in chips} == {chips[0].cluster_id}
    assert chips[0].outlets == ["Reuters", "Guardian"]
    assert chips[0].topics == {"natsec": 0.9} and chips[0].evidence == {"natsec": ["export"]}
    counts = await store.counts()
    assert counts["stories"] == 3 and counts["clusters"] == 2


async def test_a_write_batch_clusters_with_the_index_settings(store: Store) -> None:
    # Stories of one write batch meet each other in the main index, with the matcher the operator
    # set (FW_CLUSTER_SIMILARITY / FW_CLUSTER_LINKAGE end up in it).
    await _ingestor(store)
    [source, *_] = await store.claim_due_sources(timedelta(minutes=5), NOW + timedelta(hours=1))

    def pair(tag: str) -> list[Entry]:
        return [
            entry(
                f"{tag}1",
                "US tightens chip export rules for China AI labs",
                f"https://r.example/{tag}",
                "Reuters",
            ),
            entry(
                f"{tag}2",
                "US tightens chip export rules for Chinese AI labs",
                f"https://g.example/{tag}",
                "Guardian",
            ),
        ]

    fitted = Ingestor(store, KeywordClassifier(), ClusterIndex())
    result = await fitted.ingest(source, pair("a"), NOW, default_outlet="News")
    assert [s.joined_cluster for s in result.new_stories] == [False, True]
    strict = Ingestor(store, KeywordClassifier(), ClusterIndex(linkage_floor=1.0))
    result = await strict.ingest(source, pair("b"), NOW, default_outlet="News")
    assert [s.joined_cluster for s in result.new_stories] == [False, False]


async def test_a_batch_story_does_not_carry_a_sagas_development_into_its_cluster(store: Store) -> None:
    # Real coverage of 30 October 2023 (config/coverage/dev.jsonl), moved to this test's clock.
    # Six outlets' reports of the mob at Dagestan's airport are indexed; then one write batch holds
    # Politico's report of the same riot and Al Jazeera's "Russia blames Ukraine and the West",
    # a development. Politico's joins the riot's cluster; Al Jazeera's is close to Politico's
    # report but not to the cluster as a whole, so it must not follow it in through the batch.
    day = {
        (i.outlet, i.title): i
        for i in load_coverage(Path(__file__).resolve().parent.parent / "config" / "coverage" / "dev.jsonl")
        if i.event.startswith("2023-10-30-")
    }
    last = max(i.published for i in day.values())

    def real(outlet: str, title_start: str) -> Entry:
        [item] = [i for (o, t), i in day.items() if o == outlet and t.startswith(title_start)]
        return Entry(
            guid=item.url,
            url=item.url,
            title=item.title,
            summary=item.summary,
            published=NOW - (last - item.published) - timedelta(hours=1),
            outlet=item.outlet,
        )

    ingestor, _ = await _ingestor(store)
    [source, *_] = await store.claim_due_sources(timedelta(minutes=5), NOW + timedelta(hours=1))
    riot = [
        real("The Washington Post", "Protesters storm Russian airport"),
        real("themoscowtimes.com", "Dozens Arrested After Anti-Israeli Mob"),
        real("The New York Times", "Dozens Arrested in Dagestan"),
        real("Al Jazeera", "Arrests after crowd storms Russia airport"),
        real("NBC News", "Video shows pro-Palestinian crowds"),
        real("Al Jazeera", "Russia’s Dagestan airport closed"),
    ]
    for story in riot:  # one by one, as six polls would store them
        await ingestor.ingest(source, [story], NOW, default_outlet="News")
    rows = await store.list_stories(since=NOW - timedelta(days=3), relevant_only=False)
    assert len({r.cluster_id for r in rows}) == 1
    [riot_cluster] = {r.cluster_id for r in rows}
    batch = [
        real("politico.eu", "Russia arrests 60"),
        real("Al Jazeera", "Russia blames Ukraine and the West"),
    ]
    result = await ingestor.ingest(source, batch, NOW, default_outlet="News")
    assert [s.joined_cluster for s in result.new_stories] == [True, False]
    rows = await store.list_stories(since=NOW - timedelta(days=3), relevant_only=False)
    clusters = {r.title: r.cluster_id for r in rows}
    assert clusters[batch[0].title] == riot_cluster
    assert clusters[batch[1].title] != riot_cluster


def _partition(pairs: Iterable[tuple[str, int]]) -> list[list[str]]:
    """Stories grouped by cluster, as sorted lists of URLs (cluster ids differ between runs)."""
    groups: dict[int, list[str]] = {}
    for url, cluster in pairs:
        groups.setdefault(cluster, []).append(url)
    return sorted(sorted(urls) for urls in groups.values())


async def test_write_batches_cluster_as_cluster_eval_measures(store: Store) -> None:
    # Two real days of coverage (config/coverage/held-out-2026.jsonl, 8 and 9 January 2026: 255
    # headlines, one saga's developments among them), moved to this test's clock, each stored as
    # one write batch listed newest first as feeds list them. Ingest must place them as
    # `cluster-eval` does (one at a time in published order, each seeing the ones before it): a
    # batch index of their own let some stories into the wrong cluster and kept others apart.
    items = load_coverage(
        Path(__file__).resolve().parent.parent / "config" / "coverage" / "held-out-2026.jsonl"
    )
    shift = NOW - timedelta(hours=1) - max(i.published for i in items)
    items = [replace(i, published=i.published + shift) for i in items]
    expected = _partition(zip((i.url for i in items), cluster_items(items), strict=True))
    assert len(expected) < len(items) - 50  # many stories share a cluster: the check has teeth

    ingestor, _ = await _ingestor(store)
    [source, *_] = await store.claim_due_sources(timedelta(minutes=5), NOW + timedelta(hours=1))
    first_day = min(i.published for i in items).date()
    stored: list[tuple[str, int]] = []
    for day in (
        [i for i in items if i.published.date() == first_day],
        [i for i in items if i.published.date() != first_day],
    ):
        # Ties keep the file's order, which ingest's stable sort by time keeps too, as cluster-eval
        # breaks ties.
        newest_first = sorted(day, key=lambda i: (-i.published.timestamp(), items.index(i)))
        entries = [
            Entry(
                guid=i.url,
                url=i.url,
                title=i.title,
                summary=i.summary,
                published=i.published,
                outlet=i.outlet,
            )
            for i in newest_first
        ]
        result = await ingestor.ingest(source, entries, NOW, default_outlet="News")
        assert len(result.new_stories) == len(day)
        stored.extend((s.url, s.cluster_id) for s in result.new_stories)
    assert _partition(stored) == expected
    async with store.sessions() as session:
        rows = (await session.execute(select(m.Story.url, m.Story.cluster_id))).all()
    assert _partition((url, cluster) for url, cluster in rows) == expected
    # The index holds every story under its stored id and cluster, none under a provisional one.
    assert sorted((s.url, s.cluster_id) for s in result.new_stories) == sorted(
        (url, ingestor.index._by_id[story_id].cluster_id)
        for url, story_id in ((s.url, s.story_id) for s in result.new_stories)
    )
    assert all(story_id > 0 for story_id in ingestor.index._by_id)


async def test_a_batch_is_stored_and_announced_founders_first(store: Store) -> None:
    # Feeds list the newest first; the earliest report of an event founds its cluster, and routing
    # alerts on a cluster's founder and sends the rest as follow-ups, so it must come first.
    ingestor, _ = await _ingestor(store)
    [source, *_] = await store.claim_due_sources(timedelta(minutes=5), NOW + timedelta(hours=1))
    batch = [
        entry("g", "US tightens chip export rules for Chinese AI labs", "https://g.example/g", "Guardian", 1),
        entry("n", "Nvidia unveils a new gaming GPU", "https://v.example/n", "Verge", 1.5),
        entry("r", "US tightens chip export rules for China AI labs", "https://r.example/r", "Reuters", 2),
    ]
    result = await ingestor.ingest(source, batch, NOW, default_outlet="News")
    assert [(s.outlet, s.joined_cluster) for s in result.new_stories] == [
        ("Reuters", False),
        ("Verge", False),
        ("Guardian", True),
    ]
    reuters, verge, guardian = result.new_stories
    assert reuters.story_id < verge.story_id < guardian.story_id
    assert guardian.cluster_id == reuters.cluster_id == reuters.story_id


async def test_a_batch_that_is_not_stored_leaves_nothing_in_the_index(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingestor, _ = await _ingestor(store)
    [source, *_] = await store.claim_due_sources(timedelta(minutes=5), NOW + timedelta(hours=1))
    first = await ingestor.ingest(
        source,
        [entry("a", "US tightens chip export rules for China AI labs", "https://r.example/a", "Reuters")],
        NOW,
        default_outlet="News",
    )
    indexed = dict(ingestor.index._by_id)
    batch = [
        entry("b", "US tightens chip export rules for Chinese AI labs", "https://g.example/b", "Guardian"),
        entry("c", "Nvidia unveils a new gaming GPU", "https://g.example/c", "Guardian"),
    ]

    async def broken(*_args: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr("bot.pipeline.ingest.write_stories", broken)
    with pytest.raises(RuntimeError, match="database went away"):
        await ingestor.ingest(source, batch, NOW, default_outlet="News")
    assert ingestor.index._by_id == indexed  # the planned stories left again
    assert set(ingestor.index._clusters) == {first.new_stories[0].cluster_id}
    monkeypatch.undo()
    result = await ingestor.ingest(source, batch, NOW, default_outlet="News")
    assert [s.cluster_id == first.new_stories[0].cluster_id for s in result.new_stories] == [True, False]
    assert sorted(ingestor.index._by_id) == sorted([*indexed, *(s.story_id for s in result.new_stories)])


async def test_a_cancelled_writer_waits_for_its_planning_thread() -> None:
    # A thread cannot be stopped: were the lock released while it still places stories in the
    # index, the next batch (or a refresh) would change the index under it.
    finished = threading.Event()

    def plan(seconds: float) -> str:
        time.sleep(seconds)
        finished.set()
        return "planned"

    waiting = asyncio.create_task(_finish_in_thread(lambda: plan(0.3)))
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.sleep(0.05)
    waiting.cancel()  # twice: shutting down while being shut down
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert finished.is_set()
    assert await _finish_in_thread(lambda: plan(0.0)) == "planned"


async def test_first_poll_backlog_is_not_announced(store: Store) -> None:
    ingestor, _ = await _ingestor(store)
    [source, *_] = await store.claim_due_sources(timedelta(minutes=5), NOW + timedelta(hours=1))
    assert source.backlog_done is False
    result = await ingestor.ingest(
        source, [entry("a", "Export story", "https://x.example/a")], NOW, default_outlet="X"
    )
    assert [s.announce for s in result.new_stories] == [False]
    await store.save_fetch_states([{"id": source.id, "backlog_done": True}])
    [source] = [
        s
        for s in await store.claim_due_sources(timedelta(minutes=5), NOW + timedelta(hours=2))
        if s.id == source.id
    ]
    fresh = [
        entry("b", "Export story two", "https://x.example/b"),
        entry("c", "Old", "https://x.example/c", hours_ago=24 * 10),
    ]
    result = await ingestor.ingest(source, fresh, NOW, default_outlet="X")
    assert {s.title: s.announce for s in result.new_stories} == {"Export story two": True, "Old": False}


async def test_stories_in_one_batch_cluster_with_each_other(store: Store) -> None:
    ingestor, _ = await _ingestor(store)
    [source, *_] = await store.claim_due_sources(timedelta(minutes=5), NOW + timedelta(hours=1))
    batch = [
        entry(
            "1",
            "Exclusive: Trump DC hotel sales pitch boasts of millions to be made from foreign governments",
            "https://n.example/1",
            outlet="CNN",
        ),
        entry(
            "2",
            "Trump hotel sales pitch boasts of profit potential from foreign governments",
            "https://n.example/2",
            outlet="The Guardian",
        ),
    ]
    result = await ingestor.ingest(source, batch, NOW, default_outlet="Google News")
    assert len({s.cluster_id for s in result.new_stories}) == 1
    rows = await store.list_stories(since=NOW - timedelta(days=1))
    assert sorted(rows[0].outlets) == ["CNN", "The Guardian"]


async def test_batch_story_matching_a_batch_story_that_joined_an_existing_cluster(store: Store) -> None:
    """Yesterday outlet A's story founded a cluster; today AP's version joins it, and A's
    follow-up piece (which may not join A's own story) matches AP's: all three end in one cluster."""
    ingestor, _ = await _ingestor(store)
    reuters, guardian = sorted(
        await store.claim_due_sources(timedelta(minutes=5), NOW + timedelta(hours=1)),
        key=lambda c: c.name,
        reverse=True,
    )
    first = await ingestor.ingest(
        reuters,
        [entry("e", "US tightens chip export rules for China AI labs", "https://r.example/e")],
        NOW,
        default_outlet="Reuters",
    )
    founder = first.new_stories[0].cluster_id
    batch = [
        entry(
            "ap",
            "US tightens chip export rules for Chinese AI labs, AP reports",
            "https://g.example/ap",
            outlet="AP",
        ),
        entry(
            "r2",
            "US tightens chip export rules for Chinese AI labs, AP reports today",
            "https://g.example/r2",
            outlet="Reuters",
        ),
    ]
    result = await ingestor.ingest(guardian, batch, NOW, default_outlet="Guardian")
    assert [s.cluster_id for s in result.new_stories] == [founder, founder]


async def test_index_picks_up_stories_that_became_visible_late(store: Store) -> None:
    """On PostgreSQL another replica's lower ids can become visible after higher ones were read;
    the minute-by-minute gap check loads them, so both replicas cluster alike."""
    replica_a, _ = await _ingestor(store)
    replica_b = Ingestor(store, KeywordClassifier(), ClusterIndex())
    [source, *_] = await store.claim_due_sources(timedelta(minutes=5), NOW + timedelta(hours=1))
    await replica_a.refresh_index(NOW)
    replica_a.index.last_story_id = 10**9  # as if A had read far past B's uncommitted ids
    result = await replica_b.ingest(
        source,
        [entry("late", "Late committed story about chips", "https://x.example/late")],
        NOW,
        default_outlet="X",
    )
    await replica_b.close()
    story_id = result.new_stories[0].story_id
    await replica_a.refresh_index(NOW + timedelta(seconds=10))
    assert story_id not in replica_a.index  # not yet: the gap check runs once a minute
    await replica_a.refresh_index(NOW + timedelta(seconds=61))
    assert story_id in replica_a.index
    await replica_a.close()
