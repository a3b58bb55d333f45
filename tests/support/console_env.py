"""A web console on a test database: the same aiohttp application `serve` builds, seeded with
sources in every state, stories with topics, clusters and deliveries, channels, stories near a
topic's threshold and with readers' chat feedback (Review), and three months of events (Trends).

Used by tests/test_console.py (aiohttp test client) and tests/test_console_browser.py (chromium).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.console import Console, install_console
from bot.settings import Settings
from bot.store import models as m
from bot.store.feedback import FeedbackStore
from bot.store.repo import Store
from bot.web import build_web_app
from tests.support import newsdb

REPO = Path(__file__).resolve().parent.parent.parent
PASSWORD = "correct horse battery staple"
TOPICS = ("distillation", "ip", "natsec", "release")
# newsdb.add_story passes a topic at 0.5, so the console's thresholds agree with the stored flags.
THRESHOLDS = dict.fromkeys(TOPICS, 0.5)


def console_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'console.sqlite3'}",
        "sources_file": REPO / "config/sources.toml",
        "topics_file": REPO / "config/topics.toml",
        "webhooks_file": tmp_path / "webhooks.toml",
        "web_password": PASSWORD,
        "web_secret": "test-secret-" + "x" * 40,
    }
    values.update(overrides)
    return Settings(**values)


def console_app(settings: Settings, store: Store) -> web.Application:
    """What `serve` builds: bot/web.py's application with the console installed on it."""
    app = build_web_app(None)
    if settings.web_console_enabled:
        install_console(app, Console.build(settings, store, TOPICS, thresholds=THRESHOLDS))
    return app


async def source(store: Store, name: str, **state: Any) -> int:
    """A feed source with this fetch state (last poll, failures, pause…)."""
    source_id = await newsdb.source(store, name)
    async with store.sessions.begin() as session:
        row = await session.get(m.Source, source_id)
        assert row is not None
        for key, value in state.items():
            setattr(row, key, value)
    return source_id


@dataclass
class Seeded:
    healthy: int
    backing_off: int
    broken: int
    paused: int
    fresh: int
    discord: int
    slack: int
    gone: int
    lead_story: int
    closest_story: int  # first in Review's "near a threshold" queue
    judged_story: int  # first in Review's "chat feedback" queue (a "not relevant" click)
    release_day: date  # the UTC day the open-weights release story was published (nine days back)


