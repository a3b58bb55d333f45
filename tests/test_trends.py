"""Trends: events (clusters) per topic per day, top outlets and names per topic, on SQLite and
PostgreSQL; and the chart PNG (valid, fixed size, deterministic, changes with the data)."""

from __future__ import annotations

import json
import struct
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bot.store.trends import TopicSeries, TrendsStore, weekly_series
from bot.trends.chart import CHART_HEIGHT_PX, CHART_WIDTH_PX, render_chart_png
from bot.trends.entities import CaseEvidence, title_entities
from tests.support.newsdb import add_story, open_store

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


async def test_trends_count_events_per_topic_day_with_outlets_and_names(database_url: str) -> None:
    store = await open_store(database_url)
    try:
        day = NOW - timedelta(days=3)
        # One event told by five outlets: one point, and each outlet covered one event.
        first = await add_story(
            store,
            "OpenAI accuses DeepSeek of distilling its models",
            topics={"distillation": 0.9, "natsec": 0.8},
            outlet="Reuters",
            summary="OpenAI told the House Select Committee that DeepSeek used its outputs.",
            published=day,
        )
        for outlet in ("Bloomberg", "The Verge", "Axios", "Semafor"):
            await add_story(
                store,
                f"OpenAI says DeepSeek distilled its models ({outlet})",
                topics={"distillation": 0.9},
                outlet=outlet,
                summary="The claim by OpenAI concerns DeepSeek and its R1 model.",
                cluster_id=first.cluster_id,
                published=day + timedelta(hours=2),
            )
        await add_story(
            store,
            "Anthropic releases Claude Opus 5 to developers",
            topics={"release": 0.9},
            outlet="Reuters",
            summary="The new model from Anthropic, Claude Opus 5, is available today via the API.",
            published=NOW - timedelta(days=1),
        )
        await add_story(  # below threshold: not an event of the topic
            store,
            "A whisky distillery opens",
            topics={"distillation": 0.2},
            published=NOW - timedelta(days=1),
        )
        await add_story(  # older than the window
            store, "Old export rule", topics={"natsec": 0.9}, published=NOW - timedelta(days=120)
        )
        trends = await TrendsStore(store.engine).trends(
            days=90, now=NOW, topics=("distillation", "ip", "natsec", "release")
        )
        assert trends.first_day == date(2025, 12, 29) and trends.last_day == date(2026, 3, 28)
        assert len(trends.daily.starts) == 90
        assert trends.daily.total("distillation") == 1  # five outlets, one event
        assert trends.daily.total("natsec") == 1
        assert trends.daily.total("release") == 1
        assert trends.daily.total("ip") == 0
        index = trends.daily.starts.index(day.date())
        assert trends.daily.counts["distillation"][index] == 1
        assert trends.outlets["distillation"][:1] == [("Axios", 1)]  # ties by name
        assert {o for o, _ in trends.outlets["distillation"]} == {
            "Reuters",
            "Bloomberg",
            "The Verge",
            "Axios",
            "Semafor",
        }
        names = dict(trends.entities["distillation"])
        assert names["OpenAI"] == 1 and names["DeepSeek"] == 1  # once per event, not per outlet
        assert "Claude Opus 5" in dict(trends.entities["release"])
        assert trends.to_dict()["totals"]["distillation"] == 1

        # The console's chart reads the day counts alone: the same series as the page's.
        daily = await TrendsStore(store.engine).daily(
            days=90, now=NOW, topics=("distillation", "ip", "natsec", "release")
        )
        assert daily == trends.daily

        weekly = await TrendsStore(store.engine).weekly(weeks=12, now=NOW, topics=("distillation", "release"))
        assert weekly.bucket == "week" and len(weekly.starts) == 12
        assert weekly.starts[-1] == date(2026, 3, 22)  # the last week ends today
        assert weekly.counts["distillation"][-1] == 1 and weekly.counts["release"][-1] == 1
        assert TopicSeries.from_payload(weekly.to_payload()) == weekly
    finally:
        await store.engine.dispose()


