"""Channel-level include/exclude keywords, applied on top of topic subscriptions.

A keyword is a word or a phrase, matched case-insensitively on whole words: "ban" does not match
"banner", and the phrase "export controls" also matches "export-controls" or a line break between the
words. A keyword may be written in double quotes ("export controls"); `KeywordFilter.parse` splits a
line typed in chat into keywords, keeping quoted phrases together.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

__all__ = ["KeywordFilter"]

_WORD = re.compile(r"[^\W_]+")  # the words of the routing shortcut: "_" splits, as separators do
# Non-ASCII letters that IGNORECASE matches to an ASCII one but casefold() does not map to it.
_ASCII_FOLD = str.maketrans({"İ": "i", "ı": "i"})


def _normalise(keyword: str) -> str:
    text = keyword.strip()
    if (len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”") or (
        len(text) >= 2 and text[0] == "“" and text[-1] == "”"
    ):
        text = text[1:-1]
    return " ".join(text.split())


def _compile(keyword: str) -> str:
    words = keyword.split(" ")
    body = r"[\s\-_/]+".join(re.escape(w) for w in words)
    # Boundaries only where the keyword itself starts/ends with a word character, so "c++" or
    # "gpt-5." still work as keywords.
    start = r"(?<!\w)" if re.match(r"\w", keyword) else ""
    end = r"(?!\w)" if re.search(r"\w$", keyword) else ""
    return f"{start}{body}{end}"


class KeywordFilter:
    """`matches` is True when no exclude keyword occurs and, if include keywords are given, at least
    one of them occurs in the title or summary."""

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        self.include: tuple[str, ...] = tuple(k for k in (_normalise(x) for x in include) if k)
        self.exclude: tuple[str, ...] = tuple(k for k in (_normalise(x) for x in exclude) if k)
        self._include = self._pattern(self.include)
        self._exclude = self._pattern(self.exclude)

    @staticmethod
    def _pattern(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
        if not keywords:
            return None
        # Longest first, so a phrase wins over its own first word in the alternation.
        ordered = sorted(set(keywords), key=len, reverse=True)
        return re.compile("|".join(_compile(k) for k in ordered), re.IGNORECASE)

    @staticmethod
    def parse(text: str) -> list[str]:
        """Split user input such as `nvidia "export controls" h20` into keywords."""
        try:
            parts = shlex.split(text.replace("“", '"').replace("”", '"'))
        except ValueError as exc:
            raise ValueError(f"unbalanced quotes in keywords: {text!r}") from exc
        return [p for p in (_normalise(x) for x in parts) if p]

    def matches(self, title: str, summary: str = "") -> bool:
        text = f"{title}\n{summary}" if summary else title
        if self._exclude is not None and self._exclude.search(text):
            return False
        return self._include is None or self._include.search(text) is not None

    def matched(self, title: str, summary: str = "") -> list[str]:
        """The include keywords that occur, for explaining a match."""
        text = f"{title}\n{summary}" if summary else title
        return [k for k in self.include if re.search(_compile(k), text, re.IGNORECASE)]

    def required_words(self) -> frozenset[str] | None:
        """Words of which a text must contain one (as ``words_of`` finds them) for ``matches`` to
        be True, or None when no such shortcut holds (no include keyword, or one it cannot vouch
        for). The router uses it to look only at the channels a story can reach."""
        if not self.include:
            return None
        words = set()
        for keyword in self.include:
            first = _WORD.search(keyword)
            if first is None or not first.group().isascii():
                return None
            words.add(first.group().lower())
        return frozenset(words)

    @staticmethod
    def words_of(title: str, summary: str = "") -> frozenset[str]:
        """The words of a text, folded as ``required_words`` are."""
        return frozenset(_WORD.findall(f"{title}\n{summary}".translate(_ASCII_FOLD).casefold()))

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def __repr__(self) -> str:
        return f"KeywordFilter(include={list(self.include)!r}, exclude={list(self.exclude)!r})"
