"""Prometheus metrics (bot/metrics.py) scraped over HTTP as Prometheus would, against local
stand-ins only: the feed server, the Discord and Slack APIs. The exposition is parsed with
prometheus_client's own parser, and specific samples are checked to have moved."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from discord.http import Route
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import App
from bot.delivery.services import Delivery
from bot.domain import FetchResult
from bot.metrics import FAILURE_REASONS, Metrics, fetch_failure_reason
from bot.platforms.services import platform_services
from bot.settings import Settings, SettingsError, load_settings
from bot.sources.fetcher import FeedFetcher
from bot.store import models as m
from bot.store.repo import Store
from bot.web import RunHealth, WebServer, build_metrics_app, build_web_app
from tests.support.discord_api import DiscordAPI
from tests.support.feedserver import FeedServer, StaticResolver
from tests.support.newsdb import add_destination, add_story, open_store
from tests.support.slack_api import SlackAPI

REPO = Path(__file__).resolve().parent.parent
DCH = "300000000000000001"
BACKLOG = ("llama", "Meta releases Llama 5 open-weight model with 2 trillion parameters")
NATSEC = ("chips", "US tightens export controls on Nvidia AI chips to China")
DISTILL = ("distil", "OpenAI says DeepSeek distilled its models to train a rival chatbot")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


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


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"no sample {name}{labels}; have {sorted(k for k in samples if k[0] == name)}"
    return samples[key]


async def scrape(url: str) -> tuple[str, Samples]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return resp.headers["Content-Type"], parse(await resp.text())


async def wait_for(predicate: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.fixture(autouse=True)
def discord_base() -> Iterator[None]:
    original = Route.BASE  # the senders set discord.py's class-wide API base
    yield
    Route.BASE = original


def sent_to_discord(metrics: Metrics) -> float:
    samples = parse(metrics.exposition().decode())
    return value(samples, "frontierwatch_deliveries_total", platform="discord", status="sent")


def settings_for(tmp_path: Path, **values: Any) -> Settings:
    defaults: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
        "sources_file": tmp_path / "sources.toml",
        "topics_file": REPO / "config/topics.toml",
        "webhooks_file": tmp_path / "webhooks.toml",
        "allow_private_sources": True,
        "parse_workers": -1,
        "delivery_tick_seconds": 0.1,
        "delivery_max_backoff_seconds": 0.5,
        "discord_send_rate": 200.0,
    }
    defaults.update(values)
    return Settings(**defaults)


# ------------------------------------------------------------------ the run pieces, end to end
async def test_a_poll_and_a_delivery_move_the_counters_seen_on_the_metrics_port(
    tmp_path: Path,
) -> None:
    async with (
        FeedServer() as feeds,
        DiscordAPI(global_limit=1) as api,
    ):
        feeds.add("/wire.xml", feed(BACKLOG))  # /broken.xml is not served: 404
        (tmp_path / "sources.toml").write_text(
            f'[[sources]]\nname = "Wire"\nurl = "{feeds.url("/wire.xml")}"\n\n'
            f'[[sources]]\nname = "Broken"\nurl = "{feeds.url("/broken.xml")}"\n'
        )
        settings = settings_for(
            tmp_path,
            DISCORD_TOKEN="test-token",
            discord_api_base=api.api_base,
            discord_gateway=False,
            metrics_port=0,
            host="127.0.0.1",
        )
        app = await App.build(settings)
        scheduler_running = True
        try:
            app.add_services()
            app.add_metrics_listener(lambda: scheduler_running)
            listener = app.services[0]
            assert isinstance(listener, WebServer) and listener.name == "metrics"
            await app.start_services()
            await add_destination(
                app.store, "discord", DCH, [(t, "alerts", 0.0) for t in app.classifier.topics]
            )
            base = f"http://127.0.0.1:{listener.bound_port}"

            await app.poller.poll_due()  # first poll: the backlog is stored, not announced
            feeds.add("/wire.xml", feed(NATSEC, DISTILL, BACKLOG))
            async with app.store.sessions.begin() as session:
                await session.execute(
                    update(m.Source)
                    .where(m.Source.name == "Wire")
                    .values(next_poll_at=datetime(2000, 1, 1, tzinfo=UTC))
                )
            report = await app.poller.poll_due()
            assert [o.status for o in report.outcomes] == ["new"]  # Broken is backing off
            # Two alerts back to back, the stand-in allowing one message a second: the second meets a 429,
            # which discord.py waits out and retries by itself.
            await wait_for(lambda: len(api.posted(DCH)) == 2)

            content_type, samples = await scrape(f"{base}/metrics")
            assert content_type.startswith("text/plain; version=0.0.4")
            assert value(samples, "frontierwatch_polls_total", result="new", reason="none") == 2
            assert value(samples, "frontierwatch_polls_total", result="failed", reason="http_4xx") == 1
            assert value(samples, "frontierwatch_polls_total", result="unchanged", reason="none") == 0
            assert value(samples, "frontierwatch_fetch_duration_seconds_count", outcome="ok") == 2
            assert value(samples, "frontierwatch_fetch_duration_seconds_count", outcome="failed") == 1
            assert value(samples, "frontierwatch_fetch_duration_seconds_bucket", outcome="ok", le="+Inf") == 2
            assert value(samples, "frontierwatch_stories_stored_total") == 3
            assert value(samples, "frontierwatch_stories_classified_total", topic="release") == 1
            # The accusation that DeepSeek distilled OpenAI's models is natsec too, as the guide has it.
            assert value(samples, "frontierwatch_stories_classified_total", topic="natsec") == 2
            assert value(samples, "frontierwatch_stories_classified_total", topic="distillation") == 1
            # The counter moves right after the outbox row is marked sent, a moment after the post.
            await wait_for(lambda: sent_to_discord(app.metrics) == 2)
            _, samples = await scrape(f"{base}/metrics")
            assert value(samples, "frontierwatch_deliveries_total", platform="discord", status="sent") == 2
            assert value(samples, "frontierwatch_deliveries_total", platform="discord", status="retry") == 0
            assert api.rate_limited >= 1
            assert value(samples, "frontierwatch_rate_limited_total", platform="discord") == api.rate_limited
            assert value(samples, "frontierwatch_rate_limited_total", platform="slack") == 0
            assert value(samples, "frontierwatch_database_up") == 1
            assert value(samples, "frontierwatch_sources_enabled") == 2
            assert value(samples, "frontierwatch_sources_failing") == 1
            assert value(samples, "frontierwatch_outbox_depth") == 0
            assert value(samples, "frontierwatch_outbox_oldest_pending_age_seconds") == 0
            # No URL, source name or channel id ever becomes a label value.
            labels = {v for (_name, pairs) in samples for _k, v in pairs}
            assert not any("127.0.0.1" in v or "Wire" in v or DCH in v for v in labels)

            async with aiohttp.ClientSession() as session:
                async with session.get(f"{base}/healthz") as resp:
                    assert resp.status == 200
                    assert await resp.json() == {
                        "status": "ok",
                        "scheduler": "running",
                        "database": "reachable",
                    }
                scheduler_running = False
                async with session.get(f"{base}/healthz") as resp:
                    assert resp.status == 503
                    assert (await resp.json())["scheduler"] == "stopped"
        finally:
            await app.close()
        assert api.spec_errors == []


async def test_database_gauges_are_read_at_scrape_time_and_serve_exposes_them(
    tmp_path: Path, database_url: str
) -> None:
    """On SQLite and on PostgreSQL: the gauges' queries are plain SQL that both must answer alike."""
    (tmp_path / "sources.toml").write_text("")
    settings = settings_for(tmp_path, database_url=database_url, host="127.0.0.1", port=0)
    app = await App.build(settings, sync_sources=False)
    try:
        [server] = platform_services(app, role="web")  # what `frontierwatch serve` runs
        assert isinstance(server, WebServer) and server.host == "127.0.0.1"
        app.services.append(server)
        await app.start_services()
        url = f"http://127.0.0.1:{server.bound_port}/metrics"
        _, samples = await scrape(url)
        assert value(samples, "frontierwatch_outbox_depth") == 0
        assert value(samples, "frontierwatch_digest_lag_seconds") == 0

        now = datetime.now(UTC)
        dest = await add_destination(app.store, "slack", "C1", next_digest_at=now - timedelta(minutes=10))
        async with app.store.sessions.begin() as session:
            await session.execute(
                insert(m.Delivery),
                [
                    {
                        "destination_id": dest,
                        "cluster_id": n,
                        "kind": "alert",
                        "status": status,
                        "next_attempt_at": now,
                        "created_at": now - age,
                    }
                    for n, (status, age) in enumerate(
                        [
                            ("pending", timedelta(hours=1)),
                            ("sending", timedelta(minutes=1)),
                            ("sent", timedelta(days=2)),  # finished: neither depth nor age
                        ]
                    )
                ],
            )
        _, samples = await scrape(url)
        assert value(samples, "frontierwatch_outbox_depth") == 2
        assert 3600 <= value(samples, "frontierwatch_outbox_oldest_pending_age_seconds") < 3700
        assert 600 <= value(samples, "frontierwatch_digest_lag_seconds") < 700
        # A paused channel's rows and schedule wait on purpose: not a stuck outbox or digest clock.
        async with app.store.sessions.begin() as session:
            await session.execute(update(m.Destination).where(m.Destination.id == dest).values(paused_at=now))
        _, samples = await scrape(url)
        assert value(samples, "frontierwatch_outbox_depth") == 0
        assert value(samples, "frontierwatch_digest_lag_seconds") == 0
        # serve polls and sends nothing: its counters exist and stay at zero.
        assert value(samples, "frontierwatch_polls_total", result="new", reason="none") == 0
    finally:
        await app.close()


