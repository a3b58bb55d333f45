"""`/watch` over Slack's Socket Mode: the real slack-bolt AsyncSocketModeHandler and slack-sdk
SocketModeClient against the SlackAPI stand-in's ``apps.connections.open`` and WebSocket server.

The service is built by the composition root (``App.build`` + ``platform_services``) from the
environment variables a user sets, so what runs here is what ``frontierwatch run`` runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError

from bot.app import App
from bot.platforms.services import platform_services
from bot.platforms.slack_app import SlackSocketService, build_slack_app
from bot.settings import Settings
from bot.store import models as m
from bot.store.chat import ChatStore
from bot.web import WebServer
from tests.support.chat_env import RSS, chat_env
from tests.support.feedserver import FeedServer
from tests.support.slack_api import SlackAPI
from tests.support.specs import block_kit_errors

REPO = Path(__file__).resolve().parent.parent
APP_TOKEN = "xapp-1-A0000000001-1-socketsecret"
BOT_TOKEN = "xoxb-test"


def text_of(reply: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in reply.get("blocks", []) if "text" in b)


@dataclass
class SocketHarness:
    api: SlackAPI
    service: SlackSocketService
    store: ChatStore

    async def command(self, text: str, **kwargs: Any) -> tuple[dict[str, Any], float]:
        """Push `/watch text` as an envelope; the ack's payload and how long the ack took."""
        started = time.monotonic()
        envelope_id = await self.api.push_slash_command(text, **kwargs)
        ack = await self.api.wait_ack(envelope_id, within=3.0)  # Slack's limit
        elapsed = time.monotonic() - started
        assert set(ack) == {"envelope_id", "payload"}, ack
        assert block_kit_errors(ack["payload"].get("blocks") or []) == []
        return ack["payload"], elapsed

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        from sqlalchemy import select

        async with self.store.sessions() as session:
            return list((await session.scalars(select(model).where(*where))).all())


def _socket_mode_tasks() -> list[asyncio.Task[Any]]:
    """The running tasks of slack-sdk's and slack-bolt's Socket Mode code (receiver, monitor, ...)."""

    def from_socket_mode(task: asyncio.Task[Any]) -> bool:
        code = getattr(task.get_coro(), "cr_code", None)
        return code is not None and "/socket_mode/" in code.co_filename

    return [t for t in asyncio.all_tasks() if not t.done() and from_socket_mode(t)]


async def _socket_mode_tasks_left() -> list[asyncio.Task[Any]]:
    """Socket Mode tasks still running after a stop (given the loop a few turns to finish cancelling)."""
    for _ in range(20):
        await asyncio.sleep(0)
    return _socket_mode_tasks()


@pytest.fixture
async def socket_mode(
    database_url: str, shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SocketHarness]:
    async with SlackAPI(shared=shared_dir) as api:
        api.users["UADMIN"] = {"is_admin": True}
        # What a user puts in the environment for Socket Mode: no signing secret, no port.
        monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
        monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
        monkeypatch.setenv("FW_SLACK_API_BASE", api.api_base)
        settings = Settings(
            database_url=database_url,
            sources_file=REPO / "config/sources.toml",
            topics_file=REPO / "config/topics.toml",
            webhooks_file=tmp_path / "webhooks.toml",
        )
        app = await App.build(settings, sync_sources=False, parse_workers=-1)
        try:
            services = platform_services(app)
            assert not any(isinstance(s, WebServer) for s in services)  # Socket Mode needs no HTTP
            [service] = [s for s in services if isinstance(s, SlackSocketService)]
            await asyncio.wait_for(service.start(), 10)
            try:
                await api.wait_connected(1)
                yield SocketHarness(api, service, ChatStore(app.engine))
            finally:
                await asyncio.wait_for(service.stop(), 10)
        finally:
            await app.close()
        assert api.spec_errors == []