async def seed(store: Store) -> Seeded:
    """Sources in each state, a dozen stories over two weeks, three channels, some deliveries."""
    now = datetime.now(UTC)
    release_noon = datetime.combine((now - timedelta(days=9)).date(), time(12), tzinfo=UTC)
    polled = {"last_polled_at": now - timedelta(minutes=12), "last_status": 200}
    healthy = await source(
        store,
        "Reuters",
        last_success_at=now - timedelta(minutes=12),
        next_poll_at=now + timedelta(minutes=18),
        **polled,
    )
    backing_off = await source(
        store,
        "Flaky Wire",
        last_polled_at=now - timedelta(minutes=5),
        last_status=503,
        last_success_at=now - timedelta(hours=2),
        failure_count=2,
        last_error="HTTP 503 Service Unavailable",
        next_poll_at=now + timedelta(minutes=40),
    )
    broken = await source(
        store,
        "Dead Feed",
        last_polled_at=now - timedelta(hours=1),
        last_status=None,
        last_success_at=now - timedelta(days=3),
        failure_count=9,
        last_error="DNS: dead.example does not resolve",
        next_poll_at=now + timedelta(hours=6),
        created_at=now - timedelta(days=30),
    )
    paused = await source(
        store,
        "Paused Blog",
        paused_at=now - timedelta(days=1),
        paused_by="alice (operator)",
        last_success_at=now - timedelta(days=1),
        **polled,
    )
    fresh = await newsdb.source(store, "Brand New Feed")
    # Official stories come from their own official source rows (newsdb makes one per outlet).
    lead = await newsdb.add_story(
        store,
        "DeepSeek accused of distilling a frontier model",
        topics={"distillation": 0.91, "ip": 0.55, "natsec": 0.2},
        outlet="Reuters",
        evidence={"distillation": ["distill", "teacher model"], "ip": ["accused"]},
        first_seen=now - timedelta(hours=3),
    )
    await newsdb.add_story(
        store,
        "Lab says rival copied its model outputs",
        topics={"distillation": 0.8},
        outlet="The Verge",
        cluster_id=lead.cluster_id,
        first_seen=now - timedelta(hours=2),
    )
    await newsdb.add_story(
        store,
        "Commerce tightens export controls on AI chips",
        topics={"natsec": 0.88},
        outlet="Commerce Department",
        official=True,
        first_seen=now - timedelta(hours=5),
    )
    await newsdb.add_story(
        store,
        "Open-weights model released with 70B parameters",
        topics={"release": 0.77},
        outlet="Hugging Face",
        # Noon of its day: a time derived from "now" can fall on the day before just after midnight.
        published=release_noon,
        first_seen=release_noon + timedelta(minutes=30),
    )
    for n in range(30):  # enough for a second page
        await newsdb.add_story(
            store,
            f"Routine AI policy note number {n}",
            topics={"natsec": 0.62},
            outlet="Policy Digest",
            # One a day (found in one poll): thirty events on one day would flatten the Trends chart.
            published=now - timedelta(days=n, hours=6),
            first_seen=now - timedelta(hours=6, minutes=n),
        )
    discord = await newsdb.add_destination(
        store,
        "discord",
        "1001",
        [("distillation", "both", 0.0), ("natsec", "digest", 0.7)],
        exclude=["crypto"],
        name="ai-news",
        timezone="Europe/Paris",
        alert_cap_per_hour=3,
        next_digest_at=now + timedelta(hours=5),
        last_digest_at=now - timedelta(hours=19),
    )
    slack = await newsdb.add_destination(
        store,
        "slack",
        "C123",
        [("ip", "alerts", 0.0)],
        include=["deepseek"],
        name="policy",
        paused_at=now - timedelta(hours=4),
        paused_by="bob",
        digest_frequency="weekly",
    )
    gone = await newsdb.add_destination(
        store, "discord", "1002", name="old-channel", active=False, inactive_reason="Discord: Unknown Channel"
    )
    async with store.sessions.begin() as session:
        session.add_all(
            [
                m.Delivery(
                    destination_id=discord,
                    cluster_id=lead.cluster_id,
                    story_id=lead.story_id,
                    kind="alert",
                    status="sent",
                    next_attempt_at=now,
                    payload={},
                    created_at=now - timedelta(hours=3),
                    sent_at=now - timedelta(hours=3),
                    platform_message_id="555",
                ),
                m.Delivery(
                    destination_id=slack,
                    cluster_id=lead.cluster_id,
                    story_id=lead.story_id,
                    kind="alert",
                    status="failed",
                    error="Slack: channel_not_found",
                    next_attempt_at=now,
                    payload={},
                    created_at=now - timedelta(hours=3),
                ),
            ]
        )
    review = await seed_review(store, discord, now)
    await seed_trends(store, now)
    return Seeded(
        healthy,
        backing_off,
        broken,
        paused,
        fresh,
        discord,
        slack,
        gone,
        lead.story_id,
        *review,
        release_noon.date(),
    )


