"""Digest previews: what a digest would post, rendered by the senders' own body functions.

``frontierwatch digest --preview`` and the web console's channel page both use these, so a preview
never drifts from what is sent: the same selection (``bot/digest/entries.py``), the same
pagination and bodies (``bot/delivery/bodies.py``) and the same wire JSON as the senders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery.bodies import digest_body, discord_wire, family, paginate, slack_wire
from bot.delivery.digests import DIGEST_TITLE, destination_selection
from bot.digest.common import DigestHeader
from bot.digest.entries import DigestEntry, select_entries, window_start
from bot.store import models as m
from bot.store.destinations import destination_row
from bot.timetable import local_date_label


def digest_text(header: DigestHeader, entries: Sequence[DigestEntry]) -> str:
    """The console rendering of a digest (what the console destination prints)."""
    if not entries:
        return f"{DIGEST_TITLE}: nothing relevant in this period.\n"
    return str(digest_body("console", header, entries, 1, 1))


def digest_wire_bodies(
    platform: str, header: DigestHeader, entries: Sequence[DigestEntry], channel: str
) -> list[dict[str, Any]]:
    """The request bodies a digest is sent as on ``platform``, one per message, in order (a long
    digest is split within the platform's limits). Discord bodies lack the per-send nonce and Slack
    bodies the delivery-id metadata: both exist only once a digest is queued. Empty for the console."""
    fam = family(platform)
    if fam == "text":
        return []
    pages = paginate(platform, header, entries)
    bodies: list[dict[str, Any]] = []
    previous: str | None = None
    for part, page in enumerate(pages, start=1):
        rendered = digest_body(platform, header, page, part, len(pages), previous)
        assert isinstance(rendered, dict)
        if fam == "discord":
            bodies.append(discord_wire(rendered))
        elif platform == "slack":
            bodies.append(slack_wire(rendered, channel))
        else:  # a Slack incoming webhook takes the message itself; the URL names the channel
            bodies.append(rendered)
        previous = page[-1].topic
    return bodies


@dataclass(frozen=True, slots=True)
class DigestPreview:
    """A destination's next digest as it would post if it were due now."""

    destination_id: int
    platform: str
    since: datetime  # the window: since the last digest (or one period back)
    until: datetime
    due_at: datetime | None  # when it is scheduled
    entries: int
    text: str  # the console rendering
    bodies: list[dict[str, Any]]  # the platform's request bodies ([] for the console)


async def next_digest_preview(
    sessions: async_sessionmaker[AsyncSession], destination_id: int, topics: Sequence[str], now: datetime
) -> DigestPreview | None:
    """The digest the clock would plan for the destination now (None: no such destination)."""
    async with sessions() as session:
        dest = await destination_row(session, destination_id)
        return None if dest is None else await destination_digest_preview(session, dest, topics, now)


async def destination_digest_preview(
    session: AsyncSession, dest: m.Destination, topics: Sequence[str], now: datetime
) -> DigestPreview:
    """The digest the clock would plan for ``dest`` now: the window since its last digest, its
    subscriptions and keywords, leaving out what it already received (as the planner does)."""
    fire = dest.next_digest_at or now
    since = window_start(dest.last_digest_at, min(fire, now), dest.digest_frequency)
    selection = await destination_selection(session, dest, since, now)
    entries = await select_entries(session, selection, topics)
    header = DigestHeader(
        title=DIGEST_TITLE,
        at=now,
        date_label=local_date_label(fire, dest.timezone),
        total=len(entries),
        overflow=sum(1 for e in entries if e.overflow),
        alert_cap=dest.alert_cap_per_hour,
    )
    return DigestPreview(
        destination_id=dest.id,
        platform=dest.platform,
        since=since,
        until=now,
        due_at=dest.next_digest_at,
        entries=len(entries),
        text=digest_text(header, entries),
        bodies=digest_wire_bodies(dest.platform, header, entries, dest.channel_id),
    )
