"""Full-text search (issue 12): whole words, phrases, topic: and since:, ranked, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from bot.store import models as m
from bot.store import search
from bot.store.chat import ChatStore
from bot.store.db import create_engine, migrate
from bot.store.search import SearchSyntaxError, parse_search
from tests.support.newsdb import add_story

NOW = datetime.now(UTC)
TOPICS = ("distillation", "ip", "natsec", "release")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ChatStore]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield ChatStore(engine)
    await engine.dispose()


async def titles(store: ChatStore, text: str, limit: int = 10) -> list[str]:
    return [h.title for h in await store.search(parse_search(text, TOPICS, NOW), limit=limit)]


async def test_whole_words_stems_phrases_filters_and_rank(store: ChatStore) -> None:
    await add_story(store, "Officials said the rules were final", topics={"natsec": 0.2})
    await add_story(store, "New AI rules for chip exports", topics={"natsec": 0.9})
    await add_story(
        store,
        "Commerce tightens export controls on Nvidia chips",
        summary="The export controls cover H20 accelerators.",
        topics={"natsec": 0.9},
        published=NOW - timedelta(days=40),
        first_seen=NOW - timedelta(days=40),
    )
    await add_story(store, "Controls on what labs export, explained", topics={"natsec": 0.3})
    await add_story(
        store,
        "Weekly roundup",
        summary="Also: a chip maker released two models and an ai policy memo.",
        topics={"release": 0.8},
    )
    await add_story(store, "Mistral releases a new model", topics={"release": 0.9})

    # Whole words: "ai" is not inside "said"; the title hit ranks above the summary hit.
    assert await titles(store, "ai") == ["New AI rules for chip exports", "Weekly roundup"]
    # Stemmed: "model" finds "models" and "model"; every word must appear.
    assert set(await titles(store, "model")) == {"Weekly roundup", "Mistral releases a new model"}
    assert await titles(store, "chip model") == ["Weekly roundup"]
    # A phrase keeps its order; loose words do not.
    assert await titles(store, '"export controls"') == ["Commerce tightens export controls on Nvidia chips"]
    assert len(await titles(store, "export controls")) == 2
    # Filters.
    assert await titles(store, "chip topic:natsec") == [
        "New AI rules for chip exports",
        "Commerce tightens export controls on Nvidia chips",
    ]
    assert await titles(store, "chip topic:natsec since:30d") == ["New AI rules for chip exports"]
    since = (NOW - timedelta(days=60)).date().isoformat()
    assert len(await titles(store, f"chip since:{since}")) == 3
    assert await titles(store, "quantum") == []
    # Common words count on neither database (PostgreSQL ignores them; FTS5 would require them).
    both = await titles(store, "the chip exports")
    assert len(both) == 2 and both == await titles(store, "chip exports")
    # Query syntax never leaks into the engine's own (FTS5 operators, tsquery characters).
    assert await titles(store, 'AND OR NOT NEAR * ( ) : ! & | "" ') == []
    assert await titles(store, "h20 -") == ["Commerce tightens export controls on Nvidia chips"]


async def test_only_the_newest_matches_are_ranked_and_filters_apply_before_the_cut(
    store: ChatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "RANKED_CANDIDATES", 2)
    monkeypatch.setattr(search, "PG_WINDOWS", (1, 2))  # PostgreSQL: the newest story, then two, then all
    await add_story(store, "Export export export: the oldest and best match", topics={"natsec": 0.9})
    await add_story(store, "Export rules, newer", topics={"release": 0.9})
    await add_story(store, "An export story, newest", topics={})
    # The best-ranked match is older than the two newest: it is no longer a candidate.
    assert sorted(await titles(store, "export")) == ["An export story, newest", "Export rules, newer"]
    # A filter is applied before the cut: the old natsec story is the newest one that passes.
    assert await titles(store, "export topic:natsec") == ["Export export export: the oldest and best match"]


async def test_the_index_follows_edits_and_deletes(store: ChatStore) -> None:
    story = await add_story(store, "Old headline about distillation")
    assert await titles(store, "distillation") == ["Old headline about distillation"]
    async with store.sessions.begin() as session:
        await session.execute(
            update(m.Story)
            .where(m.Story.id == story.story_id)
            .values(title="Corrected headline on extraction")
        )
    assert await titles(store, "distillation") == []
    assert await titles(store, "extraction") == ["Corrected headline on extraction"]
    async with store.sessions.begin() as session:
        await session.execute(delete(m.SourceEntry).where(m.SourceEntry.story_id == story.story_id))
        await session.execute(delete(m.Classification).where(m.Classification.story_id == story.story_id))
        await session.execute(delete(m.Story).where(m.Story.id == story.story_id))
    assert await titles(store, "extraction") == []


def test_query_syntax_and_its_errors() -> None:
    q = parse_search('DeepSeek "Export  Controls" topic:NatSec since:2w gpt-4o', TOPICS, NOW)
    assert q.words == ("deepseek", "gpt", "4o") and q.phrases == (("export", "controls"),)
    assert q.topics == ("natsec",) and q.since == NOW - timedelta(weeks=2)
    assert parse_search("since:2026-11-01 x", TOPICS, NOW).since == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_search("topic:natsec", TOPICS, NOW).empty
    with pytest.raises(SearchSyntaxError, match="unknown topic 'chips': use one of distillation, ip"):
        parse_search("topic:chips", TOPICS, NOW)
    with pytest.raises(SearchSyntaxError, match="since:7d, since:2w"):
        parse_search("since:yesterday", TOPICS, NOW)
    with pytest.raises(SearchSyntaxError, match="quote is not closed"):
        parse_search('"export controls', TOPICS, NOW)
    with pytest.raises(SearchSyntaxError, match="at most 12"):
        parse_search(" ".join(f"w{n}" for n in range(13)), TOPICS, NOW)


def test_common_words_are_dropped_alike_on_both_databases() -> None:
    # PostgreSQL's english configuration ignores them and FTS5 would require them: dropped for both.
    q = parse_search('chips for "the Commerce Department" "the who"', TOPICS, NOW)
    assert q.words == ("chips",) and q.phrases == (("the", "commerce", "department"),)
    with pytest.raises(
        SearchSyntaxError, match='too common to search for: the, of, it; add a rarer word or a "quoted'
    ):
        parse_search('the "of" it topic:natsec', TOPICS, NOW)
