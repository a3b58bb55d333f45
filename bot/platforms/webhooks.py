"""Webhook destinations from a TOML file (``FW_WEBHOOKS_FILE``, default ``config/webhooks.toml``).

For teams that don't want a bot in their server: each ``[[webhooks]]`` entry is a Discord webhook URL
or a Slack incoming-webhook URL with topics, like a channel. The file is synced into the
``destinations`` table at start (``ChatStore.sync_webhooks``); sending is the delivery side's job.
Webhook URLs are credentials: they are never logged, and errors name the entry, not the URL.

The file is validated by the pydantic models below (unknown keys are refused at every level); their
errors are turned into one line naming the file, the entry and the key, because that line is what
``frontierwatch run`` prints before it stops.
"""

from __future__ import annotations

import difflib
import logging
import re
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from yarl import URL

from bot.store.chat import FREQUENCIES, MODES, WEEKDAYS, ChatStore, SubscriptionView, WebhookSpec
from bot.tomlcheck import CUSTOM, StrictTable, as_written, check_http_url, did_you_mean, refuse

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class WebhooksConfigError(ValueError):
    """The webhooks file is invalid; the message names the file and the entry."""


def platform_of(url: str) -> str | None:
    """discord_webhook / slack_webhook from the URL's shape, or None."""
    parsed = URL(url)
    host = (parsed.host or "").lower()
    if host in {
        "discord.com",
        "discordapp.com",
        "ptb.discord.com",
        "canary.discord.com",
    } and parsed.path.startswith("/api/webhooks/"):
        return "discord_webhook"
    if host == "hooks.slack.com" and parsed.path.startswith("/services/"):
        return "slack_webhook"
    return None


def _one_of(choices: tuple[str, ...]) -> AfterValidator:
    """Membership in one of bot.store.chat's tuples, which stay the single list of accepted values."""

    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(value)  # the message is written by _one_line, from _ACCEPTS
        return value

    return AfterValidator(check)


def _webhook_url(url: str) -> str:
    """An absolute http(s) URL, kept as written; messages never quote it (it is a credential)."""
    return check_http_url(url, _ACCEPTS["url"], "'url' contains white space; copy the webhook URL again")


def _weekday(value: Any) -> Any:
    # "Friday" and "FRI" have always been read as "fri".
    return value[:3].lower() if isinstance(value, str) else value


def _topic_table(value: Any) -> Any:
    # A topic is a name ("natsec") or a table ({topic = "natsec", mode = "alerts", min_score = 0.7}).
    return {"topic": value} if isinstance(value, str) else value


class TopicEntry(StrictTable):
    topic: str
    mode: Annotated[str, _one_of(MODES)] = "both"
    min_score: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)

    @field_validator("topic")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        # The taxonomy is loaded at run time (topics.toml), so it comes in the validation context.
        known: Collection[str] | None = (info.context or {}).get("topics")
        if known is not None and value not in known:
            raise refuse(f"unknown topic {value!r}; known topics: {', '.join(known)}")
        return value


class KeywordsTable(StrictTable):
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)

    @field_validator("include", "exclude")
    @classmethod
    def _clean(cls, words: list[str]) -> list[str]:
        # The database holds each (kind, keyword) once: a repeated word is dropped here rather than
        # failing the sync with a constraint violation.
        return list(dict.fromkeys(w.strip() for w in words if w.strip()))


