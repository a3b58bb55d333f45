"""chat additions (columns added by the platform and delivery work)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 14:05:00
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401  (used by the sections below as they grow)
from alembic import op  # noqa: F401

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # --- platforms (issue 4)
    # --- delivery (issue 5)
    pass


def downgrade() -> None:
    pass
