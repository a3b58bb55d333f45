"""The Slack adapter: one `/watch` slash command on a slack-bolt AsyncApp.

* Single workspace: ``SLACK_BOT_TOKEN``. Many workspaces: ``SLACK_CLIENT_ID`` + ``SLACK_CLIENT_SECRET``,
  with slack-sdk's SQLAlchemy installation and OAuth-state stores on our own database (tables from
  migration 0003).
* Transport: Socket Mode when ``SLACK_APP_TOKEN`` is set, else HTTP (served by ``bot.web``).
* The command text is parsed by ``handlers.parse_text``; the reply model becomes Block Kit.

Slack wants an answer within 3 s. Most commands finish well inside that and their reply *is* the
acknowledgement; slow ones (fetching a feed for `sources add`, a digest) are acknowledged with
"Working on it…" and answered through ``response_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.delivery.controls import SLACK_NOT_RELEVANT, SLACK_WRONG_TOPIC
from bot.settings import Settings
from handlers import Command, HandlerDeps, Reply, Rights, UsageError, handle, parse_text
from handlers.feedback import FeedbackClick, parse_slack_action, record_feedback
from handlers.model import error

log = logging.getLogger(__name__)

SLASH_COMMAND = "/watch"
# commands: the slash command; chat:write(.public): post alerts and digests, also in public channels
# the bot was not invited to; users:read: the admin/owner check behind configuration commands;
# files:write: the weekly digest's trend chart (files.getUploadURLExternal / completeUploadExternal).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "users:read",
    "channels:history",
    "groups:history",
    "files:write",
)
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
ACK_WITHIN = 2.0  # seconds; Slack's limit is 3, the rest is network headroom
ADMIN_RIGHT = "Slack workspace admin or owner rights (or a place on the bot's FW_SLACK_ADMINS list)"
SECTION_LIMIT = 3000
_ICONS = {"ok": "✅", "info": "ℹ️", "error": "⚠️", "refused": "⛔"}

_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def slack_unescape(text: str) -> str:
    """Undo Slack's formatting of the command text: ``<https://x|x>`` → ``https://x``, ``&amp;`` → ``&``.

    Slack rewrites URLs, channel and user mentions typed after the command; handlers must see what
    the user typed. User groups (``<!subteam^S123|@team>``) are kept whole: their id is the point.
    """

    def plain(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("!subteam^"):
            # A user group stays as Slack wrote it: `/watch alerts mention` needs its id, and its
            # label contains no space, so the token survives splitting into words.
            return match.group(0).replace(" ", "")
        if target.startswith(("#", "@", "!")):
            return label or target
        return target

    return html.unescape(_LINK.sub(plain, text))


def _escape(text: str) -> str:
    """Slack needs only &, < and > escaped; everything else in mrkdwn is meant."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _chunks(lines: list[str], limit: int) -> list[str]:
    out: list[str] = []
    current = ""
    for line in lines:
        while len(line) > limit:  # one enormous line: split it rather than lose it
            if current:
                out.append(current)
                current = ""
            out.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            out.append(current)
            current = line
        else:
            current = candidate
    if current:
        out.append(current)
    return out


def reply_payload(reply: Reply) -> dict[str, Any]:
    """A reply model as a Slack message: Block Kit blocks plus the plain-text notification fallback."""
    title = f"{_ICONS[reply.status]} *{_escape(reply.title)}*"
    lines = [title, *(_escape(line) for line in reply.lines)]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": chunk}}
        for chunk in _chunks(lines, SECTION_LIMIT)
    ]
    for link in reply.links:
        # A "|" would end the URL part of Slack's <url|label> syntax early.
        url = _escape(link.url).replace("|", "%7C")
        head = f"<{url}|{_escape(link.text)}>" if link.url else _escape(link.text)
        text = f"{head}\n{_escape(link.detail)}" if link.detail else head
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}})
    return {
        "text": reply.text[:3000],
        "blocks": blocks[:50],
        "response_type": "ephemeral" if reply.ephemeral else "in_channel",
    }


