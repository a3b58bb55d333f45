"""bot/web.py and the platform services as the composition root builds them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.app import App
from bot.platforms.discord_app import DiscordService
from bot.platforms.services import platform_services, topic_descriptions
from bot.platforms.slack_app import SlackSocketService
from bot.platforms.webhooks import WebhookSync
from bot.settings import Settings
from bot.store import models as m
from bot.web import WebServer, build_web_app
from tests.support.chat_env import FakeDigests
from tests.support.slack_api import TEAM_ID, SlackAPI

REPO = Path(__file__).resolve().parent.parent


async def test_healthz_without_slack() -> None:
    server = WebServer(build_web_app(None), port=0, host="127.0.0.1")
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{server.bound_port}/healthz") as resp:
                assert resp.status == 200 and await resp.json() == {"status": "ok"}
            async with session.post(f"http://127.0.0.1:{server.bound_port}/slack/events", data="x") as resp:
                assert resp.status == 404
    finally:
        await server.stop()


@pytest.fixture
async def app(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[App]:
    extra: dict[str, Any] = getattr(request, "param", {})
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
        sources_file=REPO / "config/sources.toml",
        topics_file=REPO / "config/topics.toml",
        webhooks_file=tmp_path / "webhooks.toml",
        **extra,
    )
    built = await App.build(settings, sync_sources=False, parse_workers=-1)
    try:
        yield built
    finally:
        await built.close()


def test_topic_descriptions_come_from_the_taxonomy(app: App) -> None:
    topics = topic_descriptions(app)
    assert list(topics) == list(app.classifier.topics)
    assert all(0 < len(d) <= 151 and "\n" not in d for d in topics.values())


async def test_worker_without_platforms_only_syncs_webhooks(app: App) -> None:
    services = platform_services(app)
    assert [type(s) for s in services] == [WebhookSync]


@pytest.mark.parametrize(
    "app",
    [
        {
            "discord_token": SecretStr("x"),
            "slack_bot_token": SecretStr("xoxb-1"),
            "slack_app_token": SecretStr("xapp-1"),
        }
    ],
    indirect=True,
)
async def test_worker_with_discord_and_socket_mode(app: App) -> None:
    kinds = [type(s) for s in platform_services(app)]
    assert kinds == [WebhookSync, DiscordService, SlackSocketService]
    # The web role never holds the Discord gateway nor a Slack socket.
    assert [type(s) for s in platform_services(app, role="web")] == [WebServer]


async def test_serve_role_answers_slack_through_the_composition_root(
    tmp_path: Path, shared_dir: Path
) -> None:
    secret = "s3cret"
    async with SlackAPI(shared=shared_dir) as api:
        api.users["UADMIN"] = {"is_admin": True}
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
            sources_file=REPO / "config/sources.toml",
            topics_file=REPO / "config/topics.toml",
            slack_api_base=api.api_base,
            slack_bot_token=SecretStr("xoxb-test"),
            slack_signing_secret=SecretStr(secret),
            port=0,
        )
        app = await App.build(settings, sync_sources=False, parse_workers=-1)
        try:
            services = platform_services(app, role="web")
            [server] = services
            assert isinstance(server, WebServer)
            server.host = "127.0.0.1"
            app.services.extend(services)
            await app.start_services()
            # The delivery side may attach its runner after the platforms were built.
            runner = FakeDigests(entries=2)
            app.digests = runner
            url = f"http://127.0.0.1:{server.bound_port}/slack/events"
            async with aiohttp.ClientSession() as session:

                async def command(text: str) -> dict[str, Any]:
                    body = urllib.parse.urlencode(
                        {
                            "team_id": TEAM_ID,
                            "channel_id": "C9",
                            "user_id": "UADMIN",
                            "command": "/watch",
                            "text": text,
                            "response_url": api.response_url("x"),
                        }
                    )
                    ts = str(int(time.time()))
                    sig = (
                        "v0="
                        + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
                    )
                    headers = {
                        "X-Slack-Request-Timestamp": ts,
                        "X-Slack-Signature": sig,
                        "Content-Type": "application/x-www-form-urlencoded",
                    }
                    async with session.post(url, data=body, headers=headers) as resp:
                        assert resp.status == 200
                        return dict(json.loads(await resp.text()))

                topic = app.classifier.topics[0]
                reply = await command(f"subscribe {topic}")
                assert f"Subscribed this channel to `{topic}`" in reply["blocks"][0]["text"]["text"]
                reply = await command("digest now")
                assert "2 stories" in reply["blocks"][0]["text"]["text"]
            async with app.store.sessions() as db:
                dest = (await db.scalars(select(m.Destination))).one()
            assert runner.calls == [dest.id]
        finally:
            await app.close()
        assert api.spec_errors == []
