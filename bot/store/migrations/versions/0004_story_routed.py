"""stories.routed: alerts are queued exactly once even across a crash

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 14:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing stories count as routed: an upgrade must not alert the past.
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("routed", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.create_index("ix_stories_unrouted", ["routed", "first_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_index("ix_stories_unrouted")
        batch_op.drop_column("routed")
