"""Plain-text rendering of stories: console alerts and the console digest.

The console is a real destination of the default install (no chat tokens), so this output is
meant to read well: one block per cluster, grouped by topic, with outlets, age and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.domain import Classification
from bot.store.repo import StoryRow

if TYPE_CHECKING:
    from bot.digest.common import DigestHeader
    from bot.digest.entries import DigestEntry

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'“])")


def short_summary(summary: str, max_sentences: int = 2, max_chars: int = 280) -> str:
    """The first one or two sentences, at most ``max_chars``, cut at a word."""
    sentences = _SENTENCE_END.split(summary.strip())
    text = " ".join(sentences[:max_sentences]).strip()
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return text


def age(when: datetime, now: datetime) -> str:
    seconds = max(0, int((now - when).total_seconds()))
    if seconds < 3600:
        return f"{max(1, seconds // 60)}m ago"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def outlets_line(outlets: Sequence[str], shown: int = 3) -> str:
    """'Reuters · also: FT, Axios, +3'."""
    if not outlets:
        return ""
    first, rest = outlets[0], list(outlets[1:])
    if not rest:
        return first
    extra = f", +{len(rest) - shown}" if len(rest) > shown else ""
    return f"{first} · also: {', '.join(rest[:shown])}{extra}"


def reason_line(topics: dict[str, float], evidence: dict[str, list[str]], max_terms: int = 3) -> str:
    parts = []
    for topic, score in sorted(topics.items(), key=lambda kv: -kv[1]):
        terms = ", ".join(evidence.get(topic, [])[:max_terms])
        parts.append(f"{topic} {score:.2f}" + (f" ({terms})" if terms else ""))
    return "; ".join(parts)


def alert_text(
    title: str, url: str, outlet: str, classification: Classification, summary: str, *, joined: bool
) -> str:
    """A console alert for one new story."""
    topics = {t: classification.scores[t] for t in classification.topics}
    evidence = {t: list(v) for t, v in classification.evidence.items()}
    head = "+ also covered" if joined else "● NEW"
    lines = [f"{head} [{', '.join(classification.topics)}] {title}", f"    {outlet} — {url}"]
    why = reason_line(topics, evidence)
    if why:
        lines.append(f"    why: {why}")
    if summary and not joined:
        lines.append(f"    {short_summary(summary)}")
    return "\n".join(lines)


def rank_key(row: StoryRow, now: datetime) -> tuple[float, ...]:
    score = max(row.topics.values(), default=0.0)
    hours = max(0.0, (now - row.published_at).total_seconds() / 3600)
    return (
        -(score + 0.05 * min(len(row.outlets), 6) - 0.004 * min(hours, 72)),
        -row.published_at.timestamp(),
    )


def one_per_cluster(rows: Sequence[StoryRow]) -> list[StoryRow]:
    """The earliest-seen story of each cluster stands for it (its outlets list every outlet)."""
    best: dict[int, StoryRow] = {}
    for row in rows:
        kept = best.get(row.cluster_id)
        if kept is None or row.first_seen_at < kept.first_seen_at:
            best[row.cluster_id] = row
    return list(best.values())


def render_text_digest(
    rows: Sequence[StoryRow],
    now: datetime,
    *,
    title: str = "Frontier Watch digest",
    topics: Sequence[str] = (),
) -> str:
    """Stories grouped by their strongest topic, ranked, one entry per cluster."""
    clusters = one_per_cluster([r for r in rows if r.topics])
    if not clusters:
        return f"{title}: quiet period — nothing relevant."
    order = list(topics) or sorted({t for r in clusters for t in r.topics})
    groups: dict[str, list[StoryRow]] = {t: [] for t in order}
    for row in clusters:
        main = max(row.topics.items(), key=lambda kv: kv[1])[0]
        groups.setdefault(main, []).append(row)
    out = [f"{title} — {sum(len(g) for g in groups.values())} stories", ""]
    for topic, members in groups.items():
        if not members:
            continue
        out.append(f"## {topic} ({len(members)})")
        for row in sorted(members, key=lambda r: rank_key(r, now)):
            out.append(f"• {row.title}")
            out.append(f"  {outlets_line(row.outlets)} · {age(row.published_at, now)}")
            out.append(f"  {row.url}")
            out.append(f"  why: {reason_line(row.topics, row.evidence)}")
            if row.summary:
                out.append(f"  {short_summary(row.summary)}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# Outbox renderers: the console destination prints exactly what a chat channel would get.


def text_digest(header: DigestHeader, entries: Sequence[DigestEntry]) -> str:
    """A digest from outbox snapshots (``DigestHeader`` and ``DigestEntry``), grouped by topic in
    the order given (already ranked)."""
    from bot.digest.common import topic_label

    out = [header.headline(1, 1)]
    note = header.overflow_note()
    if note:
        out.append(note)
    out.append("")
    previous: str | None = None
    for entry in entries:
        if entry.topic != previous:
            if previous is not None:
                out.append("")
            count = sum(1 for e in entries if e.topic == entry.topic)
            out.append(f"## {topic_label(entry.topic)} ({count})")
            previous = entry.topic
        out.append(f"• {entry.title}" + ("  [held back from alerts]" if entry.overflow else ""))
        seen = f" · {entry.first_seen}" if entry.first_seen else ""
        out.append(f"  {outlets_line(list(entry.outlets))} · {age(entry.published_at, header.at)}{seen}")
        out.append(f"  {entry.url}")
        out.append(f"  why: {entry.reason}")
        if entry.summary:
            out.append(f"  {entry.summary}")
    return "\n".join(out).rstrip() + "\n"


def text_alert(entry: DigestEntry, at: datetime) -> str:
    from bot.digest.common import topic_label

    topics = ", ".join(topic_label(t) for t in sorted(entry.topics, key=lambda t: -entry.topics[t]))
    lines = [
        f"● NEW [{topics}] {entry.title}",
        f"    {outlets_line(list(entry.outlets))} · {age(entry.published_at, at)}"
        + (f" · {entry.first_seen}" if entry.first_seen else "")
        + f" — {entry.url}",
        f"    why: {entry.reason}",
    ]
    if entry.summary:
        lines.append(f"    {entry.summary}")
    return "\n".join(lines) + "\n"


def text_followup(payload: dict[str, Any]) -> str:
    from bot.digest.common import followup_lines

    head, items = followup_lines(payload)
    title = payload.get("alert_title", "")
    lines = [f"  ↳ {head}" + (f" — re: {title}" if title else "")]
    lines.extend(f"      {outlet}: {t} — {url}" for outlet, t, url in items[:8])
    return "\n".join(lines) + "\n"
