"""Broken sources are told, not hidden.

When a source that a channel added (``/watch sources add``) has failed for a day, or was disabled
after repeated failures, that channel gets one ``notice`` row: which source, the last error, and
how to fix or remove it. ``channel_sources.failure_notice_at`` and the outbox key
(destination, -source id, "notice") make it one notice per breakage; once the source works again
both are cleared, so a later breakage is told again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.settings import Settings
from bot.store.destinations import watched_channel_sources
from bot.store.outbox import Outbox, forget_notice

log = logging.getLogger(__name__)


def notice_cluster_id(source_id: int) -> int:
    """Notices share the outbox with stories; a negative id can never be a cluster's."""
    return -source_id


async def scan_broken_sources(outbox: Outbox, settings: Settings, now: datetime) -> int:
    """Queue notices for newly broken channel sources; returns how many were queued."""
    cutoff = now - timedelta(hours=settings.source_notice_after_hours)
    queued = 0
    async with outbox.sessions.begin() as session:
        rows = await watched_channel_sources(session)
        for link, source in rows:
            broken_for_a_day = source.failure_count > 0 and (
                (source.last_success_at or source.created_at) <= cutoff
            )
            disabled = not source.enabled and source.failure_count > 0
            if link.failure_notice_at is None and (broken_for_a_day or disabled):
                since = source.last_success_at
                payload = {
                    "source_id": source.id,
                    "name": source.name,
                    "url": source.url or source.org or source.repo or "",
                    "error": source.last_error or "unknown error",
                    "disabled": disabled,
                    "failures": source.failure_count,
                    "since": since.strftime("%Y-%m-%d %H:%M UTC") if since else "it was added",
                }
                created = await outbox.enqueue(
                    session,
                    [
                        {
                            "destination_id": link.destination_id,
                            "cluster_id": notice_cluster_id(source.id),
                            "kind": "notice",
                            "payload": payload,
                            "next_attempt_at": now,
                            "created_at": now,
                        }
                    ],
                )
                link.failure_notice_at = now
                queued += len(created)
                if created:
                    log.info(
                        "notice queued: source %r is broken for destination %d",
                        source.name,
                        link.destination_id,
                    )
            elif link.failure_notice_at is not None and source.enabled and source.failure_count == 0:
                # Recovered: forget the old notice so that a future breakage is reported again.
                link.failure_notice_at = None
                await forget_notice(session, link.destination_id, notice_cluster_id(source.id))
    return queued
