"""Alembic environment. Runs on a connection handed over by ``bot.store.db.migrate``."""

from __future__ import annotations

from alembic import context

from bot.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `frontierwatch migrate` (it supplies the connection)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite can't ALTER most things in place
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
