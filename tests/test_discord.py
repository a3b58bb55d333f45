"""`/watch` on Discord: the real discord.py client and CommandTree against the DiscordAPI stand-in.

INTERACTION_CREATE payloads are dispatched through ``CommandTree._call`` (discord.py's own entry
point for the gateway event); the interaction callback that reaches the stand-in is what a user sees,
and every request body is validated against Discord's OpenAPI spec.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.http import Route
from pydantic import SecretStr

from bot.platforms.discord_app import (
    PERMISSIONS,
    REPLY_WITHIN,
    SHOWN_TO_CHANNEL,
    DiscordCommands,
    build_client,
    invite_url,
    reply_embed,
)
from bot.settings import Settings
from bot.store import models as m
from handlers import Reply
from tests.support.chat_env import HTML, RSS, ChatEnv, chat_env
from tests.support.discord_api import APP_ID, DiscordAPI, user
from tests.support.feedserver import FeedServer

GUILD, CHANNEL = "400000000000000001", "400000000000000002"
MANAGE = discord.Permissions(view_channel=True, send_messages=True, manage_channels=True).value
MEMBER = discord.Permissions(view_channel=True, send_messages=True).value
_ids = itertools.count(500000000000000000)


def options_for(path: list[str], options: dict[str, Any], focused: str | None = None) -> list[dict[str, Any]]:
    """Nest `options` under the subcommand path (["digest", "time"] → group → subcommand)."""
    leaf = []
    for name, value in options.items():
        kind = (
            4
            if isinstance(value, int) and not isinstance(value, bool)
            else 10
            if isinstance(value, float)
            else 3
        )
        option: dict[str, Any] = {"name": name, "type": kind, "value": value}
        if name == focused:
            option["focused"] = True
        leaf.append(option)
    if len(path) == 1:
        return [{"name": path[0], "type": 1, "options": leaf}]
    return [{"name": path[0], "type": 2, "options": [{"name": path[1], "type": 1, "options": leaf}]}]


def interaction_payload(
    path: list[str],
    options: dict[str, Any],
    *,
    permissions: int,
    kind: int = 2,
    focused: str | None = None,
    channel: str = CHANNEL,
    guild_command: bool = True,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "9000",
        "name": "watch",
        "type": 1,
        "options": options_for(path, options, focused),
    }
    if guild_command:  # Discord names the guild a guild-registered command belongs to
        data["guild_id"] = GUILD
    return {
        "id": str(next(_ids)),
        "application_id": APP_ID,
        "type": kind,
        "token": f"tok{next(_ids)}",
        "version": 1,
        "guild_id": GUILD,
        "channel_id": channel,
        "channel": {
            "id": channel,
            "type": 0,
            "guild_id": GUILD,
            "name": "ai-policy",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
        },
        "member": {
            "user": user("400000000000000009", "alice"),
            "roles": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "permissions": str(permissions),
            "flags": 0,
        },
        "app_permissions": str(PERMISSIONS.value),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD},
        "context": 0,
        "attachment_size_limit": 8388608,
        "data": data,
    }


@dataclass
class DiscordHarness:
    env: ChatEnv
    api: DiscordAPI
    feeds: FeedServer
    client: discord.Client
    tree: app_commands.CommandTree[discord.Client]
    commands: DiscordCommands

    async def dispatch(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Run one interaction through the tree; returns the callback body (or the follow-up)."""
        interaction = discord.Interaction(data=payload, state=self.client._connection)
        await self.tree._call(interaction)
        callbacks = [r for r in self.api.calls("POST", f"/api/v10/interactions/{payload['id']}/") if r.body]
        assert len(callbacks) == 1, callbacks
        body = callbacks[0].body
        if body["type"] == 5:  # deferred: the answer is the last follow-up webhook message
            followups = self.api.calls("POST", f"/api/v10/webhooks/{APP_ID}/{payload['token']}")
            assert body["data"]["flags"] & 64 and 1 <= len(followups) <= 2, followups
            if len(followups) == 2:  # a public answer after the private "thinking…"
                assert followups[0].body["flags"] & 64 and not followups[1].body.get("flags", 0) & 64
                assert followups[0].body["content"] == SHOWN_TO_CHANNEL
            return {"type": 5, "data": followups[-1].body}
        assert isinstance(body, dict)
        return body

    async def watch(
        self, *path: str, manage: bool = True, channel: str = CHANNEL, **options: Any
    ) -> dict[str, Any]:
        payload = interaction_payload(
            list(path),
            options,
            permissions=MANAGE if manage else MEMBER,
            channel=channel,
            guild_command=self.commands.guild_id is not None,
        )
        return await self.dispatch(payload)


