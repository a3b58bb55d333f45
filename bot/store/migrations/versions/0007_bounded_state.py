"""Scale: item hashes in the store, delivery lease owners, indexes for routing and retention

- ``sources.item_hashes``: the hashes of a feed's item elements as of its last stored poll (delta
  parsing), so a replica keeps no per-source set in memory and every replica shares them.
- ``destinations.delivery_lease_owner``: which outbox worker holds a channel; renew and release
  touch only their own lease.
- ``deliveries`` indexes for the router's ``(cluster_id, kind)`` probes and the ``(kind,
  created_at)`` alert-cap and retention scans.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("item_hashes", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_lease_owner", sa.String(length=64), nullable=True))
    op.create_index("ix_deliveries_cluster_id_kind", "deliveries", ["cluster_id", "kind"])
    op.create_index("ix_deliveries_kind_created_at", "deliveries", ["kind", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_kind_created_at", table_name="deliveries")
    op.drop_index("ix_deliveries_cluster_id_kind", table_name="deliveries")
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.drop_column("delivery_lease_owner")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("item_hashes")
