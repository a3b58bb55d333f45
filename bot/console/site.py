"""The console on the web server: routes, templates, the session, and the guards every page passes.

:func:`install_console` adds the console to the aiohttp application of ``bot/web.py`` (so
``/healthz``, ``/slack/*`` and ``/metrics`` are untouched: the session middleware only reads or
writes a cookie for requests whose handler asks for the session, which only console handlers do).
Routes: ``GET /`` (to the first page) · ``GET|POST /sign-in`` · ``POST /sign-out`` · every page and
action of ``bot/console/views`` · ``/static/console/…`` (the stylesheet: no CDN, the console works
offline).
"""

from __future__ import annotations

import functools
import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import aiohttp_session
import jinja2
from aiohttp import web

from bot.console import auth, formatting
from bot.console.pages import Action, Page, View
from bot.settings import Settings
from bot.store.console import ConsoleStore
from bot.store.repo import Store, utcnow
from bot.store.review import ReviewStore
from bot.store.sign_ins import SignInFailures
from bot.store.trends import TrendsStore

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
STATIC_PREFIX = "/static/console"
STATIC_ROUTE = "console_static"
# Nothing but this console's own stylesheet, images and forms: no script runs, no other site
# may frame a page (clickjacking) or receive a form.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class Console:
    """What the views need: settings, the store (actions), the console's reads, the topics and
    the classifier's threshold for each (the Review page's "near a threshold")."""

    settings: Settings
    store: Store
    queries: ConsoleStore
    topics: tuple[str, ...]
    thresholds: Mapping[str, float]
    review: ReviewStore
    trends: TrendsStore
    password: auth.PasswordCheck
    limiter: auth.SignInLimiter = field(default_factory=auth.SignInLimiter)
    pages: tuple[Page, ...] = ()

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        topics: Sequence[str],
        thresholds: Mapping[str, float] | None = None,
    ) -> Console:
        """``thresholds``: ``bot.classify.topic_thresholds(classifier)``; without them the Review
        page's "near a threshold" queue is empty (it says so)."""
        return cls(
            settings=settings,
            store=store,
            queries=ConsoleStore(store.engine),
            topics=tuple(topics),
            thresholds=dict(thresholds or {}),
            review=ReviewStore(store.engine, topics),
            trends=TrendsStore(store.engine),
            password=auth.PasswordCheck.from_settings(settings),
            limiter=auth.SignInLimiter(SignInFailures(store.engine)),
        )

    @property
    def broken_after(self) -> timedelta:
        return timedelta(hours=self.settings.source_notice_after_hours)

    @property
    def session_seconds(self) -> int:
        return int(self.settings.web_session_hours * 3600)

    def now(self) -> datetime:
        return utcnow()


CONSOLE = web.AppKey("frontierwatch_console", Console)
JINJA = web.AppKey("frontierwatch_console_jinja", jinja2.Environment)


def install_console(app: web.Application, console: Console) -> None:
    """Add the console's routes, templates and session middleware to ``app`` (before it starts)."""
    from bot.console.views import PAGE_MODULES

    settings = console.settings
    if settings.web_secret is None:
        log.warning(
            "web console: FW_WEB_SECRET is not set, so the session key is random for this process: "
            "sign-ins end when it restarts and are not shared between replicas"
        )
    console.pages = tuple(module.PAGE for module in PAGE_MODULES)
    app[CONSOLE] = console
    storage = auth.ConsoleCookieStorage(
        auth.session_key(settings), max_age=console.session_seconds, behind_proxy=settings.web_behind_proxy
    )
    aiohttp_session.setup(app, storage)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        app_key=JINJA,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    formatting.register(env)

    app.router.add_get("/", _home)
    app.router.add_get("/sign-in", _sign_in_form)
    app.router.add_post("/sign-in", _sign_in)
    app.router.add_post("/sign-out", _guarded(_sign_out, post=True))
    for module in PAGE_MODULES:
        page: Page = module.PAGE
        app.router.add_get(page.path, _guarded(page.view))
        for path, view in page.extra_paths:
            app.router.add_get(path, _guarded(view))
        actions: Sequence[Action] = getattr(module, "ACTIONS", ())
        for action in actions:
            app.router.add_post(action.path, _guarded(action.view, post=True))
    app.router.add_static(STATIC_PREFIX, STATIC, name=STATIC_ROUTE, append_version=True)
    log.info("web console on: %s", ", ".join(page.path for page in console.pages))