async def test_an_unreachable_database_is_reported_not_hidden(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'not-a-dir' / 'db.sqlite3'}")
    metrics = Metrics()
    server = WebServer(
        build_metrics_app(metrics, engine, RunHealth(engine, lambda: True)), 0, "127.0.0.1", name="metrics"
    )
    await server.start()
    try:
        _, samples = await scrape(f"http://127.0.0.1:{server.bound_port}/metrics")
        assert value(samples, "frontierwatch_database_up") == 0
        assert not any(name == "frontierwatch_outbox_depth" for name, _ in samples)  # no stale figure
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{server.bound_port}/healthz") as resp,
        ):
            assert resp.status == 503
            body = await resp.json()
        assert body["status"] == "unavailable" and body["database"].startswith("unreachable: ")
        assert str(tmp_path) not in body["database"]
    finally:
        await server.stop()
        await engine.dispose()


async def test_the_web_app_serves_metrics_only_when_given_them() -> None:
    server = WebServer(build_web_app(None), 0, "127.0.0.1")
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{server.bound_port}/metrics") as resp,
        ):
            assert resp.status == 404
    finally:
        await server.stop()


# ------------------------------------------------------------------ 429s met from Slack
async def test_slack_429s_are_counted_even_those_slack_sdk_retries_itself(tmp_path: Path) -> None:
    store: Store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        async with SlackAPI(burst=0) as slack:  # every post is answered 429, Retry-After: 1
            dest = await add_destination(store, "slack", "C9", [("natsec", "digest", 0.0)])
            await add_story(store, NATSEC[1], topics={"natsec": 0.9})
            metrics = Metrics(("natsec",))
            settings = settings_for(tmp_path, SLACK_BOT_TOKEN="xoxb-test", slack_api_base=slack.api_base)
            delivery = Delivery.build(store, settings, ("natsec",), metrics=metrics)
            now = datetime.now(UTC)
            await delivery.digests.plan(dest, fire=now, now=now, advance=False)
            await delivery.worker.run_once()
            await delivery.worker.stop()
            samples = parse(metrics.exposition().decode())
        assert slack.rate_limited == 3  # the first answer and slack_sdk's two retries
        assert value(samples, "frontierwatch_rate_limited_total", platform="slack") == 3
        assert value(samples, "frontierwatch_deliveries_total", platform="slack", status="retry") == 1
        assert value(samples, "frontierwatch_deliveries_total", platform="slack", status="sent") == 0
    finally:
        await store.engine.dispose()


