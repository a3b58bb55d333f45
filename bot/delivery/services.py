"""Builds the delivery services from settings (outbox worker, digest clock, the router sink)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.delivery.digests import DigestService
from bot.delivery.router import Router
from bot.delivery.senders import (
    ConsoleSender,
    DiscordSender,
    DiscordWebhookSender,
    Sender,
    SlackSender,
    SlackWebhookSender,
)
from bot.delivery.worker import DeliveryWorker
from bot.metrics import Metrics
from bot.services import DigestRunner, Service
from bot.settings import Settings
from bot.store.db import log_failure, retry_start_race
from bot.store.destinations import console_destination
from bot.store.outbox import Outbox
from bot.store.repo import Store, utcnow

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


def build_senders(
    settings: Settings,
    write: Callable[[str], None] | None = None,
    engine: AsyncEngine | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Sender]:
    """One sender per platform that can be reached with the configured credentials. Webhooks need
    no token (the URL is the credential), so they are always available."""
    timeout = settings.delivery_timeout_seconds
    metrics = metrics or Metrics()
    senders: dict[str, Sender] = {
        "console": ConsoleSender(write),
        "discord_webhook": DiscordWebhookSender(
            settings.discord_api_base, rate=settings.discord_send_rate, timeout=timeout, metrics=metrics
        ),
        "slack_webhook": SlackWebhookSender(timeout=timeout, metrics=metrics),
    }
    if settings.discord_token is not None:
        senders["discord"] = DiscordSender(
            settings.discord_token.get_secret_value(),
            settings.discord_api_base,
            rate=settings.discord_send_rate,
            timeout=timeout,
            metrics=metrics,
        )
    oauth = settings.slack_client_id is not None and settings.slack_client_secret is not None
    if settings.slack_bot_token is not None or oauth:
        installations = None
        if oauth and engine is not None:
            from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore

            assert settings.slack_client_id is not None
            installations = AsyncSQLAlchemyInstallationStore(
                client_id=settings.slack_client_id.get_secret_value(), engine=engine
            )
        senders["slack"] = SlackSender(
            settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None,
            settings.slack_api_base,
            timeout=timeout,
            installations=installations,
            metrics=metrics,
        )
    return senders


async def ensure_console_destination(store: Store, settings: Settings, topics: Sequence[str]) -> int | None:
    """With no chat platform configured, the terminal is the destination, subscribed to every
    topic, so the default install shows alerts and digests and loses nothing. Once a platform is
    configured the console destination is switched off (with the reason).

    Replicas starting together on an empty database all try to create the row (and its
    subscriptions); the unique keys let one win, and the others read its row on a second try."""
    tokens = (
        settings.discord_token is not None
        or settings.slack_bot_token is not None
        or settings.slack_client_id is not None
    )

    async def attempt() -> int | None:
        async with store.sessions.begin() as session:
            return await console_destination(session, topics, chat_configured=tokens, now=utcnow())

    return await retry_start_race("console destination", attempt)


@dataclass
class Delivery:
    """Everything issue 5 adds to a running process, built from one store and settings."""

    outbox: Outbox
    router: Router
    worker: DeliveryWorker
    digests: DigestService

    @classmethod
    def build(
        cls,
        store: Store,
        settings: Settings,
        topics: Sequence[str],
        *,
        senders: dict[str, Sender] | None = None,
        write: Callable[[str], None] | None = None,
        metrics: Metrics | None = None,
    ) -> Delivery:
        outbox = Outbox(store)
        metrics = metrics or Metrics()
        if senders is None:
            senders = build_senders(settings, write, store.engine, metrics)
        worker = DeliveryWorker(outbox, settings, senders, metrics=metrics)
        router = Router(outbox, settings, on_queued=worker.wake, topics=topics)
        digests = DigestService(outbox, settings, topics, on_queued=worker.wake)
        return cls(outbox, router, worker, digests)


class _ConsoleSetup:
    name = "console-destination"

    def __init__(self, store: Store, settings: Settings, topics: Sequence[str]) -> None:
        self.store, self.settings, self.topics = store, settings, topics

    async def start(self) -> None:
        dest = await ensure_console_destination(self.store, self.settings, self.topics)
        if dest is not None:
            log.info("no chat platform configured: alerts and digests print in this terminal")

    async def stop(self) -> None:
        return None


class _RouteRecovery:
    """Routes stories that were stored but not routed: at start (after a crash between storing and
    routing) and then every minute (after a sink failed, e.g. on a database hiccup)."""

    name = "route-recovery"

    def __init__(self, router: Router, interval: float = 60.0) -> None:
        self.router, self.interval = router, interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.router.recover()
        self._task = asyncio.create_task(self._loop(), name="route-recovery")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.router.recover()
            except Exception as exc:  # try again next round; never let the loop die
                log_failure(log, "route recovery failed", exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def queue_only_digests(app: App) -> DigestRunner:
    """For `frontierwatch serve`, which sends nothing itself: `/watch digest now` writes the digest
    into the outbox (the database), and the `run` process's delivery worker posts it within its
    sweep (`FW_DELIVERY_TICK_SECONDS`). Works for every documented layout: one process or the
    Procfile's web + worker split, on any number of replicas."""
    return DigestService(Outbox(app.store), app.settings, app.classifier.topics)


def delivery_services(app: App) -> list[Service]:
    """Routes new stories into the outbox (a poller sink), sends it, and runs the digest clock."""
    topics = app.classifier.topics
    delivery = Delivery.build(app.store, app.settings, topics, metrics=app.metrics)
    app.poller.sinks.append(delivery.router)
    app.digests = delivery.digests
    return [
        _ConsoleSetup(app.store, app.settings, topics),
        delivery.worker,
        _RouteRecovery(delivery.router),
        delivery.digests,
    ]
