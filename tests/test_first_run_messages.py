"""What a user sees when every source fails (no network) and on the next start, while sources back off
(robustness issue: "offline and first-run experience")."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import App
from bot.cli import _say_what_run_waits_for
from bot.pipeline.poller import PollReport, SourceOutcome
from bot.scheduler import _log_report
from bot.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def test_many_failures_are_one_line_with_a_no_network_hint(caplog: pytest.LogCaptureFixture) -> None:
    report = PollReport(started=datetime.now(UTC))
    report.outcomes = [
        SourceOutcome(i, f"S{i}", "failed", error=f"DNS lookup failed for host{i}.example") for i in range(75)
    ]
    with caplog.at_level(logging.WARNING, logger="bot.scheduler"):
        _log_report(report)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("75 sources failed: 75 × DNS lookup failed — no network?")
    assert "frontierwatch sources list" in warnings[0]


def test_a_few_failures_are_named_one_by_one(caplog: pytest.LogCaptureFixture) -> None:
    report = PollReport(started=datetime.now(UTC))
    report.outcomes = [SourceOutcome(1, "Wire", "failed", error="HTTP 404 Not Found")]
    with caplog.at_level(logging.WARNING, logger="bot.scheduler"):
        _log_report(report)
    assert [r.getMessage() for r in caplog.records] == ["source 'Wire' failed: HTTP 404 Not Found"]


async def test_a_start_while_every_source_backs_off_says_what_it_waits_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = tmp_path / "sources.toml"
    sources.write_text('[[sources]]\nname = "Wire"\nurl = "https://wire.example/feed.xml"\n')
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'fw.sqlite3'}",
        sources_file=sources,
        topics_file=REPO / "config" / "topics.toml",
        parse_workers=-1,
    )
    app = await App.build(settings)
    try:
        [source] = await app.store.list_sources()
        later = datetime.now(UTC) + timedelta(minutes=40)
        await app.store.save_fetch_states([{"id": source.id, "next_poll_at": later, "failure_count": 3}])
        await _say_what_run_waits_for(app)
    finally:
        await app.close()
    err = capsys.readouterr().err
    assert "Nothing is due yet: the next poll is 'Wire' at" in err
    assert "1 sources are backing off after failures" in err and "poll --once --all" in err
