"""The Discord and Slack stand-ins behave like the real APIs toward the real clients."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest
from discord.http import Route
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.support.discord_api import DiscordAPI
from tests.support.slack_api import SlackAPI


@pytest.fixture
def discord_base() -> object:
    original = Route.BASE
    yield
    Route.BASE = original


async def test_discord_nonce_rate_limit_and_gone_channel(shared_dir: Path, discord_base: object) -> None:
    async with DiscordAPI(shared=shared_dir, channel_limit=2, channel_window=0.5) as api:
        Route.BASE = api.api_base
        client = discord.Client(intents=discord.Intents.none())
        await client.login("test-token")
        try:
            channel = client.get_partial_messageable(300000000000000001)
            first = await channel.send("hello", nonce="fw-1")
            again = await channel.send("hello", nonce="fw-1")  # a retry: Discord returns the same message
            assert first.id == again.id and len(api.posted("300000000000000001")) == 1
            for n in range(3):  # the 2-per-window bucket: discord.py waits (headers) or retries (429)
                await channel.send(embed=discord.Embed(title=f"t{n}", description="d"), nonce=f"fw-x{n}")
            assert len(api.posted("300000000000000001")) == 4
            api.gone_channels.add("300000000000000009")
            with pytest.raises(discord.NotFound):
                await client.get_partial_messageable(300000000000000009).send("x")
        finally:
            await client.close()
        assert api.spec_errors == []
        sent = api.calls("POST", "/api/v10/channels/300000000000000001/messages")[0].body
        assert sent["nonce"] == "fw-1" and sent["enforce_nonce"] is True


async def test_slack_rate_limit_history_and_spec(shared_dir: Path) -> None:
    async with SlackAPI(shared=shared_dir, burst=1) as api:
        client = AsyncWebClient(token="xoxb-test", base_url=api.api_base)
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
        for n in range(2):
            await client.chat_postMessage(
                channel="C1",
                text=f"m{n}",
                blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": f"*{n}*"}}],
                metadata={"event_type": "fw_delivery", "event_payload": {"delivery_id": n}},
            )
        assert api.rate_limited == 1
        history = await client.conversations_history(channel="C1", include_all_metadata=True, limit=10)
        assert [m["metadata"]["event_payload"]["delivery_id"] for m in history["messages"]] == [1, 0]
        assert api.spec_errors == []
        await client.chat_postMessage(
            channel="C1",
            text="x",
            blocks=[{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        )
        assert any("header text > 150" in e for e in api.spec_errors)
