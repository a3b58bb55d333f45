"""Parse only the items of a feed that changed since the last poll.

A feed that changed usually carries a few new items on top of many it carried before, and
feedparser's cost is per item. So the fetched bytes are split into the document's head, its
``<item>``/``<entry>`` elements and its tail; each element is hashed, and only the elements whose
hash was not in the previous poll's set are handed to feedparser, inside the original head and tail
(which keep the namespaces, ``xml:base`` and entity declarations).

The split is a byte scan, not an XML parse, so it is used only when the document is plainly
shaped: elements that do not nest, nothing but white space between them, and CDATA sections that
open and close inside one element. Anything else, and any document seen for the first time, is
parsed whole. Skipped elements are exactly the ones whose bytes were parsed before, so their
entries are already stored; an element whose bytes changed in any way (a corrected title, a new
date) is parsed again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_ELEMENT = re.compile(rb"<(item|entry)(?=[\s>/])[^>]*>.*?</\1\s*>", re.S)
_OPEN = re.compile(rb"<(?:item|entry)[\s>/]")
MIN_ITEMS = 3  # below this, splitting saves nothing worth the risk


@dataclass(frozen=True, slots=True)
class Split:
    head: bytes
    items: list[bytes]
    tail: bytes

    def hashes(self) -> list[bytes]:
        return [item_hash(item) for item in self.items]

    def document(self, keep: list[bool]) -> bytes:
        return self.head + b"".join(i for i, k in zip(self.items, keep, strict=True) if k) + self.tail


HASH_BYTES = 12


def item_hash(item: bytes) -> bytes:
    return hashlib.blake2b(item, digest_size=HASH_BYTES).digest()


def pack_hashes(hashes: frozenset[bytes]) -> bytes | None:
    """The hashes as one byte string for the store (sorted, so equal sets store equal bytes)."""
    return b"".join(sorted(hashes)) or None


def unpack_hashes(packed: bytes | None) -> frozenset[bytes]:
    """The set :func:`pack_hashes` stored; a value of the wrong length (a corrupted row) is empty,
    which only means the next poll parses the whole document."""
    if not packed or len(packed) % HASH_BYTES:
        return frozenset()
    return frozenset(packed[i : i + HASH_BYTES] for i in range(0, len(packed), HASH_BYTES))


def split(body: bytes) -> Split | None:
    """The document as head + item elements + tail, or None when it is not plainly shaped."""
    found = list(_ELEMENT.finditer(body))
    if len(found) < MIN_ITEMS:
        return None
    items: list[bytes] = []
    for n, match in enumerate(found):
        item = match.group(0)
        if len(_OPEN.findall(item)) != 1:  # a nested or unclosed element: not plain
            return None
        if item.count(b"<![CDATA[") != item.count(b"]]>"):
            return None  # a CDATA section that spans elements would be cut
        if n and body[found[n - 1].end() : match.start()].strip():
            return None  # something other than white space between items
        items.append(item)
    head, tail = body[: found[0].start()], body[found[-1].end() :]
    if _OPEN.search(head) or _OPEN.search(tail):
        return None  # an item the scan could not delimit
    if head.count(b"<![CDATA[") != head.count(b"]]>") or head.count(b"<!--") != head.count(b"-->"):
        return None  # the first item might sit inside a CDATA section or a comment
    return Split(head, items, tail)


def changed_document(
    body: bytes, known: frozenset[bytes], *, max_items: int = 0
) -> tuple[bytes | None, frozenset[bytes], int]:
    """(the document to parse, the hashes of all its items, how many items were skipped).

    The document is ``body`` itself when it cannot be split or nothing is known yet, a smaller one
    with only the new items otherwise, and None when every item is known (nothing to parse).
    ``max_items`` (0 = no cap) keeps only the first that many new items of a plainly shaped
    document, so a feed of 100,000 items costs what a feed of ``max_items`` costs.
    """
    parts = split(body)
    if parts is None:
        return body, frozenset(), 0
    hashes = parts.hashes()
    every = frozenset(hashes)
    keep = [h not in known for h in hashes]
    if max_items and keep.count(True) > max_items:
        wanted = max_items
        for n, new in enumerate(keep):
            if new:
                keep[n] = wanted > 0
                wanted -= 1
        return parts.document(keep), every, 0
    if not known:
        return body, every, 0
    if not any(keep):
        return None, every, len(keep)
    if all(keep):
        return body, every, 0
    return parts.document(keep), every, keep.count(False)
