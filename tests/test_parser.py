"""parse_feed on real captured feeds (from ../shared) and on synthetic broken input."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from bot.domain import ParsedFeed
from bot.sources.parser import parse_feed

XML = {"content-type": "application/rss+xml; charset=utf-8"}


@pytest.fixture(scope="module")
def real_feeds(shared_dir: Path) -> Path:
    return shared_dir / "corpus" / "real-feeds"


def parse_file(folder: Path, name: str, url: str = "https://feeds.example/feed") -> ParsedFeed:
    result = parse_feed((folder / name).read_bytes(), XML, url)
    assert result.error is None, result.error
    assert result.bozo is False, result.bozo_reason
    return result


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- real feeds ---------------------------------------------------------------------------------------


def test_openai_news(real_feeds: Path) -> None:
    feed = parse_file(real_feeds, "openai_news.rss.xml")
    assert feed.title == "OpenAI News"
    assert [e.title for e in feed.entries] == [
        "The next phase of the Microsoft OpenAI partnership",
        "Our principles",
        "Introducing GPT-5.5",
    ]
    first = feed.entries[0]
    assert first.url == "https://openai.com/index/next-phase-of-microsoft-partnership"
    assert first.guid == first.url
    assert first.published == utc(2026, 4, 27, 6, 0)
    assert first.tags == ("Company",)
    assert first.summary.startswith("OpenAI and Microsoft announce an amended agreement")
    assert feed.entries[2].tags == ("Product",)
    assert feed.entries[2].published == utc(2026, 4, 23, 11, 0)
    assert "—faster" in feed.entries[2].summary  # UTF-8 em dash survives


def test_deepmind_blog(real_feeds: Path) -> None:
    feed = parse_file(real_feeds, "google_deepmind_blog.rss.xml")
    assert feed.title == "Google DeepMind News"
    assert len(feed.entries) == 3
    first, second, _ = feed.entries
    assert first.title == "Announcing our partnership with the Republic of Korea"
    assert first.url == "https://deepmind.google/blog/announcing-our-partnership-with-the-republic-of-korea/"
    assert first.published == utc(2026, 4, 27, 7, 0, 6)
    assert second.title == "Decoupled DiLoCo: A new frontier for resilient, distributed AI training"
    assert second.summary == ""  # <description /> is empty
    assert second.published == utc(2026, 4, 22, 10, 20, 3)


def test_huggingface_blog(real_feeds: Path) -> None:
    feed = parse_file(real_feeds, "huggingface_blog_feed.rss.xml")
    assert feed.title == "Hugging Face - Blog"
    assert [(e.url, e.published) for e in feed.entries] == [
        ("https://huggingface.co/blog/openai-privacy-filter-web-apps", utc(2026, 4, 27)),
        ("https://huggingface.co/blog/deepseekv4", utc(2026, 4, 24)),
        ("https://huggingface.co/blog/transformersjs-chrome-extension", utc(2026, 4, 23)),
    ]
    assert feed.entries[0].title == "How to build scalable web apps with OpenAI's Privacy Filter"
    assert all(e.summary == "" for e in feed.entries)


@pytest.mark.parametrize(
    ("name", "first_id", "first_title", "first_tags"),
    [
        (
            "arxiv_rss_cs.CL.rss.xml",
            "2604.22002",
            "When Cow Urine Cures Constipation on YouTube: Limits of LLMs in Detecting "
            "Culture-specific Health Misinformation",
            ("cs.CL",),
        ),
        (
            "arxiv_rss_cs.AI.rss.xml",
            "2604.21935",
            "Math Takes Two: A test for emergent mathematical reasoning in communication",
            ("cs.AI", "cs.LG"),
        ),
        (
            "arxiv_rss_cs.LG.rss.xml",
            "2604.21952",
            "Focus Session: Hardware and Software Techniques for Accelerating Multimodal Foundation Models",
            ("cs.LG", "cs.AI", "cs.AR", "cs.NE", "cs.RO"),
        ),
    ],
)
def test_arxiv(
    real_feeds: Path, name: str, first_id: str, first_title: str, first_tags: tuple[str, ...]
) -> None:
    feed = parse_file(real_feeds, name)
    assert feed.title and feed.title.endswith("updates on arXiv.org")
    assert len(feed.entries) == 3
    first = feed.entries[0]
    assert first.guid == f"oai:arXiv.org:{first_id}v1"
    assert first.url == f"https://arxiv.org/abs/{first_id}"
    assert first.title == first_title
    assert first.tags == first_tags
    # "Mon, 27 Apr 2026 00:00:00 -0400" in UTC
    assert all(e.published == utc(2026, 4, 27, 4, 0) for e in feed.entries)
    assert all(e.extra == (("arxiv_announce_type", "new"),) for e in feed.entries)
    assert first.summary.startswith(f"arXiv:{first_id}v1 Announce Type: new Abstract: ")
    assert len(first.summary) <= 400 and first.summary.endswith("…")
    assert "\n" not in first.summary


def test_google_news_outlet_and_title_suffix(real_feeds: Path) -> None:
    feed = parse_file(real_feeds, "google_news_top_stories_en-US_2019-11-14.rss.xml")
    assert feed.title == "Top stories - Google News"
    assert len(feed.entries) == 38
    first = feed.entries[0]
    assert first.outlet == "The Washington Post"
    assert (
        first.title == "Live updates: Trump asserts ‘normal people’ would close the case on his impeachment"
    )
    assert first.guid == "52780435491242"
    assert first.published == utc(2019, 11, 14, 15, 28)
    assert first.url.startswith("https://news.google.com/__i/rss/rd/articles/CBMihAFodHRwczovL3d3dy53")
    assert first.url.endswith("?oc=5")  # the redirect wrapper is kept, not unwrapped
    assert feed.entries[1].outlet == "NPR"
    assert feed.entries[1].title == "Deval Patrick Announces He Is Running For President In 2020"
    for entry in feed.entries:
        assert entry.outlet
        assert not entry.title.endswith(f" - {entry.outlet}")
        assert "<" not in entry.summary and "&nbsp;" not in entry.summary


def test_github_releases_atom(real_feeds: Path) -> None:
    feed = parse_file(real_feeds, "github_releases_astral-sh_ty.atom")
    assert feed.title == "Release notes from ty"
    assert len(feed.entries) == 10
    first = feed.entries[0]
    assert first.guid == "tag:github.com,2008:Repository/976731654/0.0.1-alpha.34"
    assert first.title == "0.0.1-alpha.34"
    assert first.url == "https://github.com/astral-sh/ty/releases/tag/0.0.1-alpha.34"
    assert first.published == utc(2025, 12, 12, 18, 30, 16)  # <updated>: releases have no <published>
    assert first.summary.startswith("Release Notes Released on 2025-12-12. Bug fixes Improve solving")
    assert len(first.summary) <= 400
    assert feed.entries[-1].title == "0.0.1-alpha.25"
    assert feed.entries[-1].published == utc(2025, 10, 29, 19, 41, 11)


def test_summary_chars_is_respected(real_feeds: Path) -> None:
    body = (real_feeds / "github_releases_astral-sh_ty.atom").read_bytes()
    feed = parse_feed(body, XML, "https://github.com/astral-sh/ty/releases.atom", summary_chars=80)
    assert all(len(e.summary) <= 80 for e in feed.entries)
    assert (
        feed.entries[0].summary
        == "Release Notes Released on 2025-12-12. Bug fixes Improve solving of a type…"
    )


@pytest.mark.parametrize("name", ["openai_news.rss.xml", "hf_api_daily_papers_2026-07-31.json"])
def test_result_pickles(real_feeds: Path, name: str) -> None:
    feed = parse_feed((real_feeds / name).read_bytes(), XML, "https://x.test/")
    assert pickle.loads(pickle.dumps(feed)) == feed
    assert pickle.loads(pickle.dumps(parse_feed)) is parse_feed


def test_hub_api_json_is_not_a_feed(real_feeds: Path) -> None:
    body = (real_feeds / "hf_api_models_default_fields.json").read_bytes()
    result = parse_feed(body, {"content-type": "application/json"}, "https://huggingface.co/api/models")
    assert result.entries == []
    assert result.error == "not a feed: JSON document"


# --- synthetic input ---------------------------------------------------------------------------------


def rss(items: str, extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Test feed</title>'
        f"<link>https://site.example/</link>{extra}{items}</channel></rss>"
    ).encode()


ITEM = (
    "<item><title>{title}</title><link>{link}</link><pubDate>Mon, 27 Apr 2026 06:00:00 GMT</pubDate></item>"
)


def test_html_page_is_not_a_feed() -> None:
    body = b"<!DOCTYPE html>\n<html><head><title>Blog</title></head><body><h1>Hi</h1></body></html>"
    result = parse_feed(body, {"content-type": "text/html; charset=utf-8"}, "https://site.example/blog")
    assert result.entries == []
    assert result.error == "not a feed: HTML page"


@pytest.mark.parametrize("body", [b"", b"   \n\t  "])
def test_empty_document(body: bytes) -> None:
    result = parse_feed(body, XML, "https://site.example/feed")
    assert result.entries == []
    assert result.error == "not a feed: empty document"


def test_plain_text_is_not_a_feed() -> None:
    result = parse_feed(b"Service Unavailable", {"content-type": "text/plain"}, "https://x.test/")
    assert result.error is not None and result.error.startswith("not a feed: ")


def test_truncated_feed_keeps_entries_before_the_break() -> None:
    body = rss(
        ITEM.format(title="First", link="https://site.example/1")
        + ITEM.format(title="Second", link="https://site.example/2")
    )
    truncated = body[: body.index(b"<title>Second") + 10]
    result = parse_feed(truncated, XML, "https://site.example/feed")
    assert result.error is None
    assert result.bozo is True
    assert result.bozo_reason and "SAXParseException" in result.bozo_reason
    assert result.entries[0].title == "First"
    assert result.entries[0].url == "https://site.example/1"


def test_truncated_before_any_item_is_an_error() -> None:
    result = parse_feed(b'<?xml version="1.0"?><rss version="2.0"><channel><ti', XML, "https://x.test/")
    assert result.entries == []
    assert result.error is not None and result.error.startswith(("broken feed: ", "not a feed: "))


def test_valid_feed_without_items_is_not_an_error() -> None:
    result = parse_feed(rss(""), XML, "https://site.example/feed")
    assert result == ParsedFeed(entries=[], title="Test feed", bozo=False)


def test_empty_feed_served_as_text_html_is_still_a_feed() -> None:
    result = parse_feed(rss(""), {"content-type": "text/html"}, "https://site.example/feed")
    assert result.error is None and result.bozo is True and result.title == "Test feed"


def test_wrong_charset_header_utf8_body() -> None:
    body = rss(ITEM.format(title="Café “quoted” — ok", link="https://site.example/é"))
    result = parse_feed(body, {"content-type": "application/xml; charset=iso-8859-1"}, "https://x.test/")
    assert result.error is None
    assert result.entries[0].title == "Café “quoted” — ok"


def test_wrong_charset_header_latin1_body() -> None:
    body = (
        '<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><title>Caf\xe9</title>'
        "<item><title>\xc9t\xe9 news</title><link>https://site.example/1</link></item></channel></rss>"
    ).encode("latin-1")
    result = parse_feed(body, {"content-type": "application/xml; charset=utf-8"}, "https://x.test/")
    assert result.error is None
    assert result.title == "Café"
    assert result.entries[0].title == "Été news"


def test_relative_links_resolve_against_the_final_url() -> None:
    body = rss(ITEM.format(title="Rel", link="/posts/1?utm_source=rss#comments"))
    result = parse_feed(body, XML, "https://final.example/blog/feed.xml")
    assert result.entries[0].url == "https://final.example/posts/1"


def test_headers_are_matched_case_insensitively() -> None:
    body = rss(ITEM.format(title="Rel", link="posts/2"))
    result = parse_feed(body, {"Content-Type": "application/rss+xml"}, "https://final.example/blog/")
    assert result.bozo is False
    assert result.entries[0].url == "https://final.example/blog/posts/2"


def test_unsafe_links_are_neutralised_and_linkless_untitled_entries_dropped() -> None:
    body = rss(
        ITEM.format(title="JS link", link="javascript:alert(1)")
        + ITEM.format(title="", link="data:text/html,x")
        + ITEM.format(title="", link="")
        + ITEM.format(title="Fine", link="https://site.example/ok")
    )
    result = parse_feed(body, XML, "https://site.example/feed")
    assert [(e.title, e.url) for e in result.entries] == [
        ("JS link", ""),
        ("Fine", "https://site.example/ok"),
    ]
    assert result.entries[0].guid.startswith("sha1:")


def test_markup_and_script_never_reach_the_text() -> None:
    item = (
        "<item><title>&lt;b&gt;Bold&lt;/b&gt; &amp;amp; title</title><link>https://s.example/1</link>"
        "<description>&lt;p&gt;Hi&lt;script&gt;alert(1)&lt;/script&gt; &lt;a href='javascript:x'&gt;there"
        "&lt;/a&gt;&lt;/p&gt;</description></item>"
    )
    entry = parse_feed(rss(item), XML, "https://s.example/")
    assert entry.entries[0].title == "Bold & title"
    assert entry.entries[0].summary == "Hi there"


def test_summary_falls_back_to_content() -> None:
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id>'
        b"<updated>2026-04-27T06:00:00Z</updated><entry><id>urn:a:1</id><title>E</title>"
        b'<link href="https://a.example/1"/><updated>2026-04-27T06:00:00+02:00</updated>'
        b'<content type="html">&lt;p&gt;Body &lt;em&gt;text&lt;/em&gt;&lt;/p&gt;</content></entry></feed>'
    )
    entry = parse_feed(body, {"content-type": "application/atom+xml"}, "https://a.example/feed").entries[0]
    assert entry.summary == "Body text"
    assert entry.guid == "urn:a:1"
    assert entry.published == utc(2026, 4, 27, 4, 0)


def test_missing_and_absurd_dates_become_none() -> None:
    body = rss(
        "<item><title>No date</title><link>https://s.example/1</link></item>"
        "<item><title>Future</title><link>https://s.example/2</link>"
        "<pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate></item>"
        "<item><title>Ancient</title><link>https://s.example/3</link>"
        "<pubDate>Thu, 01 Jan 1970 00:00:00 GMT</pubDate></item>"
    )
    assert [e.published for e in parse_feed(body, XML, "https://s.example/").entries] == [None, None, None]


def test_duplicate_guids_fall_back_to_links() -> None:
    body = rss(
        '<item><guid isPermaLink="false">same</guid><title>A</title><link>https://s.example/a</link></item>'
        '<item><guid isPermaLink="false">same</guid><title>B</title><link>https://s.example/b</link></item>'
        '<item><guid isPermaLink="false">unique</guid><title>C</title><link>https://s.example/c</link></item>'
    )
    guids = [e.guid for e in parse_feed(body, XML, "https://s.example/").entries]
    assert guids == ["https://s.example/a", "https://s.example/b", "unique"]


def test_google_news_suffix_only_stripped_when_it_is_the_source() -> None:
    item = (
        "<item><title>Chips act - what now - Reuters</title><link>https://news.google.com/x</link>"
        '<source url="https://www.reuters.com">Reuters</source></item>'
        "<item><title>Model A - Model B</title><link>https://news.google.com/y</link>"
        '<source url="https://www.ft.com">Financial Times</source></item>'
    )
    entries = parse_feed(rss(item), XML, "https://news.google.com/rss").entries
    assert [(e.title, e.outlet) for e in entries] == [
        ("Chips act - what now", "Reuters"),
        ("Model A - Model B", "Financial Times"),
    ]


def test_json_feed() -> None:
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "JF", "items": ['
        b'{"id": "1", "url": "/p/1", "title": "One", "content_html": "<p>Hello</p>",'
        b' "date_published": "2026-04-27T08:00:00+02:00", "tags": ["ai"]},'
        b'{"id": 2, "url": "https://j.example/p/2", "content_text": "Untitled text"}, "junk"]}'
    )
    result = parse_feed(body, {"content-type": "application/feed+json"}, "https://j.example/feed.json")
    assert result.error is None and result.title == "JF"
    one, two = result.entries
    assert (one.guid, one.url, one.title, one.summary) == ("1", "https://j.example/p/1", "One", "Hello")
    assert one.published == utc(2026, 4, 27, 6, 0) and one.tags == ("ai",)
    assert (two.guid, two.title, two.summary) == ("2", "", "Untitled text")


def test_nothing_raises_out_of_parse_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise MemoryError("simulated")

    monkeypatch.setattr(feedparser, "parse", boom)
    result = parse_feed(rss(""), XML, "https://x.test/")
    assert result.entries == []
    assert result.error == "parser error: MemoryError: simulated"
