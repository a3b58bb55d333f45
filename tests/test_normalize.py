"""Table tests for the pure normalisation helpers."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.sources.normalize import canonical_url, clean_text, cut_at_word, stable_guid, to_utc

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("plain text", "plain text"),
        ("<p>Hello <b>world</b></p>", "Hello world"),
        ("<p>one</p><p>two</p>", "one two"),
        ("line<br>break<br/>here", "line break here"),
        ("Open<b>AI</b> news", "OpenAI news"),
        ('<a href="https://x.test/" title="t">link</a> text', "link text"),
        ("AT&amp;T &amp; R&amp;D", "AT&T & R&D"),
        ("&lt;b&gt;bold&lt;/b&gt;", "bold"),  # escaped HTML is still HTML
        ("Tom &amp;amp; Jerry", "Tom & Jerry"),  # double-encoded ampersand
        ("&amp;lt;i&amp;gt;x&amp;lt;/i&amp;gt;", "x"),  # double-encoded markup
        ("caf&eacute; &#233;t&#xE9; &hellip;", "café été …"),
        ("&nbsp;padded&nbsp;", "padded"),
        ("<![CDATA[Inside CDATA]]>", "Inside CDATA"),
        ("Leftover ]]> marker", "Leftover marker"),
        ("<![CDATA[<p>html in cdata</p>", "html in cdata"),
        ("before<script>alert('x')</script>after", "before after"),
        ("<SCRIPT type='text/javascript'>var a = '<b>';</SCRIPT>ok", "ok"),
        ("a<style>p { color: red }</style>b", "a b"),
        ("text<script>never closed", "text"),
        ("<!-- a comment -->visible", "visible"),
        ("x <script src=evil.js", "x ‹script src=evil.js"),  # a broken tag is text, but never "<script"
        ("  lots \n\n of\t\twhitespace  ", "lots of whitespace"),
        ("ctrl\x00\x01chars\x7f\x85here", "ctrl chars here"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
        ("x<y", "x<y"),
        ("e\u0301", "é"),  # NFC
        ("<div><ul><li>one</li><li>two</li></ul></div>", "one two"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_clean_text_is_linear_on_hostile_markup() -> None:
    hostile = "<a " * 200_000 + '"' * 1000 + "<script" * 10_000
    started = time.perf_counter()
    out = clean_text(hostile)
    assert time.perf_counter() - started < 2.0
    assert "<script" not in out


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly ten", 11, "exactly ten"),
        ("hello brave new world", 12, "hello brave…"),
        ("hello brave new world", 11, "hello…"),
        ("hello, world again", 8, "hello…"),  # trailing punctuation dropped before the ellipsis
        ("Supercalifragilistic", 8, "Superca…"),  # one long word is cut mid-word
        ("a b", 1, "…"),
        ("abc", 0, ""),
    ],
)
def test_cut_at_word(text: str, limit: int, expected: str) -> None:
    result = cut_at_word(text, limit)
    assert result == expected
    assert len(result) <= max(limit, 0)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://Example.COM/Path?a=1", "https://example.com/Path?a=1"),
        ("HTTP://example.com:80/x", "http://example.com/x"),
        ("https://example.com:443/x", "https://example.com/x"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a#section-2", "https://example.com/a"),
        (
            "https://example.com/a?utm_source=rss&id=7&utm_medium=feed&UTM_Campaign=x",
            "https://example.com/a?id=7",
        ),
        ("https://example.com/a?fbclid=abc&gclid=def", "https://example.com/a"),
        ("https://example.com/a?b=2&ref=hn&a=1&mc_cid=9&mc_eid=8", "https://example.com/a?b=2&a=1"),
        (
            "https://example.com/a?_hsenc=x&_hsmi=y&igshid=z&spm=1&si=2&ocid=3&cmpid=4",
            "https://example.com/a",
        ),
        ("https://example.com/a?q=a%20b&x=", "https://example.com/a?q=a%20b&x="),  # kept byte-for-byte
        ("https://user:pw@example.com/a", "https://example.com/a"),
        ("https://[2001:DB8::1]:443/a", "https://[2001:db8::1]/a"),
        ("  https://example.com/a b  ", "https://example.com/a%20b"),
        (
            "https://news.google.com/rss/articles/CBMi?oc=5",
            "https://news.google.com/rss/articles/CBMi?oc=5",
        ),  # redirect wrappers are not unwrapped
        ("javascript:alert(1)", ""),
        ("JaVaScRiPt:alert(1)", ""),
        ("data:text/html,<script>", ""),
        ("file:///etc/passwd", ""),
        ("/relative/path", ""),
        ("https://example.com:99999/", ""),
        ("https:///nohost", ""),
        ("", ""),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (datetime(2026, 4, 27, 6, 0), datetime(2026, 4, 27, 6, 0, tzinfo=UTC)),  # naive = UTC
        (
            datetime(2026, 4, 27, 0, 0, tzinfo=timezone(timedelta(hours=-4))),
            datetime(2026, 4, 27, 4, 0, tzinfo=UTC),
        ),
        (
            datetime(2026, 4, 27, 9, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            datetime(2026, 4, 27, 3, 30, tzinfo=UTC),
        ),
        (time.strptime("2026-04-27 06:00:00", "%Y-%m-%d %H:%M:%S"), datetime(2026, 4, 27, 6, tzinfo=UTC)),
        (datetime(2026, 5, 3, 11, 0, tzinfo=UTC), datetime(2026, 5, 3, 11, 0, tzinfo=UTC)),  # < 2 days ahead
        (datetime(2026, 5, 3, 13, 0, tzinfo=UTC), None),  # > 2 days in the future
        (datetime(2099, 1, 1, tzinfo=UTC), None),
        (datetime(1994, 12, 31, 23, 59, tzinfo=UTC), None),
        (datetime(1995, 1, 1, tzinfo=UTC), datetime(1995, 1, 1, tzinfo=UTC)),
        (time.struct_time((1970, 1, 1, 0, 0, 0, 3, 1, 0)), None),
    ],
)
def test_to_utc(value: time.struct_time | datetime | None, expected: datetime | None) -> None:
    result = to_utc(value, now=NOW)
    assert result == expected
    if result is not None:
        assert result.utcoffset() == timedelta(0)


def test_to_utc_defaults_to_the_real_clock() -> None:
    assert to_utc(datetime.now(UTC) + timedelta(days=1)) is not None
    assert to_utc(datetime.now(UTC) + timedelta(days=3)) is None


def test_stable_guid_prefers_feed_id() -> None:
    assert stable_guid("  tag:x,2026:1 ", "https://e.test/a", "T", None) == "tag:x,2026:1"


def test_stable_guid_falls_back_to_canonical_link() -> None:
    assert stable_guid(None, "https://E.test/a?utm_source=x#top", "T", None) == "https://e.test/a"
    assert stable_guid("   ", "https://e.test/a", "T", None) == "https://e.test/a"


def test_stable_guid_hashes_title_and_date_last() -> None:
    when = datetime(2026, 4, 27, tzinfo=UTC)
    first = stable_guid(None, None, "Some  title", when)
    assert first.startswith("sha1:")
    assert first == stable_guid("", "javascript:void(0)", "Some title", when)  # whitespace-insensitive
    assert first != stable_guid(None, None, "Some title", when + timedelta(days=1))
    assert first != stable_guid(None, None, "Other title", when)


def test_stable_guid_hashes_oversized_ids() -> None:
    huge = "x" * 5000
    guid = stable_guid(huge, None, None, None)
    assert guid.startswith("sha1:") and len(guid) < 100
    assert guid == stable_guid(huge, "https://e.test/", "t", None)
