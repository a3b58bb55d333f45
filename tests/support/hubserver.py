"""A local stand-in for the Hugging Face Hub model API and GitHub's releases feeds.

    async with HubServer() as hub:
        hub.add_models(HubServer.load_models(shared / "corpus/real-feeds/hf_api_models_default_fields.json"))
        hub.add_models(synthetic_page("deepseek-ai", 120))
        hub.add_release_feed("astral-sh/ty", atom_bytes)
        settings = Settings(allow_private_sources=True, hf_api_base=hub.base, github_base=hub.base)

``GET /api/models`` answers like the Hub: ``author`` (exact owner match, case-insensitive), ``search``,
``sort`` (camelCase keys only; anything else is a 400, as ``sort=trending_score`` is on the real
Hub), ``direction=-1`` for descending, ``limit``, ``expand[]`` (only ``_id``, ``id`` and the named
fields come back; combined with ``full`` or ``config`` it is a 400), cursor pagination announced
in a ``Link: <...>; rel="next"`` header, and a weak ``ETag`` honoured by ``If-None-Match``.
``mode`` switches on failures: ``"rate_limited"`` (429 with the Hub's ``RateLimit`` /
``RateLimit-Policy`` headers and, unless ``retry_after`` is None, ``Retry-After``), ``"malformed"``
(200 with truncated JSON), ``"object"`` (200 with a JSON object instead of a list) and
``"server_error"`` (500). ``quota`` makes it start answering 429 after that many model requests.

``GET /{owner}/{name}/releases.atom`` serves the bytes given to :meth:`HubServer.add_release_feed`
with an ETag; other paths are 404.

Response shapes come from the real captures in ``../shared/corpus/real-feeds/``, which tests load
through :meth:`HubServer.load_models`; nothing from them is copied here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from aiohttp import web
from multidict import CIMultiDict, MultiMapping

from tests.support.loopback import LoopbackServer

__all__ = ["HubMode", "HubRequest", "HubServer", "synthetic_model", "synthetic_page"]

HubMode = Literal["ok", "rate_limited", "malformed", "object", "server_error"]

# The fields /api/models returns when neither `expand` nor `full` is given (real capture).
DEFAULT_FIELDS = (
    "_id",
    "id",
    "likes",
    "trendingScore",
    "private",
    "downloads",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
    "modelId",
)
SORT_KEYS = frozenset({"createdAt", "lastModified", "downloads", "likes", "trendingScore", "id"})
MAX_LIMIT = 1000
# Every repository created before the Hub stored creation dates carries this createdAt.
PLACEHOLDER_CREATED_AT = "2022-03-02T23:29:04.000Z"


@dataclass(frozen=True, slots=True)
class HubRequest:
    method: str
    path: str
    query: MultiMapping[str]
    headers: CIMultiDict[str]

    @property
    def authorized(self) -> bool:
        return "Authorization" in self.headers


def _weak_etag(body: bytes) -> str:
    return 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _etag_matches(header: str, etag: str) -> bool:
    def bare(tag: str) -> str:
        return tag.strip().removeprefix("W/")

    candidates = {bare(t) for t in header.split(",")}
    return "*" in candidates or bare(etag) in candidates


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def synthetic_model(
    org: str,
    name: str,
    created_at: datetime | str,
    *,
    pipeline_tag: str | None = "text-generation",
    library_name: str | None = "transformers",
    license: str | None = "mit",
    params: int | None = None,
    tags: Iterable[str] = (),
    gated: bool | str = False,
) -> dict[str, Any]:
    """One model as ``/api/models?expand[]=...`` returns it (field names and shapes as captured)."""
    created = created_at if isinstance(created_at, str) else _iso(created_at)
    all_tags = [t for t in (library_name, "safetensors", pipeline_tag) if t]
    all_tags += list(tags)
    if license:
        all_tags.append(f"license:{license}")
    all_tags.append("region:us")
    repo_id = f"{org}/{name}"
    model: dict[str, Any] = {
        "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
        "id": repo_id,
        "modelId": repo_id,
        "author": org,
        "private": False,
        "gated": gated,
        "likes": 0,
        "downloads": 0,
        "trendingScore": 0,
        "tags": all_tags,
        "createdAt": created,
        "lastModified": created,
    }
    if pipeline_tag:
        model["pipeline_tag"] = pipeline_tag
    if library_name:
        model["library_name"] = library_name
    if params is not None:
        model["safetensors"] = {"parameters": {"BF16": params}, "total": params}
    return model


def synthetic_page(
    org: str,
    count: int,
    *,
    newest: datetime | None = None,
    step: timedelta = timedelta(hours=1),
    prefix: str = "Model",
) -> list[dict[str, Any]]:
    """``count`` models of ``org``, ``{prefix}-0`` the newest, each ``step`` older than the last."""
    start = newest or datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    return [
        synthetic_model(org, f"{prefix}-{i}", start - i * step, params=(i + 1) * 1_000_000_000)
        for i in range(count)
    ]


class HubServer(LoopbackServer):
    """Serves ``/api/models`` from an in-memory model list and ``releases.atom`` feeds."""

    def __init__(self, models: Iterable[Mapping[str, Any]] = ()) -> None:
        super().__init__()
        self.models: list[dict[str, Any]] = [dict(m) for m in models]
        self.releases: dict[str, tuple[bytes, str]] = {}
        self.requests: list[HubRequest] = []
        self.mode: HubMode = "ok"
        self.retry_after: int | None = 30
        self.reset_seconds = 120
        self.quota: int | None = None  # model requests answered before 429s start

    # --- lifecycle

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/models", self._models)
        app.router.add_get("/{owner}/{name}/releases.atom", self._releases)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- content

    @staticmethod
    def load_models(path: Path) -> list[dict[str, Any]]:
        """Models from a captured ``/api/models`` answer (a JSON list of objects)."""
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of models")
        return [dict(item) for item in data if isinstance(item, dict)]

    def add_models(self, models: Iterable[Mapping[str, Any]]) -> None:
        self.models.extend(dict(m) for m in models)

    def add_release_feed(self, repo: str, body: bytes) -> None:
        self.releases[repo.lower()] = (body, _weak_etag(body))

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    # --- /api/models

    def _rate_limit_headers(self, remaining: int) -> dict[str, str]:
        return {
            "RateLimit": f'"api";r={max(remaining, 0)};t={self.reset_seconds}',
            "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
        }

    async def _models(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            HubRequest(request.method, request.path, request.query, CIMultiDict(request.headers))
        )
        served = self.count("/api/models")
        remaining = 500 - served if self.quota is None else self.quota - served
        if self.mode == "rate_limited" or (self.quota is not None and served > self.quota):
            headers = self._rate_limit_headers(0)
            if self.retry_after is not None:
                headers["Retry-After"] = str(self.retry_after)
            return web.json_response(
                {"error": "You have been rate-limited; you can retry this action in about 2 minutes."},
                status=429,
                headers=headers,
            )
        if self.mode == "server_error":
            return web.json_response({"error": "Internal Error"}, status=500)

        query = request.query
        problem = self._check_query(query)
        if problem:
            return web.json_response({"error": problem}, status=400)
        items = self._select(query)
        try:
            limit = min(max(int(query.get("limit", str(MAX_LIMIT))), 1), MAX_LIMIT)
        except ValueError:
            return web.json_response({"error": "Invalid limit parameter"}, status=400)
        offset = self._decode_cursor(query.get("cursor"))
        page = items[offset : offset + limit]
        fields = query.getall("expand[]", []) or query.getall("expand", [])
        shaped = [self._shape(m, fields) for m in page]

        headers = self._rate_limit_headers(remaining)
        if offset + limit < len(items):
            pairs = [(k, v) for k, v in query.items() if k != "cursor"]
            pairs.append(("cursor", self._encode_cursor(offset + limit)))
            headers["Link"] = f'<{self.base}/api/models?{urlencode(pairs)}>; rel="next"'

        if self.mode == "malformed":
            # Cut mid-object, as a dropped connection behind a proxy would leave it.
            body = json.dumps(shaped)[:-1].encode() + b', {"id": "trunc'
        elif self.mode == "object":
            body = json.dumps({"models": shaped}).encode()
        else:
            body = json.dumps(shaped).encode()
        etag = _weak_etag(body)
        headers["ETag"] = etag
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None and _etag_matches(if_none_match, etag):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = "application/json; charset=utf-8"
        return web.Response(status=200, body=body, headers=headers)

    @staticmethod
    def _check_query(query: MultiMapping[str]) -> str | None:
        sort = query.get("sort")
        if sort is not None and sort not in SORT_KEYS:
            return f"Invalid sort parameter {sort!r}"
        expanded = query.getall("expand[]", []) or query.getall("expand", [])
        if expanded and ("full" in query or "config" in query):
            return "expand cannot be combined with full or config"
        return None

    def _select(self, query: MultiMapping[str]) -> list[dict[str, Any]]:
        items = list(self.models)
        author = query.get("author")
        if author:
            wanted = author.lower()
            items = [m for m in items if str(m.get("id", "")).lower().split("/", 1)[0] == wanted]
        search = query.get("search")
        if search:
            items = [m for m in items if search.lower() in str(m.get("id", "")).lower()]
        sort = query.get("sort")
        if sort:
            descending = query.get("direction") == "-1"
            present = [m for m in items if m.get(sort) is not None]
            missing = [m for m in items if m.get(sort) is None]
            present.sort(key=lambda m: m[sort], reverse=descending)
            items = present + missing
        return items

    @staticmethod
    def _shape(model: Mapping[str, Any], fields: list[str]) -> dict[str, Any]:
        keep = ("_id", "id", *fields) if fields else DEFAULT_FIELDS
        return {k: model[k] for k in keep if k in model}

    @staticmethod
    def _encode_cursor(offset: int) -> str:
        # Opaque like the Hub's cursor, so a client that builds page URLs itself fails the test.
        return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: str | None) -> int:
        if not cursor:
            return 0
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            offset = json.loads(base64.urlsafe_b64decode(padded))["o"]
        except (ValueError, KeyError, TypeError):
            return 0
        return offset if isinstance(offset, int) and offset >= 0 else 0

    # --- GitHub releases.atom

    async def _releases(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            HubRequest(request.method, request.path, request.query, CIMultiDict(request.headers))
        )
        repo = f"{request.match_info['owner']}/{request.match_info['name']}".lower()
        found = self.releases.get(repo)
        if found is None:
            return web.Response(status=404, text="Not Found")
        body, etag = found
        headers = {"ETag": etag}
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None and _etag_matches(if_none_match, etag):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = "application/atom+xml; charset=utf-8"
        return web.Response(status=200, body=body, headers=headers)
