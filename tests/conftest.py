"""Shared fixtures.

Tests that read ``../shared``, need PostgreSQL or drive Debian's chromium run whenever those are
present and skip with a clear reason otherwise, so a user's fresh clone still passes. Under ``CI=true`` they must not skip:
a missing ``../shared`` or an unreachable database fails the run instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FW_SHARED_DIR", REPO.parent / "shared"))
POSTGRES_URL = os.environ.get("FW_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (mandatory under CI=true)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Path of ``../shared``; skips (fails under CI) when it is not there."""
    if not (SHARED / "corpus").is_dir():
        _unavailable(f"../shared not found at {SHARED}")
    return SHARED


def _postgres_reachable() -> str | None:
    import asyncpg

    async def probe() -> None:
        dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn, timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure means "not reachable"; the reason is shown
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the test PostgreSQL database; skips (fails under CI) when unreachable."""
    problem = _postgres_reachable()
    if problem:
        _unavailable(f"PostgreSQL not reachable at {POSTGRES_URL}: {problem}")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Paths of Debian's ``chromium`` and ``chromedriver`` (packages chromium, chromium-driver,
    which ``.ci/run`` installs); skips (fails under CI) when either or selenium is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        _unavailable("chromium and chromedriver not found (apt-get install chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[dev]')")
    assert browser is not None and driver is not None
    return browser, driver


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Runs a test once on SQLite and once on PostgreSQL (a fresh schema each time)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite3'}"
        return
    base = request.getfixturevalue("postgres_url")
    yield from _fresh_postgres_schema(base)


def _fresh_postgres_schema(base: str) -> Iterator[str]:
    """A throwaway schema set as search_path, so tests never see each other's tables."""
    import uuid

    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = base.replace("postgresql+asyncpg://", "postgresql://")

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        asyncio.run(run(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def restore_discord_base() -> Iterator[None]:
    """Senders point discord.py's class-wide ``Route.BASE`` at a stand-in: put it back afterwards."""
    from discord.http import Route

    original = Route.BASE
    yield
    Route.BASE = original