class WebhookEntry(StrictTable):
    """One ``[[webhooks]]`` table."""

    name: Annotated[str, Field(pattern=_NAME.pattern)]
    url: Annotated[str, AfterValidator(_webhook_url)]
    platform: Literal["discord", "slack"] | None = None
    topics: list[Annotated[TopicEntry, BeforeValidator(_topic_table)]] = Field(min_length=1)
    timezone: str = "UTC"
    digest_time: Annotated[str, Field(pattern=_TIME.pattern)] = "08:00"
    frequency: Annotated[str, _one_of(FREQUENCIES)] = "daily"
    weekday: Annotated[str, BeforeValidator(_weekday), _one_of(WEEKDAYS)] = "mon"
    keywords: KeywordsTable = KeywordsTable()

    @field_validator("topics")
    @classmethod
    def _distinct(cls, topics: list[TopicEntry]) -> list[TopicEntry]:
        # One subscription per (destination, topic) in the database; two modes for one topic
        # would also leave it unclear which one was meant.
        seen: set[str] = set()
        for entry in topics:
            if entry.topic in seen:
                raise refuse(f"topic {entry.topic!r} is listed twice in 'topics'")
            seen.add(entry.topic)
        return topics

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise refuse(f"unknown timezone {value!r}; use an IANA name like Europe/Berlin") from None
        return value

    @model_validator(mode="after")
    def _platform_known(self) -> Self:
        if self.platform is None and platform_of(self.url) is None:
            raise refuse('cannot tell the platform from the URL; set platform = "discord" or "slack"')
        return self

    def to_spec(self) -> WebhookSpec:
        platform = f"{self.platform}_webhook" if self.platform else platform_of(self.url)
        assert platform is not None  # _platform_known guarantees it; narrows the type
        return WebhookSpec(
            name=self.name,
            platform=platform,
            url=self.url,
            topics=tuple(SubscriptionView(t.topic, t.mode, float(t.min_score)) for t in self.topics),
            timezone=self.timezone,
            digest_time=self.digest_time,
            digest_frequency=self.frequency,
            digest_weekday=self.weekday,
            include=tuple(self.keywords.include),
            exclude=tuple(self.keywords.exclude),
        )


