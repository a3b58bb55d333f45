"""Reads ``sources.toml``: an array of ``[[sources]]`` tables.

The minimal form, ``name`` + ``url``, must stay valid forever: other tools write this file.
Optional keys: ``kind`` (``feed`` default: RSS, Atom or RDF; ``hf_models``; ``github_releases``),
``interval_minutes``, ``weight``, ``enabled``, ``official``, ``org`` (hf_models), ``repo`` (github_releases).
``official = true`` marks the publisher's own channel (a regulator, a court, a committee, a lab's own
blog or release tracker): its stories carry an "official" tag, rank first and can be required by
mention rules. Only this file can say so; a source a channel adds is never official.

The file is validated by the pydantic models below (unknown keys are refused at every level, so a
misspelled key cannot be silently ignored); their errors are turned into one line that names the
file, the entry and the key, because that line is what ``frontierwatch`` prints before it stops.
"""

from __future__ import annotations

import difflib
import tomllib
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from bot.domain import SOURCE_KINDS, SourceKind, SourceSpec
from bot.tomlcheck import CUSTOM, HTTP_URL, StrictTable, as_written, did_you_mean, refuse
from bot.tomlcheck import check_http_url as _check_http_url

MAX_INTERVAL_MINUTES = 7 * 24 * 60
MAX_NAME_CHARS = 200  # sources.name is a VARCHAR(200): a longer name would only fail at sync, on PostgreSQL

# What each key accepts, for messages about errors pydantic found itself (wrong type, out of range,
# missing); errors raised by the validators below carry their own wording.
_ACCEPTS = {
    "name": f"`name` is required (a non-empty string of at most {MAX_NAME_CHARS} characters)",
    "kind": f"`kind` must be one of {', '.join(SOURCE_KINDS)}",
    "url": "`url` must be an http:// or https:// URL",
    "interval_minutes": f"`interval_minutes` must be a whole number from 1 to {MAX_INTERVAL_MINUTES}",
    "weight": "`weight` must be a number above 0 and at most 10",
    "enabled": "`enabled` must be true or false",
    "official": "`official` must be true or false (true: the publisher's own feed, e.g. a regulator's)",
    "org": '`org` must be a string, e.g. org = "deepseek-ai"',
    "repo": '`repo` must be a string, e.g. repo = "owner/name"',
}


class SourcesConfigError(Exception):
    """sources.toml is invalid; the message names the file, the entry and the key."""


def check_http_url(url: str) -> str:
    """Refuse what is not an absolute http(s) URL; return ``url`` unchanged.

    The text is kept as written (not pydantic's normalised form): a feed's identity is
    ``feed:<url>``, so rewriting it would turn every configured feed into a new source.
    """
    if not url:
        raise refuse("`url` is required for a feed: an http:// or https:// URL")
    return _check_http_url(url, _ACCEPTS["url"], "`url` contains white space (encode a space as %20)")


