"""Discord bodies (``MessageCreateRequest`` / ``IncomingWebhookRequestPartial`` JSON).

Limits (Discord docs, checked in ``specs/discord/NOTES.md``): 10 embeds per message, 6000
characters across all embeds' title, description, field names/values, footer and author name;
title 256, description 4096, footer 2048, author name 256; content 2000. One embed per entry reads
best on a phone (the headline is the link); a digest that does not fit one message is split
between entries into as many messages as it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.digest.common import (
    OFFICIAL_TAG,
    DigestHeader,
    Mention,
    clip,
    entry_meta,
    followup_lines,
    notice_text,
    quiet_line,
    topic_color,
    topic_label,
)
from bot.digest.entries import DigestEntry

MAX_EMBEDS = 10
MAX_TOTAL = 6000
MAX_CONTENT = 2000
_BUDGET = MAX_TOTAL - 100  # headroom: Discord counts after trimming, we count before


def embed_chars(embed: dict[str, Any]) -> int:
    """Characters Discord counts toward the 6000 total for one embed."""
    total = len((embed.get("title") or "").strip()) + len((embed.get("description") or "").strip())
    total += len(((embed.get("footer") or {}).get("text") or "").strip())
    total += len(((embed.get("author") or {}).get("name") or "").strip())
    for field in embed.get("fields") or []:
        total += len(str(field.get("name", "")).strip()) + len(str(field.get("value", "")).strip())
    return total


OFFICIAL_MARK = f"🏛️ **{OFFICIAL_TAG}**"


def entry_embed(entry: DigestEntry, at: datetime, *, show_topic: bool) -> dict[str, Any]:
    meta = entry_meta(entry.outlets, entry.published_at, at, entry.first_seen)
    lines = [
        f"{OFFICIAL_MARK} · {meta}" if entry.official else meta,
        f"*Why:* {clip(entry.reason, 300)}",
    ]
    if entry.summary:
        lines.append(clip(entry.summary, 600))
    embed: dict[str, Any] = {
        "title": clip(entry.title, 256),
        "description": clip("\n".join(lines), 4096),
        "color": topic_color(entry.topic),
        "timestamp": entry.published_at.isoformat(),
    }
    if len(entry.url) <= 2048 and entry.url.startswith(("http://", "https://")):
        embed["url"] = entry.url
    if show_topic:
        embed["author"] = {"name": clip(topic_label(entry.topic), 256)}
    if entry.overflow:
        embed["footer"] = {"text": "Held back from alerts: this channel reached its hourly alert limit."}
    return embed


def _content(header: DigestHeader, part: int, parts: int) -> str:
    text = f"**{header.headline(part, parts)}**"
    note = header.overflow_note() if part == 1 else ""
    return clip(f"{text}\n{note}" if note else text, MAX_CONTENT)


def paginate(header: DigestHeader, entries: Sequence[DigestEntry]) -> list[list[DigestEntry]]:
    """Entries in order, cut into messages that respect the embed count and character total."""
    pages: list[list[DigestEntry]] = []
    current: list[DigestEntry] = []
    used = 0
    for entry in entries:
        # Measured with the topic label shown: the worst case, so a page never overflows.
        cost = embed_chars(entry_embed(entry, header.at, show_topic=True))
        if current and (len(current) >= MAX_EMBEDS or used + cost > _BUDGET):
            pages.append(current)
            current, used = [], 0
        current.append(entry)
        used += cost
    if current:
        pages.append(current)
    return pages


def digest_body(
    header: DigestHeader, entries: Sequence[DigestEntry], part: int, parts: int
) -> dict[str, Any]:
    embeds = []
    previous: str | None = None
    for entry in entries:
        embeds.append(entry_embed(entry, header.at, show_topic=entry.topic != previous))
        previous = entry.topic
    return {"content": _content(header, part, parts), "embeds": embeds, "allowed_mentions": {"parse": []}}


def mention_parts(mentions: Sequence[Mention]) -> tuple[str, dict[str, Any]]:
    """The mention line and the ``allowed_mentions`` that lets exactly it ping.

    Only ``content`` pings on Discord (mentions inside embeds never do), and ``allowed_mentions``
    is the second lock: the roles named and, for @here, "everyone" (which covers @everyone and
    @here; the content holds only @here). Snowflakes go as strings, Discord's documented form."""
    roles = list(dict.fromkeys(t.id for t in mentions if t.kind == "group" and t.id.isdigit()))
    here = any(t.kind == "here" for t in mentions)
    line = " ".join([*(f"<@&{r}>" for r in roles), *(["@here"] if here else [])])
    allowed: dict[str, Any] = {"parse": ["everyone"] if here else []}
    if roles:
        allowed["roles"] = roles
    return line, allowed


def alert_body(entry: DigestEntry, at: datetime, mentions: Sequence[Mention] = ()) -> dict[str, Any]:
    topics = ", ".join(topic_label(t) for t in sorted(entry.topics, key=lambda t: -entry.topics[t]))
    embed = entry_embed(entry, at, show_topic=False)
    official = f" · {OFFICIAL_MARK}" if entry.official else ""
    headline = f"🔔 **New story** · {topics}{official}"
    line, allowed = mention_parts(mentions)
    return {
        # The mention line first and whole: clipping may shorten the headline, never a ping.
        "content": f"{line}\n{clip(headline, MAX_CONTENT - len(line) - 1)}"
        if line
        else clip(headline, MAX_CONTENT),
        "embeds": [embed],
        "allowed_mentions": allowed,
    }


def followup_body(payload: dict[str, Any]) -> dict[str, Any]:
    head, items = followup_lines(payload)
    lines = [f"➕ **{head}**"]
    for outlet, title, url in items[:8]:
        lines.append(f"• {outlet}: {clip(title, 200)} <{url}>")
    if len(items) > 8:
        lines.append(f"• and {len(items) - 8} more")
    return {"content": clip("\n".join(lines), MAX_CONTENT), "allowed_mentions": {"parse": []}}


def notice_body(payload: dict[str, Any]) -> dict[str, Any]:
    return {"content": clip(notice_text(payload), MAX_CONTENT), "allowed_mentions": {"parse": []}}


def quiet_body(header: DigestHeader) -> dict[str, Any]:
    return {"content": clip(quiet_line(header), MAX_CONTENT), "allowed_mentions": {"parse": []}}
