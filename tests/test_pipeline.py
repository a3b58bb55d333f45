"""The whole pipeline against a local feed server: fetch → parse → classify → cluster → store."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from bot.app import App
from bot.pipeline.ingest import NewStory
from bot.settings import Settings
from tests.support.feedserver import FeedServer

REPO = Path(__file__).resolve().parent.parent
NOW = datetime.now(UTC)


def rss(title: str, items: Sequence[tuple[str, str, str]]) -> bytes:
    """items: (guid, title, summary); newest first, an hour apart."""
    parts = [f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>']
    for n, (guid, headline, summary) in enumerate(items):
        when = format_datetime(NOW - timedelta(hours=n + 1))
        parts.append(
            f"<item><guid>{guid}</guid><title>{headline}</title><link>https://{title.lower()}.example/{guid}?utm_source=rss</link>"
            f"<description><![CDATA[<p>{summary}</p>]]></description><pubDate>{when}</pubDate></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


CHIPS = (
    "US tightens export controls on Nvidia AI chips to China",
    "The Commerce Department's Bureau of Industry and Security issued new rules restricting exports of advanced AI chips.",
)
CHIPS_OTHER_OUTLET = "US tightens export controls on Nvidia AI chips for China"
WHISKY = (
    "Distillery expands whisky distillation capacity in Scotland",
    "A new still house doubles output of single malt.",
)
RELEASE = (
    "Mistral releases new open-weight language model",
    "The French AI lab launched a new open-weight LLM under the Apache 2.0 licence.",
)


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as srv:
        srv.add("/wire.xml", rss("Wire", [("c1", *CHIPS), ("w1", *WHISKY)]), etag='"wire-1"')
        srv.add(
            "/daily.xml",
            rss("Daily", [("d1", CHIPS_OTHER_OUTLET, CHIPS[1])]),
            last_modified="Sat, 28 Nov 2026 10:00:00 GMT",
        )
        srv.add("/gone.xml", b"not here", status=404, content_type="text/plain")
        srv.add("/broken.xml", b"oops", status=500, content_type="text/plain")
        srv.add("/page.html", b"<html><body><p>Just a web page</p></body></html>", content_type="text/html")
        srv.add(
            "/busy.xml", b"slow down", status=429, headers={"Retry-After": "3600"}, content_type="text/plain"
        )
        yield srv


def write_sources(path: Path, server: FeedServer) -> Path:
    names = {
        "wire": "/wire.xml",
        "daily": "/daily.xml",
        "gone": "/gone.xml",
        "broken": "/broken.xml",
        "page": "/page.html",
        "busy": "/busy.xml",
    }
    path.write_text(
        "".join(f'[[sources]]\nname = "{n}"\nurl = "{server.url(p)}"\n\n' for n, p in names.items())
    )
    return path


def settings_for(tmp_path: Path, server: FeedServer) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'fw.sqlite3'}",
        sources_file=write_sources(tmp_path / "sources.toml", server),
        topics_file=REPO / "config" / "topics.toml",
        allow_private_sources=True,
        parse_workers=-1,
    )


async def make_due(app: App) -> None:
    await app.store.save_fetch_states(
        [{"id": s.id, "next_poll_at": datetime.now(UTC)} for s in await app.store.list_sources()]
    )


async def test_poll_cycle_end_to_end(tmp_path: Path, server: FeedServer) -> None:
    announced: list[NewStory] = []

    async def sink(stories: Sequence[NewStory]) -> None:
        announced.extend(stories)

    app = await App.build(settings_for(tmp_path, server), sinks=[sink])
    try:
        first = await app.poller.poll_due()
        by_name = {o.name: o for o in first.outcomes}
        assert by_name["wire"].status == "new" and by_name["wire"].new == 2 and by_name["wire"].backlog
        assert by_name["daily"].status == "new"
        assert by_name["gone"].status == "failed" and "404" in (by_name["gone"].error or "")
        assert by_name["broken"].status == "failed" and "500" in (by_name["broken"].error or "")
        assert by_name["page"].status == "failed" and "not a feed" in (by_name["page"].error or "").lower()
        assert by_name["busy"].status == "failed" and "429" in (by_name["busy"].error or "")
        assert announced == []  # first poll: backlog stored quietly

        sources = {s.name: s for s in await app.store.list_sources()}
        assert sources["busy"].next_poll_at >= datetime.now(UTC) + timedelta(
            seconds=3500
        )  # Retry-After honoured
        assert sources["gone"].failure_count == 1 and "404" in (sources["gone"].last_error or "")
        assert sources["wire"].etag == '"wire-1"' and sources["wire"].backlog_done

        stored = await app.store.list_stories(since=NOW - timedelta(days=1), relevant_only=True)
        chips = [s for s in stored if "export controls" in s.title]
        assert len(chips) == 2 and len({s.cluster_id for s in chips}) == 1  # two outlets, one cluster
        assert sorted(chips[0].outlets) == ["daily", "wire"]
        assert "natsec" in chips[0].topics
        assert not any("whisky" in s.title.lower() for s in stored)  # hard negative not relevant
        assert all("utm_source" not in s.url for s in stored)

        # Second cycle: conditional GETs answered 304, nothing parsed, failures count up.
        await make_due(app)
        second = await app.poller.poll_due()
        by_name = {o.name: o for o in second.outcomes}
        assert by_name["wire"].status == "unchanged" and by_name["wire"].http_status == 304
        assert by_name["daily"].http_status == 304
        wire_requests = [r for r in server.requests if r.path == "/wire.xml"]
        assert wire_requests[-1].headers.get("If-None-Match") == '"wire-1"'
        daily_requests = [r for r in server.requests if r.path == "/daily.xml"]
        assert daily_requests[-1].headers.get("If-Modified-Since") == "Sat, 28 Nov 2026 10:00:00 GMT"
        sources = {s.name: s for s in await app.store.list_sources()}
        assert sources["gone"].failure_count == 2

        # The feed publishes a new story: it is announced, once.
        server.add(
            "/wire.xml", rss("Wire", [("r1", *RELEASE), ("c1", *CHIPS), ("w1", *WHISKY)]), etag='"wire-2"'
        )
        await make_due(app)
        third = await app.poller.poll_due()
        assert {o.name: o.new for o in third.outcomes}["wire"] == 1
        assert [s.title for s in announced] == [RELEASE[0]]
        assert "release" in announced[0].classification.topics
    finally:
        await app.close()


async def test_restart_keeps_state(tmp_path: Path, server: FeedServer) -> None:
    settings = settings_for(tmp_path, server)
    app = await App.build(settings)
    await app.poller.poll_due()
    await app.close()
    app = await App.build(settings)
    try:
        await make_due(app)
        report = await app.poller.poll_due()
        assert {o.name: o.http_status for o in report.outcomes}["wire"] == 304
        assert (await app.store.counts())["stories"] == 3
    finally:
        await app.close()


async def _cli(*args: str, env: dict[str, str], stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    out, err = await proc.communicate(stdin)
    return proc.returncode or 0, out.decode(), err.decode()


def cli_env(tmp_path: Path, server: FeedServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FW_")}
    env.update(
        FW_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}",
        FW_SOURCES_FILE=str(write_sources(tmp_path / "sources.toml", server)),
        FW_ALLOW_PRIVATE_SOURCES="true",
        FW_PARSE_WORKERS="-1",
        COLUMNS="200",
    )
    return env


async def test_cli_poll_once_then_304s_and_stories(tmp_path: Path, server: FeedServer) -> None:
    env = cli_env(tmp_path, server)
    code, out, _ = await _cli("poll", "--once", env=env)
    assert code == 0
    assert (
        "wire" in out
        and "new" in out
        and "HTTP 404" in out
        and "6 sources: 2 new, 0 unchanged, 4 failed" in out
    )
    before = server.count("/wire.xml")
    # Nothing is due right after a poll; make everything due again through the database.
    code, out, _ = await _cli("poll", "--once", env=env)
    assert "No source is due" in out and server.count("/wire.xml") == before

    app = await App.build(
        Settings(
            database_url=env["FW_DATABASE_URL"],
            sources_file=Path(env["FW_SOURCES_FILE"]),
            allow_private_sources=True,
            parse_workers=-1,
        )
    )
    await make_due(app)
    await app.close()
    code, out, _ = await _cli("poll", "--once", env=env)
    assert "0 new, 2 unchanged, 4 failed" in out
    assert [r.headers.get("If-None-Match") for r in server.requests if r.path == "/wire.xml"][
        -1
    ] == '"wire-1"'

    code, out, _ = await _cli("stories", "--since", "48h", "--json", env=env)
    rows = json.loads(out)
    assert code == 0 and {r["title"] for r in rows} == {CHIPS[0], CHIPS_OTHER_OUTLET}
    assert all("natsec" in r["topics"] for r in rows)
    code, _out, err = await _cli("stories", "--topic", "nope", env=env)
    assert code == 2 and "unknown topic" in err and "natsec" in err


async def test_cli_bad_setting_is_one_clear_line(tmp_path: Path, server: FeedServer) -> None:
    env = cli_env(tmp_path, server)
    env["FW_FETCH_CONCURRENCY"] = "many"
    code, _out, err = await _cli("poll", "--once", env=env)
    assert code == 2
    assert err.strip().count("\n") == 0 and "FW_FETCH_CONCURRENCY" in err


async def test_cli_classify_contract(tmp_path: Path, server: FeedServer) -> None:
    lines = (
        json.dumps({"title": CHIPS[0], "summary": CHIPS[1]}) + "\n" + json.dumps({"title": WHISKY[0]}) + "\n"
    )
    code, out, _ = await _cli("classify", "--explain", env=cli_env(tmp_path, server), stdin=lines.encode())
    first, second = (json.loads(line) for line in out.splitlines())
    assert code == 0
    assert "natsec" in first["topics"] and set(first["scores"]) >= {"distillation", "ip", "natsec", "release"}
    assert first["evidence"]["natsec"]
    assert second["topics"] == []


async def test_a_failed_parse_keeps_the_old_etag_so_nothing_is_lost(
    tmp_path: Path, server: FeedServer
) -> None:
    app = await App.build(settings_for(tmp_path, server))
    try:
        await app.poller.poll_due()
        # The feed changes, but this response is broken: its ETag must not be remembered, or
        # the next poll would be answered 304 and the new items never read.
        server.add(
            "/wire.xml", b"<html><body>maintenance</body></html>", content_type="text/html", etag='"wire-2"'
        )
        await make_due(app)
        report = await app.poller.poll_due()
        assert {o.name: o.status for o in report.outcomes}["wire"] == "failed"
        assert {s.name: s.etag for s in await app.store.list_sources()}["wire"] == '"wire-1"'
        server.add(
            "/wire.xml", rss("Wire", [("r1", *RELEASE), ("c1", *CHIPS), ("w1", *WHISKY)]), etag='"wire-3"'
        )
        await make_due(app)
        report = await app.poller.poll_due()
        assert {o.name: o.new for o in report.outcomes}["wire"] == 1
    finally:
        await app.close()


async def test_differently_worded_coverage_joins_a_stored_cluster_through_its_summary(tmp_path: Path) -> None:
    # Outlets rarely share a headline: these share two words ("Google", "engineer"; the headline-only
    # rule needed far more) and the summaries carry the names. The second outlet is polled by a
    # fresh process, so the cluster index is rebuilt from the store, summaries included.
    first = rss(
        "Wire",
        [
            (
                "d1",
                "Former Google engineer convicted over AI secrets",
                "A federal jury in San Francisco found Linwei Ding guilty of stealing Google's AI chip "
                "and supercomputer trade secrets for two Chinese companies.",
            )
        ],
    )
    second = rss(
        "Daily",
        [
            (
                "d2",
                "Jury finds ex-Google engineer guilty of economic espionage for China",
                "Linwei Ding, who worked on Google's AI supercomputer infrastructure, was convicted of "
                "stealing trade secrets for Chinese companies, a San Francisco federal jury found.",
            )
        ],
    )
    async with FeedServer() as srv:
        srv.add("/wire.xml", first)
        srv.add("/daily.xml", second)
        settings = settings_for(tmp_path, srv)
        settings.sources_file.write_text(f'[[sources]]\nname = "wire"\nurl = "{srv.url("/wire.xml")}"\n')
        app = await App.build(settings)
        try:
            await app.poller.poll_due()
        finally:
            await app.close()
        settings.sources_file.write_text(
            f'[[sources]]\nname = "wire"\nurl = "{srv.url("/wire.xml")}"\n\n'
            f'[[sources]]\nname = "daily"\nurl = "{srv.url("/daily.xml")}"\n'
        )
        app = await App.build(settings)
        try:
            await app.poller.poll_due()
            stored = await app.store.list_stories(since=NOW - timedelta(days=1), relevant_only=False)
        finally:
            await app.close()
    ding = [s for s in stored if "guilty" in s.title or "convicted" in s.title]
    assert len(ding) == 2 and len({s.cluster_id for s in ding}) == 1, [(s.title, s.cluster_id) for s in ding]
    assert sorted(ding[0].outlets) == ["daily", "wire"]
