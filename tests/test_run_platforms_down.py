"""No chat platform may hold back polling or shutdown.

`frontierwatch run` is started with Slack (Socket Mode) or Discord configured but unreachable: a
"black hole" that accepts connections and never answers, or a port that refuses them. Polling must
start within 5 s of the start banner, and SIGINT or SIGTERM must end the process within 10 s, with
exit code 0 and no traceback.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.feedserver import FeedServer

REPO = Path(__file__).resolve().parent.parent
FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title><item><guid>a</guid>'
    b"<title>US tightens export controls on AI chips</title><link>https://wire.example/a</link></item>"
    b"</channel></rss>"
)


class BlackHole:
    """Accepts TCP connections and never answers (a platform that hangs)."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def __aenter__(self) -> BlackHole:
        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)
            while await reader.read(65536):
                pass

        self._server = await asyncio.start_server(hold, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: connections to it are refused


@pytest.fixture
async def hole() -> AsyncIterator[BlackHole]:
    async with BlackHole() as h:
        yield h


def platform_env(platform: str, base: str) -> dict[str, str]:
    if platform == "slack":
        return {
            "SLACK_BOT_TOKEN": "xoxb-unreachable-bot-token",
            "SLACK_APP_TOKEN": "xapp-unreachable-app-token",
            "SLACK_SIGNING_SECRET": "unreachable-signing-secret",
            "FW_SLACK_API_BASE": f"{base}/api/",
        }
    return {"DISCORD_TOKEN": "unreachable.discord.token", "FW_DISCORD_API_BASE": f"{base}/api/v10"}


@pytest.mark.parametrize("platform", ["slack", "discord"])
@pytest.mark.parametrize("how", ["hangs", "refuses"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_run_polls_and_stops_with_a_chat_platform_unreachable(
    tmp_path: Path, hole: BlackHole, platform: str, how: str, sig: signal.Signals
) -> None:
    port = hole.port if how == "hangs" else refused_port()
    async with FeedServer() as server:
        server.add("/wire.xml", FEED)
        db = tmp_path / "run.sqlite3"
        sources = tmp_path / "sources.toml"
        sources.write_text(f'[[sources]]\nname = "Wire"\nurl = "{server.url("/wire.xml")}"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FW_", "DISCORD_", "SLACK_"))}
        env.update(
            FW_DATABASE_URL=f"sqlite+aiosqlite:///{db}",
            FW_SOURCES_FILE=str(sources),
            FW_ALLOW_PRIVATE_SOURCES="true",
            FW_PARSE_WORKERS="1",
            FW_POLL_TICK_SECONDS="1",
            PYTHONUNBUFFERED="1",
            **platform_env(platform, f"http://127.0.0.1:{port}"),
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO,
        )  # fmt: skip
        err_lines: list[str] = []
        banner = asyncio.get_running_loop().create_future()

        async def read_err() -> None:
            assert proc.stderr is not None
            async for raw in proc.stderr:
                line = raw.decode()
                err_lines.append(line)
                if line.startswith("Frontier Watch") and not banner.done():
                    banner.set_result(time.monotonic())

        reader = asyncio.create_task(read_err())
        try:
            banner_at = await asyncio.wait_for(banner, 30)

            def polled() -> bool:
                with sqlite3.connect(db) as conn:
                    row = conn.execute("select last_polled_at, backlog_done from sources").fetchone()
                return bool(row and row[0] and row[1])

            while not polled():
                assert time.monotonic() - banner_at < 5.0, "no poll within 5 s:\n" + "".join(err_lines)
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # let the platform's start be in progress
        finally:
            proc.send_signal(sig)
            sent = time.monotonic()
            code = await asyncio.wait_for(proc.wait(), 30)
            stopped_in = time.monotonic() - sent
            await reader
        text = "".join(err_lines)
        assert stopped_in < 10.0, text
        assert code == 0, text
        assert "Traceback" not in text, text
        assert "stopping" in text
        for secret in ("unreachable-bot-token", "unreachable-app-token", "unreachable.discord.token"):
            assert secret not in text