async def test_socket_mode_commands_permissions_reconnect_and_shutdown(socket_mode: SocketHarness) -> None:
    h, api = socket_mode, socket_mode.api

    # Connecting: one apps.connections.open with the app-level token, one WebSocket, one hello.
    [open_call] = api.method_calls("apps.connections.open")
    assert open_call.authorization == f"Bearer {APP_TOKEN}"
    assert api.socket_connections == api.socket_tickets[:1] and api.open_sockets == 1

    # An admin's command is answered on the ack itself, well inside Slack's 3 s.
    reply, elapsed = await h.command("subscribe natsec", user="UADMIN")
    assert elapsed < 3.0
    assert reply["response_type"] == "in_channel"
    assert "Subscribed this channel to `natsec`" in text_of(reply)
    [sub] = await h.rows(m.Subscription)
    assert sub.topic == "natsec"
    dest = await h.rows(m.Destination, m.Destination.id == sub.destination_id)
    assert [(d.platform, d.channel_id) for d in dest] == [("slack", "C1")]
    [info] = api.method_calls("users.info")
    assert info.body["user"] == "UADMIN" and info.authorization == f"Bearer {BOT_TOKEN}"
    assert api.responses == []  # nothing went to response_url: the ack carried the reply

    # A non-admin is refused privately, and nothing is stored.
    reply, _ = await h.command("digest time 08:00 Europe/Berlin", user="UPLAIN", channel="C2")
    assert reply["response_type"] == "ephemeral"
    assert "needs Slack workspace admin or owner rights" in text_of(reply)
    assert await h.rows(m.Destination, m.Destination.channel_id == "C2") == []
    assert len(await h.rows(m.Subscription)) == 1

    # Reading needs no rights.
    reply, _ = await h.command("topics", user="UPLAIN")
    assert reply["response_type"] == "ephemeral" and "`natsec` — subscribed" in text_of(reply)

    # Slack retires the connection: the client asks for a new URL, connects, gets a new hello and
    # closes the old socket.
    await api.socket_disconnect("refresh_requested")
    await api.wait_connected(hellos=2)
    await api.wait_socket(lambda: api.open_sockets == 1)
    assert len(api.method_calls("apps.connections.open")) == 2
    assert api.socket_connections == api.socket_tickets[:2]  # a fresh URL, not the old one
    assert all(c.authorization == f"Bearer {APP_TOKEN}" for c in api.method_calls("apps.connections.open"))

    reply, elapsed = await h.command("subscribe ip digest", user="UADMIN")
    assert elapsed < 3.0 and "Subscribed this channel to `ip`" in text_of(reply)
    assert sorted(s.topic for s in await h.rows(m.Subscription)) == ["ip", "natsec"]

    # Every envelope was acknowledged exactly once.
    envelope_ids = [a["envelope_id"] for a in api.socket_acks]
    assert len(envelope_ids) == len(set(envelope_ids)) == 4

    # Stopping closes the socket, ends the client's tasks and does not reconnect.
    assert len(_socket_mode_tasks()) >= 3  # message processor, session monitor, receiver
    await asyncio.wait_for(h.service.stop(), 10)
    await api.wait_socket(lambda: api.open_sockets == 0)
    assert await _socket_mode_tasks_left() == []
    assert len(api.method_calls("apps.connections.open")) == 2
    await h.service.stop()  # a second stop is harmless


async def test_slow_command_is_acknowledged_then_answered_on_response_url(
    database_url: str, shared_dir: Path
) -> None:
    async with (
        SlackAPI(shared=shared_dir) as api,
        FeedServer() as feeds,
        chat_env(database_url) as env,
    ):
        feeds.add("/slow.xml", RSS, delay=0.6)
        api.users["UADMIN"] = {"is_admin": True}
        settings = Settings(
            database_url=database_url,
            slack_api_base=api.api_base,
            slack_bot_token=SecretStr(BOT_TOKEN),
            slack_app_token=SecretStr(APP_TOKEN),
        )
        bolt = build_slack_app(settings, env.deps, env.store.engine, ack_within=0.3)
        service = SlackSocketService(bolt, APP_TOKEN)
        await asyncio.wait_for(service.start(), 10)
        try:
            await api.wait_connected(1)
            envelope_id = await api.push_slash_command(
                f"sources add {feeds.url('/slow.xml')}", user="UADMIN", response_key="slow"
            )
            ack = await api.wait_ack(envelope_id, within=3.0)
            assert ack["payload"] == {"text": "Working on it…", "response_type": "ephemeral"}
            for _ in range(100):  # the answer follows on response_url once the feed is fetched
                if api.responses:
                    break
                await asyncio.sleep(0.05)
            [answer] = api.responses
            assert answer["response_type"] == "in_channel" and "Now watching Policy Wire" in text_of(answer)
            assert block_kit_errors(answer["blocks"]) == []
            assert len(await env.rows(m.ChannelSource)) == 1
        finally:
            await asyncio.wait_for(service.stop(), 10)
        assert api.spec_errors == []


async def test_a_bot_token_in_slack_app_token_fails_at_start(database_url: str, shared_dir: Path) -> None:
    """A wrong token must stop the start with Slack's error, not retry forever behind the other services."""
    async with SlackAPI(shared=shared_dir) as api, chat_env(database_url) as env:
        settings = Settings(
            database_url=database_url,
            slack_api_base=api.api_base,
            slack_bot_token=SecretStr(BOT_TOKEN),
            slack_app_token=SecretStr("xoxb-pasted-by-mistake"),
        )
        bolt = build_slack_app(settings, env.deps, env.store.engine)
        service = SlackSocketService(bolt, "xoxb-pasted-by-mistake")
        with pytest.raises(SlackApiError) as raised:
            await asyncio.wait_for(service.start(), 5)
        assert raised.value.response["error"] == "not_allowed_token_type"
        assert api.socket_connections == [] and api.socket_tickets == []
        assert await _socket_mode_tasks_left() == []
        await service.stop()  # after a failed start: nothing to do, no error