class SlackCommands:
    """Turns `/watch` requests into handler calls and replies."""

    def __init__(self, deps: HandlerDeps, *, admins: frozenset[str], ack_within: float = ACK_WITHIN) -> None:
        self.deps = deps
        self.admins = admins
        self.ack_within = ack_within

    def register(self, app: AsyncApp) -> None:
        app.command(SLASH_COMMAND)(self.on_command)
        app.action(SLACK_NOT_RELEVANT)(self.on_feedback)
        app.action(SLACK_WRONG_TOPIC)(self.on_feedback)

    async def on_feedback(
        self,
        ack: Callable[..., Awaitable[None]],
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        """A click on an alert's "Not relevant" button or "Wrong topic…" menu."""
        await ack()  # within Slack's 3 s; the thank-you follows through response_url
        parsed = parse_slack_action(action)
        if parsed is None:
            return
        delivery_id, kind, topics = parsed
        channel = str(
            (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
        )
        user = str((body.get("user") or {}).get("id") or "")
        if self.deps.feedback is None:
            reply = error("Feedback is not enabled in this installation.")
        else:
            click = FeedbackClick("slack", channel, user, delivery_id, kind, topics)
            reply = await record_feedback(self.deps.feedback, click, tuple(self.deps.topics))
        await respond(**reply_payload(reply), replace_original=False)

    def rights(self, client: AsyncWebClient, user_id: str) -> Rights:
        async def check() -> bool:
            if user_id in self.admins:
                return True
            try:
                response = await client.users_info(user=user_id)
            except SlackApiError as exc:
                # Without the answer we cannot tell; refusing is the safe side.
                log.warning("users.info for %s failed: %s", user_id, exc.response.get("error"))
                return False
            user = response.get("user") or {}
            return bool(user.get("is_admin") or user.get("is_owner"))

        return Rights(ADMIN_RIGHT, check)

    def command(self, body: dict[str, Any], client: AsyncWebClient) -> Command:
        invocation = parse_text(slack_unescape(str(body.get("text") or "")))
        workspace = str(body.get("team_id") or body.get("enterprise_id") or "")
        return Command(
            platform="slack",
            workspace_id=workspace,
            channel_id=str(body.get("channel_id") or ""),
            user_id=str(body.get("user_id") or ""),
            rights=self.rights(client, str(body.get("user_id") or "")),
            invocation=invocation,
            channel_name=str(body.get("channel_name") or ""),
            user_name=str(body.get("user_name") or ""),
        )

    async def on_command(
        self,
        ack: Callable[..., Awaitable[None]],
        command: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
        client: AsyncWebClient,
    ) -> None:
        try:
            parsed = self.command(command, client)
        except UsageError as exc:
            await ack(**reply_payload(exc.reply))
            return
        task = asyncio.ensure_future(handle(self.deps, parsed))
        finished, _ = await asyncio.wait({task}, timeout=self.ack_within)
        if task in finished:
            await ack(**reply_payload(task.result()))
            return
        await ack(text="Working on it…", response_type="ephemeral")
        await respond(**reply_payload(await task))


def build_slack_app(
    settings: Settings, deps: HandlerDeps, engine: AsyncEngine, *, ack_within: float = ACK_WITHIN
) -> AsyncApp:
    """The bolt app for whichever mode the settings describe (see the module docstring)."""
    signing = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    client_id = settings.slack_client_id.get_secret_value() if settings.slack_client_id else None
    client_secret = settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else None
    socket_mode = settings.slack_app_token is not None
    if not signing and not socket_mode:
        raise ValueError("SLACK_SIGNING_SECRET is required for Slack's HTTP mode (or set SLACK_APP_TOKEN)")
    client = AsyncWebClient(base_url=settings.slack_api_base)
    # slack-sdk retries 429s only when told to; Retry-After is honoured.
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    if client_id and client_secret:
        oauth = AsyncOAuthSettings(
            client_id=client_id,
            client_secret=client_secret,
            scopes=list(BOT_SCOPES),
            installation_store=AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=engine),
            state_store=AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine),
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            redirect_uri=settings.slack_redirect_uri,
        )
        app = AsyncApp(signing_secret=signing, client=client, oauth_settings=oauth, name="frontierwatch")
    elif settings.slack_bot_token is not None:
        client.token = settings.slack_bot_token.get_secret_value()
        app = AsyncApp(signing_secret=signing, client=client, name="frontierwatch")
    else:
        raise ValueError(
            "set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (OAuth)"
        )
    SlackCommands(deps, admins=settings.slack_admin_ids, ack_within=ack_within).register(app)
    return app


