"""Pure text, URL, id and time normalisation for feed entries.

Everything here is a plain function of its arguments (no I/O, no clock unless passed in), cheap, and
safe to call in worker processes. The output is meant for chat messages, which render no HTML: text
is reduced to one line of plain text, and links are only ever absolute ``http``/``https`` URLs.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "TRACKING_PARAMS",
    "canonical_url",
    "clean_text",
    "cut_at_word",
    "stable_guid",
    "to_utc",
]

# --- text -------------------------------------------------------------------------------------------

_CDATA_MARK_RE = re.compile(r"<!\[CDATA\[|\]\]>")
# An unterminated comment or script swallows the rest of the text, as a browser would: showing
# half a script as prose is worse than losing a broken tail.
_COMMENT_RE = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_RAW_BLOCK_RE = re.compile(
    r"<(script|style|noscript|template|iframe|object|svg|math|head)\b[^<>]*>.*?(?:</\1\s*>|\Z)",
    re.DOTALL | re.IGNORECASE,
)
# Tags that separate words when rendered; every other tag is removed without adding a space so that
# "Open<b>AI</b>" stays one word.
_BLOCK_TAG_RE = re.compile(
    r"</?(?:p|br|div|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|thead|tbody|blockquote|section|article|"
    r"header|footer|aside|nav|pre|hr|figure|figcaption|img|center|address|main)\b[^<>]*>",
    re.IGNORECASE,
)
# `[^<>]` (no quote handling) keeps this linear on hostile input: a tag can never span another "<",
# so every character is scanned from at most one tag start. The cost is that a ">" inside a quoted
# attribute ends the tag early, which only leaks a few attribute characters into the text.
_TAG_RE = re.compile(r"</?[A-Za-z][^<>]*>|<![^<>]*>|<\?[^<>]*>")
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_LEFTOVER_SCRIPT_RE = re.compile(r"<(\s*/?\s*script)", re.IGNORECASE)
_LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_MAX_DECODE_PASSES = 3

# C0/C1 controls become spaces (they often stand where a line break was); invisible characters that
# only confuse matching and rendering are removed. ZWJ/ZWNJ stay: emoji and Persian need them.
_CONTROL_TABLE: dict[int, str | None] = {
    **{c: " " for c in range(0x00, 0x20)},
    0x7F: " ",
    **{c: " " for c in range(0x80, 0xA0)},
    0x200B: None,  # zero-width space
    0x2028: " ",  # line separator
    0x2029: " ",  # paragraph separator
    0x202D: None,  # left-to-right override (spoofing)
    0x202E: None,  # right-to-left override (spoofing)
    0xFEFF: None,  # stray BOM
    0xFFFE: None,
    0xFFFF: None,
}


_RAW_BLOCK_OPENERS = (
    "<script",
    "<style",
    "<noscript",
    "<template",
    "<iframe",
    "<object",
    "<svg",
    "<math",
    "<head",
)


def _strip_markup(text: str) -> str:
    # The substring guards skip regex scans that find nothing in most summaries; they make
    # clean_text about twice as fast on typical feed HTML.
    if "<![CDATA[" in text or "]]>" in text:
        text = _CDATA_MARK_RE.sub("", text)
    if "<" not in text:
        return text
    if "<!--" in text:
        text = _COMMENT_RE.sub(" ", text)
    lowered = text.lower()
    if any(opener in lowered for opener in _RAW_BLOCK_OPENERS):
        text = _RAW_BLOCK_RE.sub(" ", text)
    text = _BLOCK_TAG_RE.sub(" ", text)
    return _TAG_RE.sub("", text)


def clean_text(html_or_text: str | None) -> str:
    """Turn an HTML fragment (or plain text) into one line of plain text.

    Tags are removed (``script``/``style`` and similar blocks with their contents), entities decoded,
    and a double-encoded fragment (``&amp;amp;``, ``&amp;lt;b&amp;gt;``) is decoded and stripped again,
    up to three levels deep. Whitespace is collapsed, control and invisible characters are dropped and
    the result is NFC-normalised. Text that merely contains ``<`` (``"a < b"``, ``"x<y"``) is kept.
    """
    if not html_or_text:
        return ""
    text = html_or_text
    for _ in range(_MAX_DECODE_PASSES):
        if "<" not in text and "&" not in text and "]]>" not in text:
            break
        text = html.unescape(_strip_markup(text))
        # Another pass only when markup or an entity survived: decoding plain text again could turn a
        # literal "&amp;" in an article about HTML into "&", which is an acceptable loss, but must not
        # be done needlessly.
        if not (_ENTITY_RE.search(text) or _TAG_RE.search(text) or "<![CDATA[" in text):
            break
    # Plain text is harmless in chat, but a literal "<script" must never reach a message: a renderer
    # that forgets to escape would otherwise hand it to a client that renders HTML.
    if "<" in text and "script" in text.lower():
        text = _LEFTOVER_SCRIPT_RE.sub(r"‹\1", text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (from broken numeric references) cannot be stored
        text = _LONE_SURROGATE_RE.sub("", text)
    text = text.translate(_CONTROL_TABLE)
    text = " ".join(text.split())
    return unicodedata.normalize("NFC", text)


def cut_at_word(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` characters, cutting at a word boundary.

    When text is cut, "…" is appended (and counted in ``limit``). A single word longer than the room
    available is cut mid-word rather than dropped entirely.
    """
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    if limit == 1:
        return "…"
    room = limit - 1
    head = text[: room + 1]  # one extra character tells whether the cut falls on a space
    if head[-1].isspace():
        head = head[:-1]
    else:
        head = head[:room]
        space = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
        # Backing up more than half the room for a word boundary would lose too much text.
        if space >= room // 2:
            head = head[:space]
    head = head.rstrip(" \t\n,;:-–—([{/")
    return (head or text[:room]) + "…"


