"""Channel configuration under concurrency and after the platform paused a channel (robustness issue,
items 2 and 13): on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.store import models as m
from bot.store.outbox import Outbox
from bot.store.repo import Store
from handlers import Command, Reply, Rights, UsageError, handle, parse_text
from tests.support.chat_env import ChatEnv, chat_env


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[ChatEnv]:
    async with chat_env(database_url) as e:
        yield e


async def run(env: ChatEnv, text: str, *, channel: str = "C1") -> Reply:
    try:
        invocation = parse_text(text)  # as the adapters do: a bad text is refused before any handler
    except UsageError as exc:
        return exc.reply
    command = Command(
        platform="slack",
        workspace_id="T1",
        channel_id=channel,
        user_id="U1",
        rights=Rights.fixed(True, "admin"),
        invocation=invocation,
        channel_name="policy",
        user_name="alice",
    )
    return await handle(env.deps, command)


async def test_a_paused_channel_resumes_on_the_next_configuration_command(env: ChatEnv) -> None:
    assert (await run(env, "subscribe natsec")).status == "ok"
    [dest] = await env.rows(m.Destination)
    await Outbox(Store(env.store.engine)).deactivate(dest.id, "Slack: not_in_channel")
    status = await run(env, "status")
    assert any("paused" in line for line in status.lines)

    reply = await run(env, "subscribe ip")
    assert reply.status == "ok"
    [dest] = await env.rows(m.Destination)
    assert dest.active and dest.inactive_reason is None
    assert not any("paused" in line for line in (await run(env, "status")).lines)


async def test_concurrent_commands_on_new_channels_all_succeed(env: ChatEnv) -> None:
    commands = [
        run(env, text, channel=f"C{n % 10}")
        for n, text in enumerate(
            ["subscribe natsec", "subscribe ip", "keywords add nvidia", "alerts cap 3"] * 25
        )
    ]
    replies = await asyncio.gather(*commands)
    failed = [r.text for r in replies if r.status not in ("ok", "info")]
    assert failed == []
    assert len(await env.rows(m.Destination)) == 10


async def test_concurrent_keyword_adds_never_pass_the_cap(env: ChatEnv) -> None:
    words = " ".join(f"word{i}" for i in range(45))
    assert (await run(env, f"keywords add {words}")).status == "ok"
    replies = await asyncio.gather(*(run(env, f"keywords add extra{i}a extra{i}b") for i in range(20)))
    async with env.store.sessions() as session:
        total = await session.scalar(select(func.count()).select_from(m.ChannelKeyword))
    assert total is not None and total <= env.deps.max_keywords_per_channel
    assert sum(r.status == "ok" for r in replies) == (env.deps.max_keywords_per_channel - 45) // 2
    refused = [r for r in replies if r.status != "ok"]
    assert refused and all("at most" in r.text for r in refused)


async def test_hostile_command_text_gets_a_clear_refusal_and_saves_nothing(env: ChatEnv) -> None:
    huge = await run(env, "keywords add " + '"a ' * 350_000)  # 1 MB: refused before any quote parsing
    assert huge.status == "error" and "at most 4,000 are read" in huge.title
    nul = await run(env, "keywords add nvidia\x00chips")
    assert nul.status == "error" and "control characters" in nul.title
    overflow = await run(env, "sources remove 99999999999999999999999")
    assert overflow.status == "error" and "There is no source" in overflow.title
    assert await env.rows(m.ChannelKeyword) == []
