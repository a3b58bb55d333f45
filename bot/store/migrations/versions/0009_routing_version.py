"""routing_version: a counter the database bumps whenever what routing reads changes

The router keeps every channel's rules in memory and re-reads them only when this counter moved.
Triggers bump it, so no code path that edits a subscription, a keyword or a channel's alert cap
or state can forget to (and every replica sees the change at its next routing).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# (table, the UPDATE columns that matter; None = any)
WATCHED = (
    ("destinations", ("active", "alert_cap_per_hour", "platform")),
    ("subscriptions", None),
    ("channel_keywords", None),
)


def upgrade() -> None:
    op.create_table(
        "routing_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO routing_version (id, version) VALUES (1, 0)")
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(
            "CREATE FUNCTION bump_routing_version() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN UPDATE routing_version SET version = version + 1 WHERE id = 1; RETURN NULL; END $$"
        )
    for table, columns in WATCHED:
        update = f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"
        for event in ("INSERT", "DELETE", update):
            name = f"{table}_routing_{event.split()[0].lower()}"
            if postgres:
                op.execute(
                    f"CREATE TRIGGER {name} AFTER {event} ON {table} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION bump_routing_version()"
                )
            else:
                op.execute(
                    f"CREATE TRIGGER {name} AFTER {event} ON {table} "
                    "BEGIN UPDATE routing_version SET version = version + 1 WHERE id = 1; END"
                )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, _columns in WATCHED:
        for event in ("insert", "delete", "update"):
            name = f"{table}_routing_{event}"
            op.execute(f"DROP TRIGGER {name} ON {table}" if postgres else f"DROP TRIGGER {name}")
    if postgres:
        op.execute("DROP FUNCTION bump_routing_version()")
    op.drop_table("routing_version")
