"""Full-text search over stories: SQLite FTS5 table with triggers, PostgreSQL tsvector + GIN

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 22:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Title words weigh more than summary words (PostgreSQL: weight A vs B; SQLite: bm25 column weights).
PG_VECTOR = (
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(summary, '')), 'B')"
)
SQLITE_TRIGGERS = (
    """CREATE TRIGGER stories_fts_insert AFTER INSERT ON stories BEGIN
         INSERT INTO stories_fts(rowid, title, summary) VALUES (new.id, new.title, new.summary);
       END""",
    """CREATE TRIGGER stories_fts_delete AFTER DELETE ON stories BEGIN
         INSERT INTO stories_fts(stories_fts, rowid, title, summary)
         VALUES ('delete', old.id, old.title, old.summary);
       END""",
    """CREATE TRIGGER stories_fts_update AFTER UPDATE OF title, summary ON stories BEGIN
         INSERT INTO stories_fts(stories_fts, rowid, title, summary)
         VALUES ('delete', old.id, old.title, old.summary);
         INSERT INTO stories_fts(rowid, title, summary) VALUES (new.id, new.title, new.summary);
       END""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER TABLE stories ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({PG_VECTOR}) STORED"
        )
        op.execute("CREATE INDEX ix_stories_search_vector ON stories USING gin (search_vector)")
        return
    op.execute(
        "CREATE VIRTUAL TABLE stories_fts USING fts5(title, summary, content='stories', "
        "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')"
    )
    for trigger in SQLITE_TRIGGERS:
        op.execute(trigger)
    op.execute("INSERT INTO stories_fts(stories_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_stories_search_vector")
        op.execute("ALTER TABLE stories DROP COLUMN search_vector")
        return
    for name in ("stories_fts_update", "stories_fts_delete", "stories_fts_insert"):
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE stories_fts")
