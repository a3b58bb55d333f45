"""Webhook destinations from the TOML file: validation and sync into the destinations table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.platforms.webhooks import WebhooksConfigError, WebhookSync, load_webhooks, platform_of
from bot.store import models as m
from tests.support.chat_env import TOPICS, ChatEnv, chat_env

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[ChatEnv]:
    async with chat_env(database_url) as e:
        yield e


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "webhooks.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_example_is_valid() -> None:
    specs = load_webhooks(REPO / "config/webhooks.example.toml", TOPICS)
    assert [(s.name, s.platform) for s in specs] == [
        ("policy-team", "discord_webhook"),
        ("research-slack", "slack_webhook"),
    ]
    research = specs[1]
    assert [(t.topic, t.mode, t.min_score) for t in research.topics] == [
        ("distillation", "both", 0.7),
        ("release", "both", 0.0),
    ]
    assert (research.digest_frequency, research.digest_weekday, research.exclude) == (
        "weekly",
        "fri",
        ("whisky",),
    )


def test_platform_from_url() -> None:
    assert platform_of("https://discord.com/api/webhooks/1/abc") == "discord_webhook"
    assert platform_of("https://discordapp.com/api/webhooks/1/abc") == "discord_webhook"
    assert platform_of("https://hooks.slack.com/services/T/B/x") == "slack_webhook"
    assert platform_of("https://example.com/hook") is None


def test_missing_file_means_no_webhooks(tmp_path: Path) -> None:
    assert load_webhooks(tmp_path / "absent.toml", TOPICS) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[[webhooks]]\nname = "a"\nurl = "https://discord.com/api/webhooks/1/x"\ntopics = ["crypto"]',
            "unknown topic 'crypto'",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://example.com/x"\ntopics = ["ip"]',
            "cannot tell the platform",
        ),
        ('[[webhooks]]\nname = "a"\nurl = "ftp://x"\ntopics = ["ip"]', "'url' must be an https://"),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://hooks.slack.com/services/a/b/c"\ntopics = ["ip"]\ntimezone = "Mars/Base"',
            "unknown timezone 'Mars/Base'",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://hooks.slack.com/services/a/b/c"\ntopics = ["ip"]\ndigest_time = "8am"',
            "'digest_time' must be HH:MM",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://hooks.slack.com/services/a/b/c"\ntopics = []',
            "at least one",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://hooks.slack.com/services/a/b/c"\ntopics = [{topic = "ip", mode = "loud"}]',
            "mode of 'ip'",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://hooks.slack.com/services/a/b/c"\ntopics = ["ip"]\n'
            '[[webhooks]]\nname = "a"\nurl = "https://hooks.slack.com/services/a/b/d"\ntopics = ["ip"]',
            "used twice",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://hooks.slack.com/services/a/b/c"\ntopics = ["ip"]\ncolour = 1',
            "unknown key(s) colour",
        ),
        ("[[webhooks]\n", "invalid TOML"),
    ],
)
def test_invalid_files_name_the_problem(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(WebhooksConfigError, match=r"webhooks\.toml") as info:
        load_webhooks(write(tmp_path, body), TOPICS)
    assert message in str(info.value)
    assert "hooks.slack.com/services/a/b/c" not in str(info.value)  # URLs are secrets


async def test_sync_adds_updates_and_deactivates(env: ChatEnv, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[webhooks]]
name = "team-a"
url = "https://discord.com/api/webhooks/1/token-a"
topics = ["natsec", {topic = "ip", mode = "digest", min_score = 0.5}]
timezone = "Europe/Berlin"
digest_time = "07:00"
keywords = {include = ["nvidia"], exclude = ["whisky"]}

[[webhooks]]
name = "team-b"
platform = "slack"
url = "https://hooks.example.org/services/x"
topics = ["release"]
frequency = "off"
""",
    )
    await WebhookSync(env.store, path, tuple(TOPICS)).start()
    dests = {d.channel_id: d for d in await env.rows(m.Destination)}
    a, b = dests["team-a"], dests["team-b"]
    assert (a.platform, a.webhook_url, a.timezone, a.digest_time) == (
        "discord_webhook",
        "https://discord.com/api/webhooks/1/token-a",
        "Europe/Berlin",
        "07:00",
    )
    assert a.next_digest_at is not None and b.next_digest_at is None and b.platform == "slack_webhook"
    subs = sorted((s.destination_id, s.topic, s.mode, s.min_score) for s in await env.rows(m.Subscription))
    assert subs == sorted(
        [(a.id, "natsec", "both", 0.0), (a.id, "ip", "digest", 0.5), (b.id, "release", "both", 0.0)]
    )
    assert sorted((k.kind, k.keyword) for k in await env.rows(m.ChannelKeyword)) == [
        ("exclude", "whisky"),
        ("include", "nvidia"),
    ]

    # The delivery side marks team-a revoked; the same URL does not bring it back, a new one does.
    async with env.store.sessions.begin() as session:
        row = await session.get(m.Destination, a.id)
        assert row is not None
        row.active, row.inactive_reason = False, "webhook deleted (HTTP 404)"
    counts = await env.store.sync_webhooks(load_webhooks(path, TOPICS))
    assert counts == {"added": 0, "updated": 2, "deactivated": 0}
    assert (await env.destination("team-a")).active is False  # type: ignore[union-attr]

    write(
        tmp_path,
        """
[[webhooks]]
name = "team-a"
url = "https://discord.com/api/webhooks/1/token-new"
topics = ["release"]
""",
    )
    counts = await env.store.sync_webhooks(load_webhooks(path, TOPICS))
    assert counts == {"added": 0, "updated": 1, "deactivated": 1}
    dests = {d.channel_id: d for d in await env.rows(m.Destination)}
    assert dests["team-a"].active is True and dests["team-a"].webhook_url.endswith("token-new")
    assert (dests["team-b"].active, dests["team-b"].inactive_reason) == (
        False,
        "removed from the webhooks file",
    )
    assert [(s.topic) for s in await env.rows(m.Subscription, m.Subscription.destination_id == a.id)] == [
        "release"
    ]
    assert await env.rows(m.ChannelKeyword) == []

    # Back in the file: reactivated.
    write(
        tmp_path,
        """
[[webhooks]]
name = "team-b"
platform = "slack"
url = "https://hooks.example.org/services/x"
topics = ["release"]
""",
    )
    await env.store.sync_webhooks(load_webhooks(path, TOPICS))
    assert (await env.destination("team-b")).active is True  # type: ignore[union-attr]


async def test_a_broken_file_stops_the_start_and_keeps_the_previous_configuration(
    env: ChatEnv, tmp_path: Path
) -> None:
    path = write(
        tmp_path, '[[webhooks]]\nname = "a"\nurl = "https://hooks.slack.com/services/a/b/c"\ntopics = ["ip"]'
    )
    await WebhookSync(env.store, path, tuple(TOPICS)).start()
    write(
        tmp_path,
        '[[webhooks]]\nname = "a"\nurl = "https://hooks.slack.com/services/a/b/c"\ntopics = ["nope"]',
    )
    with pytest.raises(WebhooksConfigError, match="unknown topic 'nope'"):
        await WebhookSync(env.store, path, tuple(TOPICS)).start()
    assert [s.topic for s in await env.rows(m.Subscription)] == ["ip"]
