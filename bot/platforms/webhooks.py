"""Webhook destinations from a TOML file (``FW_WEBHOOKS_FILE``, default ``config/webhooks.toml``).

For teams that don't want a bot in their server: each ``[[webhooks]]`` entry is a Discord webhook URL
or a Slack incoming-webhook URL with topics, like a channel. The file is synced into the
``destinations`` table at start (``ChatStore.sync_webhooks``); sending is the delivery side's job.
Webhook URLs are credentials: they are never logged, and errors name the entry, not the URL.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yarl import URL

from bot.store.chat import FREQUENCIES, MODES, WEEKDAYS, ChatStore, SubscriptionView, WebhookSpec

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_ENTRY_KEYS = {
    "name",
    "url",
    "platform",
    "topics",
    "timezone",
    "digest_time",
    "frequency",
    "weekday",
    "keywords",
}
_TOPIC_KEYS = {"topic", "mode", "min_score"}


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


def load_webhooks(path: Path, topics: Collection[str]) -> list[WebhookSpec]:
    """Read and validate the file; a missing file means no webhooks."""
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise WebhooksConfigError(f"{path}: invalid TOML: {exc}") from None
    entries = data.get("webhooks", [])
    if set(data) - {"webhooks"} or not isinstance(entries, list):
        raise WebhooksConfigError(f"{path}: expected only [[webhooks]] tables")
    specs: list[WebhookSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        spec = _parse_entry(entry, f"{path}: webhook #{index}", topics)
        if spec.name in seen:
            raise WebhooksConfigError(f"{path}: webhook name {spec.name!r} is used twice")
        seen.add(spec.name)
        specs.append(spec)
    return specs


def _parse_entry(entry: Any, where: str, topics: Collection[str]) -> WebhookSpec:
    if not isinstance(entry, dict):
        raise WebhooksConfigError(f"{where}: expected a table")
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise WebhooksConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise WebhooksConfigError(f"{where}: 'name' must be 1-64 letters, digits, spaces, '.', '_' or '-'")
    where = f"{where} ({name})"
    url = entry.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise WebhooksConfigError(f"{where}: 'url' must be an https:// webhook URL")
    platform = entry.get("platform")
    if platform is None:
        platform = platform_of(url)
        if platform is None:
            raise WebhooksConfigError(
                f'{where}: cannot tell the platform from the URL; set platform = "discord" or "slack"'
            )
    elif platform in ("discord", "slack"):
        platform = f"{platform}_webhook"
    else:
        raise WebhooksConfigError(f'{where}: \'platform\' must be "discord" or "slack"')
    subs = tuple(_parse_topic(t, where, topics) for t in _as_list(entry.get("topics"), where, "topics"))
    if not subs:
        raise WebhooksConfigError(f"{where}: 'topics' must list at least one of {', '.join(topics)}")
    timezone = str(entry.get("timezone", "UTC"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise WebhooksConfigError(
            f"{where}: unknown timezone {timezone!r}; use an IANA name like Europe/Berlin"
        ) from None
    digest_time = str(entry.get("digest_time", "08:00"))
    if not _TIME.match(digest_time):
        raise WebhooksConfigError(f"{where}: 'digest_time' must be HH:MM (24-hour), got {digest_time!r}")
    frequency = str(entry.get("frequency", "daily"))
    if frequency not in FREQUENCIES:
        raise WebhooksConfigError(f"{where}: 'frequency' must be one of {', '.join(FREQUENCIES)}")
    weekday = str(entry.get("weekday", "mon"))[:3].lower()
    if weekday not in WEEKDAYS:
        raise WebhooksConfigError(f"{where}: 'weekday' must be one of {', '.join(WEEKDAYS)}")
    keywords = entry.get("keywords", {})
    if not isinstance(keywords, dict) or set(keywords) - {"include", "exclude"}:
        raise WebhooksConfigError(
            f"{where}: 'keywords' must be a table with 'include' and/or 'exclude' lists"
        )
    include = tuple(
        str(k).strip() for k in _as_list(keywords.get("include"), where, "keywords.include") if str(k).strip()
    )
    exclude = tuple(
        str(k).strip() for k in _as_list(keywords.get("exclude"), where, "keywords.exclude") if str(k).strip()
    )
    return WebhookSpec(
        name=name,
        platform=platform,
        url=url,
        topics=subs,
        timezone=timezone,
        digest_time=digest_time,
        digest_frequency=frequency,
        digest_weekday=weekday,
        include=include,
        exclude=exclude,
    )


def _as_list(value: Any, where: str, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WebhooksConfigError(f"{where}: '{key}' must be a list")
    return value


def _parse_topic(item: Any, where: str, topics: Collection[str]) -> SubscriptionView:
    """A topic is a name ("natsec") or a table ({topic = "natsec", mode = "alerts", min_score = 0.7})."""
    if isinstance(item, str):
        item = {"topic": item}
    if not isinstance(item, dict) or set(item) - _TOPIC_KEYS:
        raise WebhooksConfigError(f"{where}: each topic is a name or {{topic, mode, min_score}}")
    topic = item.get("topic")
    if topic not in topics:
        raise WebhooksConfigError(f"{where}: unknown topic {topic!r}; known topics: {', '.join(topics)}")
    mode = item.get("mode", "both")
    if mode not in MODES:
        raise WebhooksConfigError(f"{where}: mode of {topic!r} must be one of {', '.join(MODES)}")
    score = item.get("min_score", 0.0)
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise WebhooksConfigError(f"{where}: min_score of {topic!r} must be a number from 0 to 1")
    return SubscriptionView(str(topic), str(mode), float(score))


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
