"""Validate request bodies against the official API specs in ``../shared/specs``.

Discord: OpenAPI 3.1 (JSON Schema 2020-12) — request bodies of the operations we call, plus the
documented 6000-character total across a message's embeds, which the spec does not encode.
Slack: the (stale) Web API spec lists methods and parameters but not Block Kit, so Block Kit
limits from Slack's docs are checked here by hand (see ``specs/slack/NOTES.md``).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

DISCORD_URN = "urn:discord-openapi"
SLACK_URN = "urn:slack-web"


@cache
def _discord(shared: Path) -> tuple[dict[str, Any], Registry]:
    spec = json.loads((shared / "specs/discord/openapi.json").read_text(encoding="utf-8"))
    return spec, Registry().with_resource(
        DISCORD_URN, Resource.from_contents(spec, default_specification=DRAFT202012)
    )


@cache
def _slack(shared: Path) -> tuple[dict[str, Any], Registry]:
    spec = json.loads((shared / "specs/slack/slack_web_openapi_v2.json").read_text(encoding="utf-8"))
    return spec, Registry().with_resource(
        SLACK_URN, Resource.from_contents(spec, default_specification=DRAFT4)
    )


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def discord_operation(shared: Path, method: str, path: str) -> str | None:
    """The spec path template matching a concrete ``/api/v10/...`` path, or None."""
    spec, _ = _discord(shared)
    bare = re.sub(r"^/api/v\d+", "", path)
    for template, ops in spec["paths"].items():
        if method.lower() not in ops:
            continue
        pattern = (
            "^"
            + re.sub(r"\{[^}]+\}", r"[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
            + "$"
        )
        if re.match(pattern, bare):
            return template
    return None


def discord_request_errors(shared: Path, method: str, path: str, body: Any) -> list[str]:
    """[] when ``body`` is a valid request body for this Discord operation."""
    spec, registry = _discord(shared)
    template = discord_operation(shared, method, path)
    if template is None:
        return [f"{method} {path}: no such operation in Discord's spec"]
    op = spec["paths"][template][method.lower()]
    if "requestBody" not in op:
        return [] if body in (None, {}) else [f"{method} {template}: takes no body"]
    ref = f"{DISCORD_URN}#/" + _pointer(
        "paths", template, method.lower(), "requestBody", "content", "application/json", "schema"
    )
    validator = Draft202012Validator({"$ref": ref}, registry=registry)
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:200]}"
        for e in validator.iter_errors(body)
    ]
    errors.extend(discord_embed_total_errors(body))
    return errors


def discord_embed_total_errors(body: Any) -> list[str]:
    """Discord's docs: all titles, descriptions, field names/values, footers and author names of a
    message's embeds together must not exceed 6000 characters (not encoded in the spec)."""
    data = body.get("data", body) if isinstance(body, dict) else {}
    embeds = data.get("embeds") if isinstance(data, dict) else None
    if not embeds:
        return []
    total = 0
    for embed in embeds:
        total += len((embed.get("title") or "").strip()) + len((embed.get("description") or "").strip())
        total += len(((embed.get("footer") or {}).get("text") or "").strip())
        total += len(((embed.get("author") or {}).get("name") or "").strip())
        for field in embed.get("fields") or []:
            total += len(field.get("name", "").strip()) + len(field.get("value", "").strip())
    return [f"embeds: {total} characters in total, above Discord's 6000"] if total > 6000 else []


SLACK_BLOCK_LIMITS = {"header": 150, "section": 3000}


def slack_request_errors(
    shared: Path, method: str, body: dict[str, Any], authorization: str | None = None
) -> list[str]:
    """[] when the Web API call has the spec's required parameters and Block Kit within limits.

    ``authorization``: the request's Authorization header. Slack accepts the token either as a
    ``token`` argument or as ``Authorization: Bearer …`` (what slack_sdk sends), while the spec
    models it in one place per method (a header for some, a required query field for others such
    as ``users.info``); either form satisfies a required ``token``.
    """
    spec, _ = _slack(shared)
    if method in SLACK_METHODS_AFTER_SPEC:
        return _newer_method_errors(method, body, authorization)
    ops = spec["paths"].get(f"/{method}", {})
    op = ops.get("post") or ops.get("get")
    if op is None:
        return [f"{method}: no such method in Slack's spec"]
    errors = []
    bearer = (authorization or "").startswith("Bearer ")
    for param in op.get("parameters", []):
        if not param.get("required"):
            continue
        if param["name"] == "token":
            if "token" not in body and not bearer and authorization is not None:
                errors.append(
                    f"{method}: missing required token (neither a token argument nor a Bearer header)"
                )
            continue
        if param.get("in") in {"formData", "query"} and param["name"] not in body:
            errors.append(f"{method}: missing required {param['name']}")
    # Parameters added after the spec was frozen (2020): metadata, include_all_metadata; team_id
    # is sent by slack_sdk for org-wide installs.
    known = {p["name"] for p in op.get("parameters", [])} | {
        "metadata",
        "include_all_metadata",
        "unfurl_links",
        "unfurl_media",
        "team_id",
    }
    errors.extend(f"{method}: unknown parameter {k}" for k in body if k not in known and k != "token")
    blocks = body.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if blocks is not None:
        errors.extend(block_kit_errors(blocks))
    text = body.get("text")
    if text is not None and len(text) > 40_000:
        errors.append("text: longer than 40,000 characters")
    return errors


