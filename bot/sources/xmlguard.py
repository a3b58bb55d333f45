"""Refuse XML documents whose entity declarations would make the parser expand them in memory.

expat (under feedparser) stops the classic "billion laughs" with its amplification limit, but a
flat entity of 100 KB referenced 30,000 times stays below that ratio and still turns a 5 MB feed into
3 GB in the parser process. Real feeds almost never declare entities; those that do declare a few
short ones (``<!ENTITY nbsp "&#160;">``). So, before feedparser sees the bytes:

* no ``<!ENTITY`` at all (the common case, one ``bytes.find``) → fine;
* parameter entities, external entities (``SYSTEM``/``PUBLIC``) or entities that refer to other
  entities → refused;
* otherwise the expansion is computed exactly enough (each entity's length × its references) and a
  document that would grow by more than :data:`MAX_EXPANSION_BYTES` is refused.

The parser process's own memory cap (``FW_PARSE_MEMORY_MB``) stays as the backstop.
"""

from __future__ import annotations

import codecs
import re

__all__ = ["MAX_ENTITY_DECLARATIONS", "MAX_EXPANSION_BYTES", "entity_problem"]

MAX_EXPANSION_BYTES = 2 * 1024 * 1024
MAX_ENTITY_DECLARATIONS = 256

_DECLARATION = re.compile(
    rb"""<!ENTITY\s+(?P<pe>%\s+)?(?P<name>[^\s"'>]+)\s+(?:(?P<ext>SYSTEM|PUBLIC)\b|"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')""",
)
_REFERENCE_IN_VALUE = re.compile(rb"&[^#\s;]+;|%[^\s;]+;")

_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _as_bytes_of_text(body: bytes) -> bytes:
    """UTF-16/32 documents re-encoded as UTF-8, so that the byte scan below sees their markup."""
    head = body[:4]
    wide = head.startswith(_WIDE_BOMS) or (len(head) == 4 and head.count(0) >= 2)
    if not wide:
        return body
    for encoding in ("utf-32", "utf-16", "utf-16-le", "utf-16-be"):
        try:
            return body.decode(encoding).encode("utf-8")
        except UnicodeDecodeError:
            continue
    return body


def entity_problem(body: bytes) -> str | None:
    """Why this document's entity declarations are refused, or None when they are harmless."""
    text = _as_bytes_of_text(body)
    if b"<!ENTITY" not in text:  # XML keywords are case-sensitive: expat accepts no other spelling
        return None
    declarations = list(_DECLARATION.finditer(text))
    if not declarations:
        return "the document declares XML entities in a form that is not understood"
    if len(declarations) > MAX_ENTITY_DECLARATIONS:
        return f"the document declares {len(declarations)} XML entities (at most {MAX_ENTITY_DECLARATIONS})"
    expansion = 0
    for match in declarations:
        name = match.group("name").decode("utf-8", "replace")
        if match.group("pe"):
            return f"the document declares a parameter entity ({name})"
        if match.group("ext"):
            return f"the document declares an external entity ({name})"
        value = match.group("dq") if match.group("dq") is not None else match.group("sq") or b""
        if _REFERENCE_IN_VALUE.search(value):
            return f"the entity {name} refers to other entities (nested expansion)"
        expansion += len(value) * text.count(b"&" + match.group("name") + b";")
        if expansion > MAX_EXPANSION_BYTES:
            return (
                f"its XML entities would expand it by more than {MAX_EXPANSION_BYTES // (1024 * 1024)} MB "
                "(an entity-expansion attack?)"
            )
    return None