# ------------------------------------------------------------------ bounded poll reasons
async def test_failure_reasons_follow_the_fetchers_own_wording() -> None:
    """Each reason from a real fetch: if the fetcher's messages change, this fails."""

    def fetcher(resolver: StaticResolver | None = None, **values: Any) -> FeedFetcher:
        base: dict[str, Any] = {"allow_private_sources": True, "total_timeout": 0.5, "max_body_bytes": 1024}
        return FeedFetcher(Settings(**(base | values)), resolver=resolver)

    async with FeedServer() as gone:
        closed = gone.url("/feed")  # a port nobody listens on any more
    async with FeedServer() as server:
        server.add("/404", b"", status=404)
        server.add("/429", b"", status=429, headers={"Retry-After": "5"})
        server.add("/503", b"", status=503)
        server.add("/big", b"x" * 4096)
        server.add("/slow", b"", delay=2.0)
        server.redirect("/loop", "/loop")
        plain = fetcher()
        guarded = fetcher(allow_private_sources=False)
        no_dns = fetcher(resolver=StaticResolver({}))
        cases = [
            (plain, server.url("/404"), "http_4xx"),
            (plain, server.url("/429"), "http_429"),
            (plain, server.url("/503"), "http_5xx"),
            (plain, server.url("/big"), "too_big"),
            (plain, server.url("/slow"), "timeout"),
            (plain, server.url("/loop"), "redirect"),
            (plain, closed, "connect"),
            (plain, server.url("/404").replace("http://", "https://"), "tls"),
            (plain, "ftp://example.org/feed", "bad_url"),
            (guarded, server.url("/404"), "refused"),
            (no_dns, "http://nowhere.example/feed", "dns"),
        ]
        try:
            for client, url, expected in cases:
                result = await client.fetch(url)
                assert result.error is not None, url
                assert fetch_failure_reason(result) == expected, (url, result.error)
        finally:
            for client in (plain, guarded, no_dns):
                await client.close()
    assert fetch_failure_reason(FetchResult("u", "u", 0, error="something new")) == "network"
    assert all(re.fullmatch(r"[a-z0-9_]+", reason) for reason in FAILURE_REASONS)


