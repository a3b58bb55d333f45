"""Model-release trackers: the Hugging Face Hub API and GitHub releases feeds as sources.

A tracker source is a :class:`~bot.domain.SourceSpec` with ``kind = "hf_models"`` (``org``) or
``kind = "github_releases"`` (``repo``). This module turns such a spec into the request to make
(:func:`request_url`, :func:`request_headers`) and the fetched body into entries
(:func:`parse_for_kind`). Parsing is pure and top-level, so the poller can run it in its process
pool exactly like :func:`bot.sources.parser.parse_feed`.

Hub entry titles read as releases ("deepseek-ai releases new model DeepSeek-V3.2 on Hugging Face") on
purpose, so the story reads right in a digest; its address, a model repository on the Hub, also
makes it ``release`` by itself (``always_addresses = ["hub_model"]`` in ``config/topics.toml``), as
a tracker story must be labelled before any news outlet has written about it. GitHub titles ("owner/name release v1.2.3: <title>") add no such
word: a tag on a library repository is not necessarily a model release, so the classifier decides.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit

from bot.domain import SOURCE_KINDS, Entry, ParsedFeed, SourceSpec, clamp_server_delay
from bot.settings import Settings
from bot.sources.normalize import clean_text, cut_at_word, to_utc

__all__ = [
    "GITHUB_OUTLET",
    "HF_EXPAND_FIELDS",
    "HF_OUTLET",
    "HF_PAGE_LIMIT",
    "RedactedHeaders",
    "next_link",
    "parse_for_kind",
    "parse_github_releases",
    "parse_hf_models",
    "rate_limit_reset",
    "release_tag",
    "request_headers",
    "request_url",
    "validate_spec",
]

HF_OUTLET = "Hugging Face Hub"
GITHUB_OUTLET = "GitHub"
DEFAULT_HUB_BASE = "https://huggingface.co"

# Newest first, one page per poll: an org rarely publishes 50 repositories between two polls, and
# the next page is only named (ParsedFeed.next_url), never fetched blindly, to stay far below the
# anonymous limit of 500 API calls per 5 minutes.
HF_PAGE_LIMIT = 50
# `expand` instead of `full=true` keeps the payload small (about 6x smaller per the capture notes)
# and asks only for what a story shows. `safetensors` carries the parameter count; the licence is
# the `license:` tag. `gguf` is left out: it embeds whole chat templates.
HF_EXPAND_FIELDS: tuple[str, ...] = (
    "author",
    "createdAt",
    "lastModified",
    "pipeline_tag",
    "library_name",
    "tags",
    "safetensors",
    "gated",
)

GITHUB_ATOM_ACCEPT = "application/atom+xml, application/xml;q=0.9, */*;q=0.1"

# The Hub stamps every repository created before it recorded creation dates with this instant
# (2022-03-02T23:29:04Z); reporting it as a release date would date old models to one day.
_HF_PLACEHOLDER_BEFORE = datetime(2022, 3, 3, tzinfo=UTC)

# Hub user/org names: letters, digits, '-', '_', '.'; GitHub owners: letters, digits, '-'.
_HF_ORG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_GITHUB_REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_LINK_NEXT_RE = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_RATELIMIT_T_RE = re.compile(r";\s*t\s*=\s*(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)")
_RELEASE_TAG_PATH = "/releases/tag/"
_GITHUB_ID_RE = re.compile(r"^tag:github\.com,2008:Repository/\d+/(?P<tag>.+)$")

# Tags every model carries or that the summary already shows some other way: noise in a digest.
_BORING_TAG_PREFIXES = (
    "region:",
    "license:",
    "base_model:",
    "dataset:",
    "arxiv:",
    "doi:",
    "deploy:",
    "endpoints_compatible",
    "autotrain_compatible",
    "text-generation-inference",
    "eval-results",
    "safetensors",
)
_MAX_TAGS = 12
_MAX_SUMMARY_TAGS = 6


# --- requests -----------------------------------------------------------------------------------


class RedactedHeaders(dict[str, str]):
    """Request headers whose printed form hides credentials.

    The dict itself is what the fetcher sends; only ``repr``/``str`` (what a log line or a test
    failure would show) mask the ``Authorization`` value.
    """

    def __repr__(self) -> str:
        shown = {k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in self.items()}
        return f"RedactedHeaders({shown!r})"

    __str__ = __repr__


def _base(value: str) -> str:
    return value.rstrip("/")


def request_url(spec: SourceSpec, settings: Settings) -> str:
    """The URL to fetch for ``spec``; raises ValueError for a spec :func:`validate_spec` refuses."""
    validate_spec(spec)
    if spec.kind == "hf_models":
        assert spec.org is not None  # validate_spec guarantees it; narrows the type
        query: list[tuple[str, str | int]] = [
            ("author", spec.org),
            ("sort", "createdAt"),
            ("direction", -1),
            ("limit", HF_PAGE_LIMIT),
        ]
        query += [("expand[]", field) for field in HF_EXPAND_FIELDS]
        return f"{_base(settings.hf_api_base)}/api/models?{urlencode(query)}"
    if spec.kind == "github_releases":
        assert spec.repo is not None
        owner, name = spec.repo.split("/")
        return f"{_base(settings.github_base)}/{quote(owner)}/{quote(name)}/releases.atom"
    return spec.url


def request_headers(spec: SourceSpec, settings: Settings) -> RedactedHeaders:
    """Extra request headers for ``spec`` (the fetcher adds User-Agent and validators).

    The Hub token goes only to Hub API requests; the fetcher drops it if a redirect leaves the
    origin. Never log the returned mapping's values: only its ``repr`` is safe.
    """
    headers = RedactedHeaders()
    if spec.kind == "hf_models":
        headers["Accept"] = "application/json"
        token = settings.hf_token.get_secret_value().strip() if settings.hf_token is not None else ""
        if token:
            headers["Authorization"] = f"Bearer {token}"
    elif spec.kind == "github_releases":
        headers["Accept"] = GITHUB_ATOM_ACCEPT
    return headers


def validate_spec(spec: SourceSpec) -> None:
    """Raise ValueError naming the problem when ``spec`` cannot be polled; return None otherwise."""
    label = f"source {spec.name!r}" if spec.name else "source"
    if not spec.name or not spec.name.strip():
        raise ValueError("source: `name` must be a non-empty string")
    if spec.kind not in SOURCE_KINDS:
        raise ValueError(f"{label}: unknown kind {spec.kind!r}; use one of {', '.join(SOURCE_KINDS)}")
    if spec.interval_minutes < 1:
        raise ValueError(f"{label}: `interval_minutes` must be at least 1 (got {spec.interval_minutes})")
    if not math.isfinite(spec.weight) or not 0 < spec.weight <= 10:
        raise ValueError(f"{label}: `weight` must be above 0 and at most 10 (got {spec.weight})")
    if spec.kind == "hf_models":
        if not spec.org or not _HF_ORG_RE.match(spec.org):
            raise ValueError(
                f'{label}: kind "hf_models" needs `org`, a Hugging Face user or organisation name '
                f'such as org = "deepseek-ai" (got {spec.org!r})'
            )
        return
    if spec.kind == "github_releases":
        if not spec.repo or not _GITHUB_REPO_RE.match(spec.repo) or spec.repo.split("/")[1] in {".", ".."}:
            raise ValueError(
                f'{label}: kind "github_releases" needs `repo = "owner/name"`, '
                f'such as repo = "deepseek-ai/DeepSeek-V3" (got {spec.repo!r})'
            )
        return
    url = spec.url.strip() if spec.url else ""
    if not re.match(r"^https?://[^/\s?#]+", url, flags=re.IGNORECASE):
        raise ValueError(f"{label}: a feed needs an http:// or https:// `url` (got {spec.url!r})")


# --- Hugging Face Hub ---------------------------------------------------------------------------


def next_link(headers: Mapping[str, str], url: str) -> str | None:
    """The ``rel="next"`` target of an RFC 8288 ``Link`` header, made absolute against ``url``.

    None when there is none, or when it leaves the origin of ``url``.
    """
    value = headers.get("link") or headers.get("Link")
    if not value:
        return None
    for match in _LINK_NEXT_RE.finditer(value):
        target, params = match.group(1), match.group(2)
        rels = re.findall(r';\s*rel\s*=\s*"?([^";]+)"?', params, flags=re.IGNORECASE)
        if not any("next" in rel.lower().split() for rel in rels) or not target.strip():
            continue
        absolute: str = urljoin(url, target.strip())
        # The next page is fetched with the same headers, Hub token included: a Link pointing to
        # another origin would hand it the token, so such a link is ignored.
        here, there = urlsplit(url), urlsplit(absolute)
        if (there.scheme.lower(), there.netloc.lower()) != (here.scheme.lower(), here.netloc.lower()):
            return None
        return absolute
    return None


def rate_limit_reset(headers: Mapping[str, str]) -> float | None:
    """Seconds until the Hub's quota window resets, from its ``RateLimit`` header; None if absent.

    The Hub follows draft-ietf-httpapi-ratelimit-headers: ``RateLimit: "api";r=0;t=87``. Its 429s
    are not documented to carry ``Retry-After``, so the poller needs this to wait the right time.
    """
    value = headers.get("ratelimit") or headers.get("RateLimit")
    if not value:
        return None
    match = _RATELIMIT_T_RE.search(value)
    if not match:
        return None
    try:
        seconds = float(match.group(1))
    except (ValueError, OverflowError):
        return None
    return clamp_server_delay(seconds)


def _hf_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    when = to_utc(parsed)
    if when is None or when < _HF_PLACEHOLDER_BEFORE:
        return None
    return when


def _format_params(total: int) -> str:
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if total >= size:
            value = total / size
            text = f"{value:.0f}" if value >= 100 else f"{value:.1f}".removesuffix(".0")
            return f"{text}{suffix}"
    return str(total)


def _param_count(item: Mapping[str, Any]) -> int | None:
    for key in ("safetensors", "gguf"):
        info = item.get(key)
        if isinstance(info, Mapping):
            total = info.get("total")
            if isinstance(total, int | float) and not isinstance(total, bool) and 0 < total < 1e16:
                return int(total)
            per_dtype = info.get("parameters")
            if isinstance(per_dtype, Mapping):
                counts = [v for v in per_dtype.values() if isinstance(v, int) and not isinstance(v, bool)]
                if counts:
                    return sum(counts)
    return None


def _str_list(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [clean_text(v) for v in value if isinstance(v, str) and clean_text(v)]


def _str_field(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    return (clean_text(value) or None) if isinstance(value, str) else None


def _licence(item: Mapping[str, Any], tags: list[str]) -> str | None:
    for tag in tags:
        if tag.lower().startswith("license:") and len(tag) > len("license:"):
            return tag[len("license:") :]
    card = item.get("cardData")
    if isinstance(card, Mapping):
        lic = card.get("license")
        if isinstance(lic, str) and lic.strip():
            return clean_text(lic)
    return None


def _base_model(tags: list[str]) -> tuple[str, str] | None:
    """(how, model) from ``base_model:<relation>:<id>`` (or the bare ``base_model:<id>``)."""
    relation_words = {
        "quantized": "quantized from",
        "finetune": "fine-tuned from",
        "adapter": "adapter for",
        "merge": "merged from",
    }
    bare: str | None = None
    for tag in tags:
        if not tag.startswith("base_model:"):
            continue
        rest = tag[len("base_model:") :]
        head, sep, tail = rest.partition(":")
        if sep and head in relation_words and tail:
            return relation_words[head], tail
        if not sep and rest:
            bare = bare or rest
    return ("derived from", bare) if bare else None


def _main_tags(tags: list[str], skip: set[str]) -> list[str]:
    main: list[str] = []
    for tag in tags:
        low = tag.lower()
        if low in skip or low.startswith(_BORING_TAG_PREFIXES) or tag in main:
            continue
        main.append(tag)
    return main


def _hf_entry(
    item: Mapping[str, Any], *, org: str, summary_chars: int, hub_base: str
) -> tuple[Entry | None, str | None]:
    """One model listing item → Entry, or (None, reason) when it cannot be one."""
    repo_id = item.get("id") or item.get("modelId")
    if not isinstance(repo_id, str) or not repo_id.strip() or any(c.isspace() for c in repo_id.strip()):
        return None, "item without a usable `id`"
    repo_id = repo_id.strip()
    namespace, sep, model = repo_id.partition("/")
    if not sep or not namespace or not model:
        # Legacy canonical models ("gpt2") have no namespace; they are never new releases of an org.
        return None, f"{repo_id!r} has no owner namespace"
    if namespace.lower() != org.lower():
        return None, f"{repo_id!r} is not owned by {org}"

    tags = _str_list(item.get("tags"))
    pipeline = _str_field(item, "pipeline_tag")
    library = _str_field(item, "library_name")
    licence = _licence(item, tags)
    params = _param_count(item)
    base = _base_model(tags)
    gated = item.get("gated")
    gated_text = gated if isinstance(gated, str) and gated.strip() else ("yes" if gated is True else None)

    main = _main_tags(tags, {t.lower() for t in (pipeline, library) if t})
    parts: list[str] = []
    if pipeline:
        parts.append(pipeline)
    if library:
        parts.append(f"library {library}")
    if licence:
        parts.append(f"licence {licence}")
    if params is not None:
        parts.append(f"{_format_params(params)} parameters")
    if base:
        parts.append(f"{base[0]} {base[1]}")
    if gated_text:
        parts.append(f"gated ({gated_text})")
    if main:
        parts.append("tags: " + ", ".join(main[:_MAX_SUMMARY_TAGS]))
    summary = f"New model repository {repo_id} on the Hugging Face Hub"
    summary += (": " + "; ".join(parts) + ".") if parts else "."

    extra: list[tuple[str, str]] = [("tracker", "hf_models"), ("org", namespace), ("model", model)]
    for key, value in (
        ("pipeline_tag", pipeline),
        ("library", library),
        ("license", licence),
        ("params", str(params) if params is not None else None),
        ("base_model", base[1] if base else None),
        ("gated", gated_text),
    ):
        if value:
            extra.append((key, value))

    entry_tags = [t for t in (pipeline, library) if t] + main
    entry = Entry(
        guid=repo_id,
        url=f"{_base(hub_base)}/{repo_id}",
        title=f"{namespace} releases new model {model} on Hugging Face",
        summary=cut_at_word(summary, summary_chars),
        published=_hf_time(item.get("createdAt")),
        outlet=HF_OUTLET,
        tags=tuple(dict.fromkeys(entry_tags))[:_MAX_TAGS],
        extra=tuple(extra),
    )
    return entry, None


def parse_hf_models(
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    *,
    org: str,
    summary_chars: int = 400,
    hub_base: str = DEFAULT_HUB_BASE,
) -> ParsedFeed:
    """Parse a Hub ``/api/models`` listing page into one entry per model repository of ``org``.

    ``hub_base`` is where links point (the public Hub), which may differ from the API base a test
    or mirror fetched from. Never raises: a body that is not a JSON list gives ``error``.
    """
    next_url = None
    try:
        next_url = next_link(headers, url)
        try:
            text = body.decode("utf-8-sig")
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            return ParsedFeed(entries=[], error=f"Hub API answer is not valid JSON: {exc}", next_url=next_url)
        if isinstance(data, Mapping) and isinstance(data.get("error"), str):
            return ParsedFeed(entries=[], error=f"Hub API error: {clean_text(data['error'])[:200]}")
        if not isinstance(data, list):
            return ParsedFeed(
                entries=[],
                error=f"Hub API answer is a JSON {type(data).__name__}, expected a list of models",
                next_url=next_url,
            )
        entries: list[Entry] = []
        seen: set[str] = set()
        skipped: list[str] = []
        for item in data:
            if not isinstance(item, Mapping):
                skipped.append("non-object item")
                continue
            entry, why = _hf_entry(item, org=org, summary_chars=summary_chars, hub_base=hub_base)
            if entry is None:
                skipped.append(why or "unusable item")
                continue
            if entry.guid in seen:
                continue
            seen.add(entry.guid)
            entries.append(entry)
        if data and not entries:
            # Every item was unusable: say why, rather than report an org with no models.
            return ParsedFeed(
                entries=[],
                title=f"{org} on Hugging Face",
                error=f"no usable models in the Hub answer ({skipped[0]})",
                next_url=next_url,
            )
        return ParsedFeed(entries=entries, title=f"{org} on Hugging Face", next_url=next_url)
    except Exception as exc:  # a parse worker must never crash the poll cycle
        return ParsedFeed(
            entries=[], error=f"Hub API answer could not be read: {exc!r}"[:300], next_url=next_url
        )


# --- GitHub releases ----------------------------------------------------------------------------


def release_tag(entry_url: str, guid: str) -> str | None:
    """The tag of a GitHub release entry, from its ``/releases/tag/<tag>`` link or its Atom id."""
    path = entry_url.split("?", 1)[0].split("#", 1)[0]
    at = path.find(_RELEASE_TAG_PATH)
    if at >= 0:
        tag = unquote(path[at + len(_RELEASE_TAG_PATH) :]).strip()
        if tag:
            return tag
    match = _GITHUB_ID_RE.match(guid.strip())
    if match:
        return unquote(match.group("tag")).strip() or None
    return None


def _release_title(repo: str, tag: str | None, title: str) -> str:
    title = title.strip()
    if not tag:
        return f"{repo} release: {title}" if title else f"{repo} release"
    # GitHub names a release after its tag when the author gave no title; don't say it twice.
    if not title or title.lower() in {tag.lower(), f"release {tag}".lower(), f"v{tag}".lower()}:
        return f"{repo} release {tag}"
    return f"{repo} release {tag}: {title}"


def parse_github_releases(
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    *,
    repo: str,
    summary_chars: int = 400,
) -> ParsedFeed:
    """Parse a GitHub ``releases.atom`` feed; each entry names the repository and the tag."""
    # Imported here so the Hub path never pays for feedparser, and a process-pool worker that only
    # parses Hub answers starts faster.
    from bot.sources.parser import parse_feed

    try:
        parsed = parse_feed(body, headers, url, summary_chars=summary_chars)
    except Exception as exc:  # parse_feed promises not to raise; a worker must survive if it does
        return ParsedFeed(entries=[], error=f"releases feed could not be parsed: {exc!r}"[:300])
    entries: list[Entry] = []
    for entry in parsed.entries:
        tag = release_tag(entry.url, entry.guid)
        extra: list[tuple[str, str]] = [("tracker", "github_releases"), ("repo", repo)]
        if tag:
            extra.append(("tag", tag))
        extra += [(k, v) for k, v in entry.extra if k not in {"tracker", "repo", "tag"}]
        entries.append(
            replace(
                entry,
                title=_release_title(repo, tag, entry.title),
                outlet=GITHUB_OUTLET,
                extra=tuple(extra),
            )
        )
    return replace(parsed, entries=entries, title=parsed.title or f"Releases of {repo}")


# --- dispatch -----------------------------------------------------------------------------------


def parse_for_kind(
    kind: str,
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    *,
    summary_chars: int = 400,
    org: str | None = None,
    repo: str | None = None,
    hub_base: str = DEFAULT_HUB_BASE,
    known_items: frozenset[bytes] = frozenset(),
    max_items: int = 0,
) -> ParsedFeed:
    """Parse a fetched body the way its source kind needs; the process pool's single entry point.

    ``known_items``: hashes of the item elements this source's previous poll parsed; feeds and
    GitHub release feeds then parse only the items that are new or changed (see ``delta``).
    ``max_items`` (0 = no cap): at most that many entries come out of one document; an XML
    document whose entity declarations would expand far past its size is refused unparsed."""
    parsed = _parse_for_kind(
        kind, body, headers, url, summary_chars, org, repo, hub_base, known_items, max_items
    )
    if max_items and len(parsed.entries) > max_items:
        parsed.items_dropped += len(parsed.entries) - max_items
        del parsed.entries[max_items:]
    return parsed


def _parse_for_kind(
    kind: str,
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    summary_chars: int,
    org: str | None,
    repo: str | None,
    hub_base: str,
    known_items: frozenset[bytes],
    max_items: int,
) -> ParsedFeed:
    if kind in ("feed", "github_releases"):
        from bot.sources.xmlguard import entity_problem

        problem = entity_problem(body)
        if problem is not None:
            return ParsedFeed(entries=[], error=f"refused: {problem}")
    if kind == "hf_models":
        if not org:
            return ParsedFeed(entries=[], error="hf_models source without `org`")
        return parse_hf_models(body, headers, url, org=org, summary_chars=summary_chars, hub_base=hub_base)
    if kind == "github_releases":
        if not repo:
            return ParsedFeed(entries=[], error="github_releases source without `repo`")
        name = repo
        return _delta(
            body,
            known_items,
            lambda doc: parse_github_releases(doc, headers, url, repo=name, summary_chars=summary_chars),
            max_items,
        )
    if kind == "feed":
        from bot.sources.parser import parse_feed

        try:
            return _delta(
                body,
                known_items,
                lambda doc: parse_feed(doc, headers, url, summary_chars=summary_chars),
                max_items,
            )
        except Exception as exc:
            return ParsedFeed(entries=[], error=f"feed could not be parsed: {exc!r}"[:300])
    return ParsedFeed(entries=[], error=f"unknown source kind {kind!r}")


def _delta(
    body: bytes, known: frozenset[bytes], parse: Callable[[bytes], ParsedFeed], max_items: int = 0
) -> ParsedFeed:
    """Parse only the new or changed items when the previous poll's items are known."""
    from bot.sources.delta import changed_document

    document, hashes, skipped = changed_document(body, known, max_items=max_items)
    if document is None:  # every item was parsed before: nothing new
        return ParsedFeed(entries=[], item_hashes=hashes, items_skipped=skipped)
    parsed = parse(document)
    if document is not body and (parsed.error is not None or (parsed.bozo and not parsed.entries)):
        # (A whole-document reparse of a capped feed is still capped by the caller.)
        parsed = parse(body)  # the cut-down document misbehaved: the whole one decides
        skipped = 0
    parsed.item_hashes, parsed.items_skipped = hashes, skipped
    return parsed