async def seed_review(store: Store, discord: int, now: datetime) -> tuple[int, int]:
    """Stories within 0.1 of a threshold (0.5), and two alerts readers judged in chat.

    Returns (the story closest to a threshold, the story with the latest chat feedback)."""
    closest = await newsdb.add_story(
        store,
        "Model weights posted to a torrent site",
        topics={"release": 0.52, "ip": 0.46},
        outlet="Hugging Face",
        evidence={"release": ["weights"], "ip": ["leaked"]},
        first_seen=now - timedelta(hours=20),
    )
    await newsdb.add_story(
        store,
        "Startup trains a small model on a rival chatbot's answers",
        topics={"distillation": 0.47, "ip": 0.41},
        outlet="The Verge",
        evidence={"distillation": ["trained on answers"], "ip": ["rival"]},
        first_seen=now - timedelta(days=1, hours=2),
    )
    await newsdb.add_story(
        store,
        "Chip export licence decision delayed again",
        topics={"natsec": 0.54},
        outlet="Policy Digest",
        evidence={"natsec": ["export licence"]},
        first_seen=now - timedelta(days=2),
    )
    chess = await newsdb.add_story(
        store,
        "Chatbot wins a chess tournament",
        topics={"natsec": 0.81},
        outlet="The Verge",
        evidence={"natsec": ["strategic"]},
        first_seen=now - timedelta(days=4),
    )
    weights = await newsdb.add_story(
        store,
        "Open model family adds a licence for commercial use",
        topics={"release": 0.84},
        outlet="Hugging Face",
        evidence={"release": ["open model"]},
        first_seen=now - timedelta(days=6),
    )
    feedback = FeedbackStore(store.engine)
    clicks = (
        (chess, "not_relevant", [], timedelta(hours=2)),
        (weights, "wrong_topic", ["ip"], timedelta(days=1)),
    )
    for story, kind, topics, ago in clicks:
        async with store.sessions.begin() as session:
            alert = m.Delivery(
                destination_id=discord,
                cluster_id=story.cluster_id,
                story_id=story.story_id,
                kind="alert",
                status="sent",
                next_attempt_at=now,
                payload={},
                created_at=now - ago - timedelta(hours=1),
                sent_at=now - ago - timedelta(hours=1),
            )
            session.add(alert)
            await session.flush()
            alert_id = alert.id
        await feedback.record(
            alert_id,
            platform="discord",
            channel_id="1001",
            user_id="reader-7",
            kind=kind,
            topics=topics,
            known_topics=TOPICS,
            now=now - ago,
        )
    return closest.story_id, chess.story_id


TREND_NAMES = ("DeepSeek", "OpenAI", "Nvidia", "Anthropic", "Mistral", "Huawei")
TREND_HEADLINES = {
    "distillation": "{name} accused of distilling a rival model",
    "ip": "{name} sued over its training data",
    "natsec": "{name} chips found in an export probe",
    "release": "{name} releases a new open model",
}
TREND_OUTLETS = ("The Verge", "Policy Digest", "Hugging Face")


async def seed_trends(store: Store, now: datetime) -> None:
    """About thirty events over the last three months (older than a week, so the Sources page's
    "stories 7 d" stay as the tests expect), some told by two outlets (one event, two stories)."""
    for n, days_ago in enumerate(range(8, 89, 3)):
        topic = TOPICS[n % len(TOPICS)] if n % 3 else "natsec"  # natsec rises: more events
        name = TREND_NAMES[n % len(TREND_NAMES)]
        published = now - timedelta(days=days_ago, hours=n % 5)
        story = await newsdb.add_story(
            store,
            TREND_HEADLINES[topic].format(name=name),
            summary=f"Reports say {name} is at the centre of it, according to people familiar with {name}.",
            topics={topic: 0.7 + (n % 4) * 0.05},
            outlet=TREND_OUTLETS[n % len(TREND_OUTLETS)],
            published=published,
            first_seen=published + timedelta(hours=1),
        )
        if n % 4 == 0:  # the same event from a second outlet
            await newsdb.add_story(
                store,
                TREND_HEADLINES[topic].format(name=name) + ", sources say",
                summary=f"{name} declined to comment.",
                topics={topic: 0.8},
                outlet=TREND_OUTLETS[(n + 1) % len(TREND_OUTLETS)],
                cluster_id=story.cluster_id,
                published=published + timedelta(hours=2),
                first_seen=published + timedelta(hours=3),
            )
