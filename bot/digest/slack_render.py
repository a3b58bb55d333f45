"""Slack bodies (``chat.postMessage`` / incoming-webhook JSON) in Block Kit.

Limits (``specs/slack/NOTES.md``): 50 blocks per message, section text 3000, header 150, and an
undocumented aggregate (~13k characters triggers ``msg_blocks_too_long``), so a message is kept
under ``MAX_MESSAGE_CHARS`` of block text. A long digest becomes several messages, split between
entries, in order.
"""

from __future__ import annotations

import re
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
    topic_label,
)
from bot.digest.entries import DigestEntry

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_MESSAGE_CHARS = 10_000
MAX_TEXT = 3000  # the notification fallback; Slack advises staying under 4000


def escape(text: str) -> str:
    """mrkdwn control characters (Slack's documented escapes)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    safe_url = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C").replace(" ", "%20")
    # A pipe ends the label in Slack's link syntax and cannot be escaped.
    return f"<{safe_url}|{escape(label).replace('|', '∣')}>"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, MAX_SECTION)}]}


OFFICIAL_MARK = f":classical_building: *{OFFICIAL_TAG}*"


def entry_block(entry: DigestEntry, at: datetime) -> dict[str, Any]:
    meta = escape(entry_meta(entry.outlets, entry.published_at, at, entry.first_seen))
    lines = [
        f"*{link(entry.url, clip(entry.title, 300))}*",
        f"{OFFICIAL_MARK} · {meta}" if entry.official else meta,
        f"_Why: {escape(clip(entry.reason, 300))}_",
    ]
    if entry.summary:
        lines.append(escape(clip(entry.summary, 600)))
    if entry.overflow:
        lines.append(":hourglass: _held back from alerts: this channel reached its hourly alert limit_")
    return _section("\n".join(lines))


def _topic_block(topic: str, continued: bool) -> dict[str, Any]:
    return _section(f"*{escape(topic_label(topic))}*" + (" (continued)" if continued else ""))


def _blocks_chars(blocks: Sequence[dict[str, Any]]) -> int:
    total = 0
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            total += len(str(text.get("text", "")))
        for element in block.get("elements", []) or []:
            total += len(str(element.get("text", "")))
    return total


def _intro(header: DigestHeader, part: int, parts: int) -> list[dict[str, Any]]:
    if part == 1:
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": clip(header.headline(part, parts), MAX_HEADER)},
            }
        ]
        if header.overflow:
            blocks.append(_context(escape(header.overflow_note())))
        return blocks
    return [_context(f"*{escape(header.headline(part, parts))}*")]


def _page_blocks(
    header: DigestHeader, entries: Sequence[DigestEntry], part: int, parts: int, first_topic_continues: bool
) -> list[dict[str, Any]]:
    blocks = _intro(header, part, parts)
    previous: str | None = None
    for index, entry in enumerate(entries):
        if entry.topic != previous:
            if index > 0:
                blocks.append({"type": "divider"})
            blocks.append(_topic_block(entry.topic, continued=index == 0 and first_topic_continues))
            previous = entry.topic
        blocks.append(entry_block(entry, header.at))
    return blocks


def paginate(header: DigestHeader, entries: Sequence[DigestEntry]) -> list[list[DigestEntry]]:
    """Greedy split: a page takes entries while its blocks stay within the count and size limits."""
    pages: list[list[DigestEntry]] = []
    current: list[DigestEntry] = []
    for entry in entries:
        candidate = [*current, entry]
        continues = bool(pages) and pages[-1][-1].topic == candidate[0].topic
        # Page numbers are not known yet; "(99/99)" is the widest headline we would print.
        blocks = _page_blocks(header, candidate, 1 if not pages else 2, 99, continues)
        if current and (len(blocks) > MAX_BLOCKS or _blocks_chars(blocks) > MAX_MESSAGE_CHARS):
            pages.append(current)
            current = [entry]
        else:
            current = candidate
    if current:
        pages.append(current)
    return pages


def digest_body(
    header: DigestHeader,
    entries: Sequence[DigestEntry],
    part: int,
    parts: int,
    *,
    previous_topic: str | None = None,
) -> dict[str, Any]:
    """``previous_topic``: the topic the previous part ended with (to label a continued group)."""
    continues = previous_topic is not None and bool(entries) and entries[0].topic == previous_topic
    blocks = _page_blocks(header, entries, part, parts, continues)
    return {"text": clip(header.headline(part, parts), MAX_TEXT), "blocks": blocks}


_GROUP_ID = re.compile(r"^[A-Z0-9]+$")


def mention_line(mentions: Sequence[Mention]) -> str:
    """``<!subteam^S…>`` for a user group, ``<!here>`` for here: Slack's special mention syntax,
    the only form that notifies (a bare "@team" is plain text)."""
    groups = dict.fromkeys(t.id for t in mentions if t.kind == "group" and _GROUP_ID.match(t.id))
    here = any(t.kind == "here" for t in mentions)
    return " ".join([*(f"<!subteam^{g}>" for g in groups), *(["<!here>"] if here else [])])


def alert_body(entry: DigestEntry, at: datetime, mentions: Sequence[Mention] = ()) -> dict[str, Any]:
    topics = ", ".join(topic_label(t) for t in sorted(entry.topics, key=lambda t: -entry.topics[t]))
    official = f" · {OFFICIAL_MARK}" if entry.official else ""
    text = f"New story ({topics}): {entry.title}"
    blocks = [_context(f":bell: *New story* · {escape(topics)}{official}"), entry_block(entry, at)]
    line = mention_line(mentions)
    if line:
        # In the notification text and in a section of its own: `text` is what the notification
        # shows, the section is what the channel sees (context blocks are small print).
        text = f"{line} {text}"
        blocks.insert(0, _section(line))
    return {"text": clip(text, MAX_TEXT), "blocks": blocks}


def followup_body(payload: dict[str, Any]) -> dict[str, Any]:
    head, items = followup_lines(payload)
    lines = [f"*{escape(head)}*"]
    lines.extend(f"• {escape(outlet)}: {link(url, clip(title, 200))}" for outlet, title, url in items[:8])
    if len(items) > 8:
        lines.append(f"• and {len(items) - 8} more")
    return {"text": clip(head, MAX_TEXT), "blocks": [_section("\n".join(lines))]}


def notice_body(payload: dict[str, Any]) -> dict[str, Any]:
    text = notice_text(payload)
    return {"text": clip(text, MAX_TEXT), "blocks": [_section(escape(text))]}


def quiet_body(header: DigestHeader) -> dict[str, Any]:
    line = quiet_line(header)
    return {"text": clip(line, MAX_TEXT), "blocks": [_section(escape(line))]}
