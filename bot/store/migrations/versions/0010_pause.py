"""Pause and resume: sources (by the operator or by the channels that added them) and channels

- ``sources.paused_at`` / ``paused_by``: the operator paused the source for the whole installation
  (`frontierwatch sources disable`). Apart from ``enabled``, which the sources file owns and every
  start rewrites, so a pause survives restarts and file syncs.
- ``channel_sources.paused_at`` / ``paused_by``: one channel paused a source it added
  (`/watch sources pause`). A channel-added source is polled while any channel that added it has
  not paused it, so no channel can stop a feed another channel (maybe another server) relies on.
- ``destinations.paused_at`` / ``paused_by``: `/watch pause`. Apart from ``active``, which the
  delivery side clears when the platform says the channel is unreachable and any configuration
  command sets again; a pause is lifted only by `/watch resume`.

The routing cache must see a channel's pause, so the ``destinations`` update trigger of 0009 is
recreated to watch ``paused_at`` too.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PAUSABLE = ("sources", "channel_sources", "destinations")
TRIGGER = "destinations_routing_update"


def _recreate_destinations_trigger(columns: tuple[str, ...]) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute(f"DROP TRIGGER {TRIGGER} ON destinations" if postgres else f"DROP TRIGGER {TRIGGER}")
    watched = ", ".join(columns)
    if postgres:
        op.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER UPDATE OF {watched} ON destinations "
            "FOR EACH STATEMENT EXECUTE FUNCTION bump_routing_version()"
        )
    else:
        op.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER UPDATE OF {watched} ON destinations "
            "BEGIN UPDATE routing_version SET version = version + 1 WHERE id = 1; END"
        )


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: SQLite's batch mode may copy the table, which would drop
    # the routing triggers of 0009 with it.
    for table in PAUSABLE:
        op.add_column(table, sa.Column("paused_at", UTCDateTime(), nullable=True))
        op.add_column(table, sa.Column("paused_by", sa.String(length=200), nullable=True))
    _recreate_destinations_trigger(("active", "alert_cap_per_hour", "platform", "paused_at"))


def downgrade() -> None:
    _recreate_destinations_trigger(("active", "alert_cap_per_hour", "platform"))
    # Plain DROP COLUMN (SQLite 3.35+) for the same reason as above: a table copy would drop the
    # triggers the downgraded schema still needs.
    for table in reversed(PAUSABLE):
        op.execute(f"ALTER TABLE {table} DROP COLUMN paused_by")
        op.execute(f"ALTER TABLE {table} DROP COLUMN paused_at")