# ---------------------------------------------------------------------------------------- rendering
async def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A console page: the template with what every page shows (menu, CSRF token, message)."""
    console = request.app[CONSOLE]
    signed_in = await auth.is_signed_in(request, console.password, console.session_seconds)
    base = {
        "pages": console.pages if signed_in else (),
        "signed_in": signed_in,
        "path": request.path,
        "csrf_field": auth.CSRF_FIELD,
        "csrf_token": await auth.csrf_token(request),
        "flash": await auth.take_flash(request),
        "static": lambda name: str(request.app.router[STATIC_ROUTE].url_for(filename=name)),
    }
    response = aiohttp_jinja2.render_template(
        template, request, {**base, **context}, app_key=JINJA, status=status
    )
    secure_headers(response)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def secure_headers(response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"  # pages show operational data: never cache them


def redirect(location: str) -> web.HTTPSeeOther:
    """The answer to a form: 303, so a reload does not post it again."""
    return web.HTTPSeeOther(location)


async def refused(
    request: web.Request, status: int, title: str, message: str, **headers: str
) -> web.Response:
    return await render(
        request,
        "refused.html",
        {"title": title, "message": message, "status": status},
        status=status,
        headers=headers,
    )


# ---------------------------------------------------------------------------------------- guards
def _guarded(view: View, *, post: bool = False) -> Any:
    """Signed-in only; for a POST, also a valid CSRF token (checked before the view runs)."""

    @functools.wraps(view)
    async def handler(request: web.Request) -> web.StreamResponse:
        console = request.app[CONSOLE]
        if not await auth.is_signed_in(request, console.password, console.session_seconds):
            if post:  # a form from an expired sign-in: say so rather than redirect a POST
                return await refused(
                    request,
                    403,
                    "Signed out",
                    "Your sign-in has ended. Sign in again, then repeat the action.",
                )
            raise redirect("/sign-in?" + urllib.parse.urlencode({"next": request.path_qs}))
        if post:
            form = await request.post()
            submitted = form.get(auth.CSRF_FIELD)
            if not await auth.csrf_valid(request, submitted if isinstance(submitted, str) else None):
                return await _csrf_refused(request)
        return await view(request, console)

    return handler


async def _csrf_refused(request: web.Request) -> web.Response:
    log.info("web console: refused a %s to %s without a valid CSRF token", request.method, request.path)
    return await refused(
        request,
        403,
        "Form refused",
        "This form did not carry a valid security token, so nothing was changed. It may have been sent "
        "from another site, or from a page older than your sign-in: reload the page and try again.",
    )


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or ``https://…``): no open redirect."""
    # Control characters too: aiohttp drops a tab or newline from Location, so "/\t/evil.com"
    # would arrive as "//evil.com".
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in target)
    ):
        return "/"
    return target


# ---------------------------------------------------------------------------------------- sign-in
async def _home(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    raise redirect(console.pages[0].path if console.pages else "/sign-in")


async def _sign_in_form(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    target = _safe_next(request.query.get("next"))
    if await auth.is_signed_in(request, console.password, console.session_seconds):
        raise redirect(target)
    return await render(request, "sign_in.html", {"title": "Sign in", "next": target, "error": None})


async def _sign_in(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    form = await request.post()
    submitted = form.get(auth.CSRF_FIELD)
    if not await auth.csrf_valid(request, submitted if isinstance(submitted, str) else None):
        return await _csrf_refused(request)
    target = _safe_next(str(form.get("next", "/")))
    address = auth.client_address(request, console.settings.web_behind_proxy)
    # Counted before the check, which awaits (an argon2 hash is checked in a thread): parallel
    # guesses would otherwise all pass the limit before any of them was counted.
    wait = await console.limiter.attempt(address)
    if wait:
        minutes = -(-wait // 60)
        return await refused(
            request,
            429,
            "Too many attempts",
            f"Too many wrong passwords from your address. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            **{"Retry-After": str(wait)},
        )
    password = form.get("password")
    if isinstance(password, str) and password and await console.password.matches(password):
        await console.limiter.succeeded(address)
        await auth.sign_in(request, console.password)
        log.info("web console: signed in from %s", address)
        raise redirect(target)
    log.warning("web console: wrong password from %s", address)
    return await render(
        request,
        "sign_in.html",
        {"title": "Sign in", "next": target, "error": "Wrong password."},
        status=401,
    )


async def _sign_out(request: web.Request, console: Console) -> web.StreamResponse:
    await auth.sign_out(request)
    raise redirect("/sign-in")