# --- URLs -------------------------------------------------------------------------------------------

#: Query parameters that only track the click. Compared case-insensitively; ``utm_*`` is a prefix.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "mc_cid",
        "mc_eid",
        "ref",
        "ref_src",
        "ref_url",
        "cmpid",
        "ocid",
        "_hsenc",
        "_hsmi",
        "hsctatracking",
        "igshid",
        "igsh",
        "spm",
        "si",
        "mkt_tok",
        "_ga",
        "_gl",
        "smid",
        "smtyp",
        "ncid",
        "sr_share",
        "wt.mc_id",
        "__twitter_impression",
        "vero_id",
        "oly_anon_id",
        "oly_enc_id",
        "rb_clickid",
        "s_cid",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(param: str) -> bool:
    name = unquote(param.split("=", 1)[0]).strip().lower()
    return name.startswith("utm_") or name in TRACKING_PARAMS


def canonical_url(url: str | None) -> str:
    """Canonical form of an absolute ``http``/``https`` URL; ``""`` for anything else.

    Lower-cases scheme and host, drops the default port, user info and fragment, removes tracking
    parameters (keeping the others, in order and byte-for-byte), and gives an empty path "/". Redirect
    wrappers (Google News, t.co ...) are deliberately not unwrapped. Returning ``""`` for
    ``javascript:``, ``data:``, relative or malformed URLs means such a link can never reach a message.
    """
    if not url:
        return ""
    url = url.strip()
    if any(ch in url for ch in "\r\n\t\x00"):
        url = re.sub(r"[\r\n\t\x00]", "", url)
    url = url.replace(" ", "%20")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            return ""
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:  # bad port, bad IPv6 literal
        return ""
    if not host or any(ch in host for ch in "<>\"'`\\ "):
        return ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    query = "&".join(p for p in parts.query.split("&") if p and not _is_tracking(p))
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


# --- ids --------------------------------------------------------------------------------------------

_MAX_GUID_CHARS = 512


def _digest(*parts: str) -> str:
    return "sha1:" + hashlib.sha1("\n".join(parts).encode("utf-8", "replace")).hexdigest()


def stable_guid(
    entry_id: str | None,
    link: str | None,
    title: str | None,
    published: datetime | str | None,
) -> str:
    """An id for an entry that stays the same across polls of its feed.

    The feed's own id/guid wins; else the canonical link; else a SHA-1 of title and date. Ids longer
    than 512 characters (some feeds put a whole URL with session data or the body there) are hashed
    so they fit a database column.
    """
    ident = " ".join((entry_id or "").split())
    if ident:
        return ident if len(ident) <= _MAX_GUID_CHARS else _digest("id", ident)
    canon = canonical_url(link)
    if canon:
        return canon if len(canon) <= _MAX_GUID_CHARS else _digest("url", canon)
    when = published.isoformat() if isinstance(published, datetime) else (published or "")
    return _digest("title", " ".join((title or "").split()), when)


# --- time -------------------------------------------------------------------------------------------

_EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)
_MAX_FUTURE = timedelta(days=2)


def to_utc(value: time.struct_time | datetime | None, *, now: datetime | None = None) -> datetime | None:
    """A timezone-aware UTC datetime, or ``None`` when missing or implausible.

    ``struct_time`` values are read as UTC (feedparser's ``*_parsed`` fields already are); naive
    datetimes are assumed to be UTC. Dates before 1995 or more than two days after ``now`` (default:
    the current time) are refused: they come from broken generators and would sort a story wrongly.
    """
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            result = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        else:
            result = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        return None
    current = now if now is not None else datetime.now(UTC)
    if current.tzinfo is None:
        current = current.replace(tzinfo=UTC)
    if result < _EARLIEST or result > current + _MAX_FUTURE:
        return None
    return result
