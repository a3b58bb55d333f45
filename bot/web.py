"""The HTTP side: liveness, Slack's Request URL and the Slack OAuth install flow.

Routes: ``GET /healthz`` · ``POST /slack/events`` (slash commands and interactivity) ·
``GET /slack/install`` and ``GET /slack/oauth_redirect`` (multi-workspace installs). Listens on
``$PORT`` (Heroku's convention; default 8080).

Every Slack request is checked here before bolt sees it: signature (HMAC of the raw body), age
(more than 5 minutes off → refused) and replay (a signature seen in the last 5 minutes → refused).
Slack's own verifier does the first two; a captured request replayed within the window would pass
it, hence the third. The replay memory is per process: replicas behind a load balancer each keep
their own, which still stops a replay that lands on the same replica.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

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


def build_web_app(slack: AsyncApp | None = None, *, signing_secret: str | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)
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

    name = "web"

    def __init__(self, app: web.Application, port: int, host: str = "0.0.0.0") -> None:
        self.app = app
        self.port = port
        self.host = host
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
        log.info("web server listening on %s:%s", self.host, self.bound_port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