class WebhooksFile(StrictTable):
    """The whole file: ``[[webhooks]]`` tables and nothing else."""

    webhooks: list[WebhookEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        # The name is the destination's identity in the database (sync_webhooks matches on it).
        first: dict[str, int] = {}
        for index, entry in enumerate(self.webhooks, start=1):
            if entry.name in first:
                raise refuse(
                    f"webhook #{index} ({entry.name}): webhook name {entry.name!r} is used twice "
                    f"(also webhook #{first[entry.name]}); each webhook needs its own name"
                )
            first[entry.name] = index
        return self


_ENTRY_KEYS = tuple(WebhookEntry.model_fields)
_TOPIC_SHAPE = "each topic is a name or {topic, mode, min_score}"
_KEYWORDS_SHAPE = "'keywords' must be a table with 'include' and/or 'exclude' lists"
# What each key accepts, for errors pydantic found itself (wrong type, out of range, missing).
_ACCEPTS = {
    "name": "'name' must be 1-64 letters, digits, spaces, '.', '_' or '-'",
    "url": "'url' must be an https:// webhook URL",
    "platform": '\'platform\' must be "discord" or "slack"',
    "timezone": "'timezone' must be an IANA name like Europe/Berlin",
    "digest_time": "'digest_time' must be HH:MM (24-hour)",
    "frequency": f"'frequency' must be one of {', '.join(FREQUENCIES)}",
    "weekday": f"'weekday' must be one of {', '.join(WEEKDAYS)}",
    "keywords": _KEYWORDS_SHAPE,
    "keywords.include": "'keywords.include' must be a list of strings",
    "keywords.exclude": "'keywords.exclude' must be a list of strings",
}


def load_webhooks(path: Path, topics: Collection[str]) -> list[WebhookSpec]:
    """Read and validate the file; a missing file means no webhooks."""
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise WebhooksConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        parsed = WebhooksFile.model_validate(data, context={"topics": topics})
    except ValidationError as exc:
        raise WebhooksConfigError(_one_line(exc, data, str(path), topics)) from None
    return [entry.to_spec() for entry in parsed.webhooks]


def _one_line(exc: ValidationError, data: dict[str, Any], origin: str, topics: Collection[str]) -> str:
    """The first problem of the file, as one line that never quotes a URL.

    pydantic's own dump is many lines, names no file, and would print the webhook URL (a secret)
    as the input of an error about it.
    """
    errors = sorted(exc.errors(), key=_reading_order)
    first = errors[0]
    loc, kind = first["loc"], first["type"]
    if kind == CUSTOM and not loc:  # the uniqueness check: its message names the entry
        return f"{origin}: {first['msg']}"
    if len(loc) == 1:
        if kind == "extra_forbidden":
            hint = (
                " (did you mean [[webhooks]]?)"
                if difflib.get_close_matches(str(loc[0]), ["webhooks"])
                else ""
            )
            return f"{origin}: unknown top-level key {str(loc[0])!r}; expected only [[webhooks]] tables{hint}"
        return f"{origin}: expected only [[webhooks]] tables ('webhooks' must be an array of them)"
    index = int(loc[1])
    where = f"{origin}: webhook #{index + 1}"
    raw = data["webhooks"][index]
    # Only a well-formed name is shown: a URL pasted as the name would otherwise be printed.
    if isinstance(raw, dict) and isinstance(raw.get("name"), str) and _NAME.match(raw["name"]):
        where = f"{where} ({raw['name']})"
    return f"{where}: {_entry_problem(first, errors, raw, topics)}"


def _entry_problem(first: ErrorDetails, errors: list[ErrorDetails], raw: Any, topics: Collection[str]) -> str:
    loc, kind = first["loc"][2:], first["type"]
    if not loc:  # the entry itself: not a table, or the platform check
        return str(first["msg"]) if kind == CUSTOM else "expected a table"
    if kind == "extra_forbidden":
        parent = first["loc"][:-1]
        unknown = sorted(
            str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden" and e["loc"][:-1] == parent
        )
        if len(loc) == 1:
            return f"unknown key(s) {', '.join(unknown)}{did_you_mean(unknown, _ENTRY_KEYS)}; known keys: {', '.join(sorted(_ENTRY_KEYS))}"
        if loc[0] == "topics":
            return f"{_TOPIC_SHAPE}; unknown key(s) {', '.join(unknown)}"
        return f"{_KEYWORDS_SHAPE}; unknown key(s) {', '.join(unknown)}{did_you_mean(unknown, ('include', 'exclude'))}"
    if kind == CUSTOM:
        return str(first["msg"])
    if loc[0] == "topics":
        return _topic_problem(loc, kind, raw, topics)
    field = ".".join(str(part) for part in loc if not isinstance(part, int))
    accepts = _ACCEPTS.get(field, f"'{field}' is invalid")
    if field == "url" or kind == "missing":  # a URL is never echoed
        return accepts + (" (missing)" if kind == "missing" else "")
    return f"{accepts}, got {_shown(first['input'])}"


def _topic_problem(
    loc: tuple[int | str, ...], kind: str, raw: dict[str, Any], topics: Collection[str]
) -> str:
    if len(loc) == 1:  # the list itself
        if kind in ("missing", "too_short"):
            return f"'topics' must list at least one of {', '.join(topics)}"
        return "'topics' must be a list"
    if len(loc) == 2:
        return _TOPIC_SHAPE
    item = raw["topics"][int(loc[1])]
    if loc[2] == "topic":
        return f"{_TOPIC_SHAPE}; 'topic' must be one of {', '.join(topics)}"
    if loc[2] == "mode":
        return f"mode of {item.get('topic')!r} must be one of {', '.join(MODES)}"
    return f"min_score of {item.get('topic')!r} must be a number from 0 to 1"


def _reading_order(error: ErrorDetails) -> tuple[int, int, int]:
    """Top-level problems first, then entries in file order; in an entry, unknown keys first, the
    entry's own before those of its inner tables (a misspelled key usually explains the "missing" or
    default value that follows from it)."""
    loc = error["loc"]
    entry = int(loc[1]) if len(loc) > 1 and isinstance(loc[1], int) else -1
    extra = error["type"] == "extra_forbidden"
    return entry, 0 if extra else 1, len(loc) if extra else 0


def _shown(value: Any) -> str:
    # A webhook URL pasted under the wrong key is still a secret: it is not echoed back.
    return "a URL (not shown)" if "://" in str(value) else as_written(value)


class WebhookSync:
    """Service: syncs the webhooks file into the destinations table at start."""

    name = "webhooks-file"

    def __init__(self, store: ChatStore, path: Path, topics: Collection[str]) -> None:
        self._store = store
        self._path = path
        self._topics = topics

    async def start(self) -> None:
        # A broken file stops the start with its one-line reason, as a broken sources file does:
        # going on would leave the team believing its webhooks changed. Nothing is applied, so the
        # previous webhook configuration stays in the database until the file is fixed.
        specs = load_webhooks(self._path, self._topics)
        counts = await self._store.sync_webhooks(specs)
        log.info("webhooks: %d in %s (%s)", len(specs), self._path, counts)

    async def stop(self) -> None:
        return None