def test_an_unknown_reason_never_opens_a_new_series() -> None:
    metrics = Metrics()
    metrics.poll_finished("failed", "https://evil.example/a-url-as-reason")
    metrics.poll_finished("new", "dns")  # a success carries no reason
    samples = parse(metrics.exposition().decode())
    assert value(samples, "frontierwatch_polls_total", result="failed", reason="internal") == 1
    assert value(samples, "frontierwatch_polls_total", result="new", reason="none") == 1


def test_two_apps_in_one_process_do_not_share_series() -> None:
    first, second = Metrics(), Metrics()
    first.rate_limited("discord")
    assert (
        value(parse(first.exposition().decode()), "frontierwatch_rate_limited_total", platform="discord") == 1
    )
    assert (
        value(parse(second.exposition().decode()), "frontierwatch_rate_limited_total", platform="discord")
        == 0
    )


# ------------------------------------------------------------------ FW_HOST and FW_METRICS_PORT
def test_bind_host_defaults_and_fw_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FW_HOST", "FW_METRICS_PORT", "FW_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.metrics_port is None
    assert (settings.bind_host("metrics"), settings.bind_host("web")) == ("127.0.0.1", "0.0.0.0")
    monkeypatch.setenv("FW_HOST", "::1")
    monkeypatch.setenv("FW_METRICS_PORT", "9464")
    settings = load_settings()
    assert settings.metrics_port == 9464
    assert (settings.bind_host("metrics"), settings.bind_host("web")) == ("::1", "::1")
    monkeypatch.setenv("FW_HOST", "not an address")
    with pytest.raises(SettingsError, match=r"^invalid setting FW_HOST: "):
        load_settings()
    monkeypatch.setenv("FW_HOST", "127.0.0.1")
    monkeypatch.setenv("FW_METRICS_PORT", "70000")
    with pytest.raises(SettingsError, match=r"^invalid setting FW_METRICS_PORT: "):
        load_settings()


async def test_serve_binds_fw_host(tmp_path: Path) -> None:
    (tmp_path / "sources.toml").write_text("")
    app = await App.build(settings_for(tmp_path, host="127.0.0.2", port=0), sync_sources=False)
    try:
        [server] = platform_services(app, role="web")
        assert isinstance(server, WebServer)
        app.services.append(server)
        await app.start_services()
        assert listening_sockets(os.getpid()) >= {("127.0.0.2", server.bound_port)}
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.2:{server.bound_port}/metrics") as resp:
                assert resp.status == 200
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get(f"http://127.0.0.1:{server.bound_port}/metrics")
    finally:
        await app.close()


