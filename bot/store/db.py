"""Engine creation and migrations."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

from bot.services import ServiceStartError

log = logging.getLogger(__name__)
T = TypeVar("T")
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _split_search_path(url: str) -> tuple[str, str | None]:
    """Take a ``search_path`` (or ``options=-csearch_path=...``) query item out of a PostgreSQL URL.

    asyncpg does not accept libpq's ``options``; we pass it as a server setting instead, which
    lets tests and multi-tenant installs keep the tables in their own schema.
    """
    parts = urlsplit(url)
    kept, schema = [], None
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "search_path":
            schema = value
        elif key == "options" and value.startswith("-csearch_path="):
            schema = value.split("=", 1)[1]
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


class DatabaseLocationError(OSError):
    """The SQLite file cannot live where the URL says; the message names the folder and the fix."""


SQLITE_HINT = (
    "the SQLite file and its folder must be writable by this user; FW_DATABASE_URL chooses where it lives"
)


def _prepare_sqlite_folder(path: str) -> None:
    """Create the database's folder, or say in one line why it cannot hold the database.

    Checked before SQLite opens anything: a failed open in aiosqlite's thread leaves the user
    a cryptic "unable to open database file" at best; WAL mode also writes beside the file.
    """
    if path.startswith("file:"):  # an SQLite URI (mode=ro, …): SQLite itself decides
        return
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseLocationError(
            f"cannot create the folder {parent} for the SQLite database ({exc.strerror}); {SQLITE_HINT}"
        ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DatabaseLocationError(f"the folder {parent} of the SQLite database is read-only; {SQLITE_HINT}")
    if Path(path).exists() and not os.access(path, os.R_OK | os.W_OK):
        raise DatabaseLocationError(f"the SQLite database {path} is read-only; {SQLITE_HINT}")


def explain_database_error(reason: str) -> str:
    """A database error message, with the fix where SQLite's own words do not give it."""
    lowered = reason.lower()
    if "unable to open database file" in lowered or "readonly database" in lowered:
        return f"{reason} ({SQLITE_HINT})"
    return reason


def create_engine(database_url: str, *, echo: bool = False) -> AsyncEngine:
    kwargs: dict[str, Any] = {"echo": echo}
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            _prepare_sqlite_folder(path)
        kwargs["connect_args"] = {"timeout": 30}
        engine = create_async_engine(database_url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    database_url, schema = _split_search_path(database_url)
    if schema:
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    return create_async_engine(database_url, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the web process read while the worker writes; busy_timeout turns lock
    # contention into a short wait instead of "database is locked".
    cur = dbapi_conn.cursor()
    for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON", "synchronous=NORMAL"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


class SchemaTooNewError(ServiceStartError):
    """The database was migrated by a newer release than this one."""


def _unknown_revision(connection: Connection) -> str | None:
    """The database's revision when this code does not ship it (a newer release migrated it)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        return None
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    return current if current not in known else None


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to run at every start and from several replicas.

    Refuses, in one line, a database that a newer release has migrated: old code on a newer schema
    would write rows the new columns and triggers do not expect."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Two replicas starting together must not both create tables.
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(724201)")
        newer = await conn.run_sync(_unknown_revision)
        if newer is not None:
            raise SchemaTooNewError(
                f"the database's schema is at revision {newer}, which this release does not know "
                f"(its newest is {head_revision()}): a newer Frontier Watch upgraded it. Run that "
                "release, or restore the backup taken before the upgrade"
            )
        await conn.run_sync(_upgrade, revision)


async def retry_start_race(what: str, attempt: Callable[[], Awaitable[T]], tries: int = 3) -> T:
    """Run a start-time sync (the sources file, the webhooks file, the console destination) that
    inserts rows every replica wants. Replicas starting together on an empty database race on
    those rows' unique keys: the loser's transaction fails, and its next try finds the winner's
    rows and inserts nothing."""
    from sqlalchemy.exc import IntegrityError

    for n in range(1, tries + 1):
        try:
            return await attempt()
        except IntegrityError:
            if n == tries:
                raise
            log.info("%s: another replica wrote the same rows meanwhile; syncing again", what)
    raise AssertionError("unreachable")


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


def head_revision() -> str | None:
    """The newest migration shipped with this code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_database_outage(exc: BaseException) -> bool:
    """True for errors that mean "the database cannot be reached right now" (connection refused
    or reset, server gone), as opposed to a bug: those are logged in one line, not a traceback."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OperationalError, ConnectionError, TimeoutError)) or (
        isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError)
    )


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """Log a failed background step: one line for a database outage, a traceback for anything else."""
    if is_database_outage(exc):
        text = " ".join(str(exc).split())[:200]
        logger.warning("%s: the database is unreachable (%s: %s)", what, type(exc).__name__, text)
    else:
        logger.error("%s", what, exc_info=exc)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in slices of ``size``: an ``IN (...)`` list stays under the databases' limits on
    bound parameters (SQLite's 32,766, asyncpg's 32,767) however many ids a caller has."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
