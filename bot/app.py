"""The composition root: builds every component from settings, in one place."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.classify import Classifier, load_classifier
from bot.metrics import Metrics
from bot.pipeline.cluster import ClusterIndex
from bot.pipeline.ingest import Ingestor
from bot.pipeline.poller import Poller, StorySink
from bot.services import DigestRunner, Service, ServiceStartError
from bot.settings import Settings
from bot.sources.config import load_sources
from bot.sources.fetcher import FeedFetcher
from bot.sources.parsepool import ParserPool
from bot.store.db import create_engine, migrate
from bot.store.repo import Store

log = logging.getLogger(__name__)


def _one_line(exc: BaseException) -> str:
    data = getattr(getattr(exc, "response", None), "data", None)
    if isinstance(data, dict) and data.get("error"):  # a platform's own error code says it best
        return f"{type(exc).__name__}: {data['error']}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


@dataclass
class App:
    settings: Settings
    engine: AsyncEngine
    store: Store
    classifier: Classifier
    fetcher: FeedFetcher
    parser: ParserPool
    poller: Poller
    metrics: Metrics
    sinks: list[StorySink] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    digests: DigestRunner | None = None  # set by the delivery side

    @classmethod
    async def build(
        cls,
        settings: Settings,
        *,
        sinks: Sequence[StorySink] = (),
        sync_sources: bool = True,
        parse_workers: int | None = None,
    ) -> App:
        """Migrate the database, load the taxonomy and sources, and wire the pipeline."""
        classifier = load_classifier(settings.topics_file, settings.topic_model)
        specs = load_sources(settings.sources_file, default_interval=settings.default_interval_minutes)
        if sync_sources and not specs:
            log.warning(
                "no sources in %s: nothing will be polled (add [[sources]] tables)", settings.sources_file
            )
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
            store = Store(engine)
            if sync_sources:
                counts = await store.sync_sources(specs)
                log.info("sources: %d in %s (%s)", len(specs), settings.sources_file, counts)
        except BaseException:
            await engine.dispose()
            raise
        fetcher = FeedFetcher(settings)
        parser = ParserPool(
            settings.parse_workers if parse_workers is None else parse_workers,
            timeout=settings.parse_timeout,
            memory_mb=settings.parse_memory_mb,
        )
        index = ClusterIndex(
            window=timedelta(hours=settings.cluster_window_hours),
            threshold=settings.cluster_similarity,
            linkage_floor=settings.cluster_linkage,
            max_stories=settings.cluster_index_max_stories,
        )
        metrics = Metrics(classifier.topics)
        ingestor = Ingestor(store, classifier, index, metrics=metrics)
        sink_list = list(sinks)
        poller = Poller(settings, store, fetcher, parser, ingestor, sinks=sink_list, metrics=metrics)
        return cls(settings, engine, store, classifier, fetcher, parser, poller, metrics, sink_list)

    def add_services(self) -> None:
        """Build the delivery and chat-platform services (for `run` and `serve`)."""
        from bot.delivery.services import delivery_services
        from bot.platforms.services import platform_services

        self.services.extend(delivery_services(self))
        self.services.extend(platform_services(self))

    def add_metrics_listener(self, scheduler_running: Callable[[], bool]) -> None:
        """For `run`: ``/metrics`` and ``/healthz`` on ``FW_METRICS_PORT`` when it is set (unset:
        no listener at all). First in line, so it answers while the chat platforms still connect."""
        if self.settings.metrics_port is None:
            return
        from bot.web import RunHealth, WebServer, build_metrics_app

        health = RunHealth(self.engine, scheduler_running)
        listener = WebServer(
            build_metrics_app(self.metrics, self.engine, health),
            self.settings.metrics_port,
            self.settings.bind_host("metrics"),
            name="metrics",
        )
        self.services.insert(0, listener)

    async def start_services(self) -> None:
        """Start every service in order; one that cannot start (a refused token, a port in use)
        stops the start with one clear line, after the ones already started are stopped."""
        started: list[Service] = []
        for service in self.services:
            log.info("starting %s", service.name)
            try:
                await service.start()
            except Exception as exc:
                for done in reversed(started):
                    try:
                        await done.stop()
                    except Exception:
                        log.exception("stopping %s failed", done.name)
                self.services = started[:0]
                raise ServiceStartError(f"{service.name} could not start: {_one_line(exc)}") from exc
            started.append(service)

    async def stop_services(self) -> None:
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:  # keep stopping the others
                log.exception("stopping %s failed", service.name)

    async def close(self) -> None:
        await self.stop_services()
        await self.poller.ingestor.close()
        self.services.clear()
        await self.fetcher.close()
        self.parser.close()
        await self.engine.dispose()