class SourceEntry(StrictTable):
    """One ``[[sources]]`` table. Field order matters: ``kind`` is validated before the keys it governs."""

    name: str
    kind: SourceKind = "feed"
    url: str = Field("", validate_default=True)
    org: str | None = Field(None, validate_default=True)
    repo: str | None = Field(None, validate_default=True)
    # None means "the bot's FW_DEFAULT_INTERVAL_MINUTES", which only the caller knows.
    interval_minutes: Annotated[int, Field(ge=1, le=MAX_INTERVAL_MINUTES)] | None = None
    weight: float = Field(1.0, gt=0, le=10, allow_inf_nan=False)
    enabled: bool = True
    official: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value or len(value) > MAX_NAME_CHARS:
            raise refuse(_ACCEPTS["name"])
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        # Trackers build their URL from org/repo, so only a feed needs one.
        return check_http_url(value) if info.data.get("kind") == "feed" else value

    @field_validator("org")
    @classmethod
    def _org(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") == "hf_models" and (value is None or not value.strip() or "/" in value):
            raise refuse('kind hf_models needs `org`, e.g. org = "deepseek-ai"')
        return value.strip() if value is not None else None

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") == "github_releases" and (value is None or value.count("/") != 1):
            raise refuse('kind github_releases needs `repo = "owner/name"`')
        return value.strip() if value is not None else None

    def to_spec(self, default_interval: int) -> SourceSpec:
        return SourceSpec(
            name=self.name,
            url=self.url,
            kind=self.kind,
            interval_minutes=self.interval_minutes if self.interval_minutes is not None else default_interval,
            weight=float(self.weight),
            enabled=self.enabled,
            official=self.official,
            org=self.org,
            repo=self.repo,
        )


KNOWN_KEYS = frozenset(SourceEntry.model_fields)


class SourcesFile(StrictTable):
    """The whole file: ``[[sources]]`` tables and nothing else."""

    sources: list[SourceEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        # Two tables for one feed would be merged into one row by sync_sources (or, spelled
        # differently, polled twice), and two sources with one name could not be told apart in
        # /watch status and digests.
        keys: dict[str, int] = {}
        names: dict[str, int] = {}
        for index, entry in enumerate(self.sources, start=1):
            where = f"[[sources]] #{index} ({entry.name!r})"
            key = _same_source(entry)
            if key in keys:
                raise refuse(f"{where}: same source as #{keys[key]}")
            keys[key] = index
            # NFKC: "Café" typed with a combining accent looks the same as the precomposed one.
            folded = unicodedata.normalize("NFKC", entry.name).casefold()
            if folded in names:
                raise refuse(f"{where}: the name is already used by #{names[folded]}")
            names[folded] = index
        return self


def _same_source(entry: SourceEntry) -> str:
    """The stored identity (source_key), with a feed URL normalised only for this comparison, so
    HTTPS://Example.com/feed and https://example.com/feed are found to be one feed."""
    key = source_key(entry.to_spec(default_interval=1))  # the interval is not part of the key
    return f"feed:{feed_identity(entry.url)}" if entry.kind == "feed" else key


def load_sources(path: Path, *, default_interval: int = 30) -> list[SourceSpec]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourcesConfigError(f"{path}: file not found (set FW_SOURCES_FILE)") from None
    except UnicodeDecodeError as exc:
        raise SourcesConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise SourcesConfigError(f"{path}: cannot read the sources file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SourcesConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_sources(data, origin=str(path), default_interval=default_interval)


def parse_sources(data: dict[str, Any], *, origin: str, default_interval: int = 30) -> list[SourceSpec]:
    try:
        parsed = SourcesFile.model_validate(data)
    except ValidationError as exc:
        raise SourcesConfigError(_one_line(exc, data, origin)) from None
    return [entry.to_spec(default_interval) for entry in parsed.sources]


def _one_line(exc: ValidationError, data: dict[str, Any], origin: str) -> str:
    """The first problem of the file, as one line; pydantic's own dump is many lines and names no file."""
    errors = sorted(exc.errors(), key=_reading_order)
    first = errors[0]
    loc = first["loc"]
    if first["type"] == CUSTOM and not loc:  # the uniqueness check: its message names the entry
        return f"{origin}: {first['msg']}"
    if len(loc) == 1:
        if first["type"] == "extra_forbidden":
            key = str(loc[0])
            close = difflib.get_close_matches(key, ["sources"], n=1)
            hint = " — did you mean [[sources]]?" if close else "; the file holds [[sources]] tables"
            return f"{origin}: unknown top-level key {key!r}{hint}"
        return f"{origin}: `sources` must be an array of [[sources]] tables"
    index = int(loc[1])
    where = f"{origin}: [[sources]] #{index + 1}"
    raw = data["sources"][index]
    if len(loc) == 2:
        return f"{where}: must be a table"
    name = raw.get("name")
    if isinstance(name, str) and name.strip():
        where = f"{where} ({name.strip()!r})"
    return f"{where}: {_entry_message([e for e in errors if e['loc'][:2] == loc[:2]], depth=2)}"


def _entry_message(errors: list[ErrorDetails], *, depth: int) -> str:
    """One entry's first problem in words; ``errors`` are that entry's, in reading order, and each
    names its key at ``loc[depth]`` (2 inside the file's ``sources`` array, 0 for a lone table)."""
    first = errors[0]
    if first["type"] == "extra_forbidden":
        unknown = sorted(str(e["loc"][depth]) for e in errors if e["type"] == "extra_forbidden")
        return f"unknown key(s) {unknown}{did_you_mean(unknown, KNOWN_KEYS, lambda key: f'`{key}`')}; known: {sorted(KNOWN_KEYS)}"
    field = str(first["loc"][depth])
    if first["type"] == CUSTOM:
        return first["msg"]
    return f"{_ACCEPTS.get(field, f'`{field}` is invalid')} ({_got(first)})"


def entry_problem(table: dict[str, Any]) -> str | None:
    """Why one ``[[sources]]`` table would be refused (the words the file's one-line error gives after
    the entry's name), or None when it is valid. A tool that writes the file, such as the OPML import,
    holds each table it adds to exactly the rule a hand-written one meets."""
    try:
        SourceEntry.model_validate(table)
    except ValidationError as exc:
        return _entry_message(sorted(exc.errors(), key=_reading_order), depth=0)
    return None


def feed_identity(url: str) -> str:
    """The form of a valid feed URL that the uniqueness check compares (pydantic's normalised URL:
    scheme and host lower-cased, default port dropped), so HTTPS://Example.com/feed and
    https://example.com/feed are one feed. Only for comparing: the file keeps the URL as written."""
    return str(HTTP_URL.validate_python(url))


def _reading_order(error: ErrorDetails) -> tuple[int, int]:
    """Top-level problems first, then entries in file order; in an entry, unknown keys first
    (a misspelled key usually explains the "missing" or default value that follows from it)."""
    loc = error["loc"]
    entry = int(loc[1]) if len(loc) > 1 and isinstance(loc[1], int) else -1
    return entry, 0 if error["type"] == "extra_forbidden" else 1


def _backticked(key: str) -> str:
    return f"`{key}`"


def _got(error: ErrorDetails) -> str:
    return "missing" if error["type"] == "missing" else f"got {as_written(error['input'])}"


def source_key(spec: SourceSpec) -> str:
    """Identity of a source across restarts and config edits."""
    if spec.kind == "hf_models":
        return f"hf_models:{(spec.org or '').lower()}"
    if spec.kind == "github_releases":
        return f"github_releases:{(spec.repo or '').lower()}"
    return f"feed:{spec.url}"
