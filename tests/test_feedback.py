"""Feedback from chat: every alert carries "Not relevant" and "Wrong topic…"; a click is stored as a
labelled example (who, when, which topics), acknowledged ephemerally, counted in `/watch status` and
exported in the labelling guide's format — through the Discord and Slack stand-ins, with every body
validated against ../shared/specs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from discord.http import Route
from pydantic import SecretStr

from bot.delivery.controls import (
    DISCORD_NOT_RELEVANT,
    DISCORD_WRONG_TOPIC,
    SLACK_NOT_RELEVANT,
    SLACK_WRONG_TOPIC,
)
from bot.delivery.services import Delivery
from bot.platforms.discord_app import build_client
from bot.platforms.slack_app import build_slack_app
from bot.settings import Settings
from bot.store.feedback import FeedbackStore
from bot.store.repo import Store
from bot.web import WebServer, build_web_app
from handlers import Command, Invocation, Rights, handle
from tests.support.chat_env import TOPICS, chat_env
from tests.support.discord_api import APP_ID, DiscordAPI, user
from tests.support.newsdb import add_destination, add_story, build_delivery, deliveries, open_store
from tests.support.slack_api import TEAM_ID, SlackAPI
from tests.support.specs import block_kit_errors

REPO = Path(__file__).resolve().parent.parent
DCH, GUILD = "300000000000000001", "400000000000000001"
SECRET = "test-signing-secret"
TITLE = "US tightens export controls on AI chips to China"


@pytest.fixture(autouse=True)
def discord_base() -> Iterator[None]:
    original = Route.BASE
    yield
    Route.BASE = original


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await open_store(database_url)
    yield s
    await s.engine.dispose()


def delivery_for(store: Store, **over: Any) -> Delivery:
    delivery: Delivery = build_delivery(store, TOPICS, **over)
    return delivery


async def deliver_alert(store: Store, **platform: Any) -> int:
    delivery = delivery_for(store, **platform)
    story = await add_story(store, TITLE, topics={"natsec": 0.9, "ip": 0.1})
    await delivery.router.route([story])
    await delivery.worker.drain(within=20)
    await delivery.worker.stop()
    [row] = [r for r in await deliveries(store) if r.kind == "alert"]
    assert row.status == "sent"
    return int(row.id)


def component_payload(custom_id: str, values: list[str] | None = None, *, user_id: str) -> dict[str, Any]:
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": 3 if values is not None else 2}
    if values is not None:
        data["values"] = values
    return {
        "id": str(int(time.time_ns() % 10**15)),
        "application_id": APP_ID,
        "type": 3,
        "token": f"tok{time.time_ns()}",
        "version": 1,
        "guild_id": GUILD,
        "channel_id": DCH,
        "channel": {"id": DCH, "type": 0, "guild_id": GUILD, "name": "ai-policy", "position": 0,
                    "permission_overwrites": [], "nsfw": False, "parent_id": None},
        "member": {"user": user(user_id, "reader"), "roles": [], "joined_at": "2024-01-01T00:00:00+00:00",
                   "deaf": False, "mute": False, "permissions": "1024", "flags": 0},
        "app_permissions": "0",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD},
        "context": 0,
        "attachment_size_limit": 8388608,
        "data": data,
    }  # fmt: skip


async def callback_of(api: DiscordAPI, payload: dict[str, Any]) -> dict[str, Any]:
    for _ in range(100):
        calls = [r for r in api.calls("POST", f"/api/v10/interactions/{payload['id']}/") if r.body]
        if calls:
            body = calls[0].body
            assert isinstance(body, dict)
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("no interaction callback")


async def test_discord_alert_carries_feedback_controls_and_a_click_is_stored(
    store: Store, database_url: str, shared_dir: Path
) -> None:
    async with DiscordAPI(shared=shared_dir) as api, chat_env(database_url) as env:
        await add_destination(store, "discord", DCH, workspace_id=GUILD)
        delivery_id = await deliver_alert(store, DISCORD_TOKEN="test-token", discord_api_base=api.api_base)
        [message] = api.posted(DCH)
        rows = message["components"]
        assert rows[0]["components"][0]["custom_id"] == f"{DISCORD_NOT_RELEVANT}{delivery_id}"
        select = rows[1]["components"][0]
        assert select["custom_id"] == f"{DISCORD_WRONG_TOPIC}{delivery_id}"
        assert [o["value"] for o in select["options"]] == [*TOPICS, "none"]

        env.deps.feedback = FeedbackStore(env.store.engine)
        config = Settings(
            database_url=database_url, discord_api_base=api.api_base, discord_token=SecretStr("t")
        )
        client, _tree, _commands = build_client(config, env.deps)
        await client.login("test-token")
        try:
            first = component_payload(f"{DISCORD_NOT_RELEVANT}{delivery_id}", user_id="500000000000000001")
            client._connection.parse_interaction_create(first)
            reply = await callback_of(api, first)
            assert reply["type"] == 4 and reply["data"]["flags"] & 64  # ephemeral
            assert "Thanks for the feedback" in reply["data"]["embeds"][0]["title"]
            assert TITLE in reply["data"]["embeds"][0]["description"]

            second = component_payload(
                f"{DISCORD_WRONG_TOPIC}{delivery_id}", ["ip", "release"], user_id="500000000000000001"
            )
            client._connection.parse_interaction_create(second)
            reply = await callback_of(api, second)
            text = reply["data"]["embeds"][0]["description"]
            assert "`ip`, `release`" in text and "replaces your earlier feedback" in text
        finally:
            await client.close()
        assert api.spec_errors == []

        [record] = await env.deps.feedback.export()
        assert record["title"] == TITLE and record["topics"] == ["ip", "release"]
        assert record["feedback"]["kind"] == "wrong_topic"  # type: ignore[index]
        assert record["feedback"]["user"] == "500000000000000001"  # type: ignore[index]
        assert record["feedback"]["alerted_topics"] == ["natsec"]  # type: ignore[index]

        status = await handle(
            env.deps,
            Command("discord", GUILD, DCH, "u", Rights.fixed(True, "x"), Invocation("status")),
        )
        assert any("Feedback on alerts from this channel: 1" in line for line in status.lines)


def sign(body: str, ts: str) -> str:
    return "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()


async def test_slack_alert_carries_feedback_controls_and_a_click_is_stored(
    store: Store, database_url: str, shared_dir: Path
) -> None:
    async with (
        SlackAPI(shared=shared_dir) as api,
        chat_env(database_url) as env,
        aiohttp.ClientSession() as http,
    ):
        await add_destination(store, "slack", "C1")
        delivery_id = await deliver_alert(store, SLACK_BOT_TOKEN="xoxb-test", slack_api_base=api.api_base)
        [message] = api.messages["C1"]
        actions = message["blocks"][-1]
        assert actions["type"] == "actions" and block_kit_errors(message["blocks"]) == []
        button, menu = actions["elements"]
        assert button["action_id"] == SLACK_NOT_RELEVANT and button["value"] == str(delivery_id)
        assert menu["action_id"] == SLACK_WRONG_TOPIC
        assert [o["value"] for o in menu["options"]][-1] == f"{delivery_id}:none"

        env.deps.feedback = FeedbackStore(env.store.engine)
        settings = Settings(
            database_url=database_url,
            slack_api_base=api.api_base,
            slack_signing_secret=SecretStr(SECRET),
            slack_bot_token=SecretStr("xoxb-test"),
        )
        bolt = build_slack_app(settings, env.deps, env.store.engine)
        server = WebServer(build_web_app(bolt, signing_secret=SECRET), port=0, host="127.0.0.1")
        await server.start()
        try:
            for action in (
                {"type": "button", "action_id": SLACK_NOT_RELEVANT, "value": str(delivery_id)},
                {
                    "type": "static_select",
                    "action_id": SLACK_WRONG_TOPIC,
                    "selected_option": {
                        "text": {"type": "plain_text", "text": "None"},
                        "value": f"{delivery_id}:none",
                    },
                },
            ):
                before = len(api.responses)
                payload = {
                    "type": "block_actions",
                    "user": {"id": "U7", "team_id": TEAM_ID},
                    "team": {"id": TEAM_ID},
                    "api_app_id": "A0000000001",
                    "channel": {"id": "C1"},
                    "container": {"type": "message", "channel_id": "C1", "message_ts": message["ts"]},
                    "response_url": api.response_url(f"r{time.monotonic_ns()}"),
                    "trigger_id": "1.2.3",
                    "actions": [dict(action, block_id=actions["block_id"], action_ts=str(time.time()))],
                }
                body = urllib.parse.urlencode({"payload": json.dumps(payload)})
                ts = str(int(time.time()))
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": ts,
                    "X-Slack-Signature": sign(body, ts),
                }
                async with http.post(
                    f"http://127.0.0.1:{server.bound_port}/slack/events", data=body, headers=headers
                ) as resp:
                    assert resp.status == 200, await resp.text()
                for _ in range(100):
                    if len(api.responses) > before:
                        break
                    await asyncio.sleep(0.05)
                reply = api.responses[before]
                assert reply["response_type"] == "ephemeral" and reply.get("replace_original") is False
                assert "Thanks for the feedback" in reply["text"]
                assert block_kit_errors(reply["blocks"]) == []
        finally:
            await server.stop()
        assert api.spec_errors == []
        [record] = await env.deps.feedback.export()
        assert record["topics"] == [] and record["hard_negative"] is True
        assert record["feedback"]["kind"] == "wrong_topic"  # type: ignore[index]
        assert record["feedback"]["platform"] == "slack"  # type: ignore[index]
        counts = await env.deps.feedback.count()
        assert counts == {"not_relevant": 0, "wrong_topic": 1}  # the second click replaced the first


async def test_feedback_export_cli_writes_the_guides_format(tmp_path: Path) -> None:
    db = tmp_path / "fb.sqlite3"
    store = await open_store(f"sqlite+aiosqlite:///{db}")
    try:
        await add_destination(store, "console", "console")
        story = await add_story(store, TITLE, topics={"natsec": 0.9})
        delivery = delivery_for(store)
        await delivery.router.route([story])
        [row] = await deliveries(store)
        await FeedbackStore(store.engine).record(
            row.id, platform="discord", channel_id="c", user_id="u", kind="not_relevant"
        )
    finally:
        await store.engine.dispose()
    env = {"FW_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "PATH": "/usr/bin:/bin"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "feedback", "export",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    [line] = out.decode().splitlines()
    record = json.loads(line)
    assert set(record) >= {"title", "summary", "url", "outlet", "published", "topics", "hard_negative"}
    assert record["topics"] == [] and record["title"] == TITLE
