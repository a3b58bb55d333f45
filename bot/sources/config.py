"""Reads ``sources.toml``: an array of ``[[sources]]`` tables.

The minimal form, ``name`` + ``url``, must stay valid forever: other tools write this file.
Optional keys: ``kind`` (``feed`` default: RSS, Atom or RDF; ``hf_models``; ``github_releases``),
``interval_minutes``, ``weight``, ``enabled``, ``org`` (hf_models), ``repo`` (github_releases).
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, cast

from bot.domain import SOURCE_KINDS, SourceKind, SourceSpec

KNOWN_KEYS = {"name", "url", "kind", "interval_minutes", "weight", "enabled", "org", "repo"}


class SourcesConfigError(Exception):
    """sources.toml is invalid; the message names the file, the entry and the key."""


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
    unknown = sorted(set(data) - {"sources"})
    if unknown:
        close = difflib.get_close_matches(unknown[0], ["sources"], n=1)
        hint = " — did you mean [[sources]]?" if close else "; the file holds [[sources]] tables"
        raise SourcesConfigError(f"{origin}: unknown top-level key {unknown[0]!r}{hint}")
    raw = data.get("sources", [])
    if not isinstance(raw, list):
        raise SourcesConfigError(f"{origin}: `sources` must be an array of [[sources]] tables")
    specs: list[SourceSpec] = []
    seen: dict[str, int] = {}
    names: dict[str, int] = {}
    for index, item in enumerate(raw, start=1):
        where = f"{origin}: [[sources]] #{index}"
        if not isinstance(item, dict):
            raise SourcesConfigError(f"{where}: must be a table")
        spec = _parse_one(item, where, default_interval)
        key = source_key(spec)
        if key in seen:
            raise SourcesConfigError(f"{where} ({spec.name!r}): same source as #{seen[key]}")
        seen[key] = index
        folded = spec.name.strip().casefold()
        if folded in names:
            raise SourcesConfigError(f"{where} ({spec.name!r}): the name is already used by #{names[folded]}")
        names[folded] = index
        specs.append(spec)
    return specs


def _parse_one(item: dict[str, Any], where: str, default_interval: int) -> SourceSpec:
    unknown = set(item) - KNOWN_KEYS
    if unknown:
        raise SourcesConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SourcesConfigError(f"{where}: `name` is required (a non-empty string)")
    where = f"{where} ({name!r})"
    kind = item.get("kind", "feed")
    if kind not in SOURCE_KINDS:
        raise SourcesConfigError(f"{where}: `kind` must be one of {', '.join(SOURCE_KINDS)} (got {kind!r})")
    url = item.get("url", "")
    org, repo = item.get("org"), item.get("repo")
    if kind == "feed" and (not isinstance(url, str) or not url.lower().startswith(("http://", "https://"))):
        raise SourcesConfigError(f"{where}: `url` must be an http:// or https:// URL")
    if kind == "feed" and any(ch.isspace() for ch in url):
        raise SourcesConfigError(f"{where}: `url` contains white space (encode a space as %20)")
    if kind == "hf_models" and (not isinstance(org, str) or not org.strip() or "/" in org):
        raise SourcesConfigError(f'{where}: kind hf_models needs `org`, e.g. org = "deepseek-ai"')
    if kind == "github_releases" and (not isinstance(repo, str) or repo.count("/") != 1):
        raise SourcesConfigError(f'{where}: kind github_releases needs `repo = "owner/name"`')
    interval = item.get("interval_minutes", default_interval)
    if not isinstance(interval, int) or isinstance(interval, bool) or not 1 <= interval <= 7 * 24 * 60:
        raise SourcesConfigError(f"{where}: `interval_minutes` must be a whole number from 1 to 10080")
    weight = item.get("weight", 1.0)
    if not isinstance(weight, int | float) or isinstance(weight, bool) or not 0 < weight <= 10:
        raise SourcesConfigError(f"{where}: `weight` must be a number above 0 and at most 10")
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise SourcesConfigError(f"{where}: `enabled` must be true or false")
    return SourceSpec(
        name=name.strip(),
        url=url if isinstance(url, str) else "",
        kind=cast(SourceKind, kind),
        interval_minutes=interval,
        weight=float(weight),
        enabled=enabled,
        org=org.strip() if isinstance(org, str) else None,
        repo=repo.strip() if isinstance(repo, str) else None,
    )


def source_key(spec: SourceSpec) -> str:
    """Identity of a source across restarts and config edits."""
    if spec.kind == "hf_models":
        return f"hf_models:{(spec.org or '').lower()}"
    if spec.kind == "github_releases":
        return f"github_releases:{(spec.repo or '').lower()}"
    return f"feed:{spec.url}"