def slack_configured(settings: Settings) -> bool:
    return settings.slack_bot_token is not None or (
        settings.slack_client_id is not None and settings.slack_client_secret is not None
    )


class SlackSocketService:
    """Socket Mode: the app opens a WebSocket to Slack, no public URL needed (one process only).

    Starting never waits for Slack: a refused token fails the start in one line (when Slack can be
    reached to say so), and an unreachable Slack is retried in the background, with one log line per
    outage rather than a traceback every ten seconds, while polling and delivery go on."""

    name = "slack-socket-mode"
    FIRST_TRY_SECONDS = 5.0

    def __init__(self, app: AsyncApp, app_token: str) -> None:
        self._app = app
        self._token = app_token
        self._handler: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler: Any = AsyncSocketModeHandler(self._app, self._token, logger=_socket_logger())  # untyped
        self._handler = handler  # so that stop() also ends a connection that is still retrying
        # Ask for the first WebSocket URL here rather than inside connect_async(): slack-sdk retries
        # a refused token there forever, so a wrong SLACK_APP_TOKEN (revoked, or not an xapp- token)
        # would never be reported. Slack's refusal fails the start; an unreachable Slack does not.
        try:
            handler.client.wss_uri = await asyncio.wait_for(
                handler.client.issue_new_wss_url(), self.FIRST_TRY_SECONDS
            )
        except SlackApiError:
            self._handler = None
            await handler.close_async()
            raise
        except Exception as exc:
            log.warning(
                "slack: Socket Mode cannot reach Slack yet (%s); polling goes on, Slack connects when it can",
                type(exc).__name__,
            )
        self._task = asyncio.create_task(self._connect(handler), name="slack-socket-mode")

    async def _connect(self, handler: Any) -> None:
        try:
            await handler.connect_async()  # retries by itself until connected or closed
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(
                "slack: Socket Mode stopped: %s", " ".join(str(exc).split())[:200] or type(exc).__name__
            )

    async def stop(self) -> None:
        handler, self._handler = self._handler, None
        task, self._task = self._task, None
        if handler is not None:
            handler.client.closed = True  # ends slack-sdk's retry loop at its next turn
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)
        if handler is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(handler.close_async(), 5)


class _OneLineRetries(logging.Filter):
    """slack-sdk logs every failed Socket Mode connection attempt with a traceback, every ten
    seconds. Keep the first line of each outage, then one reminder every five minutes."""

    REMIND_EVERY = 300.0

    def __init__(self) -> None:
        super().__init__()
        self._last: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Failed to connect"):
            if "session" in record.getMessage() and "established" in record.getMessage():
                self._last = None  # connected: the next failure is a new outage
            return True
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        now = time.monotonic()
        if self._last is not None and now - self._last < self.REMIND_EVERY:
            return False
        self._last = now
        return True


def _socket_logger() -> logging.Logger:
    logger = logging.getLogger("bot.platforms.slack.socket_mode")
    if not any(isinstance(f, _OneLineRetries) for f in logger.filters):
        logger.addFilter(_OneLineRetries())
    return logger
