"""OPML import and export (bot/sources/opml.py) on real exports; see tests/data/opml/README.md.

No test reaches the network: URL checks run with ``resolve=False`` or a StaticResolver.
"""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.sources.config import load_sources
from bot.sources.opml import (
    CHANNEL_FOLDER,
    ExportedFeed,
    ImportPlan,
    OpmlError,
    Outline,
    merge_into_sources,
    plan_import,
    read_outlines,
    render_opml,
)
from bot.sources.urlsafety import check_url
from tests.support.feedserver import StaticResolver

DATA = Path(__file__).parent / "data" / "opml"
REPO = Path(__file__).resolve().parent.parent
FEEDLY = DATA / "feedly-infosec.opml"
INOREADER = DATA / "inoreader-android.xml"
NETNEWSWIRE = DATA / "netnewswire-subs.opml"
REAL_EXPORTS = [FEEDLY, INOREADER, NETNEWSWIRE]


async def offline_check(url: str) -> None:
    await check_url(url, allow_private=False, resolve=False)


async def plan(data: bytes, existing_toml: str = "") -> ImportPlan:
    _, outlines = read_outlines(data)
    existing = tomllib.loads(existing_toml).get("sources", [])
    return await plan_import(outlines, existing, check_url=offline_check)


def merged_file(text: str, result: ImportPlan, tmp_path: Path) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(merge_into_sources(text, result.added, comment="Imported from a test."), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------- reading
@pytest.mark.parametrize(
    ("path", "title", "feeds", "folders"),
    [
        (FEEDLY, "InfoSec OPML", 27, {"DFIR", "Reverse Engineering", "Infosec Industry News"}),
        (INOREADER, "Subscriptions of Vasya Drobushkov from Inoreader [https://www.inoreader.com]", 113, {"Android", "Kotlin"}),
        (NETNEWSWIRE, "Subs", 207, {"Programming", "Macintosh", "Weblogs"}),
    ],
)  # fmt: skip
def test_reads_every_feed_of_real_exports_through_their_folders(
    path: Path, title: str, feeds: int, folders: set[str]
) -> None:
    data = path.read_bytes()
    read_title, outlines = read_outlines(data)
    assert read_title == title
    # Every xmlUrl attribute in the file is one outline read, nested or not.
    assert len(outlines) == len(re.findall(rb"\bxmlUrl=", data)) == feeds
    assert all(o.xml_url for o in outlines)
    assert folders <= {o.folders[0] for o in outlines if o.folders}
    assert max(len(o.folders) for o in outlines) == 1


def test_titles_are_one_line_and_text_comes_before_title() -> None:
    _, outlines = read_outlines(INOREADER.read_bytes())
    # Inoreader wrote a line break (&#10;) into this title.
    assert "Artem Zinnatullin - Android Hipster" in {o.title for o in outlines}
    _, outlines = read_outlines(
        b'<opml version="2.0"><body><outline text="Text" title="Title" xmlUrl="https://a.example/f"/>'
        b'<outline title="Only title" xmlUrl="https://b.example/f"/></body></opml>'
    )
    assert [o.title for o in outlines] == ["Text", "Only title"]


def test_reads_the_miniflux_layout() -> None:
    # The layout Miniflux's serializer writes (miniflux/v2 internal/reader/opml/serializer.go,
    # Apache-2.0): a namespace for its own settings, no `type`, folders with `text` only, explicit
    # closing tags. Written here after that code: no licensed Miniflux export file was found.
    document = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0" xmlns:miniflux="https://miniflux.app/opml">
    <head>
        <title>Miniflux</title>
        <dateCreated>Mon, 05 Sep 2022 13:56:40 UTC</dateCreated>
    </head>
    <body>
        <outline text="Blog - Tech">
            <outline title="Debian News" text="Debian News" xmlUrl="https://www.debian.org/News/news" htmlUrl="https://www.debian.org/News/" miniflux:crawler="true"></outline>
        </outline>
        <outline text="All">
            <outline title="LWN" text="LWN" xmlUrl="https://lwn.net/headlines/rss" htmlUrl="https://lwn.net/"></outline>
        </outline>
    </body>
</opml>
"""
    title, outlines = read_outlines(document)
    assert title == "Miniflux"
    assert [(o.folders, o.title, o.xml_url, o.outline_type) for o in outlines] == [
        (("Blog - Tech",), "Debian News", "https://www.debian.org/News/news", ""),
        (("All",), "LWN", "https://lwn.net/headlines/rss", ""),
    ]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b'<opml version="2.0"><body><outline text="&b;" xmlUrl="https://a.example/f"/></body></opml>',
            "refused: the file declares a DTD",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<opml version="2.0"><body><outline text="&x;" xmlUrl="https://a.example/f"/></body></opml>',
            "refused: the file declares a DTD",
        ),
        (b"<opml><body><outline text='x'></body></opml>", "not well-formed XML (line 1"),
        (b"<html><body>not a feed list</body></html>", "the root element is <html>"),
        (b'<opml version="2.0"><head/></opml>', "<opml> has no <body>"),
        (b"name,url\nA,https://a.example/\n", "not well-formed XML"),
    ],
)
def test_refuses_what_is_not_safe_plain_opml(document: bytes, reason: str) -> None:
    with pytest.raises(OpmlError, match=re.escape(reason)):
        read_outlines(document)


def test_refuses_a_file_larger_than_any_export() -> None:
    with pytest.raises(OpmlError, match="larger than"):
        read_outlines(b" " * (10 * 1024 * 1024 + 1))


# ---------------------------------------------------------------------------------------- planning
@pytest.mark.parametrize("path", REAL_EXPORTS, ids=lambda p: p.name)
async def test_real_exports_merge_into_a_valid_file_and_a_second_import_adds_nothing(
    path: Path, tmp_path: Path
) -> None:
    data = path.read_bytes()
    first = await plan(data)
    assert not first.refused
    assert len(first.added) + len(first.present) == len(read_outlines(data)[1])
    sources = merged_file("", first, tmp_path)
    specs = load_sources(sources)  # exactly as valid as a hand-written file
    assert [(s.name, s.url, s.kind) for s in specs] == [(a.name, a.url, "feed") for a in first.added]

    second = await plan(data, sources.read_text(encoding="utf-8"))
    assert (len(second.added), len(second.present), len(second.refused)) == (
        0,
        len(first.added) + len(first.present),
        0,
    )


async def test_duplicates_and_name_collisions_of_a_real_export() -> None:
    result = await plan(NETNEWSWIRE.read_bytes())
    # "Katie Floyd" is listed twice, once with a trailing slash: one feed by canonical URL.
    assert [(p.outline.xml_url, p.same_as) for p in result.present] == [
        ("http://feed.katiefloyd.com/", "Katie Floyd")
    ]
    names = {a.url: a.name for a in result.added}
    # Two different feeds share a title: the second one is told apart by its host, then a number.
    assert names["http://daringfireball.net/feeds/main"] == "Daring Fireball"
    assert names["http://daringfireball.net/index.xml"] == "Daring Fireball (daringfireball.net)"
    assert names["http://nshipster.com/feed.xml"] == "NSHipster"
    assert names["http://feeds.feedburner.com/NSHipster"] == "NSHipster (feeds.feedburner.com)"


async def test_a_feed_already_in_the_file_is_found_whatever_its_spelling() -> None:
    existing = (
        '[[sources]]\nname = "Krebs"\nurl = "HTTP://KrebsOnSecurity.com:80/feed/?utm_source=x#top"\n'
        '[[sources]]\nname = "Forensic Focus"\nurl = "https://example.org/other"\n'
    )
    result = await plan(FEEDLY.read_bytes(), existing)
    assert [(p.outline.title, p.same_as) for p in result.present] == [("Krebs on Security", "Krebs")]
    # The name is taken by another feed: the outline gets its host.
    assert "Forensic Focus (forensicfocus.com)" in {a.name for a in result.added}


async def test_names_collide_as_the_file_check_compares_them() -> None:
    existing = '[[sources]]\nname = "Café"\nurl = "https://cafe.example/feed"\n'
    document = (
        '<opml version="2.0"><body>'
        '<outline text="CAFE\u0301" xmlUrl="https://other.example/feed"/>'  # E + combining accent
        f'<outline text="{"x" * 300}" xmlUrl="https://long.example/feed"/>'
        '<outline text="" xmlUrl="https://www.untitled.example/rss"/>'
        "</body></opml>"
    ).encode()
    result = await plan(document, existing)
    assert [a.name for a in result.added] == ["CAFE\u0301 (other.example)", "x" * 200, "untitled.example"]


async def test_missing_or_unusable_xml_url_is_refused_with_its_reason(tmp_path: Path) -> None:
    # The real Feedly export with three outlines spoiled the ways real files are.
    text = FEEDLY.read_text(encoding="utf-8")
    text = text.replace('xmlUrl="http://www.forensicfocus.com/rss/news2.php" ', "")
    text = text.replace('xmlUrl="http://doar-e.github.io/atom.xml"', 'xmlUrl=""')
    text = text.replace(
        'xmlUrl="http://taosecurity.blogspot.com/atom.xml"', 'xmlUrl="feed://taosecurity.blogspot.com/"'
    )
    text = text.replace(
        "</body>", '<outline type="include" text="More" url="https://x.example/more.opml"/></body>'
    )
    result = await plan(text.encode())
    assert [(r.outline.where, r.reason) for r in result.refused] == [
        ("DFIR / Forensic Focus", "no feed URL: the outline has no xmlUrl attribute, only htmlUrl http://www.forensicfocus.com/ (a web page, not a feed)"),
        ("Reverse Engineering / Diary of a reverse-engineer", "no feed URL: xmlUrl is empty"),
        ("Infosec Industry News / TaoSecurity", "xmlUrl must be an http:// or https:// URL"),
        ("More", 'an include of another OPML file (type="include"), not a feed: import that file itself'),
    ]  # fmt: skip
    assert len(result.added) == 27 - 3
    load_sources(merged_file("", result, tmp_path))


async def test_the_ssrf_guard_refuses_private_addresses_before_anything_is_written() -> None:
    resolver = StaticResolver({"intranet.example": "10.1.2.3", "public.example": "93.184.216.34"})
    looked_up: list[str] = []

    async def guarded(url: str) -> None:
        looked_up.append(url)
        await check_url(url, allow_private=False, resolver=resolver)

    document = b"""<opml version="2.0"><body><outline text="Local">
      <outline text="Loopback" xmlUrl="http://127.0.0.1:8080/feed"/>
      <outline text="Metadata" xmlUrl="http://169.254.169.254/latest/meta-data/"/>
      <outline text="Mapped" xmlUrl="http://[::ffff:10.0.0.1]/rss"/>
      <outline text="Intranet" xmlUrl="https://intranet.example/rss"/>
      <outline text="Nowhere" xmlUrl="https://nowhere.example/rss"/>
      <outline text="Password" xmlUrl="https://user:secret@public.example/rss"/>
      <outline text="Public" xmlUrl="https://public.example/rss"/>
      <outline text="Public again" xmlUrl="https://PUBLIC.example/rss#latest"/>
      <outline text="Already there" xmlUrl="https://known.example/feed"/>
    </outline></body></opml>"""
    _, outlines = read_outlines(document)
    existing = [{"name": "Known", "url": "https://known.example/feed"}]
    result = await plan_import(outlines, existing, check_url=guarded)
    assert [(r.outline.title, r.reason) for r in result.refused] == [
        ("Loopback", "SSRF guard: loopback address 127.0.0.1"),
        ("Metadata", "SSRF guard: cloud metadata address 169.254.169.254"),
        ("Mapped", "SSRF guard: private address ::ffff:a00:1 (10.0.0.1)"),
        ("Intranet", "SSRF guard: intranet.example resolves to private address 10.1.2.3"),
        ("Nowhere", "DNS lookup failed for nowhere.example"),
        ("Password", "URLs with a user name or password are not accepted"),
    ]
    assert [a.name for a in result.added] == ["Public"]
    assert [(p.outline.title, p.same_as) for p in result.present] == [
        ("Public again", "Public"),
        ("Already there", "Known"),
    ]
    # Each new URL is checked once; the file's own feeds are not checked again.
    assert "https://known.example/feed" not in looked_up
    assert len(looked_up) == len(set(looked_up)) == 8


# ---------------------------------------------------------------------------------------- writing
async def test_merging_keeps_the_shipped_file_byte_for_byte(tmp_path: Path) -> None:
    shipped = (REPO / "config" / "sources.toml").read_bytes()
    result = await plan(FEEDLY.read_bytes(), shipped.decode("utf-8"))
    merged = merge_into_sources(
        shipped.decode("utf-8"), result.added, comment="Imported from feedly-infosec.opml."
    )
    merged_bytes = merged.encode("utf-8")
    assert merged_bytes[: len(shipped)] == shipped  # comments, blank lines, trackers: untouched
    tail = merged_bytes[len(shipped) :].decode("utf-8")
    assert tail.startswith('\n# Imported from feedly-infosec.opml.\n[[sources]]\nname = "')
    assert tail.count("[[sources]]") == len(result.added)
    path = tmp_path / "sources.toml"
    path.write_bytes(merged_bytes)
    assert len(load_sources(path)) == len(load_sources(REPO / "config" / "sources.toml")) + len(result.added)


@pytest.mark.parametrize(
    "original",
    [
        '# only a comment, no final newline\n[[sources]]\nname = "A"   # first\nurl = "https://a.example/feed"',
        '# edited on Windows, no final newline\r\n[[sources]]\r\nname = "A"\r\nurl = "https://a.example/feed"',
        'sources = [\n  { name = "A", url = "https://a.example/feed" },  # inline style\n]\n',
        "",
    ],
    ids=["no-final-newline", "crlf", "inline-array", "empty"],
)
async def test_merging_keeps_other_layouts(original: str, tmp_path: Path) -> None:
    document = b'<opml version="2.0"><body><outline text="B &quot;quoted&quot;" xmlUrl="https://b.example/feed?a=1&amp;b=2"/></body></opml>'
    result = await plan(document, original)
    merged = merge_into_sources(original, result.added, comment="Imported.")
    newline = "\r\n" if "\r\n" in original else "\n"
    kept = original if original.endswith("\n") or not original else original + newline
    # One insertion, nothing else touched: at the end, or before the inline array's closing bracket.
    at = len(kept) - 2 if kept.startswith("sources = [") else len(kept)
    inserted = len(merged) - len(kept)
    assert merged[:at] + merged[at + inserted :] == kept
    assert merged.count("\n") == merged.count(newline)  # no mixed line ends
    path = tmp_path / "sources.toml"
    path.write_text(merged, encoding="utf-8", newline="")
    specs = load_sources(path)
    assert (specs[-1].name, specs[-1].url) == ('B "quoted"', "https://b.example/feed?a=1&b=2")


# ---------------------------------------------------------------------------------------- export
async def test_export_then_import_into_an_empty_file_gives_the_same_sources(tmp_path: Path) -> None:
    original = tmp_path / "original.toml"
    original.write_text(
        '[[sources]]\nname = "Policy & <Wire>"\nurl = "https://wire.example/feed?a=1&b=2"\n\n'
        '[[sources]]\nname = "Grüße — Ünïcode"\nurl = "https://xn--gre-6ka.example/rss"\ninterval_minutes = 60\n\n'
        '[[sources]]\nname = "Bell\\u0007"\nurl = "https://bell.example/atom.xml"\n\n'
        '[[sources]]\nname = "HF"\nkind = "hf_models"\norg = "deepseek-ai"\n',
        encoding="utf-8",
    )
    specs = load_sources(original)
    feeds = [ExportedFeed(s.name, s.url, "file") for s in specs if s.kind == "feed"]
    feeds.append(ExportedFeed("Added in #policy", "https://channel.example/feed", "channel"))
    document = render_opml(feeds, title="Frontier Watch sources", created=datetime(2026, 12, 1, tzinfo=UTC))
    assert b'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">' in document
    assert b"<dateCreated>Tue, 01 Dec 2026 00:00:00 GMT</dateCreated>" in document

    _, outlines = read_outlines(document)
    assert [o.folders for o in outlines] == [(), (), (), (CHANNEL_FOLDER,)]
    result = await plan(document)
    again = load_sources(merged_file("", result, tmp_path))
    assert [(s.name, s.url) for s in again] == [
        ("Policy & <Wire>", "https://wire.example/feed?a=1&b=2"),
        ("Grüße — Ünïcode", "https://xn--gre-6ka.example/rss"),
        ("Bell", "https://bell.example/atom.xml"),  # XML 1.0 cannot carry U+0007; it became a space
        ("Added in #policy", "https://channel.example/feed"),
    ]


def test_outline_where_names_its_folders() -> None:
    outline = Outline(title="", xml_url=None, html_url=None, outline_type="", folders=("A", "B"))
    assert outline.where == "A / B / (untitled)"
