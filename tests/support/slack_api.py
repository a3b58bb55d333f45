"""A local stand-in for Slack's Web API, incoming webhooks and ``response_url``s.

Records every call, validates calls against Slack's Web API spec and Block Kit limits (when
given ``../shared``), keeps posted messages (with ``metadata`` and ``thread_ts``) so
``conversations.history`` can answer reconciliation queries, enforces roughly one message per
second per channel with short bursts (429 + ``Retry-After``), and simulates outages (5xx) and
channels that are gone. Point slack-sdk at it with ``base_url=server.api_base``.

Socket Mode: ``apps.connections.open`` (app-level ``xapp-`` token only) hands out a
``ws://…/socket?ticket=…`` URL; the WebSocket there behaves like Slack's Socket Mode server: it
greets every connection with ``hello``, delivers envelopes the test pushes (``push_envelope``,
``push_slash_command``), records the acknowledgements the app sends back (``socket_acks``) and can
ask the app to reconnect (``socket_disconnect``: ``{"type": "disconnect", "reason": ...}``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import BodyPartReader, WSMsgType, web

from tests.support.specs import slack_request_errors

TEAM_ID, BOT_USER = "T0000000001", "U0000000BOT"
APP_ID = "A0000000001"


@dataclass(frozen=True, slots=True)
class SlackCall:
    method: str
    body: dict[str, Any]
    authorization: str | None


@dataclass
class SlackAPI:
    shared: Path | None = None
    burst: int = 3  # messages per channel allowed within one second
    calls: list[SlackCall] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    responses: list[dict[str, Any]] = field(default_factory=list)  # what reached response_url
    webhook_posts: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    spec_errors: list[str] = field(default_factory=list)
    gone_channels: dict[str, str] = field(
        default_factory=dict
    )  # channel -> error (channel_not_found, is_archived...)
    revoked_webhooks: set[str] = field(default_factory=set)
    users: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # user id -> {"is_admin":..., "is_owner":...}
    outage_status: int | None = None
    rate_limited: int = 0
    # While set: chat.postMessage stores the message, then holds its response until the event is
    # set (a post that reached Slack whose answer never came back: crash/timeout tests).
    hold_responses: asyncio.Event | None = None
    holding: int = 0
    # Files: the external upload flow (getUploadURLExternal → POST bytes → completeUploadExternal).
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # file id -> what Slack knows
    uploads: dict[str, bytes] = field(default_factory=dict)  # file id -> the bytes POSTed
    _files: Any = field(default_factory=lambda: itertools.count(1))
    _ts: Any = field(default_factory=lambda: itertools.count(1))
    _sent: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _runner: web.AppRunner | None = None
    base: str = ""
    # Socket Mode (see the module docstring).
    socket_tickets: list[str] = field(default_factory=list)  # issued by apps.connections.open
    socket_connections: list[str] = field(default_factory=list)  # ticket of every accepted connection
    socket_hellos: int = 0
    socket_acks: list[dict[str, Any]] = field(default_factory=list)  # {"envelope_id": ..., "payload": ...}
    socket_received: list[Any] = field(default_factory=list)  # every text frame the app sent
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)  # open, oldest first
    _socket_changed: asyncio.Condition | None = None
    _envelopes: Any = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{id}", self._response_url)
        app.router.add_post("/services/{a}/{b}/{c}", self._incoming_webhook)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        self._socket_changed = asyncio.Condition()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for ws in list(self._sockets):  # an open WebSocket would hold the server's shutdown
            await ws.close(code=1001, message=b"server stopping")
        if self._runner:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def api_base(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, key: str = "1") -> str:
        return f"{self.base}/response/{key}"

    def webhook_url(self, key: str = "T1/B1/secret") -> str:
        return f"{self.base}/services/{key}"

    def method_calls(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    # ------------------------------------------------------------------ handlers
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.method == "GET":
            body: dict[str, Any] = dict(request.query)
        elif request.content_type == "application/json":
            body = {**request.query, **(await request.json())}
        else:
            # slack_sdk sends some methods' arguments in the query string of a POST (the upload
            # methods' ``params``); Slack reads both.
            body = {**request.query, **dict(await request.post())}
        self.calls.append(SlackCall(method, body, request.headers.get("Authorization")))
        if method == "apps.connections.open":  # newer than the 2020 spec; app-level token only
            return self._m_apps_connections_open(request.headers.get("Authorization"), body)
        if self.shared is not None and method not in {"oauth.v2.access"}:
            problems = slack_request_errors(
                self.shared, method, body, authorization=request.headers.get("Authorization")
            )
            self.spec_errors.extend(f"{method}: {e}" for e in problems)
        if self.outage_status is not None:
            return web.Response(status=self.outage_status, text="upstream connect error")
        if (
            not (request.headers.get("Authorization") or "").startswith("Bearer xox")
            and method != "oauth.v2.access"
        ):
            return web.json_response({"ok": False, "error": "not_authed"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result: web.Response = handler(body)
        if self.hold_responses is not None and method == "chat.postMessage":
            self.holding += 1
            try:
                await self.hold_responses.wait()
            finally:
                self.holding -= 1
        return result

    def _m_auth_test(self, body: dict[str, Any]) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "url": "https://frontier.slack.com/",
                "team": "Frontier",
                "user": "frontierwatch",
                "team_id": TEAM_ID,
                "user_id": BOT_USER,
                "bot_id": "B0000000BOT",
                "is_enterprise_install": False,
            }
        )

    def _m_chat_postMessage(self, body: dict[str, Any]) -> web.Response:
        channel = str(body.get("channel", ""))
        if channel in self.gone_channels:
            return web.json_response({"ok": False, "error": self.gone_channels[channel]})
        now = time.monotonic()
        sent = self._sent[channel]
        while sent and now - sent[0] > 1.0:
            sent.popleft()
        if len(sent) >= self.burst:
            self.rate_limited += 1
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
            )
        sent.append(now)
        blocks = body.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        metadata = body.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        ts = f"{1764331200 + next(self._ts)}.000100"
        message = {
            "type": "message",
            "user": BOT_USER,
            "bot_id": "B0000000BOT",
            "text": body.get("text", ""),
            "ts": ts,
            "blocks": blocks or [],
            **({"metadata": metadata} if metadata else {}),
            **({"thread_ts": body["thread_ts"]} if body.get("thread_ts") else {}),
        }
        self.messages[channel].append(message)
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})

    # ------------------------------------------------------------------ files (external upload)
    def _m_files_getUploadURLExternal(self, body: dict[str, Any]) -> web.Response:
        """Docs: required ``filename`` and ``length`` (bytes); answers ``upload_url`` + ``file_id``."""
        filename, length = str(body.get("filename") or ""), str(body.get("length") or "")
        if not filename or not length.isdigit() or int(length) <= 0:
            return web.json_response({"ok": False, "error": "invalid_arguments"})
        file_id = f"F{next(self._files):010d}"
        self.files[file_id] = {
            "id": file_id,
            "name": filename,
            "length": int(length),
            "alt_txt": body.get("alt_txt"),
            "shared": False,
        }
        return web.json_response(
            {"ok": True, "upload_url": f"{self.base}/upload/v1/{file_id}", "file_id": file_id}
        )

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL: the raw bytes (or a multipart form with the file); HTTP 200 "OK - n"."""
        file_id = request.match_info["file_id"]
        if file_id not in self.files:
            return web.Response(status=404, text="not found")
        if request.content_type == "multipart/form-data":
            data = b""
            async for part in await request.multipart():
                if isinstance(part, BodyPartReader) and part.filename:
                    data = bytes(await part.read(decode=False))
        else:
            data = await request.read()
        declared = self.files[file_id]["length"]
        if len(data) != declared:
            self.spec_errors.append(f"upload {file_id}: {len(data)} bytes sent, {declared} declared")
        self.uploads[file_id] = data
        return web.Response(text=f"OK - {len(data)}")

    def _m_files_completeUploadExternal(self, body: dict[str, Any]) -> web.Response:
        """Docs: required ``files`` (JSON array of ``{"id", "title"?}``); ``channel_id`` shares the
        files there (a message with ``files``, ``initial_comment`` as its text, in ``thread_ts``)."""
        raw = body.get("files")
        listed = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(listed, list) or not listed:
            return web.json_response({"ok": False, "error": "invalid_arguments"})
        for item in listed:
            if item.get("id") not in self.files or item["id"] not in self.uploads:
                return web.json_response({"ok": False, "error": "file_not_found"})
        channel = str(body.get("channel_id") or "")
        if channel in self.gone_channels:
            return web.json_response({"ok": False, "error": self.gone_channels[channel]})
        shared = []
        for item in listed:
            known = self.files[item["id"]]
            known.update(title=item.get("title") or known["name"], shared=bool(channel))
            shared.append(
                {
                    "id": known["id"],
                    "name": known["name"],
                    "title": known["title"],
                    "mimetype": "image/png" if known["name"].endswith(".png") else "application/octet-stream",
                    "filetype": known["name"].rsplit(".", 1)[-1],
                    "size": len(self.uploads[item["id"]]),
                }
            )
        if channel:
            message = {
                "type": "message",
                "user": BOT_USER,
                "text": body.get("initial_comment") or "",
                "ts": f"{1764331200 + next(self._ts)}.000100",
                "upload": True,
                "files": shared,
                **({"thread_ts": body["thread_ts"]} if body.get("thread_ts") else {}),
            }
            self.messages[channel].append(message)
        return web.json_response(
            {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in shared]}
        )

    def shared_files(self, channel: str) -> list[tuple[dict[str, Any], bytes]]:
        """The files shared in ``channel``, each with its uploaded bytes, in order."""
        return [
            (f, self.uploads[f["id"]])
            for message in self.messages.get(channel, [])
            for f in message.get("files") or []
        ]

    def _m_chat_postEphemeral(self, body: dict[str, Any]) -> web.Response:
        return web.json_response({"ok": True, "message_ts": f"{1764331200 + next(self._ts)}.000200"})

    def _m_conversations_history(self, body: dict[str, Any]) -> web.Response:
        channel = str(body.get("channel", ""))
        if channel in self.gone_channels:
            return web.json_response({"ok": False, "error": self.gone_channels[channel]})
        limit = int(body.get("limit", 100))
        messages = list(reversed(self.messages.get(channel, [])))[:limit]
        if str(body.get("include_all_metadata", "")).lower() not in {"1", "true"}:
            messages = [{k: v for k, v in m.items() if k != "metadata"} for m in messages]
        return web.json_response(
            {
                "ok": True,
                "messages": messages,
                "has_more": False,
                "pin_count": 0,
                "response_metadata": {"next_cursor": ""},
            }
        )

    def _m_conversations_replies(self, body: dict[str, Any]) -> web.Response:
        """The parent message and its thread replies, oldest first (as Slack answers)."""
        channel, ts = str(body.get("channel", "")), str(body.get("ts", ""))
        if channel in self.gone_channels:
            return web.json_response({"ok": False, "error": self.gone_channels[channel]})
        thread = [m for m in self.messages.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts]
        if str(body.get("include_all_metadata", "")).lower() not in {"1", "true"}:
            thread = [{k: v for k, v in m.items() if k != "metadata"} for m in thread]
        limit = int(body.get("limit", 100))
        return web.json_response(
            {
                "ok": True,
                "messages": thread[:limit],
                "has_more": False,
                "response_metadata": {"next_cursor": ""},
            }
        )

    def _m_conversations_info(self, body: dict[str, Any]) -> web.Response:
        channel = str(body.get("channel", ""))
        if channel in self.gone_channels:
            return web.json_response({"ok": False, "error": self.gone_channels[channel]})
        return web.json_response(
            {"ok": True, "channel": {"id": channel, "name": f"ch-{channel}", "is_channel": True}}
        )

    def _m_users_info(self, body: dict[str, Any]) -> web.Response:
        uid = str(body.get("user", ""))
        flags = self.users.get(uid, {})
        return web.json_response(
            {
                "ok": True,
                "user": {
                    "id": uid,
                    "team_id": TEAM_ID,
                    "name": uid,
                    "is_admin": bool(flags.get("is_admin")),
                    "is_owner": bool(flags.get("is_owner")),
                    "is_primary_owner": False,
                    "is_bot": False,
                },
            }
        )

    def _m_oauth_v2_access(self, body: dict[str, Any]) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "app_id": "A0000000001",
                "authed_user": {"id": "U0000000001"},
                "scope": "commands,chat:write",
                "token_type": "bot",
                "access_token": "xoxb-installed-token",
                "bot_user_id": BOT_USER,
                "team": {"id": "T0000000002", "name": "Other"},
                "enterprise": None,
                "is_enterprise_install": False,
            }
        )

    # ------------------------------------------------------------------ Socket Mode
    def _m_apps_connections_open(self, authorization: str | None, body: dict[str, Any]) -> web.Response:
        if self.outage_status is not None:
            return web.Response(status=self.outage_status, text="upstream connect error")
        token = (authorization or "").removeprefix("Bearer ") if authorization else str(body.get("token", ""))
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        if not token.startswith("xapp-"):
            return web.json_response({"ok": False, "error": "not_allowed_token_type"})
        ticket = f"t{len(self.socket_tickets) + 1}-{time.monotonic_ns()}"
        self.socket_tickets.append(ticket)
        ws_base = self.base.replace("http://", "ws://", 1)
        return web.json_response({"ok": True, "url": f"{ws_base}/socket?ticket={ticket}&app_id={APP_ID}"})

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.socket_tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.socket_connections.append(ticket)
        self._sockets.append(ws)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {
                        "host": "applink-standin",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": APP_ID},
                }
            )
            await self._socket_notify(hello=True)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    data = msg.data
                self.socket_received.append(data)
                if isinstance(data, dict) and "envelope_id" in data:
                    self.socket_acks.append(data)
                await self._socket_notify()
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
            await self._socket_notify()
        return ws

    async def _socket_notify(self, *, hello: bool = False) -> None:
        assert self._socket_changed is not None
        async with self._socket_changed:
            if hello:
                self.socket_hellos += 1
            self._socket_changed.notify_all()

    async def wait_socket(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (checked after every Socket Mode event); TimeoutError after ``within`` seconds."""
        assert self._socket_changed is not None
        async with self._socket_changed:
            await asyncio.wait_for(self._socket_changed.wait_for(predicate), within)

    async def wait_connected(self, hellos: int = 1, within: float = 5.0) -> None:
        """Wait until ``hellos`` connections have been greeted in all and one is open."""
        await self.wait_socket(lambda: self.socket_hellos >= hellos and bool(self._sockets), within)

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    async def push_envelope(
        self, payload: dict[str, Any], *, type: str = "slash_commands", accepts_response_payload: bool = True
    ) -> str:
        """Deliver an envelope on the newest open connection; returns its ``envelope_id``."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode connection is open")
        envelope_id = f"env-{next(self._envelopes)}-{time.monotonic_ns()}"
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": type,
                "accepts_response_payload": accepts_response_payload,
                "payload": payload,
            }
        )
        return envelope_id

    async def push_slash_command(
        self,
        text: str,
        *,
        user: str = "U1",
        channel: str = "C1",
        team: str = TEAM_ID,
        command: str = "/watch",
        response_key: str | None = None,
    ) -> str:
        """A slash command as Slack delivers it in Socket Mode (the form fields as a dict)."""
        payload = {
            "token": "deprecated",
            "team_id": team,
            "team_domain": "frontier",
            "channel_id": channel,
            "channel_name": "policy",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": self.response_url(response_key or f"s{time.monotonic_ns()}"),
            "trigger_id": "1.2.3",
        }
        return await self.push_envelope(payload)

    async def wait_ack(self, envelope_id: str, within: float = 3.0) -> dict[str, Any]:
        """The acknowledgement the app sent for ``envelope_id`` (TimeoutError if none in time)."""

        def acked() -> bool:
            return any(a["envelope_id"] == envelope_id for a in self.socket_acks)

        await self.wait_socket(acked, within)
        return next(a for a in self.socket_acks if a["envelope_id"] == envelope_id)

    async def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the app to reconnect, as Slack does before it retires a connection."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode connection is open")
        await self._sockets[-1].send_json(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-standin"}}
        )

    async def _response_url(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    async def _incoming_webhook(self, request: web.Request) -> web.Response:
        key = "/".join(request.match_info[k] for k in ("a", "b", "c"))
        body = await request.json()
        if self.shared is not None and body.get("blocks"):
            from tests.support.specs import block_kit_errors

            self.spec_errors.extend(f"webhook: {e}" for e in block_kit_errors(body["blocks"]))
        if self.outage_status is not None:
            return web.Response(status=self.outage_status, text="upstream connect error")
        if key in self.revoked_webhooks:
            return web.Response(status=404, text="no_service")
        self.webhook_posts[key].append(body)
        return web.Response(text="ok")
