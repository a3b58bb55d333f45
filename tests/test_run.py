"""`frontierwatch run` as a user runs it: polls on schedule, prints new relevant stories on the
console when no chat platform is configured, stays quiet about the first poll's backlog, and stops
cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tests.support.feedserver import FeedServer

REPO = Path(__file__).resolve().parent.parent


def feed(*items: tuple[str, str]) -> bytes:
    now = datetime.now(UTC)
    body = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><link>https://wire.example/{guid}</link>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=5 * n))}</pubDate></item>"
        for n, (guid, title) in enumerate(items)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{body}</channel></rss>'.encode()
    )


BACKLOG = ("old", "Commerce adds Chinese AI chip firms to the Entity List over export control violations")
NEW = ("new", "US tightens export controls on Nvidia AI chips to China")


async def wait_for(predicate: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("timed out waiting")


async def test_run_announces_new_stories_on_the_console_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    async with FeedServer() as server:
        server.add("/wire.xml", feed(BACKLOG))
        db = tmp_path / "run.sqlite3"
        sources = tmp_path / "sources.toml"
        sources.write_text(f'[[sources]]\nname = "Wire"\nurl = "{server.url("/wire.xml")}"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FW_", "DISCORD_", "SLACK_"))}
        env.update(
            FW_DATABASE_URL=f"sqlite+aiosqlite:///{db}",
            FW_SOURCES_FILE=str(sources),
            FW_ALLOW_PRIVATE_SOURCES="true",
            FW_PARSE_WORKERS="-1",
            FW_POLL_TICK_SECONDS="0.5",
            FW_DELIVERY_TICK_SECONDS="0.2",
            PYTHONUNBUFFERED="1",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        out: list[str] = []

        async def read() -> None:
            assert proc.stdout is not None
            async for line in proc.stdout:
                out.append(line.decode())

        reader = asyncio.create_task(read())
        try:

            def polled() -> bool:
                if not db.exists():
                    return False
                with sqlite3.connect(db) as conn:
                    try:
                        row = conn.execute("select backlog_done from sources").fetchone()
                    except sqlite3.OperationalError:
                        return False
                return bool(row and row[0])

            await wait_for(polled)
            await asyncio.sleep(1.0)
            assert BACKLOG[1] not in "".join(out)  # the first poll's backlog is not announced

            server.add("/wire.xml", feed(NEW, BACKLOG))
            with sqlite3.connect(db) as conn:  # make the source due now rather than in 30 minutes
                conn.execute("update sources set next_poll_at = '2000-01-01 00:00:00'")
            await wait_for(lambda: NEW[1] in "".join(out))
            text = "".join(out)
            assert "natsec" in text and "https://wire.example/new" in text
            assert BACKLOG[1] not in text
        finally:
            proc.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(proc.wait(), 30)
            await reader
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        assert code == 0, err
        assert "stopping" in err and "Traceback" not in err


async def test_run_with_a_refused_slack_app_token_stops_with_one_clear_line(tmp_path: Path) -> None:
    from tests.support.slack_api import SlackAPI

    async with SlackAPI() as slack:
        sources = tmp_path / "sources.toml"
        sources.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FW_", "DISCORD_", "SLACK_"))}
        env.update(
            FW_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'run.sqlite3'}",
            FW_SOURCES_FILE=str(sources),
            FW_PARSE_WORKERS="-1",
            FW_SLACK_API_BASE=slack.api_base,
            SLACK_BOT_TOKEN="xoxb-bot-token-secret",
            SLACK_APP_TOKEN="xoxb-put-in-the-wrong-slot",  # Socket Mode needs an xapp- token
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
    last = err.decode().strip().splitlines()[-1]
    assert proc.returncode == 2, err.decode()
    assert last.startswith("error: slack-socket-mode could not start") and "not_allowed_token_type" in last
    assert "xoxb-put-in-the-wrong-slot" not in err.decode() and "xoxb-bot-token-secret" not in err.decode()


async def test_run_with_a_broken_webhooks_file_stops_with_one_clear_line(tmp_path: Path) -> None:
    sources = tmp_path / "sources.toml"
    sources.write_text("")
    webhooks = tmp_path / "webhooks.toml"
    webhooks.write_text(
        '[[webhooks]]\nname = "a"\nurl = "https://hooks.slack.com/services/a/b/c"\ntopics = ["nope"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FW_", "DISCORD_", "SLACK_"))}
    env.update(
        FW_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'run.sqlite3'}",
        FW_SOURCES_FILE=str(sources),
        FW_WEBHOOKS_FILE=str(webhooks),
        FW_PARSE_WORKERS="-1",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == 2, text
    assert text.strip().splitlines()[-1].startswith("error: webhooks-file could not start:")
    assert "unknown topic 'nope'" in text and "Traceback" not in text
