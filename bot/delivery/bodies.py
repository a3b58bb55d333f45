"""Turn an outbox unit into the body for its platform (and plan how a digest splits into parts).

Pure functions of the stored snapshots, shared by the senders and by ``digest --preview`` so the
preview prints what would really be sent.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import discord
from discord.http import MultipartParameters

from bot.delivery import controls
from bot.digest import discord_render, slack_render
from bot.digest.chart_render import discord_chart_body, slack_chart_body, text_chart
from bot.digest.common import DigestHeader, mentions_of, quiet_line
from bot.digest.entries import DigestEntry
from bot.digest.text import text_alert, text_digest, text_followup
from bot.store.outbox import Unit

Family = Literal["discord", "slack", "text"]
FAMILIES: dict[str, Family] = {
    "discord": "discord",
    "discord_webhook": "discord",
    "slack": "slack",
    "slack_webhook": "slack",
    "console": "text",
}
THREADED = {"discord", "slack", "console"}  # platforms that can put follow-ups under the alert


def family(platform: str) -> Family:
    return FAMILIES.get(platform, "text")


def paginate(platform: str, header: DigestHeader, entries: Sequence[DigestEntry]) -> list[list[DigestEntry]]:
    fam = family(platform)
    if fam == "discord":
        return discord_render.paginate(header, entries)
    if fam == "slack":
        return slack_render.paginate(header, entries)
    return [list(entries)] if entries else []


def digest_body(
    platform: str,
    header: DigestHeader,
    entries: Sequence[DigestEntry],
    part: int,
    parts: int,
    previous_topic: str | None = None,
) -> dict[str, Any] | str:
    fam = family(platform)
    if fam == "discord":
        return discord_render.digest_body(header, entries, part, parts)
    if fam == "slack":
        return slack_render.digest_body(header, entries, part, parts, previous_topic=previous_topic)
    return text_digest(header, entries)


def unit_body(platform: str, unit: Unit, previous_topic: str | None = None) -> dict[str, Any] | str:
    """The body of one outbox unit for ``platform`` (dict for Discord/Slack, str for the console)."""
    fam = family(platform)
    payload = unit.lead.payload
    if unit.kind == "digest":
        header = DigestHeader.from_dict(payload["header"])
        entries = [DigestEntry.from_dict(r.payload["entry"]) for r in unit.rows]
        return digest_body(
            platform,
            header,
            entries,
            int(payload.get("part", 1)),
            int(payload.get("parts", 1)),
            previous_topic,
        )
    if unit.kind == "alert":
        entry = DigestEntry.from_dict(payload["entry"])
        at = datetime.fromisoformat(payload["at"])
        # Bot-token channels get the feedback controls; a webhook's message reaches no app.
        choices = [str(t) for t in payload.get("choices") or ()]
        mentions = mentions_of(payload)  # decided by the router from the channel's mention rules
        if fam == "discord":
            body = discord_render.alert_body(entry, at, mentions)
            if platform == "discord" and choices:
                body["components"] = controls.discord_components(unit.lead.id, choices)
            return body
        if fam == "slack":
            body = slack_render.alert_body(entry, at, mentions)
            if platform == "slack" and choices:
                body["blocks"] = [*body["blocks"], controls.slack_actions_block(unit.lead.id, choices)]
            return body
        return text_alert(entry, at)
    if unit.kind == "followup":
        if fam == "discord":
            return discord_render.followup_body(payload)
        if fam == "slack":
            return slack_render.followup_body(payload)
        return text_followup(payload)
    if unit.kind == "notice":
        if fam == "discord":
            return discord_render.notice_body(payload)
        if fam == "slack":
            return slack_render.notice_body(payload)
        from bot.digest.common import notice_text

        return notice_text(payload) + "\n"
    if unit.kind == "quiet":
        header = DigestHeader.from_dict(payload["header"])
        if fam == "discord":
            return discord_render.quiet_body(header)
        if fam == "slack":
            return slack_render.quiet_body(header)
        return quiet_line(header) + "\n"
    if unit.kind == "chart":
        if fam == "discord":
            return discord_chart_body(payload)
        if fam == "slack":
            return slack_chart_body(payload, discord_marker(unit.nonce))
        return text_chart(payload)
    raise ValueError(f"unknown delivery kind {unit.kind!r}")


_CONTENT_TYPES = {"png": "image/png"}
DISCORD_EMBEDS_MAX_CHARS = 6000
DISCORD_FOOTER_MAX_CHARS = 2048


def discord_marker(ref: str) -> str:
    return f"ref {ref}"


def with_discord_marker(body: dict[str, Any], ref: str) -> dict[str, Any]:
    """``body`` with ``ref <nonce>`` at the end of its last embed's footer.

    Discord keeps a message's nonce only for "a few minutes" and never shows it in the channel's
    history, so this visible marker is what lets an ambiguous send be found later (reconciliation)
    instead of posted twice. Left out when it would break Discord's limits."""
    embeds = [dict(e) for e in body.get("embeds") or []]
    if not embeds:
        return body
    marker = discord_marker(ref)
    last = embeds[-1]
    footer = dict(last.get("footer") or {})
    text = str(footer.get("text") or "")
    new_text = f"{text} · {marker}" if text else marker
    total = sum(len(discord.Embed.from_dict(e)) for e in embeds) + len(new_text) - len(text)
    if len(new_text) > DISCORD_FOOTER_MAX_CHARS or total > DISCORD_EMBEDS_MAX_CHARS:
        return body
    footer["text"] = new_text
    last["footer"] = footer
    return {**body, "embeds": embeds}


