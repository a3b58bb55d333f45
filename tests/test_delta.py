"""Delta parsing: a changed feed is parsed only for its new or changed items, with the same result."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sources.delta import changed_document, item_hash, split
from bot.sources.trackers import parse_for_kind

HEADERS = {"content-type": "application/rss+xml"}


def rss(*items: str, head: str = "") -> bytes:
    body = "".join(
        f"<item><guid>{g}</guid><title>Story {g}</title><link>https://x.example/{g}</link>"
        f"<description><![CDATA[<p>About {g}</p>]]></description></item>\n"
        for g in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{head}\n{body}</channel></rss>'.encode()


def guids(parsed: object) -> list[str]:
    return [e.guid for e in parsed.entries]  # type: ignore[attr-defined]


def test_only_new_items_are_parsed_and_nothing_when_all_are_known() -> None:
    first = parse_for_kind("feed", rss("a", "b", "c"), HEADERS, "https://x.example/feed")
    assert guids(first) == ["a", "b", "c"] and len(first.item_hashes) == 3 and first.items_skipped == 0
    second = parse_for_kind(
        "feed", rss("d", "a", "b", "c"), HEADERS, "https://x.example/feed", known_items=first.item_hashes
    )
    assert guids(second) == ["d"] and second.items_skipped == 3 and len(second.item_hashes) == 4
    same = parse_for_kind(
        "feed", rss("d", "a", "b", "c"), HEADERS, "https://x.example/feed", known_items=second.item_hashes
    )
    assert same.entries == [] and same.items_skipped == 4 and same.error is None


def test_a_changed_item_is_parsed_again() -> None:
    first = parse_for_kind("feed", rss("a", "b", "c"), HEADERS, "https://x.example/feed")
    edited = rss("a", "b", "c").replace(b"Story b", b"Story b (updated)")
    again = parse_for_kind("feed", edited, HEADERS, "https://x.example/feed", known_items=first.item_hashes)
    assert [e.title for e in again.entries] == ["Story b (updated)"]


@pytest.mark.parametrize(
    "body",
    [
        rss("a", "b"),  # too few items to bother
        rss("a", "b", "c").replace(
            b"</item>\n<item>", b"</item><extra/>\n<item>", 1
        ),  # not only white space between
        rss("a", "b", "c").replace(
            b"<![CDATA[<p>About b</p>]]>", b"<![CDATA[<p>About b</p>"
        ),  # CDATA not closed inside
        rss("a", "b", "c", head="<!-- <item><title>hidden</title></item> -->"),  # an item inside a comment
        rss("a", "b", "c").replace(
            b"<title>Story a</title>", b"<title>Story a <item>x</item></title>"
        ),  # nested
    ],
)
def test_documents_that_are_not_plainly_shaped_are_parsed_whole(body: bytes) -> None:
    assert split(body) is None
    document, hashes, skipped = changed_document(body, frozenset({item_hash(b"x")}))
    assert document is body and hashes == frozenset() and skipped == 0


def corpus_files(shared: Path) -> list[Path]:
    root = shared / "corpus"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".xml", ".atom", ".rss"})


def test_delta_gives_the_same_entries_as_a_whole_parse_on_the_corpus(shared_dir: Path) -> None:
    """For every real and test feed that splits: knowing all items but the first, the delta parse
    yields exactly the whole parse's entry for that first item."""
    checked: list[str] = []
    for path in corpus_files(shared_dir):
        body = path.read_bytes()
        parts = split(body)
        if parts is None:
            continue
        whole = parse_for_kind("feed", body, HEADERS, "https://example.org/feed")
        if whole.error or len(whole.entries) != len(parts.items):
            continue  # documents whose items do not map one-to-one to entries are not compared
        known = frozenset(parts.hashes()[1:])
        if parts.hashes()[0] in known:
            continue  # the first item repeats a later one byte for byte
        delta = parse_for_kind("feed", body, HEADERS, "https://example.org/feed", known_items=known)
        assert [(e.guid, e.title, e.url, e.summary, e.published) for e in delta.entries] == [
            (e.guid, e.title, e.url, e.summary, e.published) for e in whole.entries[:1]
        ], path
        checked.append(path.name)
    # Every real capture with three items or more takes part (most test-suite files have fewer).
    for name in (
        "github_releases_astral-sh_ty.atom",
        "google_news_top_stories_en-US_2019-11-14.rss.xml",
        "openai_news.rss.xml",
        "arxiv_rss_cs.CL.rss.xml",
        "google_deepmind_blog.rss.xml",
    ):
        assert name in checked


def test_github_release_feeds_use_delta_parsing(shared_dir: Path) -> None:
    body = (shared_dir / "corpus/real-feeds/github_releases_astral-sh_ty.atom").read_bytes()
    whole = parse_for_kind(
        "github_releases",
        body,
        {"content-type": "application/atom+xml"},
        "https://github.com/astral-sh/ty/releases.atom",
        repo="astral-sh/ty",
    )
    parts = split(body)
    assert parts is not None
    known = frozenset(parts.hashes()[1:])
    delta = parse_for_kind(
        "github_releases",
        body,
        {"content-type": "application/atom+xml"},
        "https://github.com/astral-sh/ty/releases.atom",
        repo="astral-sh/ty",
        known_items=known,
    )
    assert [e.title for e in delta.entries] == [whole.entries[0].title] and delta.items_skipped == 9
