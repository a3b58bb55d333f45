"""review_labels: stories labelled in the web console's Review page, exported for `train`

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.models import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_labels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("story_id", sa.Integer(), sa.ForeignKey("stories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("labelled_by", sa.String(length=200), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("story_id", "labelled_by"),
    )
    op.create_index("ix_review_labels_story_id", "review_labels", ["story_id"])


def downgrade() -> None:
    op.drop_index("ix_review_labels_story_id", table_name="review_labels")
    op.drop_table("review_labels")
