"""Full-text search over stored stories: whole words, "quoted phrases", ``topic:`` and ``since:``.

The database does the work, with an index, so a year of stories answers as fast as a day's:
SQLite's FTS5 (``stories_fts``, kept in step with ``stories`` by triggers) and PostgreSQL's
``tsvector`` column with a GIN index (see migration 0008). Both stem English words ("model"
finds "models") and match whole words only ("ai" does not find "said"). Hits are ranked by
relevance, a title hit above a summary hit, newer first among equals. Only the newest
``RANKED_CANDIDATES`` matches are ranked, so a common word costs no more than a rare one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, column, exists, func, literal_column, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import models as m

__all__ = ["SEARCH_SYNTAX", "SearchQuery", "SearchSyntaxError", "parse_search", "search_stories"]

SEARCH_SYNTAX = (
    'words (all must appear), "a quoted phrase", topic:NAME, since:7d / since:2w / since:2026-11-01'
)
_TOKEN = re.compile(r'"([^"]*)"|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)
_SINCE = re.compile(r"^(\d{1,4})([hdwm])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1), "m": timedelta(days=30)}
MAX_TERMS = 12
# Only the newest this many matches are ranked. Ranking reads every match's text, so a common word
# over a year of stories cost seconds; a reader searching a news bot wants the best of the recent
# coverage, and the filters (topic:, since:) apply before this cut, not after it. 300, not 1,000:
# a filtered search walks back until it has found this many, and at a million stories 1,000 made
# PostgreSQL's p95 ~500 ms against ~90 ms (bench/scale.py); older stories are found with more
# specific words or a phrase, which match fewer.
RANKED_CANDIDATES = 300
PG_WINDOWS = (20_000, 200_000)  # newest story ids searched first on PostgreSQL (see _postgresql)
# PostgreSQL's `english` configuration drops these words (its english.stop, the Snowball list);
# FTS5 keeps them. Dropped from every query on both, so "chips for China" finds the same stories
# on either database instead of "for" being required on SQLite and ignored on PostgreSQL.
STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
    her hers herself it its itself they them their theirs themselves what which who whom this that
    these those am is are was were be been being have has had having do does did doing a an the and
    but if or because as until while of at by for with about against between into through during
    before after above below to from up down in out on off over under again further then once here
    there when where why how all any both each few more most other some such no nor not only own same
    so than too very s t can will just don should now""".split()
)


