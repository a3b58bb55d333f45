"""The platform ends of the outbox: post one unit, or find out whether it was already posted.

Each sender turns platform failures into three outcomes the worker understands: ``Retry`` (429,
5xx, timeouts — with ``ambiguous`` when the request may have been posted), ``Gone`` (the channel or
webhook no longer exists or the bot lost access: the destination is marked inactive) and
``Rejected`` (this body will never be accepted: the row fails, the others go on).

Discord goes through discord.py's REST client (``login`` only, no gateway), which already honours
429 ``retry_after`` and per-route buckets; we add a global pace below Discord's 50 requests/s so
that a 1,000-channel digest does not provoke 429 storms. Slack goes through slack_sdk's
``AsyncWebClient`` with its 429 ``Retry-After`` handler; posts to one channel are spaced one second
apart, Slack's documented pace.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import aiohttp
import discord
from discord.http import Route
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery.bodies import discord_marker, discord_params
from bot.digest.common import clip
from bot.metrics import Metrics
from bot.store.outbox import Dest, Row, Unit
from bot.trends.chart import ChartFile

log = logging.getLogger(__name__)

SLACK_EVENT = "frontierwatch_delivery"
SLACK_GONE = {
    "channel_not_found",
    "is_archived",
    "not_in_channel",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "no_permission",
    "team_access_not_granted",
}
SLACK_WEBHOOK_GONE = {
    "no_service",
    "no_team",
    "channel_not_found",
    "channel_is_archived",
    "invalid_token",
    "no_active_hooks",
    "team_disabled",
    "action_prohibited",
    "no_service_id",
}
DISCORD_GONE = {10003: "Unknown Channel", 10015: "Unknown Webhook", 50001: "Missing Access"}
DISCORD_NO_PERMISSION = 50013
THREAD_EXISTS = 160004
_WEBHOOK = re.compile(r"/webhooks/(\d+)/([^/?#]+)")


class SendError(Exception):
    pass


class Retry(SendError):
    def __init__(self, message: str, retry_after: float | None = None, *, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class Gone(SendError):
    """The destination cannot receive anything any more; the message is the reason shown to users."""


class Rejected(SendError):
    """The platform refused this body for good."""


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: str
    thread_id: str | None = None  # a thread created for this follow-up (stored on the alert row)


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """The alert a follow-up replies to."""

    alert_row_id: int
    message_id: str
    thread_id: str | None
    title: str


class Sender(Protocol):
    async def send(
        self, dest: Dest, unit: Unit, body: dict[str, Any] | str, thread: ThreadRef | None
    ) -> Sent: ...

    async def reconcile(self, dest: Dest, unit: Unit, thread: ThreadRef | None) -> Sent | None:
        """For a unit that may already be posted: its message if found, None if surely not."""
        ...

    async def close(self) -> None: ...


class Pace:
    """A global token bucket: at most ``rate`` acquisitions per second, small bursts allowed."""

    def __init__(self, rate: float, burst: int = 5) -> None:
        self.rate = rate
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


# ---------------------------------------------------------------------------------------- console
class ConsoleSender:
    """The default install's destination: the terminal, through the same outbox."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self.write = write or _stdout

    async def send(
        self, dest: Dest, unit: Unit, body: dict[str, Any] | str, thread: ThreadRef | None
    ) -> Sent:
        self.write(body if isinstance(body, str) else str(body))
        return Sent(f"console:{unit.lead.id}")

    async def reconcile(self, dest: Dest, unit: Unit, thread: ThreadRef | None) -> Sent | None:
        # The terminal keeps no history to look at: print again rather than risk losing it.
        return None

    async def close(self) -> None:
        return None


