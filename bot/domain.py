"""Plain data passed between pipeline stages.

Every stage (fetch, parse, normalize, classify, cluster, store) takes and returns these
dataclasses, so a stage can be tested, benchmarked or run in a worker process on its own.
Nothing here knows about HTTP clients, databases or chat platforms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

SourceKind = Literal["feed", "hf_models", "github_releases"]
SOURCE_KINDS: tuple[str, ...] = ("feed", "hf_models", "github_releases")


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One `[[sources]]` table of `sources.toml`, or a source a channel added."""

    name: str
    url: str
    kind: SourceKind = "feed"
    interval_minutes: int = 30
    weight: float = 1.0
    enabled: bool = True
    official: bool = False  # the publisher's own feed (sources.toml only; see bot/sources/config.py)
    org: str | None = None  # hf_models: Hub organisation or user
    repo: str | None = None  # github_releases: "owner/name"


@dataclass(slots=True)
class FetchResult:
    """What the fetcher got for one URL. `error` is set when nothing usable came back."""

    url: str
    final_url: str
    status: int  # HTTP status; 0 when no response was received
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names, as feedparser wants
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, from a 429/503 Retry-After
    elapsed: float = 0.0

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def ok(self) -> bool:
        return self.error is None and self.body is not None


@dataclass(frozen=True, slots=True)
class Entry:
    """One normalized feed entry: clean text, canonical link, UTC time."""

    guid: str  # stable id within its source
    url: str  # canonical link (tracking parameters and fragment removed)
    title: str  # plain text
    summary: str  # plain text, cut at a word boundary
    published: datetime | None  # timezone-aware UTC; None when the feed gave none
    outlet: str | None = None  # publisher named inside the entry (Google News <source>), if any
    tags: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()  # tracker metadata (pipeline tag, licence, ...)


@dataclass(slots=True)
class ParsedFeed:
    """Result of parsing one fetched body."""

    entries: list[Entry]
    title: str | None = None
    bozo: bool = False  # feedparser found the document broken (it may still yield entries)
    bozo_reason: str | None = None
    error: str | None = None  # why nothing could be ingested; None when entries (or an empty feed) came out
    next_url: str | None = None  # pagination (Hub API Link header)
    item_hashes: frozenset[bytes] = frozenset()  # every item element of the document (delta parsing)
    items_skipped: int = 0  # items left unparsed because their bytes were parsed in an earlier poll
    items_dropped: int = 0  # items beyond FW_MAX_ITEMS_PER_FEED, ignored


#: What a classifier reads of a story: ``(title, summary)`` or ``(title, summary, url)``. The
#: address matters only to topics with ``always_addresses`` (a Hugging Face model repository) or
#: ``address_requires`` (a paper must say its model is out).
StoryText = tuple[str, str] | tuple[str, str, str | None]


def story_url(story: StoryText) -> str | None:
    """The address of a :data:`StoryText`, or ``None`` when it has none."""
    return story[2] if len(story) > 2 else None


@dataclass(frozen=True, slots=True)
class Classification:
    """Scores for every topic in 0..1, the topics that pass their threshold, and why."""

    scores: dict[str, float]
    topics: tuple[str, ...]
    evidence: dict[str, tuple[str, ...]]

    def reason(self, max_terms: int = 3) -> str:
        """One short line saying why the story is relevant, for digests and alerts."""
        parts = []
        for topic in self.topics:
            terms = ", ".join(self.evidence.get(topic, ())[:max_terms])
            parts.append(f"{topic} ({terms})" if terms else topic)
        return "; ".join(parts)


#: The longest wait a server may impose through Retry-After or RateLimit: beyond it a hostile or
#: broken value ("inf", "1e20", a year-9999 date) would silence a source for good, or overflow.
MAX_SERVER_DELAY_SECONDS = 7 * 24 * 3600.0


def clamp_server_delay(seconds: float | None) -> float | None:
    """A server-given delay in ``[0, MAX_SERVER_DELAY_SECONDS]``; None when it is not a number."""
    if seconds is None or seconds != seconds:  # NaN is not a delay
        return None
    return min(max(0.0, seconds), MAX_SERVER_DELAY_SECONDS)
