"""A local stand-in for Discord's REST API (v10), for the real discord.py client.

It answers with Discord's response shapes, records every request, validates request bodies
against Discord's OpenAPI spec (when given ``../shared``), enforces per-channel and global rate
limits with Discord-shaped 429s, honours ``nonce`` + ``enforce_nonce`` like Discord does (a
repeated nonce returns the first message instead of creating another), and can simulate
outages (5xx) and channels or webhooks that are gone.

Point discord.py at it with ``discord.http.Route.BASE = server.api_base`` (pitfalls from
``platform-facts.md``: bare ``application/json`` content type, ``Via`` header on 429s).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import struct
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import BodyPartReader, web

from tests.support.specs import discord_request_errors

APP_ID, BOT_ID = "100000000000000001", "100000000000000002"


@dataclass(frozen=True, slots=True)
class UploadedFile:
    field: str  # "files[0]"
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class DiscordRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    status: int = 0
    files: tuple[UploadedFile, ...] = ()  # multipart/form-data parts ``files[n]``


def jr(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Discord's JSON: a bare ``application/json`` content type (discord.py checks it exactly)."""
    return web.Response(
        body=json.dumps(obj).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def user(uid: str, name: str, bot: bool = False) -> dict[str, Any]:
    return {
        "id": uid,
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "bot": bot,
    }


DISCORD_EPOCH_MS = 1420070400000


@dataclass
class DiscordAPI:
    shared: Path | None = None  # validate bodies against the spec when set
    channel_limit: int = 5  # messages per channel per window (Discord's usual bucket)
    channel_window: float = 5.0
    global_limit: int = 50  # requests per second per bot
    nonce_window: float = 300.0  # "the past few minutes"
    report_headers: bool = True  # False: no X-RateLimit-* on success, so clients meet real 429s
    requests: list[DiscordRequest] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    spec_errors: list[str] = field(default_factory=list)
    uploads: list[UploadedFile] = field(default_factory=list)  # every file of every multipart request
    gone_channels: set[str] = field(default_factory=set)
    forbidden_channels: set[str] = field(default_factory=set)
    no_attach_channels: set[str] = field(default_factory=set)  # the bot lacks Attach Files there
    revoked_webhooks: set[str] = field(default_factory=set)
    rate_limited: int = 0
    outage_status: int | None = None  # answer every request with this 5xx while set
    fail_next: int = 0  # answer the next N message creates with 500
    # While set: a message create is stored, then its response is held until the event is set,
    # like a send that reached Discord but whose answer never came back (crash/timeout tests).
    hold_responses: asyncio.Event | None = None
    holding: int = 0  # responses currently held
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _nonces: dict[tuple[str, str], tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _sent: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _global: deque[float] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    base: str = ""

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
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
        return f"{self.base}/api/v10"

    # ------------------------------------------------------------------ queries for tests
    def calls(self, method: str, prefix: str) -> list[DiscordRequest]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def posted(self, channel_id: str) -> list[dict[str, Any]]:
        return self.messages.get(channel_id, [])

    # ------------------------------------------------------------------ handling
    def _new_id(self) -> str:
        # Real snowflakes: the creation time in the high bits (clients page history by it), and a
        # counter in the low 22 bits so ids stay unique and increasing.
        stamp = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((stamp << 22) | (next(self._ids) & 0x3FFFFF))

    @staticmethod
    def pings(body: dict[str, Any]) -> tuple[list[str], bool]:
        """(roles, everyone/here) this body would notify, as Discord decides it: only ``content``
        pings (never embeds), and only what ``allowed_mentions`` allows (everything when absent)."""
        content = str(body.get("content") or "")
        allowed = body.get("allowed_mentions")
        parse = allowed.get("parse") or [] if isinstance(allowed, dict) else ["roles", "users", "everyone"]
        listed = [str(r) for r in (allowed.get("roles") or [])] if isinstance(allowed, dict) else []
        roles = [r for r in re.findall(r"<@&([0-9]+)>", content) if "roles" in parse or r in listed]
        everyone = "everyone" in parse and ("@here" in content or "@everyone" in content)
        return list(dict.fromkeys(roles)), everyone

    def _message(self, channel_id: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
        roles, everyone = self.pings(body)
        return {
            "id": self._new_id(),
            "channel_id": channel_id,
            "author": user(BOT_ID, "frontierwatch", bot=True),
            "content": body.get("content") or "",
            "timestamp": "2026-11-28T12:00:00.000000+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": everyone,
            "mentions": [],
            "mention_roles": roles,
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags", 0),
            **({"nonce": body["nonce"]} if "nonce" in body else {}),
            **extra,
        }

    def _rate_headers(self, bucket: str, remaining: int, reset_after: float) -> dict[str, str]:
        return {
            "X-RateLimit-Bucket": bucket,
            "X-RateLimit-Limit": str(self.channel_limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        }

    def _limited(self, key: str) -> web.Response | None:
        """Discord-shaped 429 when the channel bucket or the global limit is exhausted."""
        now = time.monotonic()
        while self._global and now - self._global[0] > 1.0:
            self._global.popleft()
        if len(self._global) >= self.global_limit:
            self.rate_limited += 1
            retry = 1.0 - (now - self._global[0])
            return jr(
                {"message": "You are being rate limited.", "retry_after": round(retry, 3), "global": True},
                429,
                {
                    "Via": "1.1 google",
                    "X-RateLimit-Global": "true",
                    "X-RateLimit-Scope": "global",
                    "Retry-After": str(max(1, round(retry))),
                },
            )
        sent = self._sent[key]
        while sent and now - sent[0] > self.channel_window:
            sent.popleft()
        if len(sent) >= self.channel_limit:
            self.rate_limited += 1
            retry = self.channel_window - (now - sent[0])
            return jr(
                {"message": "You are being rate limited.", "retry_after": round(retry, 3), "global": False},
                429,
                {
                    "Via": "1.1 google",
                    "X-RateLimit-Scope": "user",
                    "Retry-After": str(max(1, round(retry))),
                    **self._rate_headers(f"msg-{key}", 0, retry),
                },
            )
        sent.append(now)
        self._global.append(now)
        return None

    async def _multipart(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        """A multipart/form-data message create, as Discord reads it: the JSON body in
        ``payload_json``, the files in ``files[n]``; every file must be listed in the payload's
        ``attachments`` (by ``id`` = n), and every listed new attachment must be sent."""
        body: Any = None
        files: list[UploadedFile] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            data = await part.read(decode=False)
            if part.name == "payload_json":
                body = json.loads(data)
            elif part.name and re.fullmatch(r"files\[\d+\]", part.name):
                files.append(
                    UploadedFile(
                        part.name, part.filename or "", part.headers.get("Content-Type", ""), bytes(data)
                    )
                )
            else:
                self.spec_errors.append(f"multipart: unexpected part {part.name!r}")
        listed = {str(a.get("id")): a for a in (body or {}).get("attachments") or []}
        for file in files:
            index = file.field[len("files[") : -1]
            if index not in listed:
                self.spec_errors.append(f"multipart: {file.field} is not listed in attachments")
            elif listed[index].get("filename") != file.filename:
                self.spec_errors.append(f"multipart: {file.field} filename differs from its attachment")
        if body is None:
            self.spec_errors.append("multipart: no payload_json part")
        return body, files

    def _attachment(self, file: UploadedFile, listed: dict[str, Any]) -> dict[str, Any]:
        """Discord's attachment object for an uploaded file."""
        attachment_id = self._new_id()
        url = f"{self.base}/attachments/{attachment_id}/{file.filename}"
        shape: dict[str, Any] = {}
        if file.data[:8] == b"\x89PNG\r\n\x1a\n" and len(file.data) >= 24:
            width, height = struct.unpack(">II", file.data[16:24])
            shape = {"width": width, "height": height}
        return {
            "id": attachment_id,
            "filename": file.filename,
            "size": len(file.data),
            "url": url,
            "proxy_url": url,
            "content_type": file.content_type or "application/octet-stream",
            **({"description": listed["description"]} if listed.get("description") else {}),
            **shape,
        }

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body: Any = None
        files: list[UploadedFile] = []
        if request.content_type == "multipart/form-data":
            body, files = await self._multipart(request)
        else:
            raw = await request.read()
            if raw and request.content_type == "application/json":
                body = json.loads(raw)
        path = request.path
        record = DiscordRequest(
            request.method, path, dict(request.query), body, dict(request.headers), files=tuple(files)
        )
        self.requests.append(record)
        self.uploads.extend(files)
        if (
            self.shared is not None
            and request.method in {"POST", "PUT", "PATCH"}
            and not path.endswith("/threads")
        ):
            for problem in discord_request_errors(self.shared, request.method, path, body):
                self.spec_errors.append(f"{request.method} {path}: {problem}")
        if self.outage_status is not None:
            return jr({"message": "Service Unavailable", "code": 0}, self.outage_status)
        parts = path.removeprefix("/api/v10/").split("/")
        m = request.method
        if parts == ["users", "@me"]:
            return jr(user(BOT_ID, "frontierwatch", bot=True))
        if parts == ["oauth2", "applications", "@me"]:
            return jr(
                {
                    "id": APP_ID,
                    "name": "Frontier Watch",
                    "description": "",
                    "icon": None,
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": user("100000000000000003", "owner"),
                    "verify_key": "0" * 64,
                    "flags": 0,
                }
            )
        if m == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            return jr([dict(c, id=self._new_id(), application_id=APP_ID, version="1") for c in body or []])
        if parts[0] == "channels" and len(parts) >= 2:
            response = self._channel(m, parts, body or {}, dict(request.query), files)
            if self.hold_responses is not None and m == "POST" and parts[2:] == ["messages"]:
                self.holding += 1
                try:
                    await self.hold_responses.wait()
                finally:
                    self.holding -= 1
            return response
        if parts[0] == "webhooks":
            return self._webhook(m, parts, request, body or {})
        if m == "POST" and parts[0] == "interactions" and parts[-1] == "callback":
            data = body.get("data") or {}
            return jr(
                {
                    "interaction": {
                        "id": parts[1],
                        "type": 2,
                        "response_message_id": self._new_id(),
                        "response_message_loading": body.get("type") == 5,
                        "response_message_ephemeral": bool(data.get("flags", 0) & 64),
                    },
                    "resource": {"type": body.get("type"), "message": self._message("0", data)},
                }
            )
        return jr({"message": "404: Not Found", "code": 0}, 404)

    def _channel(
        self,
        m: str,
        parts: list[str],
        body: dict[str, Any],
        query: dict[str, str] | None = None,
        files: Sequence[UploadedFile] = (),
    ) -> web.Response:
        channel_id = parts[1]
        if channel_id in self.gone_channels:
            return jr({"message": "Unknown Channel", "code": 10003}, 404)
        if channel_id in self.forbidden_channels:
            return jr({"message": "Missing Access", "code": 50001}, 403)
        if m == "GET" and len(parts) == 2:
            return jr(
                {
                    "id": channel_id,
                    "type": 0,
                    "guild_id": "1",
                    "name": f"channel-{channel_id}",
                    "position": 0,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "parent_id": None,
                }
            )
        if m == "GET" and parts[2:] == ["messages"]:
            # GET /channels/{id}/messages: newest first, at most `limit` (1-100), `after`/`before`
            # a snowflake. Discord keeps no nonce in history, so none is listed.
            q = query or {}
            limit = max(1, min(100, int(q.get("limit", "50"))))
            history = [dict(msg) for msg in self.messages.get(channel_id, [])]
            for msg in history:
                msg.pop("nonce", None)
            if "after" in q:
                newer = [msg for msg in history if int(msg["id"]) > int(q["after"])]
                page = newer[:limit]  # the oldest `limit` after the id, returned newest first
                return jr(list(reversed(page)))
            if "before" in q:
                history = [msg for msg in history if int(msg["id"]) < int(q["before"])]
            return jr(list(reversed(history))[:limit])
        if m == "POST" and parts[2:] == ["messages"] and files and channel_id in self.no_attach_channels:
            return jr({"message": "Missing Permissions", "code": 50013}, 403)
        if m == "POST" and parts[2:] == ["messages"]:
            nonce = body.get("nonce")
            if nonce is not None and body.get("enforce_nonce"):
                seen = self._nonces.get((channel_id, str(nonce)))
                if seen and time.monotonic() - seen[0] < self.nonce_window:
                    return jr(seen[1])  # Discord returns the existing message, creates nothing
            limited = self._limited(channel_id)
            if limited is not None:
                return limited
            if self.fail_next > 0:
                self.fail_next -= 1
                return jr({"message": "Internal Server Error", "code": 0}, 500)
            listed = {str(a.get("id")): a for a in body.get("attachments") or []}
            attachments = [self._attachment(f, listed.get(f.field[len("files[") : -1], {})) for f in files]
            message = self._message(channel_id, body, attachments=attachments)
            self.messages[channel_id].append(message)
            if nonce is not None:
                self._nonces[(channel_id, str(nonce))] = (time.monotonic(), message)
            sent = self._sent[channel_id]
            headers = (
                self._rate_headers(f"msg-{channel_id}", self.channel_limit - len(sent), self.channel_window)
                if self.report_headers
                else None
            )
            return jr(message, headers=headers)
        if m == "POST" and len(parts) == 5 and parts[2] == "messages" and parts[4] == "threads":
            thread_id = self._new_id()
            return jr(
                {
                    "id": thread_id,
                    "type": 11,
                    "guild_id": "1",
                    "parent_id": channel_id,
                    "name": body.get("name", ""),
                    "owner_id": BOT_ID,
                    "message_count": 0,
                    "member_count": 1,
                    "rate_limit_per_user": 0,
                    "flags": 0,
                    "thread_metadata": {
                        "archived": False,
                        "auto_archive_duration": body.get("auto_archive_duration", 1440),
                        "archive_timestamp": "2026-11-28T12:00:00+00:00",
                        "locked": False,
                    },
                }
            )
        return jr({"message": "404: Not Found", "code": 0}, 404)

    def _webhook(
        self, m: str, parts: list[str], request: web.Request, body: dict[str, Any]
    ) -> web.StreamResponse:
        key = "/".join(parts[1:3])
        if key in self.revoked_webhooks:
            return jr({"message": "Unknown Webhook", "code": 10015}, 404)
        if m == "POST" and len(parts) == 3:
            limited = self._limited(f"webhook-{key}")
            if limited is not None:
                return limited
            thread = request.query.get("thread_id")
            channel = thread or f"webhook-{parts[1]}"  # where the test finds it
            # Discord answers with a snowflake channel id (clients parse it as an int); the fake
            # does not track which channel a webhook posts to, so any numeric id stands in.
            message = dict(self._message(channel, body, webhook_id=parts[1]), channel_id=thread or parts[1])
            self.messages[channel].append(message)
            return (
                jr(message)
                if request.query.get("wait") in {"1", "true", "True"}
                else web.Response(status=204)
            )
        if m == "PATCH" and parts[3:] == ["messages", "@original"]:
            return jr(self._message("0", body))
        return jr({"message": "404: Not Found", "code": 0}, 404)
