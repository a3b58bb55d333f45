"""OPML import into the sources file and export from it (``frontierwatch sources import|export``).

Import reads the outlines of a feed reader's export (Feedly, Inoreader, Miniflux, NetNewsWire …),
decides for each one whether it is added, already present or refused, and merges the added ones
into ``sources.toml`` as plain ``[[sources]]`` tables (``name`` + ``url``, the minimal form that
must stay valid forever), leaving every byte already in the file as it was.

* The XML is parsed with defusedxml: a DTD, an entity declaration or an external reference is
  refused outright (an OPML file never needs one, and it is user-supplied input).
* An outline with an ``xmlUrl`` attribute is a feed, whatever its ``type`` (``rss``, ``atom`` or
  none: Miniflux writes none). An outline without ``xmlUrl`` that holds outlines is a folder:
  folders are walked and otherwise ignored (sources have no tags), their names only appear in
  messages. Any other outline is refused: it has no feed URL (an ``htmlUrl`` is a web page, not a
  feed, and is never polled in its place).
* A feed is held to exactly the rules of a hand-written table (:func:`bot.sources.config.entry_problem`)
  and to the SSRF guard's up-front check (:func:`bot.sources.urlsafety.check_url`).
* Duplicates are found by canonical URL (:func:`bot.sources.normalize.canonical_url`: case of scheme
  and host, default port, fragment and tracking parameters do not matter) and by the sources file's
  own uniqueness rule, against the file and against earlier outlines of the same OPML file; so
  importing a file twice adds nothing the second time.
* Names must be unique in the file (compared NFKC-casefolded, as the file's check does); a taken
  name gets the feed's host, then a number: "Blog (example.com)", "Blog (2)".

Export writes OPML 2.0: the file's enabled feeds at the top level, then the feeds chat channels
added with ``/watch sources add`` in one folder. Trackers (``hf_models``, ``github_releases``) are
not feeds a reader could subscribe to and are left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
import tomllib
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from xml.etree import ElementTree

import tomlkit
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree
from pydantic import ValidationError
from tomlkit.items import AoT, Array

from bot.sources.config import MAX_NAME_CHARS, entry_problem, feed_identity, parse_sources
from bot.sources.normalize import canonical_url
from bot.sources.urlsafety import BlockedDestination

__all__ = [
    "CHANNEL_FOLDER",
    "MAX_OPML_BYTES",
    "ExportedFeed",
    "ImportPlan",
    "OpmlError",
    "Outline",
    "SourcesFileError",
    "merge_into_sources",
    "plan_import",
    "read_outlines",
    "render_opml",
    "write_atomically",
]

MAX_OPML_BYTES = 10 * 1024 * 1024  # the largest real exports are a few hundred KB
CHANNEL_FOLDER = "Added by chat channels"
CHECK_CONCURRENCY = 8  # DNS look-ups at once: enough for a 500-feed export, kind to the resolver

UrlCheck = Callable[[str], Awaitable[None]]  # raises ValueError or BlockedDestination


class OpmlError(Exception):
    """The file is not an OPML document we read (not XML, refused XML, no ``<body>``)."""


class SourcesFileError(Exception):
    """The sources file cannot take the import (its ``sources`` key is something else)."""


@dataclass(frozen=True, slots=True)
class Outline:
    """One outline that is not a folder, as the OPML file gives it."""

    title: str  # ``text``, else ``title``, white space collapsed; may be empty
    xml_url: str | None  # None when the attribute is missing
    html_url: str | None
    outline_type: str  # lower-cased ``type``; "" when missing
    folders: tuple[str, ...]  # the enclosing folders' names, outermost first

    @property
    def where(self) -> str:
        """The outline as a person finds it in their reader: "Folder / Sub / Title"."""
        return " / ".join((*self.folders, self.title or "(untitled)"))


@dataclass(frozen=True, slots=True)
class Added:
    outline: Outline
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class Present:
    outline: Outline
    same_as: str  # the name of the source (in the file, or added just before) it duplicates


@dataclass(frozen=True, slots=True)
class Refused:
    outline: Outline
    reason: str


@dataclass
class ImportPlan:
    added: list[Added] = field(default_factory=list)
    present: list[Present] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)

    def summary(self) -> str:
        return f"added {len(self.added)}, already present {len(self.present)}, refused {len(self.refused)}"


# ---------------------------------------------------------------------------------------- reading
def read_outlines(data: bytes) -> tuple[str, list[Outline]]:
    """The document's title and its non-folder outlines in document order; raises OpmlError."""
    if len(data) > MAX_OPML_BYTES:
        raise OpmlError(f"the file is larger than {MAX_OPML_BYTES // (1024 * 1024)} MB; no OPML export is")
    try:
        root = SafeElementTree.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise OpmlError(
            f"refused: the file declares a DTD, entities or external references ({type(exc).__name__}); "
            "OPML needs none, and expanding them is how XML bombs work"
        ) from None
    except ElementTree.ParseError as exc:
        line, column = exc.position
        raise OpmlError(f"not well-formed XML (line {line}, column {column + 1})") from None
    if _local(root.tag) != "opml":
        raise OpmlError(f"not an OPML file: the root element is <{_local(root.tag)}>, not <opml>")
    body = next((child for child in root if _local(child.tag) == "body"), None)
    if body is None:
        raise OpmlError("not an OPML file: <opml> has no <body>")
    head = next((child for child in root if _local(child.tag) == "head"), None)
    title_element = (
        next((child for child in head if _local(child.tag) == "title"), None) if head is not None else None
    )
    title = _one_line(title_element.text if title_element is not None else None)
    outlines: list[Outline] = []
    _walk(body, (), outlines)
    return title, outlines