def listening_sockets(pid: int) -> set[tuple[str, int | None]]:
    """(address, port) of every TCP socket the process listens on, from /proc (Linux)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found: set[tuple[str, int | None]] = set()
    for table, width in (("tcp", 4), ("tcp6", 16)):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            if width == 4:
                host = ".".join(str(b) for b in reversed(raw))
            else:  # four little-endian words
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                host = str(ipaddress.IPv6Address(words))
            found.add((host, int(port, 16)))
    return found


# ------------------------------------------------------------------ the real `frontierwatch run`
def run_env(tmp_path: Path, feed_url: str, **extra: str) -> dict[str, str]:
    sources = tmp_path / "sources.toml"
    sources.write_text(f'[[sources]]\nname = "Wire"\nurl = "{feed_url}"\n')
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FW_", "DISCORD_", "SLACK_")) and k != "PORT"
    }
    env.update(
        FW_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'run.sqlite3'}",
        FW_SOURCES_FILE=str(sources),
        FW_WEBHOOKS_FILE=str(tmp_path / "webhooks.toml"),
        FW_ALLOW_PRIVATE_SOURCES="true",
        FW_PARSE_WORKERS="-1",
        FW_POLL_TICK_SECONDS="0.5",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def polled(db: Path) -> bool:
    if not db.exists():
        return False
    with sqlite3.connect(db) as conn:
        try:
            row = conn.execute("select backlog_done from sources").fetchone()
        except sqlite3.OperationalError:
            return False
    return bool(row and row[0])


Started = tuple[asyncio.subprocess.Process, list[str]]


@pytest.fixture
async def run_process() -> AsyncIterator[Callable[[dict[str, str]], Awaitable[Started]]]:
    """Starts `frontierwatch run`, collects its stderr lines, and stops it with Ctrl-C afterwards."""
    started: list[tuple[asyncio.subprocess.Process, list[str], asyncio.Task[None]]] = []

    async def start(env: dict[str, str]) -> Started:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO,
        )  # fmt: skip
        lines: list[str] = []

        async def read() -> None:
            assert proc.stderr is not None
            async for line in proc.stderr:
                lines.append(line.decode())

        started.append((proc, lines, asyncio.create_task(read())))
        return proc, lines

    yield start
    for proc, lines, reader in started:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(proc.wait(), 30)
            await reader
            assert code == 0, "".join(lines)
        assert "Traceback" not in "".join(lines), "".join(lines)


RunProcess = Callable[[dict[str, str]], Awaitable[Started]]


async def test_run_serves_metrics_and_healthz_on_fw_metrics_port_at_fw_host(
    tmp_path: Path, run_process: RunProcess
) -> None:
    async with FeedServer() as feeds:
        feeds.add("/wire.xml", feed(BACKLOG))
        env = run_env(tmp_path, feeds.url("/wire.xml"), FW_METRICS_PORT="0", FW_HOST="127.0.0.2")
        proc, lines = await run_process(env)
        pattern = re.compile(r"metrics server listening on (\S+):(\d+)")
        await wait_for(lambda: any(pattern.search(line) for line in lines), 60)
        host, port_text = next(match.groups() for line in lines if (match := pattern.search(line)))
        assert host == "127.0.0.2"
        port = int(port_text)
        await wait_for(lambda: polled(tmp_path / "run.sqlite3"), 60)

        assert listening_sockets(proc.pid) == {("127.0.0.2", port)}  # FW_HOST, nothing else
        _, samples = await scrape(f"http://127.0.0.2:{port}/metrics")
        assert value(samples, "frontierwatch_polls_total", result="new", reason="none") == 1
        assert value(samples, "frontierwatch_stories_stored_total") == 1
        assert value(samples, "frontierwatch_stories_classified_total", topic="release") == 1
        assert value(samples, "frontierwatch_database_up") == 1
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.2:{port}/healthz") as resp:
                assert resp.status == 200
                assert await resp.json() == {"status": "ok", "scheduler": "running", "database": "reachable"}
            with pytest.raises(aiohttp.ClientConnectorError):  # not on the default address
                await session.get(f"http://127.0.0.1:{port}/healthz")


async def test_run_without_fw_metrics_port_opens_no_port(tmp_path: Path, run_process: RunProcess) -> None:
    async with FeedServer() as feeds:
        feeds.add("/wire.xml", feed(BACKLOG))
        proc, lines = await run_process(run_env(tmp_path, feeds.url("/wire.xml")))
        await wait_for(lambda: polled(tmp_path / "run.sqlite3"), 60)
        await asyncio.sleep(0.5)  # the services start beside the first poll
        assert proc.returncode is None, "".join(lines)
        assert listening_sockets(proc.pid) == set()
        assert not any("listening on" in line for line in lines)
