"""Official sources and mention rules (issue 13, items 4 and 5)

- ``sources.official``: set from sources.toml (``official = true``); channel-added sources never are.
- ``stories.official``: copied from the source at ingest (and by a later sighting in an official
  source), so digest selection and routing read it from the story rows they already load.
- ``mention_rules``: `/watch alerts mention` rules. Routing reads them (the mention is decided when
  the alert is queued and kept in its outbox snapshot), so the routing_version triggers of 0009
  watch this table too: the router's cached rules cannot miss a new or removed rule.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TRIGGERS = ("insert", "delete", "update")


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: on SQLite batch mode may rebuild the table, which drops
    # the full-text search triggers 0008 put on stories.
    for table in ("sources", "stories"):
        op.add_column(table, sa.Column("official", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "mention_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("destination_id", sa.Integer(), nullable=False),
        sa.Column("target_kind", sa.String(length=8), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("target_label", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("official", sa.Boolean(), nullable=False),
        sa.Column("min_score", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["destinations.id"],
            name="fk_mention_rules_destination_id_destinations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mention_rules"),
        sa.UniqueConstraint(
            "destination_id",
            "target_kind",
            "target_id",
            "topic",
            "official",
            "min_score",
            name="uq_mention_rules_rule",
        ),
    )
    op.create_index("ix_mention_rules_destination_id", "mention_rules", ["destination_id"])
    postgres = op.get_bind().dialect.name == "postgresql"
    for event in TRIGGERS:
        name = f"mention_rules_routing_{event}"
        if postgres:  # bump_routing_version() was created by 0009
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event.upper()} ON mention_rules "
                "FOR EACH STATEMENT EXECUTE FUNCTION bump_routing_version()"
            )
        else:
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event.upper()} ON mention_rules "
                "BEGIN UPDATE routing_version SET version = version + 1 WHERE id = 1; END"
            )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for event in TRIGGERS:
        name = f"mention_rules_routing_{event}"
        op.execute(f"DROP TRIGGER {name} ON mention_rules" if postgres else f"DROP TRIGGER {name}")
    op.drop_index("ix_mention_rules_destination_id", table_name="mention_rules")
    op.drop_table("mention_rules")
    # DROP COLUMN in place (SQLite >= 3.35), for the same reason as above.
    op.drop_column("stories", "official")
    op.drop_column("sources", "official")
