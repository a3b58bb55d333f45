"""The Discord gateway service never takes the process down, and only one replica holds it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from discord.http import Route

from bot.platforms.discord_app import DiscordService
from bot.settings import Settings
from bot.store.db import create_engine
from tests.support.chat_env import chat_env
from tests.support.discord_api import DiscordAPI


@pytest.fixture(autouse=True)
def restore_route_base() -> Iterator[None]:
    original = Route.BASE
    yield
    Route.BASE = original


class GatewayStub:
    """Stands in for client.connect(): the real one would dial Discord's gateway host."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()

    async def __call__(self, *, reconnect: bool = True) -> None:
        self.connected.set()
        await asyncio.Event().wait()


def service(settings: Settings, deps: object, engine: object = None) -> tuple[DiscordService, GatewayStub]:
    svc = DiscordService(settings, deps, engine)  # type: ignore[arg-type]
    stub = GatewayStub()
    svc.client.connect = stub  # type: ignore[method-assign]
    svc.LOCK_RETRY = 0.2
    return svc, stub


async def test_discord_down_at_start_is_retried_without_stopping_anything(tmp_path: Path) -> None:
    async with (
        DiscordAPI(outage_status=503) as api,
        chat_env(f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}") as env,
    ):
        settings = Settings(discord_token="t", discord_api_base=api.api_base)
        svc, stub = service(settings, env.deps)
        svc.MAX_DELAY = 0.2
        await asyncio.wait_for(svc.start(), 2)  # returns at once although Discord answers 503
        await asyncio.sleep(0.3)
        assert not stub.connected.is_set()
        failed_logins = len(api.calls("GET", "/api/v10/users/@me"))
        assert failed_logins >= 1
        api.outage_status = None
        await asyncio.wait_for(stub.connected.wait(), 15)
        assert api.calls("PUT", "/api/v10/applications/")  # commands synced once it recovered
        await svc.stop()


async def test_only_one_replica_holds_the_gateway(postgres_url: str, tmp_path: Path) -> None:
    async with DiscordAPI() as api, chat_env(f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}") as env:
        settings = Settings(discord_token="t", discord_api_base=api.api_base)
        engine_a, engine_b = create_engine(postgres_url), create_engine(postgres_url)
        a, stub_a = service(settings, env.deps, engine_a)
        b, stub_b = service(settings, env.deps, engine_b)
        try:
            await a.start()
            await asyncio.wait_for(stub_a.connected.wait(), 10)
            await b.start()
            await asyncio.sleep(1.0)
            assert a.leader.is_set() and not b.leader.is_set() and not stub_b.connected.is_set()
            await a.stop()  # the holder goes away: its lock is released, the other takes over
            await asyncio.wait_for(stub_b.connected.wait(), 45)
            assert b.leader.is_set()
        finally:
            await a.stop()
            await b.stop()
            await engine_a.dispose()
            await engine_b.dispose()