def _walk(parent: ElementTree.Element, folders: tuple[str, ...], into: list[Outline]) -> None:
    for element in parent:
        if _local(element.tag) != "outline":
            continue
        attributes = _attributes(element)
        title = _one_line(attributes.get("text")) or _one_line(attributes.get("title"))
        children = [child for child in element if _local(child.tag) == "outline"]
        if "xmlurl" not in attributes and children:
            _walk(element, (*folders, title or "(untitled folder)"), into)
            continue
        into.append(
            Outline(
                title=title,
                xml_url=attributes.get("xmlurl"),
                html_url=attributes.get("htmlurl") or None,
                outline_type=attributes.get("type", "").strip().lower(),
                folders=folders,
            )
        )
        if children:  # a feed that also holds outlines: rare, but its children are still read
            _walk(element, (*folders, title or "(untitled)"), into)


def _attributes(element: ElementTree.Element) -> dict[str, str]:
    """Un-namespaced attributes by lower-cased name: OPML is case-sensitive, but files with
    ``xmlurl`` or ``XMLURL`` exist and every reader accepts them. Namespaced ones (Miniflux's
    ``miniflux:crawler`` …) are settings of another reader and are ignored."""
    return {name.lower(): value for name, value in element.attrib.items() if not name.startswith("{")}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


# ---------------------------------------------------------------------------------------- planning
async def plan_import(
    outlines: Sequence[Outline], existing: Sequence[dict[str, Any]], *, check_url: UrlCheck
) -> ImportPlan:
    """Decide the fate of every outline against the file's ``existing`` tables (as TOML gives them).

    ``check_url`` is the SSRF guard's verdict (it may resolve host names); it runs once per distinct
    new URL, a few at a time, and never for a URL the file already has.
    """
    known: dict[str, str] = {}  # identity key → name of the source that holds it
    names: set[str] = set()
    for table in existing:
        name = str(table.get("name", "")).strip()
        names.add(_folded(name))
        url = table.get("url")
        if table.get("kind", "feed") == "feed" and isinstance(url, str):
            for key in _identities(url):
                known.setdefault(key, name)

    candidates: list[tuple[Outline, str | None, str]] = []  # outline, url (None: refused), reason
    for outline in outlines:
        url, reason = _candidate_url(outline)
        candidates.append((outline, url, reason))
    to_check = sorted({url for _, url, _ in candidates if url is not None and not _is_known(url, known)})
    problems = await _check_all(to_check, check_url)

    plan = ImportPlan()
    for outline, url, reason in candidates:
        if url is None:
            plan.refused.append(Refused(outline, reason))
            continue
        same_as = next((known[key] for key in _identities(url) if key in known), None)
        if same_as is not None:
            plan.present.append(Present(outline, same_as))
            continue
        if url in problems:
            plan.refused.append(Refused(outline, problems[url]))
            continue
        name = _unique_name(outline.title, url, names)
        names.add(_folded(name))
        for key in _identities(url):
            known[key] = name
        plan.added.append(Added(outline, name, url))
    return plan