# Methods newer than the frozen 2020 spec, checked by hand against their reference pages
# (required, optional arguments besides ``token``):
# https://docs.slack.dev/reference/methods/files.getUploadURLExternal/ and
# https://docs.slack.dev/reference/methods/files.completeUploadExternal/
SLACK_METHODS_AFTER_SPEC: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "files.getUploadURLExternal": (frozenset({"filename", "length"}), frozenset({"alt_txt", "snippet_type"})),
    "files.completeUploadExternal": (
        frozenset({"files"}),
        frozenset({"channel_id", "channels", "thread_ts", "initial_comment", "blocks"}),
    ),
}


def _newer_method_errors(method: str, body: dict[str, Any], authorization: str | None) -> list[str]:
    required, optional = SLACK_METHODS_AFTER_SPEC[method]
    errors = [f"{method}: missing required {name}" for name in sorted(required) if name not in body]
    errors.extend(
        f"{method}: unknown parameter {k}" for k in body if k not in required | optional and k != "token"
    )
    if "token" not in body and not (authorization or "").startswith("Bearer "):
        errors.append(f"{method}: missing required token")
    if method == "files.getUploadURLExternal" and not str(body.get("length", "")).isdigit():
        errors.append(f"{method}: length must be an integer (bytes)")
    if method == "files.completeUploadExternal":
        raw = body.get("files")
        try:
            files = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            files = None
        if (
            not isinstance(files, list)
            or not files
            or not all(isinstance(f, dict) and f.get("id") for f in files)
        ):
            errors.append(f"{method}: files must be a JSON array of objects with an id")
        if body.get("thread_ts") and not body.get("channel_id") and "," in str(body.get("channels", "")):
            errors.append(f"{method}: thread_ts needs exactly one channel")
    return errors


def block_kit_errors(blocks: list[dict[str, Any]]) -> list[str]:
    errors = []
    if len(blocks) > 50:
        errors.append(f"blocks: {len(blocks)} > 50 per message")
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if not isinstance(kind, str):
            errors.append(f"blocks/{i}: type missing")
            continue
        if len(block.get("block_id", "")) > 255:
            errors.append(f"blocks/{i}: block_id > 255")
        if kind == "header":
            text = block.get("text") or {}
            if text.get("type") != "plain_text":
                errors.append(f"blocks/{i}: header text must be plain_text")
            if len(text.get("text", "")) > 150:
                errors.append(f"blocks/{i}: header text > 150")
        elif kind == "section":
            text = block.get("text")
            fields = block.get("fields")
            if text is None and not fields:
                errors.append(f"blocks/{i}: section needs text or fields")
            if text is not None and not 1 <= len(text.get("text", "")) <= 3000:
                errors.append(f"blocks/{i}: section text length {len(text.get('text', ''))} not in 1..3000")
            if fields and (len(fields) > 10 or any(len(f.get("text", "")) > 2000 for f in fields)):
                errors.append(f"blocks/{i}: section fields > 10 or a field > 2000")
        elif kind == "context":
            if not 1 <= len(block.get("elements", [])) <= 10:
                errors.append(f"blocks/{i}: context needs 1..10 elements")
        elif kind == "actions":
            if not 1 <= len(block.get("elements", [])) <= 25:
                errors.append(f"blocks/{i}: actions needs 1..25 elements")
        elif kind not in {"divider", "image", "rich_text", "markdown", "input", "file", "video"}:
            errors.append(f"blocks/{i}: unknown block type {kind}")
    return errors


def slack_response_errors(shared: Path, method: str, status_ok: bool, response: dict[str, Any]) -> list[str]:
    """Shape check of a mock response against the spec (the spec is stale: hints, not law)."""
    _spec, registry = _slack(shared)
    key = "200" if status_ok else "default"
    ref = f"{SLACK_URN}#/" + _pointer("paths", f"/{method}", "post", "responses", key, "schema")
    try:
        validator = Draft4Validator({"$ref": ref}, registry=registry)
        return [e.message[:200] for e in validator.iter_errors(response)]
    except Exception as exc:  # an operation without a response schema
        return [f"no schema: {exc}"]
