"""`/watch` on Slack: signed slash-command requests to bot/web.py, the real slack-bolt app and
slack-sdk client against the SlackAPI stand-in, replies checked on the ack and on response_url."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from bot.platforms.slack_app import BOT_SCOPES, build_slack_app, reply_payload, slack_unescape
from bot.settings import Settings
from bot.store import models as m
from bot.web import ReplayGuard, WebServer, build_web_app
from handlers import Reply
from tests.support.chat_env import HTML, RSS, ChatEnv, chat_env
from tests.support.feedserver import FeedServer
from tests.support.slack_api import TEAM_ID, SlackAPI
from tests.support.specs import block_kit_errors

SECRET = "test-signing-secret"


def sign(body: str, ts: str, secret: str = SECRET) -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()


@dataclass
class SlackHarness:
    env: ChatEnv
    api: SlackAPI
    feeds: FeedServer
    url: str
    session: aiohttp.ClientSession
    ack_errors: list[str]

    def body(self, text: str, *, user: str = "U1", channel: str = "C1", team: str = TEAM_ID) -> str:
        return urllib.parse.urlencode(
            {
                "token": "deprecated",
                "team_id": team,
                "team_domain": "frontier",
                "channel_id": channel,
                "channel_name": "policy",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/watch",
                "text": text,
                "api_app_id": "A0000000001",
                "response_url": self.api.response_url(f"r{time.monotonic_ns()}"),
                "trigger_id": "1.2.3",
            }
        )

    async def post(
        self, body: str, *, ts: str | None = None, signature: str | None = None
    ) -> tuple[int, str]:
        ts = ts or str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature or sign(body, ts),
        }
        async with self.session.post(f"{self.url}/slack/events", data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def command(self, text: str, **kwargs: Any) -> dict[str, Any]:
        """Run `/watch text`; the reply from the ack or, for slow commands, from response_url."""
        before = len(self.api.responses)
        status, raw = await self.post(self.body(text, **kwargs))
        assert status == 200, raw
        ack = json.loads(raw) if raw else {}
        if ack.get("text") == "Working on it…":
            for _ in range(200):
                if len(self.api.responses) > before:
                    break
                await _sleep(0.05)
            reply = self.api.responses[before]
        else:
            reply = ack
        self.ack_errors.extend(block_kit_errors(reply.get("blocks") or []))
        return reply


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def settings_for(database_url: str, api: SlackAPI, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "slack_api_base": api.api_base,
        "slack_signing_secret": SecretStr(SECRET),
        "slack_bot_token": SecretStr("xoxb-test"),
    }
    values.update(extra)
    return Settings(**values)


@pytest.fixture
async def slack(database_url: str, shared_dir: Path) -> AsyncIterator[SlackHarness]:
    async with (
        SlackAPI(shared=shared_dir) as api,
        FeedServer() as feeds,
        chat_env(database_url) as env,
        aiohttp.ClientSession() as session,
    ):
        feeds.add("/feed.xml", RSS)
        feeds.add("/slow.xml", RSS, delay=0.6)
        feeds.add("/page.html", HTML, content_type="text/html")
        settings = settings_for(database_url, api, slack_admins="UALLOW")
        bolt = build_slack_app(settings, env.deps, env.store.engine, ack_within=0.3)
        server = WebServer(build_web_app(bolt, signing_secret=SECRET), port=0, host="127.0.0.1")
        await server.start()
        api.users["UADMIN"] = {"is_admin": True}
        api.users["UOWNER"] = {"is_owner": True}
        try:
            yield SlackHarness(env, api, feeds, f"http://127.0.0.1:{server.bound_port}", session, [])
        finally:
            await server.stop()
        assert api.spec_errors == []


def text_of(reply: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in reply.get("blocks", []) if "text" in b)


# ---------------------------------------------------------------------------------------- every command
async def test_every_command_end_to_end(slack: SlackHarness) -> None:
    env, admin = slack.env, {"user": "UADMIN"}

    reply = await slack.command("subscribe distillation alerts 0.7", **admin)
    assert reply["response_type"] == "in_channel" and "Subscribed this channel to `distillation`" in text_of(
        reply
    )
    [sub] = await env.rows(m.Subscription)
    assert (sub.topic, sub.mode, sub.min_score) == ("distillation", "alerts", 0.7)
    dest = await env.destination("C1")
    assert dest is not None and (dest.platform, dest.workspace_id, dest.name) == ("slack", TEAM_ID, "policy")

    reply = await slack.command("topics")
    assert reply["response_type"] == "ephemeral" and "`distillation` — subscribed (alerts)" in text_of(reply)

    reply = await slack.command("digest time 07:00 America/New_York", **admin)
    assert "07:00 America/New_York" in text_of(reply)
    dest = await env.destination("C1")
    assert dest is not None and dest.timezone == "America/New_York" and dest.next_digest_at is not None
    reply = await slack.command("digest frequency weekly mon", **admin)
    dest = await env.destination("C1")
    assert dest is not None and dest.digest_frequency == "weekly" and dest.next_digest_at is not None
    assert dest.next_digest_at.weekday() == 0

    reply = await slack.command("digest now", **admin)
    assert "not enabled" in text_of(reply)
    env.enable_digests()
    reply = await slack.command("digest now", **admin)
    assert "3 stories" in text_of(reply) and env.digests.calls == [dest.id]

    # Slack wraps a typed URL as <url|label>; the handler must get the URL.
    url = slack.feeds.url("/feed.xml")
    reply = await slack.command(f"sources add <{url}|{url.split('//')[1]}>", **admin)
    assert "Now watching Policy Wire" in text_of(reply)
    [source] = await env.rows(m.Source)
    assert (source.url, source.origin, source.owner_scope) == (url, "channel", f"slack:{TEAM_ID}:C1")
    reply = await slack.command("sources list")
    assert f"`{source.id}` Policy Wire" in text_of(reply)
    reply = await slack.command(f"sources remove {source.id}", **admin)
    assert "Stopped watching" in text_of(reply) and await env.rows(m.ChannelSource) == []

    reply = await slack.command('keywords add nvidia "export controls" -whisky', **admin)
    assert "`nvidia`, `export controls`, `-whisky`" in text_of(reply)
    reply = await slack.command("keywords list")
    assert "`export controls`" in text_of(reply)
    reply = await slack.command("keywords remove whisky", **admin)
    assert sorted(k.keyword for k in await env.rows(m.ChannelKeyword)) == ["export controls", "nvidia"]

    reply = await slack.command("search distillation")
    assert "No stored story matches distillation" in text_of(reply)

    reply = await slack.command("status")
    body = text_of(reply)
    assert (
        "`distillation` — alerts, min score 0.7" in body and "Every Monday at 07:00 America/New_York" in body
    )
    assert "Keywords: `nvidia`, `export controls`" in body

    reply = await slack.command("help")
    assert "Slack workspace admin or owner" in text_of(reply)

    reply = await slack.command("unsubscribe all", **admin)
    assert "every topic" in text_of(reply) and await env.rows(m.Subscription) == []
    assert slack.ack_errors == []


async def test_pause_resume_and_source_pause_end_to_end(slack: SlackHarness) -> None:
    env, admin = slack.env, {"user": "UADMIN"}
    reply = await slack.command("pause", **admin)
    assert reply["response_type"] == "in_channel"
    assert "Paused: no alerts or digests until `/watch resume`." in text_of(reply)
    dest = await env.destination("C1")
    assert dest is not None and dest.paused_at is not None and dest.paused_by == "uadmin"
    reply = await slack.command("pause for a week", **admin)
    assert reply["response_type"] == "ephemeral" and "takes nothing after it" in text_of(reply)
    reply = await slack.command("resume", **admin)
    assert reply["response_type"] == "in_channel" and "Resumed" in text_of(reply)

    url = slack.feeds.url("/feed.xml")
    await slack.command(f"sources add {url}", **admin)
    [source] = await env.rows(m.Source)
    reply = await slack.command("sources pause Policy Wire", **admin)
    assert reply["response_type"] == "in_channel" and f"Paused Policy Wire (id `{source.id}`)" in text_of(
        reply
    )
    reply = await slack.command("sources list")
    assert "paused by uadmin" in text_of(reply)
    reply = await slack.command(f"sources resume {source.id}", **admin)
    assert "polled again now" in text_of(reply)
    reply = await slack.command("sources hold 1", **admin)
    assert reply["response_type"] == "ephemeral" and "`sources pause`" in text_of(reply)
    reply = await slack.command("help")
    assert "`/watch pause`" in reply["text"] and "`/watch sources pause <id|name>`" in reply["text"]
    assert slack.ack_errors == []


async def test_digest_quiet_end_to_end(slack: SlackHarness) -> None:
    reply = await slack.command("digest quiet on", user="UPLAIN")
    assert reply["response_type"] == "ephemeral" and "needs Slack workspace admin or owner" in text_of(reply)
    assert await slack.env.rows(m.Destination) == []
    reply = await slack.command("digest quiet maybe", user="UADMIN")
    assert reply["response_type"] == "ephemeral" and "`maybe` is not `on` or `off`" in text_of(reply)
    assert "`/watch digest quiet on|off`" in text_of(reply) and await slack.env.rows(m.Destination) == []
    reply = await slack.command("digest quiet on", user="UADMIN")
    assert reply["response_type"] == "in_channel" and "Quiet-day notice turned on." in text_of(reply)
    dest = await slack.env.destination("C1")
    assert dest is not None and dest.quiet_day_notice is True and dest.platform == "slack"
    assert "Quiet-day notice: on" in text_of(await slack.command("status"))
    await slack.command("digest quiet off", user="UADMIN")
    dest = await slack.env.destination("C1")
    assert dest is not None and dest.quiet_day_notice is False
    assert slack.ack_errors == []


async def test_digest_repeats_end_to_end(slack: SlackHarness) -> None:
    reply = await slack.command("digest repeats on", user="UPLAIN")
    assert reply["response_type"] == "ephemeral" and "needs Slack workspace admin or owner" in text_of(reply)
    reply = await slack.command("digest repeats", user="UADMIN")
    assert reply["response_type"] == "ephemeral" and "On or off?" in text_of(reply)
    assert await slack.env.rows(m.Destination) == []
    reply = await slack.command("digest repeats on", user="UOWNER")
    assert reply["response_type"] == "in_channel"
    assert "repeat stories already alerted here" in text_of(reply)
    dest = await slack.env.destination("C1")
    assert dest is not None and dest.repeat_alerted_in_digest is True
    assert "Already-alerted stories: on" in text_of(await slack.command("digest"))
    await slack.command("digest repeats off", user="UOWNER")
    dest = await slack.env.destination("C1")
    assert dest is not None and dest.repeat_alerted_in_digest is False
    assert slack.ack_errors == []


async def test_alerts_cap_end_to_end(slack: SlackHarness) -> None:
    reply = await slack.command("alerts cap 2", user="UPLAIN")
    assert reply["response_type"] == "ephemeral" and "needs Slack workspace admin or owner" in text_of(reply)
    for bad, expected in (("alerts cap 61", "out of range"), ("alerts cap two", "not a whole number")):
        reply = await slack.command(bad, user="UALLOW")
        assert reply["response_type"] == "ephemeral" and expected in text_of(reply)
        assert "from 0 to 60" in text_of(reply)
    reply = await slack.command("alerts limit 2", user="UALLOW")
    assert reply["response_type"] == "ephemeral" and "`alerts cap`" in text_of(reply)
    assert await slack.env.rows(m.Destination) == []
    reply = await slack.command("alerts cap 2", user="UALLOW")
    assert reply["response_type"] == "in_channel" and "Alert cap set to 2 per hour." in text_of(reply)
    dest = await slack.env.destination("C1")
    assert dest is not None and dest.alert_cap_per_hour == 2
    reply = await slack.command("alerts cap 0", user="UALLOW")
    assert "Alerts turned off in this channel." in text_of(reply)
    dest = await slack.env.destination("C1")
    assert dest is not None and dest.alert_cap_per_hour == 0
    assert "Alerts: off (cap 0)" in text_of(await slack.command("status"))
    assert "Alerts: off (cap 0)" in text_of(await slack.command("alerts"))
    assert "`/watch alerts cap &lt;0-60&gt;`" in text_of(await slack.command("help"))  # mrkdwn-escaped
    assert slack.ack_errors == []


async def test_slow_command_is_acknowledged_then_answered_on_response_url(slack: SlackHarness) -> None:
    before = len(slack.api.responses)
    status, raw = await slack.post(slack.body(f"sources add {slack.feeds.url('/slow.xml')}", user="UADMIN"))
    assert status == 200 and json.loads(raw) == {"text": "Working on it…", "response_type": "ephemeral"}
    for _ in range(100):
        if len(slack.api.responses) > before:
            break
        await _sleep(0.05)
    [answer] = slack.api.responses[before:]
    assert answer["response_type"] == "in_channel" and "Now watching Policy Wire" in text_of(answer)
    assert block_kit_errors(answer["blocks"]) == []
    assert len(await slack.env.rows(m.ChannelSource)) == 1


async def test_search_results_are_links(slack: SlackHarness) -> None:
    async with slack.env.store.sessions.begin() as session:
        session.add(
            m.Source(
                id=1,
                key="feed:x",
                name="W",
                kind="feed",
                url="https://w.example/",
                next_poll_at=_dt(),
                created_at=_dt(),
            )
        )
        await session.flush()
        session.add(m.Cluster(id=1, first_seen_at=_dt(), last_seen_at=_dt()))
        await session.flush()
        session.add(
            m.Story(
                id=1,
                url_hash="a",
                url="https://w.example/a?x=1&y=<2>",
                title="Distillation <fight> & more",
                summary="",
                outlet="Wire",
                source_id=1,
                cluster_id=1,
                published_at=_dt(),
                first_seen_at=_dt(),
            )
        )
    reply = await slack.command("search distillation")
    link_block = reply["blocks"][1]["text"]["text"]
    assert link_block.startswith(
        "<https://w.example/a?x=1&amp;y=&lt;2&gt;|Distillation &lt;fight&gt; &amp; more>"
    )


def _dt() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 3, 28, tzinfo=UTC)


# ---------------------------------------------------------------------------------------- permissions
@pytest.mark.parametrize(
    "text",
    [
        "subscribe natsec",
        "unsubscribe natsec",
        "digest now",
        "digest time 08:00",
        "digest frequency off",
        "sources add https://example.com/feed",
        "sources remove 1",
        "keywords add x",
        "keywords remove x",
        "digest quiet on",
        "digest repeats on",
        "alerts cap 3",
        "pause",
        "resume",
        "sources pause 1",
        "sources resume 1",
    ],
)
async def test_non_admin_is_refused_every_change(slack: SlackHarness, text: str) -> None:
    reply = await slack.command(text, user="UPLAIN")
    assert reply["response_type"] == "ephemeral"
    assert "needs Slack workspace admin or owner rights" in text_of(reply)
    assert [c.body["user"] for c in slack.api.method_calls("users.info")] == ["UPLAIN"]
    assert await slack.env.rows(m.Destination) == []


async def test_admin_owner_and_allowlist_may_configure(slack: SlackHarness) -> None:
    for user, channel in (("UADMIN", "C1"), ("UOWNER", "C2"), ("UALLOW", "C3")):
        reply = await slack.command("subscribe natsec", user=user, channel=channel)
        assert "Subscribed" in text_of(reply), user
    # The allowlist answers without asking Slack.
    assert [c.body["user"] for c in slack.api.method_calls("users.info")] == ["UADMIN", "UOWNER"]
    assert all(c.authorization == "Bearer xoxb-test" for c in slack.api.method_calls("users.info"))
    assert len(await slack.env.rows(m.Subscription)) == 3


async def test_reading_needs_no_admin_check(slack: SlackHarness) -> None:
    for command in ("status", "topics", "help", "sources list", "keywords list", "search chips", "alerts"):
        reply = await slack.command(command, user="UPLAIN")
        assert "⛔" not in text_of(reply)
    assert slack.api.method_calls("users.info") == []


# ---------------------------------------------------------------------------------------- bad input
async def test_bad_input_replies_are_ephemeral_and_save_nothing(database_url: str, shared_dir: Path) -> None:
    async with (
        SlackAPI(shared=shared_dir) as api,
        FeedServer() as feeds,
        chat_env(database_url, allow_private=False, max_sources=5) as env,
        aiohttp.ClientSession() as session,
    ):
        feeds.add("/page.html", HTML, content_type="text/html")
        bolt = build_slack_app(settings_for(database_url, api, slack_admins="U1"), env.deps, env.store.engine)
        server = WebServer(build_web_app(bolt, signing_secret=SECRET), port=0, host="127.0.0.1")
        await server.start()
        h = SlackHarness(env, api, feeds, f"http://127.0.0.1:{server.bound_port}", session, [])
        try:
            cases = {
                "subscribe distilation": "Unknown topic `distilation`. Did you mean `distillation`?",
                "digest time 7pm": "`7pm` is not a time",
                "digest time 08:00 Europe/Pariss": "Did you mean `Europe/Paris`?",
                "sources add http://127.0.0.1/feed": "That URL is refused: loopback address 127.0.0.1",
                "sources add http://[::1]:8080/feed": "That URL is refused: loopback address ::1",
                "frobnicate": "Unknown command `frobnicate`",
            }
            for command, expected in cases.items():
                reply = await h.command(command)
                assert reply["response_type"] == "ephemeral", command
                assert expected in text_of(reply), (command, text_of(reply))
            env.deps.max_sources_per_channel = 0
            reply = await h.command("sources add https://example.com/feed")
            assert "already has 0 sources, the most allowed" in text_of(reply)
            assert await env.rows(m.Destination) == [] and await env.rows(m.Source) == []
            assert h.ack_errors == []
        finally:
            await server.stop()


async def test_not_a_feed_through_slack(slack: SlackHarness) -> None:
    reply = await slack.command(f"sources add {slack.feeds.url('/page.html')}", user="UADMIN")
    assert reply["response_type"] == "ephemeral" and "is not a feed (not a feed: HTML page)" in text_of(reply)
    assert await slack.env.rows(m.Source) == []


# ---------------------------------------------------------------------------------------- request verification
async def test_bad_stale_and_replayed_requests_are_refused(slack: SlackHarness) -> None:
    body = slack.body("subscribe natsec", user="UADMIN")
    ts = str(int(time.time()))
    assert (await slack.post(body, ts=ts, signature=sign(body, ts, "wrong-secret")))[0] == 401
    assert (await slack.post(body, ts=ts, signature="v0=" + "0" * 64))[0] == 401
    stale = str(int(time.time()) - 301)
    assert (await slack.post(body, ts=stale, signature=sign(body, stale)))[0] == 401
    async with slack.session.post(f"{slack.url}/slack/events", data=body) as resp:  # no headers at all
        assert resp.status == 401
    assert (await slack.post(body, ts="yesterday", signature=sign(body, "yesterday")))[0] == 401
    # Tampering with the body after signing breaks the signature.
    assert (await slack.post(body.replace("natsec", "ip"), ts=ts, signature=sign(body, ts)))[0] == 401
    assert await slack.env.rows(m.Subscription) == []
    status, _ = await slack.post(body, ts=ts, signature=sign(body, ts))
    assert status == 200
    status, raw = await slack.post(body, ts=ts, signature=sign(body, ts))  # the same request again
    assert status == 401 and "invalid request" in raw
    assert len(await slack.env.rows(m.Subscription)) == 1


def test_replay_guard_forgets_after_the_window() -> None:
    now = [0.0]
    guard = ReplayGuard(window=300, clock=lambda: now[0])
    assert guard.seen("a") is False and guard.seen("a") is True
    now[0] = 301
    assert guard.seen("a") is False


async def test_healthz(slack: SlackHarness) -> None:
    async with slack.session.get(f"{slack.url}/healthz") as resp:
        assert resp.status == 200 and await resp.json() == {"status": "ok"}


# ---------------------------------------------------------------------------------------- OAuth
async def test_oauth_install_stores_the_workspace_and_its_commands_work(
    database_url: str, shared_dir: Path
) -> None:
    async with (
        SlackAPI(shared=shared_dir) as api,
        chat_env(database_url) as env,
        aiohttp.ClientSession() as session,
    ):
        settings = Settings(
            database_url=database_url,
            slack_api_base=api.api_base,
            slack_signing_secret=SecretStr(SECRET),
            slack_client_id=SecretStr("111.222"),
            slack_client_secret=SecretStr("client-secret"),
            slack_redirect_uri="https://bot.example/slack/oauth_redirect",
        )
        bolt = build_slack_app(settings, env.deps, env.store.engine)
        server = WebServer(build_web_app(bolt, signing_secret=SECRET), port=0, host="127.0.0.1")
        await server.start()
        base = f"http://127.0.0.1:{server.bound_port}"
        try:
            async with session.get(f"{base}/slack/install") as resp:
                page = await resp.text()
                assert resp.status == 200
                # The state cookie is Secure (https only), so the browser leg is replayed by hand.
                cookie = resp.headers["Set-Cookie"].split(";", 1)[0]
            authorize = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page)
            assert authorize is not None
            query = urllib.parse.parse_qs(
                urllib.parse.urlsplit(authorize.group(1).replace("&amp;", "&")).query
            )
            assert query["scope"] == [",".join(BOT_SCOPES)]
            assert query["client_id"] == ["111.222"]
            state = query["state"][0]
            async with session.get(
                f"{base}/slack/oauth_redirect",
                params={"code": "abc", "state": state},
                headers={"Cookie": cookie},
            ) as resp:
                assert resp.status == 200, await resp.text()
            async with env.store.sessions() as db:
                rows = (await db.execute(text("SELECT team_id, bot_token FROM slack_installations"))).all()
            assert [tuple(r) for r in rows] == [("T0000000002", "xoxb-installed-token")]
            # A second use of the same state is refused (single use).
            async with session.get(
                f"{base}/slack/oauth_redirect",
                params={"code": "abc", "state": state},
                headers={"Cookie": cookie},
            ) as resp:
                assert resp.status != 200

            api.users["UADMIN"] = {"is_admin": True}
            h = SlackHarness(env, api, FeedServer(), base, session, [])
            reply = await h.command("subscribe release", user="UADMIN", team="T0000000002")
            assert "Subscribed" in text_of(reply)
            [call] = api.method_calls("users.info")
            assert call.authorization == "Bearer xoxb-installed-token"
            dest = await env.destination("C1")
            assert dest is not None and dest.workspace_id == "T0000000002"
        finally:
            await server.stop()
        assert api.spec_errors == []


# ---------------------------------------------------------------------------------------- rendering
def test_unescape_and_block_limits() -> None:
    assert slack_unescape("sources add <https://a.example/f?x=1&amp;y=2|a.example/f>") == (
        "sources add https://a.example/f?x=1&y=2"
    )
    assert slack_unescape("keywords add &lt;b&gt; <#C1|general> <@U1|bob>") == "keywords add <b> general bob"
    long = Reply("info", "T", tuple("x" * 900 for _ in range(20)))
    payload = reply_payload(long)
    assert block_kit_errors(payload["blocks"]) == [] and len(payload["blocks"]) > 1
    assert sum(len(b["text"]["text"]) for b in payload["blocks"]) >= 900 * 20


def test_manifest_matches_the_code() -> None:
    from bot.platforms.slack_app import REDIRECT_PATH, SLASH_COMMAND

    manifest = (Path(__file__).resolve().parent.parent / "config/slack-manifest.yml").read_text(
        encoding="utf-8"
    )
    scopes = re.findall(r"^\s+- ([a-z:.]+)\s+#", manifest, re.MULTILINE)
    assert tuple(scopes) == BOT_SCOPES
    assert f"- command: {SLASH_COMMAND}\n" in manifest
    assert manifest.count("https://bot.example.com/slack/events") == 2
    assert f"https://bot.example.com{REDIRECT_PATH}" in manifest


async def test_a_signed_but_malformed_body_is_a_400_not_a_500(slack: SlackHarness) -> None:
    for body, content_type in (
        ('{"type": "event_callback", ', "application/json"),
        ("payload=%7Bnot+json", "application/x-www-form-urlencoded"),
    ):
        ts = str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sign(body, ts),
        }
        async with slack.session.post(f"{slack.url}/slack/events", data=body, headers=headers) as resp:
            assert resp.status == 400, await resp.text()
            assert "malformed request body" in await resp.text()