class SearchSyntaxError(ValueError):
    """The query cannot be read; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    words: tuple[str, ...] = ()
    phrases: tuple[tuple[str, ...], ...] = ()
    topics: tuple[str, ...] = ()
    since: datetime | None = None
    text: str = field(default="", compare=False)

    @property
    def empty(self) -> bool:
        return not self.words and not self.phrases


def parse_search(text: str, topics: Sequence[str], now: datetime | None = None) -> SearchQuery:
    """Read a query such as ``deepseek "export controls" topic:natsec since:2w``."""
    now = now or datetime.now(UTC)
    if text.count('"') % 2:
        raise SearchSyntaxError('a quote is not closed: put a phrase between two " marks')
    words: list[str] = []
    phrases: list[tuple[str, ...]] = []
    wanted: list[str] = []
    since: datetime | None = None
    for match in _TOKEN.finditer(text):
        phrase, token = match.group(1), match.group(2)
        if phrase is not None:
            parts = tuple(w.lower() for w in _WORD.findall(phrase))
            if len(parts) > 1:
                phrases.append(parts)
            words.extend(parts if len(parts) == 1 else ())
            continue
        key, _, value = token.partition(":")
        if value and key.lower() == "topic":
            if value.lower() not in topics:
                raise SearchSyntaxError(f"unknown topic {value!r}: use one of {', '.join(topics)}")
            wanted.append(value.lower())
        elif value and key.lower() == "since":
            since = _since(value, now)
        else:
            words.extend(w.lower() for w in _WORD.findall(token))
    if len(words) + len(phrases) > MAX_TERMS:
        raise SearchSyntaxError(f"too many words: at most {MAX_TERMS} words and phrases")
    common = [w for w in words if w in STOP_WORDS] + [w for p in phrases if set(p) <= STOP_WORDS for w in p]
    words = [w for w in words if w not in STOP_WORDS]
    phrases = [p for p in phrases if not set(p) <= STOP_WORDS]
    if common and not words and not phrases:
        raise SearchSyntaxError(
            f"too common to search for: {', '.join(dict.fromkeys(common))}; "
            'add a rarer word or a "quoted phrase" with one'
        )
    return SearchQuery(tuple(dict.fromkeys(words)), tuple(phrases), tuple(dict.fromkeys(wanted)), since, text)


def _since(value: str, now: datetime) -> datetime:
    relative = _SINCE.match(value.lower())
    if relative:
        return now - int(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise SearchSyntaxError(
            f"since:{value} is not a date: use since:7d, since:2w, since:3m or since:2026-11-01"
        ) from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def search_stories(session: AsyncSession, query: SearchQuery, limit: int) -> list[int]:
    """Ids of the best ``limit`` stories for the query, best first."""
    if query.empty:
        return []
    story = m.Story
    filters: list[ColumnElement[bool]] = []
    if query.since is not None:
        filters.append(story.published_at >= query.since)
    for topic in query.topics:
        c = m.Classification
        filters.append(exists().where(c.story_id == story.id, c.topic == topic, c.passed.is_(True)))
    if (await session.connection()).dialect.name == "postgresql":
        return await _postgresql(session, query, filters, limit)
    return [int(r[0]) for r in (await session.execute(_sqlite(query, filters, limit))).all()]


def _sqlite(query: SearchQuery, filters: list[ColumnElement[bool]], limit: int) -> Select[Any]:
    # Every term quoted: FTS5 then reads it as a string to tokenize, never as syntax (AND, NEAR, *).
    terms = [_fts5_string(w) for w in query.words] + [_fts5_string(" ".join(p)) for p in query.phrases]
    fts = table("stories_fts", column("rowid"))
    rank: ColumnElement[Any] = literal_column("bm25(stories_fts, 4.0, 1.0)")
    newest = (
        select(m.Story.id.label("id"), m.Story.published_at.label("published_at"), rank.label("rank"))
        .join(fts, fts.c.rowid == m.Story.id)
        .where(literal_column("stories_fts").op("MATCH")(" ".join(terms)), *filters)
        .order_by(fts.c.rowid.desc())  # FTS5 walks its index newest first and stops at the limit
        .limit(RANKED_CANDIDATES)
        .subquery()
    )
    return (
        select(newest.c.id)
        .order_by(newest.c.rank, newest.c.published_at.desc(), newest.c.id.desc())
        .limit(limit)
    )


def _fts5_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


async def _postgresql(
    session: AsyncSession, query: SearchQuery, filters: list[ColumnElement[bool]], limit: int
) -> list[int]:
    parts = [func.plainto_tsquery("english", " ".join(query.words))] if query.words else []
    parts += [func.phraseto_tsquery("english", " ".join(p)) for p in query.phrases]
    tsquery: ColumnElement[Any] = parts[0]
    for part in parts[1:]:
        tsquery = tsquery.op("&&")(part)
    vector: ColumnElement[Any] = literal_column("stories.search_vector")
    matching = select(m.Story.id).where(vector.op("@@")(tsquery), *filters)
    # The newest RANKED_CANDIDATES matches, looked for in the newest stories first. PostgreSQL
    # picks its plan by how many rows it expects: asked for the newest matches of the whole
    # table it walks the primary key backwards, which is quick for a common word and reads
    # every row for a rare one or a phrase (its estimate of a phrase is the two words'). A window
    # of recent ids bounds that walk; past the last window, the matches are few, and
    # MATERIALIZED makes PostgreSQL take them from the GIN index before sorting.
    newest = await session.scalar(select(func.max(m.Story.id)))
    if newest is None:
        return []
    ids: list[int] = []
    for span in (*PG_WINDOWS, None):
        if span is not None:
            if newest - span <= 0:
                continue
            stmt = matching.where(m.Story.id > newest - span).order_by(m.Story.id.desc())
        else:
            every = matching.cte("matches").prefix_with("MATERIALIZED")
            stmt = select(every.c.id).order_by(every.c.id.desc())
        ids = [int(i) for i in (await session.scalars(stmt.limit(RANKED_CANDIDATES))).all()]
        if len(ids) >= RANKED_CANDIDATES:
            break  # the window holds the newest RANKED_CANDIDATES matches of all
    if not ids:
        return []
    ranked = (
        select(m.Story.id)
        .where(m.Story.id.in_(ids))
        .order_by(func.ts_rank_cd(vector, tsquery).desc(), m.Story.published_at.desc(), m.Story.id.desc())
        .limit(limit)
    )
    return [int(i) for i in (await session.scalars(ranked)).all()]