def _candidate_url(outline: Outline) -> tuple[str | None, str]:
    """The outline's feed URL and "", or None and why it cannot be a source."""
    if outline.outline_type == "include" and outline.xml_url is None:
        return None, 'an include of another OPML file (type="include"), not a feed: import that file itself'
    if outline.xml_url is None:
        page = f", only htmlUrl {outline.html_url} (a web page, not a feed)" if outline.html_url else ""
        return None, f"no feed URL: the outline has no xmlUrl attribute{page}"
    url = outline.xml_url.strip()
    if not url:
        return None, "no feed URL: xmlUrl is empty"
    # A name that always passes, so only the URL's problem is reported here; the real name is
    # checked once it is chosen (it cannot fail: _unique_name keeps it non-empty and short).
    problem = entry_problem({"name": "x", "url": url})
    if problem is not None:
        return None, problem.replace("`url`", "xmlUrl")
    return url, ""


async def _check_all(urls: Iterable[str], check_url: UrlCheck) -> dict[str, str]:
    limit = asyncio.Semaphore(CHECK_CONCURRENCY)
    problems: dict[str, str] = {}

    async def one(url: str) -> None:
        async with limit:
            try:
                await check_url(url)
            except BlockedDestination as exc:
                problems[url] = f"SSRF guard: {exc.reason.removeprefix('refused: ')}"
            except ValueError as exc:
                problems[url] = str(exc)

    await asyncio.gather(*(one(url) for url in urls))
    return problems


def _identities(url: str) -> tuple[str, ...]:
    """The keys under which two feed URLs count as one source: the canonical URL, and the sources
    file's own identity (so nothing the file's uniqueness check would refuse gets written)."""
    keys = [f"canonical:{canonical_url(url)}"] if canonical_url(url) else []
    # A URL the file's check would refuse has only its canonical form (it is refused anyway).
    with contextlib.suppress(ValidationError):
        keys.append(f"file:{feed_identity(url)}")
    return tuple(keys)


def _is_known(url: str, known: dict[str, str]) -> bool:
    return any(key in known for key in _identities(url))