def discord_params(body: dict[str, Any], nonce: str | None = None) -> MultipartParameters:
    """What the Discord sender posts for ``body``: embeds (with the ``ref`` marker when a nonce is
    given), ``nonce``/``enforce_nonce``, the feedback components, and the body's own
    ``allowed_mentions`` (nothing pings unless the body names it: an alert's mention rules).

    A body with ``files`` (the trend chart) becomes multipart/form-data: ``payload_json`` plus
    ``files[0]``…, each listed in the payload's ``attachments``. The caller closes the files."""
    from discord.http import handle_message_parameters

    if nonce is not None:
        body = with_discord_marker(body, nonce)
    files = [
        discord.File(io.BytesIO(chart.data), filename=chart.filename, description=chart.alt_text[:1024])
        for chart in body.get("files") or ()
    ]
    params = handle_message_parameters(
        content=body.get("content") or None,
        embeds=[discord.Embed.from_dict(e) for e in body.get("embeds") or []],
        files=files or discord.utils.MISSING,
        nonce=nonce,
        allowed_mentions=discord.AllowedMentions.none(),
    )
    # With files, discord.py has already put the JSON into the first multipart part
    # (``payload_json``): the same adjustments are made there.
    multipart = params.multipart or []
    payload = params.payload if params.payload is not None else json.loads(multipart[0]["value"])
    if body.get("components"):
        payload["components"] = body["components"]
    # As the renderer wrote it: discord.py would turn role ids into integers, where the spec
    # (and Discord's docs) give snowflakes as strings.
    payload["allowed_mentions"] = body.get("allowed_mentions") or {"parse": []}
    for attachment in payload.get("attachments") or ():
        attachment["id"] = str(attachment["id"])  # the files[n] index, as a snowflake string
    if params.payload is None:
        multipart[0]["value"] = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
        for part, chart in zip(multipart[1:], body.get("files") or (), strict=True):
            part["content_type"] = _CONTENT_TYPES.get(chart.filename.rsplit(".", 1)[-1], part["content_type"])
    return params


def discord_wire(body: dict[str, Any], nonce: str | None = None) -> dict[str, Any]:
    """The JSON body of :func:`discord_params` (what ``digest --preview`` prints and the spec
    tests validate)."""
    params = discord_params(body, nonce)
    for file in params.files or ():
        file.close()
    if params.payload is None:  # multipart: the JSON part
        return dict(json.loads((params.multipart or [])[0]["value"]))
    return dict(params.payload)


def slack_wire(body: dict[str, Any], channel: str, delivery_id: int | None = None) -> dict[str, Any]:
    """The ``chat.postMessage`` arguments the Slack sender passes for ``body``."""
    out: dict[str, Any] = {"channel": channel, **body, "unfurl_links": False, "unfurl_media": False}
    if delivery_id is not None:
        out["metadata"] = {
            "event_type": "frontierwatch_delivery",
            "event_payload": {"delivery_id": delivery_id},
        }
    return out
