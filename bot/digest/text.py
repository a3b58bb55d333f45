"""Plain-text rendering of stories: console alerts and the console digest.

The console is a real destination of the default install (no chat tokens), so this output is
meant to read well: one block per cluster, grouped by topic, with outlets, age and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from bot.domain import Classification
from bot.store.repo import StoryRow

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
