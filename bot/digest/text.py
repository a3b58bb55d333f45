"""Plain-text rendering of stories: console alerts and the console digest.

The console is a real destination of the default install (no chat tokens), so this output is
meant to read well: one block per cluster, grouped by topic, with outlets, age and the reason.
There is one renderer, fed from the outbox's snapshots; `demo` goes through it too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

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


# ---------------------------------------------------------------------------------------------
# Outbox renderers: the console destination prints exactly what a chat channel would get.


def text_digest(header: DigestHeader, entries: Sequence[DigestEntry]) -> str:
    """A digest from outbox snapshots (``DigestHeader`` and ``DigestEntry``), grouped by topic in
    the order given (already ranked)."""
    from bot.digest.common import OFFICIAL_TAG, topic_label

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
        tag = f"[{OFFICIAL_TAG}] " if entry.official else ""
        out.append(f"• {tag}{entry.title}" + ("  [held back from alerts]" if entry.overflow else ""))
        seen = f" · {entry.first_seen}" if entry.first_seen else ""
        out.append(f"  {outlets_line(list(entry.outlets))} · {age(entry.published_at, header.at)}{seen}")
        out.append(f"  {entry.url}")
        out.append(f"  why: {entry.reason}")
        if entry.summary:
            out.append(f"  {entry.summary}")
    return "\n".join(out).rstrip() + "\n"


def text_alert(entry: DigestEntry, at: datetime) -> str:
    from bot.digest.common import OFFICIAL_TAG, topic_label

    topics = ", ".join(topic_label(t) for t in sorted(entry.topics, key=lambda t: -entry.topics[t]))
    tag = f"[{OFFICIAL_TAG}] " if entry.official else ""
    lines = [
        f"● NEW [{topics}] {tag}{entry.title}",
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
