"""The HTTP side: liveness, metrics, Slack's Request URL and the Slack OAuth install flow.

Routes: ``GET /healthz`` · ``GET /metrics`` (Prometheus) · ``POST /slack/events`` (slash commands
and interactivity) · ``GET /slack/install`` and ``GET /slack/oauth_redirect`` (multi-workspace
installs). Listens on ``$PORT`` (Heroku's convention; default 8080) and ``FW_HOST``.

``frontierwatch run`` can also open a second, small listener on ``FW_METRICS_PORT`` with only
``/metrics`` and a ``/healthz`` that checks what `run` needs (:func:`build_metrics_app`).

Every Slack request is checked here before bolt sees it: signature (HMAC of the raw body), age
(more than 5 minutes off → refused) and replay (a signature seen in the last 5 minutes → refused).
Slack's own verifier does the first two; a captured request replayed within the window would pass
it, hence the third. The replay memory is per process: replicas behind a load balancer each keep
their own, which still stops a replay that lands on the same replica.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.metrics import Metrics

log = logging.getLogger(__name__)


def _malformed(body: str, content_type: str) -> str | None:
    """Why a signed body cannot be read as what its content type says, or None."""
    try:
        if content_type == "application/json":
            if not isinstance(json.loads(body), dict):
                return "a JSON object was expected"
        elif "payload=" in body:  # interactivity: a form field holding JSON
            payload = urllib.parse.parse_qs(body).get("payload", [""])[0]
            if not isinstance(json.loads(payload), dict):
                return "the payload field must hold a JSON object"
    except (ValueError, UnicodeDecodeError) as exc:
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
    return None


REPLAY_WINDOW = 60 * 5
MAX_BODY = 1024 * 1024  # Slack's payloads are a few KB; anything near this is not Slack


class ReplayGuard:
    """Remembers signatures for the replay window; ``seen`` is True for a repeat."""

    def __init__(self, window: float = REPLAY_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, signature: str) -> bool:
        now = self._clock()
        while self._seen and next(iter(self._seen.values())) < now:
            self._seen.popitem(last=False)
        if signature in self._seen:
            return True
        self._seen[signature] = now + self._window
        return False


def _unauthorized() -> web.Response:
    return web.json_response({"error": "invalid request"}, status=401)


# The text format every Prometheus reads (prometheus_client's own default when the scraper does not
# ask for another); its CONTENT_TYPE_LATEST names version 1.0.0, which Prometheus 2 does not know.
EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_handler(
    metrics: Metrics, engine: AsyncEngine
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /metrics``: the database gauges are read for each scrape, then everything is rendered."""

    async def scrape(request: web.Request) -> web.Response:
        await metrics.refresh_database(engine)
        # aiohttp refuses a charset inside `content_type`, so the exposition's type goes in as a header.
        return web.Response(body=metrics.exposition(), headers={"Content-Type": EXPOSITION_CONTENT_TYPE})

    return scrape


HEALTH_QUERY_TIMEOUT = 2.0  # seconds; a health probe must answer well within its checker's own limit


async def database_reachable(engine: AsyncEngine) -> str | None:
    """None when ``SELECT 1`` answers in time, else why not (the exception's type only: a driver's
    message can carry the database URL and its password)."""
    try:
        async with asyncio.timeout(HEALTH_QUERY_TIMEOUT), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError:
        return f"no answer within {HEALTH_QUERY_TIMEOUT:g}s"
    except Exception as exc:
        return type(exc).__name__
    return None


class RunHealth:
    """What ``frontierwatch run`` needs to be useful: its scheduler running (polls and retention
    happen) and its database answering (every durable "when" lives there)."""

    def __init__(self, engine: AsyncEngine, scheduler_running: Callable[[], bool]) -> None:
        self.engine = engine
        self.scheduler_running = scheduler_running

    async def check(self) -> tuple[bool, dict[str, str]]:
        scheduler = "running" if self.scheduler_running() else "stopped"
        problem = await database_reachable(self.engine)
        database = "reachable" if problem is None else f"unreachable: {problem}"
        return scheduler == "running" and problem is None, {"scheduler": scheduler, "database": database}


def build_metrics_app(metrics: Metrics, engine: AsyncEngine, health: RunHealth) -> web.Application:
    """The `run` process's own listener (``FW_METRICS_PORT``): ``/metrics`` and ``/healthz``,
    which answers 503 when the scheduler is stopped or the database does not answer."""
    app = web.Application(client_max_size=1024)

    async def healthz(request: web.Request) -> web.Response:
        ok, checks = await health.check()
        return web.json_response(
            {"status": "ok" if ok else "unavailable", **checks}, status=200 if ok else 503
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler(metrics, engine))
    return app


def build_web_app(
    slack: AsyncApp | None = None,
    *,
    signing_secret: str | None = None,
    metrics: Metrics | None = None,
    engine: AsyncEngine | None = None,
) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)
    if metrics is not None and engine is not None:
        app.router.add_get("/metrics", metrics_handler(metrics, engine))
    if slack is None:
        return app

    verifier = SignatureVerifier(signing_secret or "")
    guard = ReplayGuard()

    async def slack_events(request: web.Request) -> web.StreamResponse:
        body = (await request.read()).decode("utf-8", "replace")
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        # slack_sdk's verifier raises on a missing or non-numeric timestamp; that is a bad request too.
        if (
            not timestamp.isdigit()
            or not signature
            or not verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        ):
            log.info("refused a Slack request with a bad or stale signature")
            return _unauthorized()
        if guard.seen(signature):
            log.warning("refused a replayed Slack request")
            return _unauthorized()
        problem = _malformed(body, request.content_type)
        if problem is not None:  # bolt would answer 500 to a signed body it cannot read
            log.warning("refused a signed Slack request with a malformed body: %s", problem)
            return web.json_response({"error": f"malformed request body: {problem}"}, status=400)
        return await _dispatch(slack, request)

    app.router.add_post("/slack/events", slack_events)
    flow = slack.oauth_flow
    if flow is not None:
        # The browser legs of OAuth carry no Slack signature; the flow checks its own single-use
        # state (stored in our database) and the state cookie instead.
        async def slack_install(request: web.Request) -> web.StreamResponse:
            result: web.StreamResponse = await to_aiohttp_response(
                await flow.handle_installation(await to_bolt_request(request))
            )
            return result

        async def slack_redirect(request: web.Request) -> web.StreamResponse:
            result: web.StreamResponse = await to_aiohttp_response(
                await flow.handle_callback(await to_bolt_request(request))
            )
            return result

        app.router.add_get(flow.install_path, slack_install)
        app.router.add_get(flow.redirect_uri_path, slack_redirect)
    return app


async def _dispatch(slack: AsyncApp, request: web.Request) -> web.StreamResponse:
    bolt_request = await to_bolt_request(request)
    response = await slack.async_dispatch(bolt_request)
    result: web.StreamResponse = await to_aiohttp_response(response)
    return result


class WebServer:
    """The aiohttp server as a Service (started and stopped by the composition root)."""

    def __init__(self, app: web.Application, port: int, host: str = "0.0.0.0", *, name: str = "web") -> None:
        self.name = name
        self.app = app
        self.port = port
        self.host = host
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:  # a port in use: the composition root stops only services that started
            await self._runner.cleanup()
            self._runner = None
            raise
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
        log.info("%s server listening on %s:%s", self.name, self.host, self.bound_port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
