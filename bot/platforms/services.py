"""Builds the chat-platform services from settings (Discord gateway, Slack app, web server).

Two roles, matching the Procfile:

* ``worker`` (``frontierwatch run``): syncs the webhooks file, holds the Discord gateway, runs Slack
  in Socket Mode when ``SLACK_APP_TOKEN`` is set, and serves HTTP too when ``PORT``/``FW_PORT`` is set
  explicitly (small installs run one process).
* ``web`` (``frontierwatch serve``): only the HTTP server — ``/healthz``, ``/metrics``, Slack's
  Request URL, the OAuth install pages and the web console (``/``, when ``FW_WEB_PASSWORD`` is set). It never opens the Discord gateway: every gateway session receives every
  interaction, so only one process may hold it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

from aiohttp import web

from bot.classify.taxonomy import load_taxonomy
from bot.services import DigestRunner, Service
from bot.store.chat import ChatStore
from bot.store.feedback import FeedbackStore
from handlers import HandlerDeps
from handlers.sources import FeedValidator

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

Role = Literal["worker", "web"]


def topic_descriptions(app: App) -> dict[str, str]:
    """Topic name → first sentence of its description, in taxonomy order (for `/watch topics`)."""
    taxonomy = load_taxonomy(app.settings.topics_file)
    out: dict[str, str] = {}
    for topic in taxonomy.topics:
        text = " ".join(topic.description.split())
        first = text.split(". ", 1)[0].rstrip(".")
        out[topic.name] = (first[:150] + "…") if len(first) > 150 else first
    return out


def handler_deps(app: App) -> HandlerDeps:
    settings = app.settings

    def digests() -> DigestRunner | None:
        return app.digests

    return HandlerDeps(
        feedback=FeedbackStore(app.engine),
        store=ChatStore(app.engine),
        topics=topic_descriptions(app),
        check_feed=FeedValidator(
            app.fetcher, allow_private=settings.allow_private_sources, summary_chars=settings.summary_chars
        ),
        digests=digests,
        max_sources_per_channel=settings.max_sources_per_channel,
    )


def add_web_console(app: App, web_app: web.Application) -> None:
    """The web console (bot/console) on the HTTP server, when a console password is set."""
    if not app.settings.web_console_enabled:
        log.info("web console off: set FW_WEB_PASSWORD or FW_WEB_PASSWORD_HASH to turn it on")
        return
    from bot.classify import topic_thresholds
    from bot.console import Console, install_console

    console = Console.build(
        app.settings, app.store, app.classifier.topics, thresholds=topic_thresholds(app.classifier)
    )
    install_console(web_app, console)


def platform_services(app: App, role: Role = "worker") -> list[Service]:
    from bot.platforms.slack_app import SlackSocketService, build_slack_app, slack_configured
    from bot.platforms.webhooks import WebhookSync
    from bot.web import WebServer, build_web_app

    settings = app.settings
    deps = handler_deps(app)
    services: list[Service] = []
    if role == "worker":
        services.append(WebhookSync(deps.store, settings.webhooks_file, tuple(deps.topics)))
        if settings.discord_token is not None and settings.discord_gateway:
            from bot.platforms.discord_app import DiscordService

            services.append(DiscordService(settings, deps, app.engine))
    socket_mode = settings.slack_app_token is not None
    commands_possible = socket_mode or settings.slack_signing_secret is not None
    if slack_configured(settings) and not commands_possible:
        log.warning(
            "slack: /watch commands are off because SLACK_SIGNING_SECRET is not set (set it, or "
            "SLACK_APP_TOKEN for Socket Mode); alerts and digests still go to Slack"
        )
    slack = (
        build_slack_app(settings, deps, app.engine)
        if slack_configured(settings) and commands_possible
        else None
    )
    if slack is not None and socket_mode and role == "worker":
        assert settings.slack_app_token is not None
        services.append(SlackSocketService(slack, settings.slack_app_token.get_secret_value()))
    serve_http = role == "web" or "port" in settings.model_fields_set
    if serve_http:
        http_slack = slack if slack is not None and not socket_mode else None
        signing = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
        web_app = build_web_app(http_slack, signing_secret=signing, metrics=app.metrics, engine=app.engine)
        add_web_console(app, web_app)
        services.append(WebServer(web_app, settings.port, settings.bind_host("web")))
    elif slack is not None and not socket_mode:
        log.warning(
            "Slack is configured for HTTP mode but this process serves no HTTP: run `frontierwatch serve` "
            "(or set PORT) so Slack can reach /slack/events, or set SLACK_APP_TOKEN for Socket Mode"
        )
    return services