def _folded(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold()


def _unique_name(title: str, url: str, taken: set[str]) -> str:
    host = (urlsplit(url).hostname or url).removeprefix("www.")
    base = title or host

    def fit(suffix: str) -> str:
        # sources.name is at most MAX_NAME_CHARS; the suffix is what makes the name unique, so the
        # title is what gets cut.
        return f"{base[: MAX_NAME_CHARS - len(suffix)].rstrip()}{suffix}"

    for suffix in ("", f" ({host})"):
        if suffix == f" ({host})" and base == host:
            continue
        name = fit(suffix)
        if _folded(name) not in taken:
            return name
    number = 2
    while _folded(fit(f" ({number})")) in taken:
        number += 1
    return fit(f" ({number})")


# ---------------------------------------------------------------------------------------- writing
def merge_into_sources(text: str, added: Sequence[Added], *, comment: str) -> str:
    """``text`` (a sources file, possibly empty) with one ``[[sources]]`` table per added feed at
    the end, after a one-line ``comment`` (in a file that lists its sources as an inline array, as
    inline tables before its closing bracket). Everything already in ``text`` is kept byte for byte
    (only a missing final newline is added); the result is checked with the file's own validation
    before it is returned, so the import can never write a file the bot would refuse."""
    # A Windows-edited file keeps its line ends in what is added.
    newline = "\r\n" if text.split("\n", 1)[0].endswith("\r") else "\n"
    if text and not text.endswith("\n"):
        text += newline  # tomlkit would glue the first new header onto the last line otherwise
    document = tomlkit.parse(text)
    existing = document.get("sources")
    if existing is None:
        existing = tomlkit.aot()
        document.append("sources", existing)
    lead = f"\n# {comment}\n" if text.strip() else f"# {comment}\n"
    if isinstance(existing, AoT):
        for index, item in enumerate(added):
            table = tomlkit.table()
            table.add("name", item.name)
            table.add("url", item.url)
            # A table's "indent" trivia is written before its header: a blank line between tables,
            # and the comment saying where the new ones came from before the first.
            table.trivia.indent = lead if index == 0 else "\n"
            existing.append(table)
    elif isinstance(existing, Array):  # `sources = [{ name = …, url = … }]`: keep that style
        for item in added:
            inline = tomlkit.inline_table()
            inline.update({"name": item.name, "url": item.url})
            existing.append(inline)
    else:
        raise SourcesFileError("`sources` is not an array of [[sources]] tables")
    merged = tomlkit.dumps(document)
    inserted = _insertion(text, merged)
    if inserted is None:
        raise SourcesFileError("tomlkit changed the existing text; nothing was written")  # never seen
    start, end = inserted
    if newline != "\n":
        merged = merged[:start] + merged[start:end].replace("\n", "\r\n") + merged[end:]
    before = len(tomllib.loads(text).get("sources", [])) if text.strip() else 0
    specs = parse_sources(tomllib.loads(merged), origin="the merged sources file")
    if len(specs) != before + len(added):
        raise SourcesFileError("the merged file does not hold the expected sources; nothing was written")
    return merged


def _insertion(original: str, merged: str) -> tuple[int, int] | None:
    """Where ``merged`` holds text inserted into ``original`` at one place (at the end for tables,
    before the closing bracket of an inline array), or None if anything else differs."""
    prefix = 0
    limit = min(len(original), len(merged))
    while prefix < limit and original[prefix] == merged[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and original[-1 - suffix] == merged[-1 - suffix]:
        suffix += 1
    if prefix + suffix != len(original):
        return None
    return prefix, len(merged) - suffix


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` in one rename, keeping its permissions: a crash or a full disk mid-write
    must not leave the sources file cut in half (the bot would refuse to start)."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------- export
@dataclass(frozen=True, slots=True)
class ExportedFeed:
    name: str
    url: str
    origin: Literal["file", "channel"]


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render_opml(feeds: Sequence[ExportedFeed], *, title: str, created: datetime) -> bytes:
    """An OPML 2.0 document: the file's feeds at the top level, the channels' feeds in one folder.

    Every outline carries ``type="rss"`` (what readers expect for any feed, Atom included), ``text``
    and ``title`` (the source's name) and ``xmlUrl``; there is no ``htmlUrl`` because the bot does
    not keep a site address.
    """
    opml = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(opml, "head")
    ElementTree.SubElement(head, "title").text = _xml_text(title)
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(created, usegmt=True)
    ElementTree.SubElement(head, "docs").text = "https://opml.org/spec2.opml"
    body = ElementTree.SubElement(opml, "body")
    channel_folder: ElementTree.Element | None = None
    for feed in feeds:
        parent = body
        if feed.origin == "channel":
            if channel_folder is None:
                channel_folder = ElementTree.SubElement(
                    body, "outline", text=CHANNEL_FOLDER, title=CHANNEL_FOLDER
                )
            parent = channel_folder
        name = _xml_text(feed.name)
        ElementTree.SubElement(parent, "outline", type="rss", text=name, title=name, xmlUrl=feed.url)
    ElementTree.indent(opml, space="  ")
    text = ElementTree.tostring(opml, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{text}\n'.encode()


def _xml_text(text: str) -> str:
    # XML 1.0 cannot carry most control characters at all, not even escaped; a TOML string can.
    return _XML_INVALID.sub(" ", text)
