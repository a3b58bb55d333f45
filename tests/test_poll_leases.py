"""Sources are never left dark: a replica killed during a poll, or a database outage during a poll.

Sources are claimed with a short lease (``FW_POLL_LEASE_SECONDS``, 45 s) renewed while the poll
runs. Targets (defaults, real ``frontierwatch run`` processes):

* another replica polls the sources of a replica SIGKILLed mid-poll within 90 s;
* after a 30 s database outage that starts mid-poll, polling resumes within 60 s of the database's
  return (the interrupted poll's results are saved and due sources are polled again);
* the killed replica's parser processes die with it (no orphans).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.feedserver import FeedServer
from tests.support.tcpproxy import TcpProxy

REPO = Path(__file__).resolve().parent.parent
FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title><item><guid>a</guid>'
    b"<title>US tightens export controls on AI chips</title><link>https://wire.example/a</link></item>"
    b"</channel></rss>"
)


def run_env(database_url: str, sources: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FW_", "DISCORD_", "SLACK_"))}
    env.update(
        FW_DATABASE_URL=database_url,
        FW_SOURCES_FILE=str(sources),
        FW_ALLOW_PRIVATE_SOURCES="true",
        FW_PARSE_WORKERS="1",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


async def start_run(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip


async def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> float:
    """Seconds it took until ``predicate()``; fails after ``seconds``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{what}: not within {seconds:.0f} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(") ", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_a_replica_killed_during_a_poll_is_taken_over_within_90_s(
    tmp_path: Path, database_url: str
) -> None:
    async with FeedServer() as server:
        server.add("/slow.xml", FEED, delay=600)  # replica A's poll hangs here
        server.add("/fast.xml", FEED)  # parsed at once: A's parser process is running
        sources = tmp_path / "sources.toml"
        sources.write_text(
            f'[[sources]]\nname = "Slow"\nurl = "{server.url("/slow.xml")}"\n\n'
            f'[[sources]]\nname = "Fast"\nurl = "{server.url("/fast.xml")}"\n'
        )
        a = await start_run(run_env(database_url, sources, FW_POLL_TICK_SECONDS="1"))
        b: asyncio.subprocess.Process | None = None
        try:
            await wait_until(lambda: server.count("/slow.xml") == 1, 60, "replica A polls")
            await wait_until(lambda: len(descendants(a.pid)) >= 2, 30, "A's parser process")
            await asyncio.sleep(1.0)  # A is inside its poll (its lease renewed at least once)
            helpers = descendants(a.pid)
            assert helpers, "replica A should run a parser process"
            server.add("/slow.xml", FEED)  # from now on the feed answers at once
            a.kill()
            await a.wait()
            killed_at = time.monotonic()
            b = await start_run(run_env(database_url, sources))  # default tick (30 s) and lease (45 s)
            await wait_until(lambda: server.count("/slow.xml") >= 2, 120, "replica B takes over")
            taken_over = time.monotonic() - killed_at
            assert taken_over <= 90, taken_over
            await asyncio.sleep(2)
            orphans = [pid for pid in helpers if alive(pid)]
            assert orphans == [], f"parser processes outlived their SIGKILLed parent: {orphans}"
        finally:
            for proc in (a, b):
                if proc is not None and proc.returncode is None:
                    proc.terminate()
                    await asyncio.wait_for(proc.wait(), 30)


@pytest.fixture
def proxied_schema(postgres_url: str) -> Iterator[tuple[str, str]]:
    """(URL through a proxy port placeholder, direct URL) of a fresh PostgreSQL schema."""
    from tests.conftest import _fresh_postgres_schema

    yield from ((url, url) for url in _fresh_postgres_schema(postgres_url))


async def test_polling_resumes_within_60_s_after_a_database_outage_during_a_poll(
    tmp_path: Path, proxied_schema: tuple[str, str]
) -> None:
    import sqlalchemy as sa

    from bot.store.db import create_engine

    _, direct_url = proxied_schema
    host_port = direct_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    async with TcpProxy(host, int(port)) as proxy, FeedServer() as server:
        proxied_url = direct_url.replace(host_port, f"127.0.0.1:{proxy.port}")
        server.add("/slow.xml", FEED, delay=8)  # in flight when the outage starts (its store fails)
        server.add("/other.xml", FEED.replace(b"<guid>a</guid>", b"<guid>b</guid>").replace(b"/a<", b"/b<"))
        sources = tmp_path / "sources.toml"
        sources.write_text(
            f'[[sources]]\nname = "Slow"\nurl = "{server.url("/slow.xml")}"\n\n'
            f'[[sources]]\nname = "Other"\nurl = "{server.url("/other.xml")}"\n'
        )
        proc = await start_run(run_env(proxied_url, sources))  # default tick (30 s) and lease (45 s)
        engine = create_engine(direct_url)
        stderr: list[str] = []

        async def read_err() -> None:
            assert proc.stderr is not None
            async for line in proc.stderr:
                stderr.append(line.decode())

        reader = asyncio.create_task(read_err())

        async def row(name: str) -> dict[str, Any]:
            async with engine.connect() as conn:
                result = await conn.execute(
                    sa.text(
                        "select last_polled_at, lease_until, failure_count, backlog_done from sources "
                        "where name = :n"
                    ),
                    {"n": name},
                )
                return dict(result.mappings().one())

        try:
            await wait_until(
                lambda: server.count("/slow.xml") == 1 and server.count("/other.xml") == 1, 60, "first poll"
            )
            await asyncio.sleep(1.0)
            await proxy.cut()  # the database goes away while "Slow" is still being fetched
            await asyncio.sleep(1.0)
            await asyncio.sleep(29.0)
            await proxy.restore()
            back = time.monotonic()

            # The interrupted poll's results are saved and both sources are polled again.
            try:
                await wait_until(
                    lambda: server.count("/slow.xml") >= 2, 60, "polling resumes after the outage"
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{''.join(stderr)}") from None
            resumed = time.monotonic() - back
            assert resumed <= 60, resumed
            state = await row("Slow")
            assert state["failure_count"] == 0  # the outage was not held against the source
            other = await row("Other")  # the interrupted cycle's other results were saved too
            assert other["backlog_done"] and other["lease_until"] is None
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
            await reader
            await engine.dispose()
        text = "".join(stderr)
        assert "Traceback" not in text, text