def test_days_are_cut_in_the_callers_time_zone() -> None:
    late_evening_utc = datetime(2026, 3, 27, 23, 30, tzinfo=UTC)  # already the 28th in Tokyo
    events = [(1, "natsec", late_evening_utc)]
    utc = weekly_series(events, NOW, weeks=1, timezone="UTC")
    tokyo = weekly_series(events, NOW, weeks=1, timezone="Asia/Tokyo")
    assert utc.counts["natsec"] == (1,) and tokyo.counts["natsec"] == (1,)
    from bot.store.trends import bucket_events

    by_day_utc = bucket_events(events, first_day=date(2026, 3, 27), buckets=2)
    by_day_tokyo = bucket_events(events, first_day=date(2026, 3, 27), buckets=2, timezone="Asia/Tokyo")
    assert by_day_utc.counts["natsec"] == (1, 0)
    assert by_day_tokyo.counts["natsec"] == (0, 1)


def test_names_come_from_shape_and_sentence_case_not_title_case() -> None:
    evidence = CaseEvidence()
    evidence.add_story(
        "OpenAI Accuses DeepSeek Of Distilling Its Models",  # Title Case: no evidence from it
        "The accusation by OpenAI says the Chinese lab distilled models; the Commerce Department is watching.",
    )
    evidence.add_story("Lab releases a model", "It releases the weights of Qwen3 and Llama 4 today.")
    assert title_entities("OpenAI Accuses DeepSeek Of Distilling Its Models", evidence) == [
        "OpenAI",
        "DeepSeek",
    ]
    assert title_entities("Commerce Department Releases Llama 4 rules", evidence) == [
        "Commerce Department",
        "Llama 4",
    ]
    assert title_entities("US tightens rules on H100 exports", evidence) == ["US", "H100"]


def test_quantities_are_not_names_but_stay_part_of_one() -> None:
    evidence = CaseEvidence()
    evidence.add_story("Lab releases a model", "It releases the weights of Qwen3 and Llama 3 today.")
    # A parameter count, a sum, a multiple, a resolution, an ordinal, a decade: no trend of their own.
    assert title_entities("Startup raises $40B to train 70B and 1.5T models 10x faster in 4K", evidence) == []
    assert title_entities("Second place for 2nd try at 1990s tech", evidence) == []
    # After a name, the size is part of the model's name; shapes such as H100, A3B or 5G stay names.
    assert title_entities("Meta ships Llama 3 70B", evidence) == ["Llama 3 70B"]
    assert title_entities("H100 and A3B and 5G", evidence) == ["H100", "A3B", "5G"]


def _series(last: int) -> TopicSeries:
    starts = tuple(date(2026, 1, 5) + timedelta(weeks=i) for i in range(12))
    return TopicSeries("week", starts, {"natsec": (1,) * 11 + (last,), "release": (0, 2) * 6})


def test_chart_is_a_deterministic_png_of_fixed_size_that_changes_with_the_data() -> None:
    first = render_chart_png(_series(3), "Frontier Watch: events per topic per week")
    again = render_chart_png(_series(3), "Frontier Watch: events per topic per week")
    other = render_chart_png(_series(9), "Frontier Watch: events per topic per week")
    assert png_size(first) == (CHART_WIDTH_PX, CHART_HEIGHT_PX)
    assert first == again  # no timestamp or version in the file
    assert other != first
    assert b"Software" not in first and b"tIME" not in first
    empty = render_chart_png(TopicSeries("week", _series(0).starts, {}), "Nothing")
    assert png_size(empty) == (CHART_WIDTH_PX, CHART_HEIGHT_PX)


async def test_trends_cli_prints_json_and_writes_the_chart(tmp_path: Path) -> None:
    from tests.test_cli import base_env, run_cli

    env = base_env(tmp_path)
    store = await open_store(env["FW_DATABASE_URL"])
    try:
        await add_story(
            store,
            "OpenAI accuses DeepSeek of distilling its models",
            topics={"distillation": 0.9},
            summary="OpenAI said DeepSeek used its outputs.",
            published=datetime.now(UTC) - timedelta(days=1),
        )
    finally:
        await store.engine.dispose()
    chart = tmp_path / "trends.png"
    code, out, err = await run_cli("trends", "--days", "30", "--json", "--chart", str(chart), env=env)
    assert code == 0, err
    data = json.loads(out)
    assert len(data["daily"]["starts"]) == 30 and data["totals"]["distillation"] == 1
    assert data["outlets"]["distillation"] == [{"outlet": "Reuters", "events": 1}]
    assert png_size(chart.read_bytes()) == (CHART_WIDTH_PX, CHART_HEIGHT_PX)
    code, out, err = await run_cli("trends", "--days", "30", env=env)
    assert code == 0 and "distillation: 1 events" in out and "outlets: Reuters 1" in out
