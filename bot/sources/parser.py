"""Feed body → :class:`~bot.domain.ParsedFeed`, with feedparser, in plain text only.

:func:`parse_feed` is a pure, top-level, picklable function so that :class:`~bot.sources.parsepool.
ParserPool` can run it in worker processes. It never raises: every failure becomes
``ParsedFeed.error``.

Choices (measured in ``bench/parse.py``):

* feedparser's HTML sanitiser and relative-URI rewriting inside content are turned off
  (``sanitize_html=False, resolve_relative_uris=False``). Both only rewrite HTML we then throw away:
  :func:`~bot.sources.normalize.clean_text` strips every tag, and entry *links* are still resolved by
  feedparser against ``xml:base``/``Content-Location`` (that does not depend on the flag); we
  ``urljoin`` them against the feed URL once more for documents without either. Together this makes
  feedparser about 2.5× faster.
* Links that are not absolute ``http``/``https`` after resolution (``javascript:``, ``data:``,
  ``file:`` ...) are *neutralised*: the entry keeps its text but gets ``url == ""``; an entry left with
  neither a title nor a link is dropped. Renderers must treat an empty url as "no link".
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

import feedparser

from bot.domain import Entry, ParsedFeed
from bot.sources.normalize import canonical_url, clean_text, cut_at_word, stable_guid, to_utc

__all__ = ["parse_feed"]

MAX_TITLE_CHARS = 300
MAX_OUTLET_CHARS = 120
MAX_TAGS = 20
MAX_TAG_CHARS = 64
_MAX_REASON_CHARS = 160

# feedparser's "soft" bozo reasons: the document was read fine, only its metadata was off (wrong
# Content-Type, charset header that disagrees with the body, undeclared namespace prefix).
# CharacterEncodingUnknown is excluded: then the body could not be decoded at all.
_SOFT_BOZO = (
    feedparser.CharacterEncodingOverride,
    feedparser.NonXMLContentType,
    feedparser.UndeclaredNamespace,
)


def parse_feed(
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    *,
    summary_chars: int = 400,
) -> ParsedFeed:
    """Parse one fetched body. Never raises.

    ``headers`` are the HTTP response headers (any case); ``url`` is the final URL after redirects,
    used as the base for relative links. Outcomes:

    * entries found → ``entries`` filled; ``bozo``/``bozo_reason`` say whether the document was broken
      (a truncated feed still yields the entries before the break);
    * a recognised feed with no items (arXiv on weekends) → ``entries == []``, ``error is None``;
    * nothing usable → ``error`` is a short reason: ``"not a feed: HTML page"``, ``"not a feed: JSON
      document"``, ``"not a feed: empty document"``, ``"broken feed: <parser message>"`` ...
    """
    try:
        return _parse(body, headers, url, summary_chars)
    except Exception as exc:  # the contract is "never raises": a worker must survive any input
        return ParsedFeed(entries=[], error=f"parser error: {_short_reason(exc)}")


def _parse(body: bytes, headers: Mapping[str, str], url: str, summary_chars: int) -> ParsedFeed:
    if not body or not body.strip():
        return ParsedFeed(entries=[], error="not a feed: empty document")

    if _looks_like_json(body):
        return _parse_json_feed(body, url, summary_chars)

    # Lower-case names, as feedparser wants. No Content-Location: given one, feedparser runs urljoin
    # on every element (a third of its time); entry links are resolved against the final URL in
    # _build_entry instead, which is all we use. A server-sent Content-Location is dropped too: it
    # may be relative or stale, and links must resolve against where the document really came from.
    response_headers = {
        str(k).lower(): str(v) for k, v in headers.items() if str(k).lower() != "content-location"
    }
    # A BytesIO, never the bytes: feedparser treats a str/bytes argument as a path or URL to open.
    doc = feedparser.parse(
        io.BytesIO(body),
        response_headers=response_headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )

    bozo = bool(doc.get("bozo"))
    exc = doc.get("bozo_exception")
    bozo_reason = _short_reason(exc) if bozo and exc is not None else None
    feed_meta = doc.get("feed") or {}
    title = clean_text(_as_str(feed_meta.get("title"))) or None
    entries = _build_entries(doc.get("entries") or [], url, summary_chars)

    error: str | None = None
    if not entries and not title:
        # Nothing came out. A recognised feed whose only problem is soft (or none) is simply empty
        # (arXiv on weekends); anything else is reported. A feed-level title counts as "something":
        # feedparser's loose parser salvages documents with e.g. an undefined HTML entity.
        version = doc.get("version") or ""
        if not version:
            error = f"not a feed: {_sniff(body) or bozo_reason or 'no RSS, Atom or RDF root element'}"
        elif bozo and not isinstance(exc, _SOFT_BOZO):
            error = f"broken feed: {bozo_reason or 'unreadable'}"
    return ParsedFeed(entries=entries, title=title, bozo=bozo, bozo_reason=bozo_reason, error=error)


def _looks_like_json(body: bytes) -> bool:
    return body[:64].lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"{", b"["))


def _parse_json_feed(body: bytes, url: str, summary_chars: int) -> ParsedFeed:
    """JSON Feed 1.x (jsonfeed.org), which feedparser 6 does not read; other JSON is "not a feed"."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return ParsedFeed(entries=[], error=f"not a feed: JSON document ({_short_reason(exc)})")
    if not (
        isinstance(doc, dict) and isinstance(doc.get("version"), str) and "jsonfeed.org" in doc["version"]
    ):
        return ParsedFeed(entries=[], error="not a feed: JSON document")
    base = _as_str(doc.get("feed_url")) or url
    raws: list[dict[str, Any]] = []
    for item in doc.get("items") or ():
        if not isinstance(item, dict):
            continue
        tags = item.get("tags")
        raws.append(
            {
                "id": _as_str(item.get("id")) or (str(item["id"]) if isinstance(item.get("id"), int) else ""),
                "link": _as_str(item.get("url")) or _as_str(item.get("external_url")),
                "title": _as_str(item.get("title")),
                "summary": _as_str(item.get("summary")),
                "content": [
                    {"value": _as_str(item.get("content_html")) or _as_str(item.get("content_text"))}
                ],
                "published_dt": _iso_datetime(item.get("date_published")),
                "updated_dt": _iso_datetime(item.get("date_modified")),
                "tags": [{"term": t} for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
            }
        )
    return ParsedFeed(
        entries=_build_entries(raws, urljoin(url, base) if url else base, summary_chars),
        title=clean_text(_as_str(doc.get("title"))) or None,
    )


def _iso_datetime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def _build_entries(raw_entries: Iterable[Any], base_url: str, summary_chars: int) -> list[Entry]:
    raws = [raw for raw in raw_entries if isinstance(raw, Mapping)]
    # A feed that reuses one guid for several items (seen with broken CMS templates) would make them
    # collapse into one story; for those ids the link or a content hash identifies the entry instead.
    id_counts = Counter(_as_str(raw.get("id")).strip() for raw in raws)
    entries: list[Entry] = []
    for raw in raws:
        entry = _build_entry(raw, base_url, summary_chars, id_counts)
        if entry is not None:
            entries.append(entry)
    return entries


def _build_entry(
    raw: Mapping[str, Any], base_url: str, summary_chars: int, id_counts: Counter[str]
) -> Entry | None:
    outlet = _outlet(raw)
    title = clean_text(_as_str(raw.get("title")))
    if outlet and title.endswith(f" - {outlet}") and len(title) > len(outlet) + 3:
        # Google News appends " - Publisher" to every headline; it would defeat clustering of the same
        # story across outlets, and the publisher is kept in `outlet` anyway.
        title = title[: -(len(outlet) + 3)].rstrip()
    title = cut_at_word(title, MAX_TITLE_CHARS)
    link = _link(raw, base_url)
    if not title and not link:
        return None

    published = _published(raw)
    raw_id = _as_str(raw.get("id")).strip()
    entry_id = raw_id if id_counts.get(raw_id, 0) <= 1 else None
    return Entry(
        guid=stable_guid(entry_id, link, title, published),
        url=link,
        title=title,
        summary=_summary(raw, summary_chars),
        published=published,
        outlet=outlet,
        tags=_tags(raw),
        extra=_extra(raw),
    )


def _link(raw: Mapping[str, Any], base_url: str) -> str:
    candidates: list[str] = [_as_str(raw.get("link"))]
    for item in raw.get("links") or ():
        if isinstance(item, Mapping) and item.get("rel", "alternate") == "alternate":
            candidates.append(_as_str(item.get("href")))
    for candidate in candidates:
        candidate = candidate.strip()
        if not candidate:
            continue
        absolute = candidate
        if base_url and not candidate.startswith(("https://", "http://")):
            try:
                absolute = urljoin(base_url, candidate)
            except ValueError:
                continue
        canon = canonical_url(absolute)
        if canon:
            return canon
    return ""


def _summary(raw: Mapping[str, Any], limit: int) -> str:
    text = _as_str(raw.get("summary"))
    if not text.strip():
        for content in raw.get("content") or ():
            if isinstance(content, Mapping):
                text = _as_str(content.get("value"))
                if text.strip():
                    break
    if not text:
        return ""
    # Release notes and full-content feeds carry tens of KB of HTML for a 400-character summary:
    # clean a generous prefix first and only fall back to the whole text when the prefix did not
    # yield enough (e.g. it ended inside a long <script> or comment).
    prefix_len = max(limit * 16, 8192)
    if len(text) > prefix_len:
        cleaned = clean_text(text[:prefix_len])
        if len(cleaned) > limit + 64:
            return cut_at_word(cleaned, limit)
    return cut_at_word(clean_text(text), limit)


def _published(raw: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed", "published_dt", "updated_dt"):
        # dict.get, not raw.get: FeedParserDict maps a missing "updated_parsed" back to
        # "published_parsed" with a DeprecationWarning.
        value = dict.get(raw, key) if isinstance(raw, dict) else raw.get(key)
        if value is not None:
            result = to_utc(value)
            if result is not None:
                return result
    return None


def _outlet(raw: Mapping[str, Any]) -> str | None:
    source = raw.get("source")
    if not isinstance(source, Mapping):
        return None
    name = clean_text(_as_str(source.get("title")))
    return cut_at_word(name, MAX_OUTLET_CHARS) or None


def _tags(raw: Mapping[str, Any]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for tag in raw.get("tags") or ():
        if not isinstance(tag, Mapping):
            continue
        term = clean_text(_as_str(tag.get("term")) or _as_str(tag.get("label")))
        term = cut_at_word(term, MAX_TAG_CHARS)
        if term and term not in seen:
            seen[term] = None
            if len(seen) >= MAX_TAGS:
                break
    return tuple(seen)


def _extra(raw: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    # arXiv marks each item new / cross / replace / replace-cross; only the first two are news.
    announce = clean_text(_as_str(raw.get("arxiv_announce_type")))
    return (("arxiv_announce_type", announce),) if announce else ()


def _as_str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _short_reason(exc: object) -> str:
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return cut_at_word(text, _MAX_REASON_CHARS)


def _sniff(body: bytes) -> str | None:
    """Name what a non-feed document looks like, for a reason a user can act on."""
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"{", b"[")):
        return "JSON document"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head or b"<body" in head:
        return "HTML page"
    if head.startswith(b"%pdf"):
        return "PDF document"
    return None
