"""Pieces shared by the text, Discord and Slack renderers: headers, labels, notices.

Every renderer is a pure function of snapshots stored in the outbox (``DigestEntry`` dicts and a
``DigestHeader``): re-rendering after a restart gives the same bodies, so a retried message is the
message that was planned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.digest.text import age, outlets_line

TOPIC_LABELS = {
    "distillation": "Distillation",
    "ip": "AI & intellectual property",
    "natsec": "National security",
    "release": "Model releases",
}
# The tag of a story from an official source (sources.toml `official = true`), in every renderer.
OFFICIAL_TAG = "Official source"
_PALETTE = (0x5865F2, 0xED4245, 0xFEE75C, 0x57F287, 0xEB459E, 0x3BA55C, 0xFAA61A)


@dataclass(frozen=True, slots=True)
class Mention:
    """Whom an alert pings (``/watch alerts mention``): ``kind`` "group" is a Discord role or a
    Slack user group (``id`` its id); "here" is @here. Kept in the alert's outbox snapshot, and
    only alert renderers read it: digests never ping."""

    kind: str  # group | here
    id: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mention:
        return cls(str(data.get("kind", "")), str(data.get("id") or ""))


def mentions_of(payload: dict[str, Any]) -> list[Mention]:
    """The mentions an alert row's payload carries (none for rows queued before mention rules)."""
    found = [Mention.from_dict(d) for d in payload.get("mentions") or () if isinstance(d, dict)]
    return [t for t in found if t.kind == "here" or (t.kind == "group" and t.id)]


def topic_label(topic: str) -> str:
    return TOPIC_LABELS.get(topic, topic.replace("_", " ").capitalize())


def topic_color(topic: str) -> int:
    known = list(TOPIC_LABELS)
    index = known.index(topic) if topic in known else sum(map(ord, topic))
    return _PALETTE[index % len(_PALETTE)]


def clip(text: str, limit: int) -> str:
    """Shorten one field to ``limit`` characters at a word, with a visible ellipsis.

    Only single fields (a headline, a summary) are ever shortened, and visibly; entries are never
    dropped: too many entries for one message means more messages."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: max(1, limit - 1)]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(",;:.- ") + "…"


@dataclass(frozen=True, slots=True)
class DigestHeader:
    """What a digest says about itself, fixed when the digest is planned."""

    title: str
    at: datetime  # the fire time: ages are measured from it
    date_label: str  # in the destination's time zone, e.g. "Sat 28 Nov 2026"
    total: int
    overflow: int = 0
    alert_cap: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "at": self.at.isoformat(),
            "date_label": self.date_label,
            "total": self.total,
            "overflow": self.overflow,
            "alert_cap": self.alert_cap,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DigestHeader:
        return cls(
            title=str(data["title"]),
            at=datetime.fromisoformat(data["at"]),
            date_label=str(data.get("date_label", "")),
            total=int(data.get("total", 0)),
            overflow=int(data.get("overflow", 0)),
            alert_cap=int(data.get("alert_cap", 0)),
        )

    def headline(self, part: int, parts: int) -> str:
        stories = f"{self.total} stor{'y' if self.total == 1 else 'ies'}"
        of = f" ({part}/{parts})" if parts > 1 else ""
        if part == 1:
            return f"{self.title} — {self.date_label} — {stories}{of}"
        return f"{self.title} — {self.date_label}, continued{of}"

    def overflow_note(self) -> str:
        if not self.overflow:
            return ""
        n = self.overflow
        return (
            f"{n} stor{'y' if n == 1 else 'ies'} over this channel's alert limit "
            f"({self.alert_cap} per hour) {'is' if n == 1 else 'are'} included here instead."
        )


def entry_meta(
    outlets: list[str] | tuple[str, ...], published: datetime, at: datetime, first_seen: str = ""
) -> str:
    meta = f"{outlets_line(list(outlets))} · {age(published, at)}"
    return f"{meta} · {first_seen}" if first_seen else meta


def quiet_line(header: DigestHeader) -> str:
    return f"{header.title} — {header.date_label}: quiet day, nothing new on this channel's topics."


def notice_text(payload: dict[str, Any]) -> str:
    """The one notice a channel gets about a source it added that keeps failing."""
    name, url, error = (
        payload.get("name", "?"),
        payload.get("url") or "",
        payload.get("error") or "unknown error",
    )
    source_id = payload.get("source_id")
    where = f" ({url})" if url else ""
    if payload.get("disabled"):
        state = "was disabled after repeated failures"
    else:
        state = f"has been failing since {payload.get('since', 'over a day ago')}"
    return (
        f"⚠️ The source “{name}”{where} that this channel added {state}.\n"
        f"Last error: {error}\n"
        f"To fix it, check that the address still serves an RSS/Atom feed and add the new address with "
        f"`/watch sources add <url>`; to stop it, use `/watch sources remove {source_id}`."
    )


def followup_lines(payload: dict[str, Any]) -> tuple[str, list[tuple[str, str, str]]]:
    """('Also covered by FT, Axios (7 outlets now)', [(outlet, title, url), ...])."""
    items = [(str(i["outlet"]), str(i["title"]), str(i["url"])) for i in payload.get("items", [])]
    names = list(dict.fromkeys(o for o, _t, _u in items))
    total = int(payload.get("outlets_total", 0))
    count = f" ({total} outlets now)" if total > 1 else ""
    shown = ", ".join(names[:5]) + (f", +{len(names) - 5}" if len(names) > 5 else "")
    return f"Also covered by {shown}{count}", items