def _stdout(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.write("\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------- discord
def discord_error(exc: BaseException) -> SendError:
    if isinstance(exc, discord.RateLimited):
        return Retry(f"Discord rate limit: retry after {exc.retry_after:.1f}s", exc.retry_after)
    if isinstance(exc, discord.HTTPException):
        code, status = exc.code, exc.status
        if code in DISCORD_GONE:
            return Gone(f"Discord: {DISCORD_GONE[code]} ({code})")
        if code == DISCORD_NO_PERMISSION:
            return Gone(f"Discord: Missing Permissions ({code}): the bot needs Send Messages and Embed Links")
        if status == 429:
            return Retry("Discord: 429", 5.0)
        if status >= 500:
            return Retry(f"Discord: HTTP {status}")
        if status == 401:
            return Retry("Discord rejected the bot token (401); check DISCORD_TOKEN", 600.0)
        if status == 404:
            return Gone(f"Discord: not found ({code}) {clip(exc.text, 200)}")
        return Rejected(f"Discord: HTTP {status} code {code}: {clip(exc.text, 300)}")
    # The exception's text may carry the request URL, and a webhook URL is a credential: only the
    # type goes into logs and the outbox.
    if isinstance(exc, TimeoutError | aiohttp.ClientError | OSError):
        return Retry(f"Discord: {type(exc).__name__}", ambiguous=True)
    return Retry(f"Discord: unexpected {type(exc).__name__}", ambiguous=True)


def _embeds(body: dict[str, Any]) -> list[discord.Embed]:
    return [discord.Embed.from_dict(e) for e in body.get("embeds") or []]


RECONCILE_PAGES = 5  # of 100 messages: how far back an ambiguous send is looked for


class DiscordSender:
    """Bot-token sends to channels: ``get_partial_messageable(id).send(..., nonce=...)``."""

    def __init__(
        self,
        token: str,
        api_base: str,
        *,
        rate: float = 45.0,
        timeout: float = 60.0,
        metrics: Metrics | None = None,
    ) -> None:
        Route.BASE = api_base.rstrip("/")
        self._token = token
        self.timeout = timeout
        self.pace = Pace(rate)
        self.metrics = metrics or Metrics()
        self.client: discord.Client | None = None
        self._login_lock = asyncio.Lock()

    async def _client(self) -> discord.Client:
        async with self._login_lock:
            if self.client is None:
                # discord.py waits out 429s by itself; the trace is how we still count them.
                client = discord.Client(
                    intents=discord.Intents.none(), http_trace=self.metrics.http_trace("discord")
                )
                try:
                    await client.login(self._token)
                except discord.LoginFailure as exc:
                    await client.close()
                    raise Retry("Discord rejected the bot token; check DISCORD_TOKEN", 600.0) from exc
                except Exception as exc:
                    await client.close()
                    raise discord_error(exc) from exc
                self.client = client
            return self.client

    async def send(
        self, dest: Dest, unit: Unit, body: dict[str, Any] | str, thread: ThreadRef | None
    ) -> Sent:
        assert isinstance(body, dict)
        client = await self._client()
        created_thread: str | None = None
        try:
            async with asyncio.timeout(self.timeout):
                target = dest.channel_id
                if thread is not None:
                    if thread.thread_id is None:
                        created_thread = await self._thread(client, dest, thread)
                        target = created_thread
                    else:
                        target = thread.thread_id
                await self.pace.acquire()
                # The same wire body that `digest --preview` prints and the spec tests validate.
                params = discord_params(body, unit.nonce)
                try:
                    message = await client.http.send_message(int(target), params=params)
                finally:
                    for file in params.files or ():  # the chart's PNG, if any
                        file.close()
        except SendError:
            raise
        except Exception as exc:
            if (
                body.get("files")
                and isinstance(exc, discord.HTTPException)
                and exc.code == DISCORD_NO_PERMISSION
            ):
                # Installed before the chart needed Attach Files: this chart fails, the channel
                # stays active and its digests and alerts go on.
                raise Rejected(
                    "Discord: Missing Permissions (50013): the bot needs Attach Files to post the trend chart"
                ) from exc
            raise discord_error(exc) from exc
        return Sent(str(message["id"]), created_thread)

    async def _thread(self, client: discord.Client, dest: Dest, thread: ThreadRef) -> str:
        await self.pace.acquire()
        try:
            data = await client.http.start_thread_with_message(
                dest.channel_id,
                thread.message_id,
                name=clip(thread.title, 100) or "Follow-ups",
                auto_archive_duration=1440,
            )
        except discord.HTTPException as exc:
            if exc.code == THREAD_EXISTS:
                # A thread started on a message has the message's id (a crash after creating it).
                return thread.message_id
            raise
        return str(data["id"])

    async def reconcile(self, dest: Dest, unit: Unit, thread: ThreadRef | None) -> Sent | None:
        """Look for this unit's own message (its ``ref`` marker, or its nonce where Discord shows
        it) among the bot's messages since shortly before the unit was queued. The nonce alone is
        not enough: Discord forgets it after a few minutes, and a retry after a long back-off or a
        restart would then post the message a second time."""
        client = await self._client()
        created_thread: str | None = None
        target = dest.channel_id
        if thread is not None:
            # A thread started on a message has the message's id, even if we never recorded it.
            target = thread.thread_id or thread.message_id
            created_thread = None if thread.thread_id else thread.message_id
        marker = discord_marker(unit.nonce)
        after = discord.utils.time_snowflake(unit.lead.created_at - timedelta(minutes=5))
        me = str(client.user.id) if client.user is not None else None
        try:
            async with asyncio.timeout(self.timeout):
                for _page in range(RECONCILE_PAGES):
                    await self.pace.acquire()
                    page: list[dict[str, Any]] = [
                        dict(m) for m in await client.http.logs_from(int(target), limit=100, after=after)
                    ]
                    for message in page:
                        if me is not None and str((message.get("author") or {}).get("id")) != me:
                            continue
                        if str(message.get("nonce") or "") == unit.nonce or any(
                            str((embed.get("footer") or {}).get("text") or "").endswith(marker)
                            for embed in message.get("embeds") or []
                        ):
                            return Sent(str(message["id"]), created_thread)
                    if len(page) < 100:
                        return None
                    after = max(int(message["id"]) for message in page)
        except discord.NotFound:
            return None  # no such thread (yet): nothing was posted in it
        except SendError:
            raise
        except Exception as exc:
            raise discord_error(exc) from exc
        return None

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None


class DiscordWebhookSender:
    """Discord webhooks (no bot): no nonce exists for webhooks, so an ambiguous send is resent."""

    def __init__(
        self, api_base: str, *, rate: float = 45.0, timeout: float = 60.0, metrics: Metrics | None = None
    ) -> None:
        Route.BASE = api_base.rstrip("/")
        self.timeout = timeout
        self.pace = Pace(rate)
        self.metrics = metrics or Metrics()
        self.session: aiohttp.ClientSession | None = None

    async def send(
        self, dest: Dest, unit: Unit, body: dict[str, Any] | str, thread: ThreadRef | None
    ) -> Sent:
        assert isinstance(body, dict)
        match = _WEBHOOK.search(dest.webhook_url or "")
        if match is None:
            raise Gone("the Discord webhook URL is malformed")
        if self.session is None:
            # discord.py's webhook retries 429s itself; the trace counts each one.
            self.session = aiohttp.ClientSession(trace_configs=[self.metrics.http_trace("discord_webhook")])
        webhook = discord.Webhook.partial(int(match.group(1)), match.group(2), session=self.session)
        try:
            async with asyncio.timeout(self.timeout):
                await self.pace.acquire()
                # wait=False (HTTP 204): the message id is of no use without a bot to thread
                # follow-ups, and it spares a message object per send at fan-out scale.
                await webhook.send(
                    content=body.get("content") or discord.utils.MISSING,
                    embeds=_embeds(body),
                    wait=False,
                    allowed_mentions=discord.AllowedMentions.none(),
                )
        except Exception as exc:
            raise discord_error(exc) from exc
        return Sent(f"webhook:{unit.lead.id}")

    async def reconcile(self, dest: Dest, unit: Unit, thread: ThreadRef | None) -> Sent | None:
        return None

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


# ---------------------------------------------------------------------------------------- slack
def _slack_error_code(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def slack_error(exc: BaseException) -> SendError:
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = int(getattr(response, "status_code", 0) or 0)
        data = getattr(response, "data", None)
        error = str(data.get("error", "")) if isinstance(data, dict) else ""
        if status == 429 or error in {"ratelimited", "rate_limited"}:
            headers = getattr(response, "headers", {}) or {}
            value = headers.get("Retry-After") or headers.get("retry-after")
            return Retry("Slack: rate limited", float(value) if value else 1.0)
        if status >= 500:
            return Retry(f"Slack: HTTP {status}")
        if error in SLACK_GONE:
            return Gone(f"Slack: {error}")
        if error in {"internal_error", "fatal_error", "service_unavailable"}:
            return Retry(f"Slack: {error}")
        if error == "request_timeout":
            return Retry("Slack: request_timeout", ambiguous=True)
        return Rejected(f"Slack: {error or f'HTTP {status}'}")
    if isinstance(exc, TimeoutError | aiohttp.ClientError | OSError):
        return Retry(f"Slack: {type(exc).__name__}", ambiguous=True)
    return Retry(f"Slack: unexpected {type(exc).__name__}", ambiguous=True)


class _CountRateLimits(AsyncRetryHandler):
    """Counts every 429 answer slack_sdk sees and never asks for a retry itself. First in the client's
    list, it sees each answer, including those the rate-limit handler after it retries silently."""

    def __init__(self, count: Callable[[], None]) -> None:
        super().__init__(max_retry_count=0)
        self.count = count

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is not None and response.status_code == 429:
            self.count()
        return False


class SlackSender:
    """``chat.postMessage`` with the delivery id in the message metadata, so that an ambiguous
    send can be looked up (``conversations.history`` / ``.replies``) instead of posted twice."""

    def __init__(
        self,
        token: str | None,
        api_base: str,
        *,
        timeout: float = 60.0,
        per_channel_interval: float = 1.0,
        installations: AsyncInstallationStore | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.client = AsyncWebClient(token=token, base_url=api_base, timeout=int(max(1, timeout)))
        self.client.retry_handlers.insert(0, _CountRateLimits(lambda: self.metrics.rate_limited("slack")))
        self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
        self.default_token = token
        # Workspaces installed through OAuth have their own bot token in the installation store.
        self.installations = installations
        self.timeout = timeout
        self.interval = per_channel_interval
        self._last: dict[str, float] = {}

    async def _space(self, channel: str) -> None:
        wait = self._last.get(channel, 0.0) + self.interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last[channel] = time.monotonic()

    @staticmethod
    def metadata(unit: Unit) -> dict[str, Any]:
        payload: dict[str, Any] = {"delivery_id": unit.lead.id}
        if unit.seq:
            payload["seq"] = unit.seq
        return {"event_type": SLACK_EVENT, "event_payload": payload}

    async def send(
        self, dest: Dest, unit: Unit, body: dict[str, Any] | str, thread: ThreadRef | None
    ) -> Sent:
        assert isinstance(body, dict)
        if body.get("upload") is not None:
            return await self._upload(dest, body["upload"], thread)
        kwargs: dict[str, Any] = {
            "channel": dest.channel_id,
            "text": body["text"],
            "blocks": body["blocks"],
            "metadata": self.metadata(unit),
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread is not None:
            kwargs["thread_ts"] = thread.message_id
        kwargs["token"] = await self._token(dest)
        try:
            async with asyncio.timeout(self.timeout * 3):  # the retry handler may wait out 429s
                await self._space(dest.channel_id)
                response = await self.client.chat_postMessage(**kwargs)
        except Exception as exc:
            raise slack_error(exc) from exc
        return Sent(str(response["ts"]))

    async def _upload(self, dest: Dest, chart: ChartFile, thread: ThreadRef | None) -> Sent:
        """Slack's external upload flow (slack_sdk's ``files_upload_v2``): ``files.getUploadURLExternal``,
        the bytes POSTed to the returned ``upload_url``, then ``files.completeUploadExternal`` with
        ``channel_id``, which shares the file in the channel with ``initial_comment``. A file carries
        no message metadata, so the delivery's ``ref`` marker ends the file title instead (see
        ``reconcile``). Needs the ``files:write`` scope."""
        token = await self._token(dest)
        extra: dict[str, Any] = {"thread_ts": thread.message_id} if thread is not None else {}
        try:
            async with asyncio.timeout(self.timeout * 3):
                await self._space(dest.channel_id)
                response = await self.client.files_upload_v2(
                    filename=chart.filename,
                    content=chart.data,
                    title=chart.title,
                    alt_txt=chart.alt_text,
                    channel=dest.channel_id,
                    initial_comment=chart.alt_text,
                    token=token,
                    **extra,
                )
        except Exception as exc:
            if isinstance(exc, SlackApiError) and _slack_error_code(exc) == "missing_scope":
                raise Rejected("Slack: the app lacks the files:write scope to post the trend chart") from exc
            raise slack_error(exc) from exc
        files = response.get("files") or []
        return Sent(str(files[0]["id"]) if files else f"file:{dest.channel_id}")

    async def _token(self, dest: Dest) -> str:
        """The bot token for the destination's workspace: its OAuth installation, else SLACK_BOT_TOKEN."""
        if self.installations is not None and dest.workspace_id:
            try:
                bot = await self.installations.async_find_bot(enterprise_id=None, team_id=dest.workspace_id)
            except Exception as exc:  # the store is our database: a hiccup is worth a retry
                raise Retry(f"Slack: installation lookup failed: {type(exc).__name__}") from exc
            if bot is not None and bot.bot_token:
                return str(bot.bot_token)
        if self.default_token:
            return self.default_token
        raise Gone("Slack: the app is not installed in this workspace any more (no bot token)")

    async def reconcile(self, dest: Dest, unit: Unit, thread: ThreadRef | None) -> Sent | None:
        want = self.metadata(unit)["event_payload"]
        token = await self._token(dest)
        try:
            async with asyncio.timeout(self.timeout):
                if thread is not None:
                    response = await self.client.conversations_replies(
                        channel=dest.channel_id,
                        ts=thread.message_id,
                        include_all_metadata=True,
                        limit=200,
                        token=token,
                    )
                else:
                    oldest = unit.lead.created_at.timestamp() - 300
                    response = await self.client.conversations_history(
                        channel=dest.channel_id,
                        include_all_metadata=True,
                        limit=200,
                        oldest=f"{oldest:.6f}",
                        token=token,
                    )
        except Exception as exc:
            raise slack_error(exc) from exc
        marker = discord_marker(unit.nonce)
        for message in response.get("messages") or []:
            if unit.kind == "chart":  # a shared file: found by the marker ending its title
                for shared in message.get("files") or []:
                    if str(shared.get("title") or "").endswith(marker):
                        return Sent(str(shared.get("id") or message["ts"]))
                continue
            meta = message.get("metadata") or {}
            if meta.get("event_type") != SLACK_EVENT:
                continue
            got = meta.get("event_payload") or {}
            if got.get("delivery_id") == want["delivery_id"] and got.get("seq", 0) == want.get("seq", 0):
                return Sent(str(message["ts"]))
        return None

    async def close(self) -> None:
        session = getattr(self.client, "session", None)
        if session is not None and not session.closed:
            await session.close()


class SlackWebhookSender:
    """Slack incoming webhooks: no message id, no history; an ambiguous send is resent."""

    def __init__(self, *, timeout: float = 60.0, metrics: Metrics | None = None) -> None:
        self.timeout = timeout
        self.metrics = metrics or Metrics()
        self.session: aiohttp.ClientSession | None = None

    async def send(
        self, dest: Dest, unit: Unit, body: dict[str, Any] | str, thread: ThreadRef | None
    ) -> Sent:
        assert isinstance(body, dict)
        if not dest.webhook_url:
            raise Gone("the Slack webhook URL is missing")
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self.session.post(dest.webhook_url, json=body) as response:
                text = (await response.text())[:200]
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Retry(f"Slack webhook: {type(exc).__name__}", ambiguous=True) from exc
        if status == 200:
            return Sent(f"webhook:{unit.lead.id}")
        if status == 429:
            self.metrics.rate_limited("slack_webhook")
            raise Retry("Slack webhook: rate limited", float(retry_after) if retry_after else 1.0)
        if status >= 500:
            raise Retry(f"Slack webhook: HTTP {status}")
        if text.strip() in SLACK_WEBHOOK_GONE or status in (403, 404, 410):
            raise Gone(f"Slack webhook: {text.strip() or status}")
        raise Rejected(f"Slack webhook: HTTP {status}: {text}")

    async def reconcile(self, dest: Dest, unit: Unit, thread: ThreadRef | None) -> Sent | None:
        return None

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def thread_ref(alert: Row | None) -> ThreadRef | None:
    if alert is None or alert.platform_message_id is None:
        return None
    title = str((alert.payload.get("entry") or {}).get("title", ""))
    return ThreadRef(alert.id, alert.platform_message_id, alert.thread_id, title)