def embed_text(body: dict[str, Any]) -> str:
    embed = body["data"]["embeds"][0]
    parts = [embed["title"], embed.get("description") or ""]
    parts += [f"{f['name']} {f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


def ephemeral(body: dict[str, Any]) -> bool:
    return bool(body["data"].get("flags", 0) & 64)


@pytest.fixture
def route_base() -> Iterator[None]:
    original = Route.BASE
    yield
    Route.BASE = original


async def _harness(database_url: str, shared_dir: Path, **settings: Any) -> AsyncIterator[DiscordHarness]:
    async with DiscordAPI(shared=shared_dir) as api, FeedServer() as feeds, chat_env(database_url) as env:
        feeds.add("/feed.xml", RSS)
        feeds.add("/slow.xml", RSS, delay=0.5)
        feeds.add("/page.html", HTML, content_type="text/html")
        config = Settings(
            database_url=database_url,
            discord_api_base=api.api_base,
            discord_token=SecretStr("test-token"),
            **settings,
        )
        client, tree, commands = build_client(config, env.deps)
        # Production's budget: a loaded CI machine must not turn quick answers into deferrals.
        # Tests of the slow path lower it themselves.
        commands.reply_within = REPLY_WITHIN
        await client.login("test-token")
        try:
            yield DiscordHarness(env, api, feeds, client, tree, commands)
        finally:
            await client.close()
        assert api.spec_errors == []


@pytest.fixture
async def dc(database_url: str, shared_dir: Path, route_base: None) -> AsyncIterator[DiscordHarness]:
    async for harness in _harness(database_url, shared_dir, discord_guild_id=int(GUILD)):
        yield harness


# ---------------------------------------------------------------------------------------- every command
async def test_every_command_end_to_end(dc: DiscordHarness) -> None:
    env = dc.env
    body = await dc.watch("subscribe", topic="distillation", mode="alerts", min_score=0.7)
    assert body["type"] == 4 and not ephemeral(body)
    assert "Subscribed this channel to `distillation`" in embed_text(body)
    [sub] = await env.rows(m.Subscription)
    assert (sub.topic, sub.mode, sub.min_score) == ("distillation", "alerts", 0.7)
    dest = await env.destination(CHANNEL)
    assert dest is not None and (dest.platform, dest.workspace_id, dest.name) == (
        "discord",
        GUILD,
        "ai-policy",
    )

    body = await dc.watch("topics", manage=False)
    assert ephemeral(body) and "`distillation` — subscribed (alerts)" in embed_text(body)

    body = await dc.watch("digest", "time", time="18:45", timezone="Asia/Kolkata")
    assert "18:45 Asia/Kolkata" in embed_text(body)
    dest = await env.destination(CHANNEL)
    assert dest is not None and (dest.digest_time, dest.timezone) == ("18:45", "Asia/Kolkata")
    body = await dc.watch("digest", "frequency", frequency="weekly", day="wed")
    dest = await env.destination(CHANNEL)
    assert dest is not None and (dest.digest_frequency, dest.digest_weekday) == ("weekly", "wed")
    assert dest.next_digest_at is not None and dest.next_digest_at.weekday() == 2

    body = await dc.watch("digest", "now")
    assert ephemeral(body) and "not enabled" in embed_text(body)
    env.enable_digests()
    body = await dc.watch("digest", "now")
    assert "3 stories" in embed_text(body) and env.digests.calls == [dest.id]

    url = dc.feeds.url("/feed.xml")
    body = await dc.watch("sources", "add", url=url)
    assert "Now watching Policy Wire" in embed_text(body)
    [source] = await env.rows(m.Source)
    assert (source.origin, source.owner_scope) == ("channel", f"discord:{GUILD}:{CHANNEL}")
    body = await dc.watch("sources", "list", manage=False)
    assert f"`{source.id}` Policy Wire" in embed_text(body)
    body = await dc.watch("sources", "remove", id=source.id)
    assert "Stopped watching" in embed_text(body) and await env.rows(m.ChannelSource) == []

    body = await dc.watch("keywords", "add", keywords='h20 "export controls" -whisky')
    assert "`h20`, `export controls`, `-whisky`" in embed_text(body)
    body = await dc.watch("keywords", "list", manage=False)
    assert "`export controls`" in embed_text(body)
    body = await dc.watch("keywords", "remove", keywords="h20")
    assert sorted(k.keyword for k in await env.rows(m.ChannelKeyword)) == ["export controls", "whisky"]

    body = await dc.watch("search", words="distillation", manage=False)
    assert ephemeral(body) and "No stored story matches" in embed_text(body)

    body = await dc.watch("status", manage=False)
    text = embed_text(body)
    assert (
        "`distillation` — alerts, min score 0.7" in text and "Every Wednesday at 18:45 Asia/Kolkata" in text
    )

    body = await dc.watch("help", manage=False)
    assert "Manage Channels" in embed_text(body)

    body = await dc.watch("unsubscribe", topic="all")
    assert "every topic" in embed_text(body) and await env.rows(m.Subscription) == []


async def test_digest_quiet_end_to_end(dc: DiscordHarness) -> None:
    body = await dc.watch("digest", "quiet", manage=False, notice="on")
    assert ephemeral(body) and "it needs the Manage Channels permission" in embed_text(body)
    assert await dc.env.rows(m.Destination) == []
    body = await dc.watch("digest", "quiet", notice="on")
    assert body["type"] == 4 and not ephemeral(body) and "Quiet-day notice turned on." in embed_text(body)
    dest = await dc.env.destination(CHANNEL)
    assert dest is not None and dest.quiet_day_notice is True and dest.platform == "discord"
    assert "Quiet-day notice: on" in embed_text(await dc.watch("status", manage=False))
    body = await dc.watch("digest", "quiet", notice="off")
    assert "Quiet-day notice turned off." in embed_text(body)
    dest = await dc.env.destination(CHANNEL)
    assert dest is not None and dest.quiet_day_notice is False


async def test_digest_repeats_end_to_end(dc: DiscordHarness) -> None:
    body = await dc.watch("digest", "repeats", manage=False, repeats="on")
    assert ephemeral(body) and "it needs the Manage Channels permission" in embed_text(body)
    assert await dc.env.rows(m.Destination) == []
    body = await dc.watch("digest", "repeats", repeats="on")
    assert not ephemeral(body) and "repeat stories already alerted here" in embed_text(body)
    dest = await dc.env.destination(CHANNEL)
    assert dest is not None and dest.repeat_alerted_in_digest is True
    assert "Already-alerted stories: on" in embed_text(await dc.watch("status", manage=False))
    await dc.watch("digest", "repeats", repeats="off")
    dest = await dc.env.destination(CHANNEL)
    assert dest is not None and dest.repeat_alerted_in_digest is False


async def test_alerts_cap_end_to_end(dc: DiscordHarness) -> None:
    body = await dc.watch("alerts", "cap", manage=False, per_hour=2)
    assert ephemeral(body) and "it needs the Manage Channels permission" in embed_text(body)
    assert await dc.env.rows(m.Destination) == []
    body = await dc.watch("alerts", "cap", per_hour=2)
    assert not ephemeral(body) and "Alert cap set to 2 per hour." in embed_text(body)
    dest = await dc.env.destination(CHANNEL)
    assert dest is not None and dest.alert_cap_per_hour == 2
    body = await dc.watch("alerts", "cap", per_hour=0)
    assert "Alerts turned off in this channel." in embed_text(body)
    dest = await dc.env.destination(CHANNEL)
    assert dest is not None and dest.alert_cap_per_hour == 0
    assert "Alerts: off (cap 0)" in embed_text(await dc.watch("status", manage=False))
    assert "`/watch alerts cap <0-60>`" in embed_text(await dc.watch("help", manage=False))


async def test_slow_command_defers_then_follows_up(dc: DiscordHarness) -> None:
    dc.commands.reply_within = 0.05
    body = await dc.watch("sources", "add", url=dc.feeds.url("/slow.xml"))
    assert body["type"] == 5 and "Now watching Policy Wire" in embed_text(body)
    callback = [r for r in dc.api.requests if r.path.endswith("/callback")][-1]
    assert callback.body == {"type": 5, "data": {"flags": 64}}
    # A change is news for the channel even when it came late: public, after a private "done".
    assert not ephemeral(body)
    assert len(await dc.env.rows(m.ChannelSource)) == 1


async def test_slow_command_error_stays_private(dc: DiscordHarness) -> None:
    dc.commands.reply_within = 0.05
    dc.feeds.add("/slow-broken.xml", "<html><body>no feed here</body></html>", delay=0.5)
    body = await dc.watch("sources", "add", url=dc.feeds.url("/slow-broken.xml"))
    assert body["type"] == 5 and ephemeral(body), body
    [followup] = dc.api.calls("POST", f"/api/v10/webhooks/{APP_ID}/")
    assert followup.body["flags"] & 64
    assert await dc.env.rows(m.ChannelSource) == []


async def test_search_results_are_link_fields(dc: DiscordHarness) -> None:
    from datetime import UTC, datetime

    t = datetime(2026, 3, 28, tzinfo=UTC)
    async with dc.env.store.sessions.begin() as session:
        session.add(
            m.Source(
                id=1,
                key="feed:x",
                name="W",
                kind="feed",
                url="https://w.example/",
                next_poll_at=t,
                created_at=t,
            )
        )
        await session.flush()
        session.add(m.Cluster(id=1, first_seen_at=t, last_seen_at=t))
        await session.flush()
        session.add(
            m.Story(
                id=1,
                url_hash="a",
                url="https://w.example/a",
                title="A distillation fight",
                summary="",
                outlet="Wire",
                source_id=1,
                cluster_id=1,
                published_at=t,
                first_seen_at=t,
            )
        )
    body = await dc.watch("search", words="distillation", manage=False)
    [field] = body["data"]["embeds"][0]["fields"]
    assert field == {
        "name": "A distillation fight",
        "value": "[open](https://w.example/a) · Wire · 2026-03-28",
        "inline": False,
    }


# ---------------------------------------------------------------------------------------- permissions
@pytest.mark.parametrize(
    ("path", "options"),
    [
        (["subscribe"], {"topic": "natsec"}),
        (["unsubscribe"], {"topic": "natsec"}),
        (["digest", "now"], {}),
        (["digest", "time"], {"time": "08:00"}),
        (["digest", "frequency"], {"frequency": "off"}),
        (["sources", "add"], {"url": "https://example.com/feed"}),
        (["sources", "remove"], {"id": 1}),
        (["keywords", "add"], {"keywords": "x"}),
        (["keywords", "remove"], {"keywords": "x"}),
        (["digest", "quiet"], {"notice": "on"}),
        (["digest", "repeats"], {"repeats": "on"}),
        (["alerts", "cap"], {"per_hour": 3}),
    ],
)
async def test_members_without_manage_channels_are_refused(
    dc: DiscordHarness, path: list[str], options: dict[str, Any]
) -> None:
    body = await dc.watch(*path, manage=False, **options)
    assert body["type"] == 4 and ephemeral(body)
    assert "it needs the Manage Channels permission" in embed_text(body)
    assert await dc.env.rows(m.Destination) == []


# ---------------------------------------------------------------------------------------- bad input
async def test_bad_input_is_ephemeral_and_saves_nothing(dc: DiscordHarness) -> None:
    cases: list[tuple[list[str], dict[str, Any], str]] = [
        (["subscribe"], {"topic": "nat-sec"}, "Unknown topic `nat-sec`. Did you mean `natsec`?"),
        (["digest", "time"], {"time": "8.30"}, "`8.30` is not a time"),
        (
            ["digest", "time"],
            {"time": "08:30", "timezone": "America/Newyork"},
            "Did you mean `America/New_York`?",
        ),
        (["sources", "add"], {"url": dc.feeds.url("/page.html")}, "is not a feed"),
        (["sources", "add"], {"url": "file:///etc/passwd"}, "not a usable URL"),
        (["sources", "remove"], {"id": 42}, "no source with id `42`"),
    ]
    for path, options, expected in cases:
        body = await dc.watch(*path, **options)
        assert ephemeral(body) and expected in embed_text(body), (path, embed_text(body))
    dc.env.deps.max_sources_per_channel = 0
    body = await dc.watch("sources", "add", url=dc.feeds.url("/feed.xml"))
    assert ephemeral(body) and "already has 0 sources" in embed_text(body)
    assert await dc.env.rows(m.Destination) == [] and await dc.env.rows(m.Source) == []


async def test_ssrf_refusal_through_discord(database_url: str, shared_dir: Path, route_base: None) -> None:
    async for dc in _harness(database_url, shared_dir, discord_guild_id=int(GUILD)):
        dc.env.deps.check_feed = _strict_checker(dc)
        body = await dc.watch("sources", "add", url="http://169.254.169.254/latest/meta-data")
        assert ephemeral(
            body
        ) and "That URL is refused: cloud metadata address 169.254.169.254" in embed_text(body)
        assert await dc.env.rows(m.Source) == []


def _strict_checker(dc: DiscordHarness) -> Any:
    from handlers.sources import FeedValidator

    return FeedValidator(dc.env.fetcher, allow_private=False)


# ---------------------------------------------------------------------------------------- autocomplete
async def test_autocomplete_topics_and_timezones(dc: DiscordHarness) -> None:
    payload = interaction_payload(["subscribe"], {"topic": "di"}, permissions=MEMBER, kind=4, focused="topic")
    body = await dc.dispatch(payload)
    assert body["type"] == 8
    assert [c["value"] for c in body["data"]["choices"]] == ["distillation"]
    payload = interaction_payload(["unsubscribe"], {"topic": ""}, permissions=MEMBER, kind=4, focused="topic")
    body = await dc.dispatch(payload)
    assert [c["value"] for c in body["data"]["choices"]] == ["all", "distillation", "ip", "natsec", "release"]
    payload = interaction_payload(
        ["digest", "time"],
        {"time": "08:00", "timezone": "new_y"},
        permissions=MEMBER,
        kind=4,
        focused="timezone",
    )
    body = await dc.dispatch(payload)
    assert [c["value"] for c in body["data"]["choices"]] == ["America/New_York"]
    payload = interaction_payload(
        ["digest", "time"], {"time": "08:00", "timezone": "a"}, permissions=MEMBER, kind=4, focused="timezone"
    )
    assert len((await dc.dispatch(payload))["data"]["choices"]) == 25


async def test_pause_resume_and_source_pause_end_to_end(dc: DiscordHarness) -> None:
    env = dc.env
    body = await dc.watch("pause")
    assert body["type"] == 4 and not ephemeral(body)
    assert "Paused: no alerts or digests until `/watch resume`." in embed_text(body)
    dest = await env.destination(CHANNEL)
    assert dest is not None and dest.paused_by == "alice"
    body = await dc.watch("status", manage=False)
    assert "Paused by alice since" in embed_text(body)
    body = await dc.watch("resume", manage=False)
    assert ephemeral(body) and "Manage Channels" in embed_text(body)
    body = await dc.watch("resume")
    assert not ephemeral(body) and "Resumed: alerts and digests are back on" in embed_text(body)

    await dc.watch("sources", "add", url=dc.feeds.url("/feed.xml"))
    [source] = await env.rows(m.Source)
    # Autocomplete offers the feeds this channel added, by id.
    payload = interaction_payload(
        ["sources", "pause"], {"source": "pol"}, permissions=MANAGE, kind=4, focused="source"
    )
    choices = (await dc.dispatch(payload))["data"]["choices"]
    assert choices == [{"name": f"{source.id} — Policy Wire", "value": str(source.id)}]
    body = await dc.watch("sources", "pause", source=str(source.id))
    assert f"Paused Policy Wire (id `{source.id}`)" in embed_text(body)
    [link] = await env.rows(m.ChannelSource)
    assert link.paused_at is not None and link.paused_by == "alice"
    body = await dc.watch("sources", "resume", source="Policy Wire")
    assert "it is polled again now" in embed_text(body)
    body = await dc.watch("sources", "pause", source="Nope")
    assert ephemeral(body) and "This channel added no source `Nope`" in embed_text(body)


# ---------------------------------------------------------------------------------------- sync and invite
async def test_guild_sync_payload(dc: DiscordHarness) -> None:
    synced = await dc.commands.sync(dc.tree)
    assert [c.name for c in synced] == ["watch"]
    [put] = dc.api.calls("PUT", f"/api/v10/applications/{APP_ID}/guilds/{GUILD}/commands")
    [watch] = put.body
    assert watch["default_member_permissions"] is None
    assert watch["contexts"] == [0] and watch["integration_types"] == [0] and watch["dm_permission"] is False
    subs = {o["name"]: o for o in watch["options"]}
    assert set(subs) == {
        "subscribe",
        "unsubscribe",
        "topics",
        "search",
        "pause",
        "resume",
        "status",
        "help",
        "digest",
        "alerts",
        "sources",
        "keywords",
    }
    sources = {o["name"]: o for o in subs["sources"]["options"]}
    assert set(sources) == {"list", "add", "remove", "pause", "resume"}
    for name in ("pause", "resume"):
        [target] = sources[name]["options"]
        assert (target["name"], target["type"], target["autocomplete"]) == ("source", 3, True)
    assert subs["pause"]["type"] == 1 and not subs["pause"].get("options")
    digest = {o["name"]: o for o in subs["digest"]["options"]}
    assert set(digest) == {"now", "time", "frequency", "quiet", "repeats"}
    for name, option in (("quiet", "notice"), ("repeats", "repeats")):
        [switch] = digest[name]["options"]
        assert switch["name"] == option and switch["type"] == 3 and switch["required"] is True
        assert [c["value"] for c in switch["choices"]] == ["on", "off"]
    assert subs["alerts"]["type"] == 2
    alerts = {o["name"]: o for o in subs["alerts"]["options"]}
    assert set(alerts) == {"cap", "mention", "mention-list", "mention-remove"}
    cap = alerts["cap"]
    assert cap["name"] == "cap" and cap["type"] == 1
    mention = {o["name"]: o for o in alerts["mention"]["options"]}
    assert {n: (o["type"], o.get("required", False)) for n, o in mention.items()} == {
        "role": (8, False),  # a role picker: Discord sends the role's id
        "here": (5, False),
        "topic": (3, False),
        "official": (5, False),
        "min_score": (10, False),
    }
    assert mention["topic"]["autocomplete"] is True
    [rule] = alerts["mention-remove"]["options"]
    assert (rule["name"], rule["type"], rule["required"]) == ("rule", 3, True)
    [per_hour] = cap["options"]
    assert (per_hour["name"], per_hour["type"], per_hour["required"]) == ("per_hour", 4, True)
    assert (per_hour["min_value"], per_hour["max_value"]) == (0, 60)
    assert dc.api.spec_errors == []  # the whole tree, new options included, matches Discord's spec
    topic = next(o for o in subs["subscribe"]["options"] if o["name"] == "topic")
    assert topic["autocomplete"] is True and topic["required"] is True
    mode = next(o for o in subs["subscribe"]["options"] if o["name"] == "mode")
    assert [c["value"] for c in mode["choices"]] == ["alerts", "digest", "both"]
    zone = next(
        o
        for o in next(g for g in subs["digest"]["options"] if g["name"] == "time")["options"]
        if o["name"] == "timezone"
    )
    assert zone["autocomplete"] is True


async def test_global_sync_and_hiding_from_members(
    database_url: str, shared_dir: Path, route_base: None
) -> None:
    async for dc in _harness(database_url, shared_dir, discord_hide_from_members=True):
        await dc.commands.sync(dc.tree)
        [put] = dc.api.calls("PUT", f"/api/v10/applications/{APP_ID}/commands")
        [watch] = put.body
        assert watch["default_member_permissions"] == discord.Permissions(manage_channels=True).value
        # Global commands answer interactions from any guild.
        body = await dc.watch("topics", manage=False)
        assert "Topics" in embed_text(body)


def test_invite_url_has_exact_scopes_and_permissions() -> None:
    url = invite_url(APP_ID)
    assert f"client_id={APP_ID}" in url and "scope=bot+applications.commands" in url
    # + (1 << 15) Attach Files: the weekly digest's trend chart
    expected = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 35) | (1 << 38) | (1 << 16)
    assert f"permissions={expected}" in url


def test_long_replies_say_what_was_left_out() -> None:
    embed = reply_embed(Reply("info", "t" * 300, tuple(f"line {n} " + "x" * 90 for n in range(60))))
    assert len(embed.title or "") == 256 and len(embed.description or "") <= 4096
    assert (embed.description or "").endswith("more lines.")


ANALYSTS = "400000000000000077"


def mention_payload(options: dict[str, Any], *, manage: bool = True) -> dict[str, Any]:
    """`/watch alerts mention` as Discord sends it: a role option (type 8) carries the role's id,
    with the role itself under ``resolved``; booleans are type 5."""
    payload = interaction_payload(["alerts", "mention"], options, permissions=MANAGE if manage else MEMBER)
    for option in payload["data"]["options"][0]["options"][0]["options"]:
        if option["name"] == "role":
            option["type"] = 8
        elif isinstance(option["value"], bool):
            option["type"] = 5
    payload["data"]["resolved"] = {
        "roles": {
            ANALYSTS: {
                "id": ANALYSTS,
                "name": "analysts",
                "color": 0,
                "hoist": False,
                "position": 1,
                "permissions": "0",
                "managed": False,
                "mentionable": True,
                "flags": 0,
            }
        }
    }
    return payload


async def test_alerts_mention_from_the_role_option_list_and_remove(dc: DiscordHarness) -> None:
    body = await dc.dispatch(mention_payload({"role": ANALYSTS, "topic": "natsec", "official": True}))
    assert not ephemeral(body) and f"<@&{ANALYSTS}>" in embed_text(body), embed_text(body)
    assert body["data"]["allowed_mentions"] == {"parse": []}  # the reply itself pings no one
    [rule] = await dc.env.rows(m.MentionRule)
    assert (rule.target_kind, rule.target_id, rule.topic, rule.official) == (
        "group",
        ANALYSTS,
        "natsec",
        True,
    )
    for options, problem in (
        ({"role": ANALYSTS, "here": True}, "One rule mentions one target"),
        ({"topic": "natsec"}, "Say whom to mention first"),
        ({"here": True, "min_score": 0.0}, "not a score above 0"),
    ):
        refused = await dc.dispatch(mention_payload(options))
        assert ephemeral(refused) and problem in embed_text(refused), embed_text(refused)
    member = await dc.dispatch(mention_payload({"here": True}, manage=False))
    assert ephemeral(member) and "Manage Channels" in embed_text(member)
    listed = await dc.watch("alerts", "mention-list", manage=False)
    assert ephemeral(listed) and f"#{rule.id}" in embed_text(listed)
    removed = await dc.watch("alerts", "mention-remove", rule=str(rule.id))
    assert not ephemeral(removed) and await dc.env.rows(m.MentionRule) == []
    assert dc.api.spec_errors == []
