"""Named entities in headlines, without a language model: labs, models, agencies, people.

A name is a run of *name words* in a title. A word is a name word when

- its shape says so: letters mixed with digits or an inner capital (``GPT-4o``, ``Qwen3``,
  ``H100``, ``OpenAI``, ``DeepSeek``), or an all-capitals acronym (``BIS``, ``NVIDIA``); or
- the stories' own sentence-case text says so: away from the start of a sentence it is written
  capitalised at least ``NAME_SHARE`` of the time (``Anthropic``, ``Claude``, ``Commerce``), where
  an ordinary word is mostly lower case (``releases``, ``model``).

Case is only counted in sentence-case text (summaries, and titles that are not Title Case), because
a Title Case headline capitalises every word and says nothing about which are names. A number
right after a name word belongs to the name (``Opus 4.5``, ``Llama 3``). This needs no dictionary
and no model download, learns new lab and model names the day they appear, and is wrong mostly
on words that are names in some stories and not in others (``Apple``, ``Gemini``), which is
where a dictionary would be wrong too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

NAME_SHARE = 0.8  # capitalised at least this often away from a sentence start: a name
MAX_NAME_WORDS = 4
TITLE_CASE_SHARE = 0.8  # a title whose longer words are this often capitalised is Title Case
# Capitalised for grammar, or too generic to be worth listing as a trend.
STOPWORDS = frozenset(
    """a an and as at but by for from how i if in into is it its new no not of on or our out over
    says said say so than that the their them then there these they this those to up vs via was
    we what when where which who why will with without you your after before amid about against
    could would should may might can just more most first report reports exclusive update live
    watch opinion analysis breaking ai ml llm llms api apis ceo cto gpu gpus cpu ipo faq tv pdf
    html""".split()
)
_SEGMENTS = re.compile(r"""[,:;|!?()\[\]{}"“”«»]|\s[-–—]\s|[–—]|\.\s""")
_SENTENCES = re.compile(r"[.!?]\s+|[:;]\s+|\n+")
_EDGE = "'\"‘’“”.,*_#`"
_POSSESSIVE = re.compile(r"['’]s$")
_NUMBER = re.compile(r"^v?\d+(\.\d+)*[a-z]?$", re.IGNORECASE)
_LETTER = re.compile(r"[A-Za-z]")
# A quantity has digits and letters too, but names nothing: "70B", "$40B", "1.5bn", "10x", "4K",
# "2nd", "1990s". After a name it still belongs to it ("Llama 3 70B", see title_entities).
_QUANTITY = re.compile(r"^[$€£¥]?\d+(?:[.,]\d+)*(?:[kmbt]n?|x|[kmgt]b|st|nd|rd|th|s|p)$", re.IGNORECASE)


def _words(segment: str) -> list[str]:
    out = []
    for raw in segment.split():
        word = _POSSESSIVE.sub("", raw.strip(_EDGE))
        if word:
            out.append(word)
    return out


def _shaped_name(word: str) -> bool:
    """A name by its shape alone: GPT-4o, Qwen3, H100, OpenAI, DeepSeek, BIS."""
    if not _LETTER.search(word) or word.lower() in STOPWORDS or _QUANTITY.match(word):
        return False
    letters = [c for c in word if c.isalpha()]
    if any(c.isdigit() for c in word) and letters:
        return True
    if len(letters) >= 2 and all(c.isupper() for c in letters):
        return True
    return word[0].isupper() and any(c.isupper() for c in word[1:]) and any(c.islower() for c in word)


def is_title_case(title: str) -> bool:
    longer = [w for w in _words(title) if len(w) >= 4 and w[0].isalpha()]
    if len(longer) < 2:
        return False
    return sum(1 for w in longer if w[0].isupper()) / len(longer) >= TITLE_CASE_SHARE


class CaseEvidence:
    """How often each word is written capitalised away from a sentence start, in sentence case."""

    def __init__(self) -> None:
        self.capitalised: Counter[str] = Counter()
        self.lower: Counter[str] = Counter()

    def add_text(self, text: str) -> None:
        for sentence in _SENTENCES.split(text):
            for word in _words(sentence)[1:]:
                if not word[0].isalpha():
                    continue
                key = word.lower()
                if word[0].isupper():
                    self.capitalised[key] += 1
                else:
                    self.lower[key] += 1

    def add_story(self, title: str, summary: str) -> None:
        if not is_title_case(title):
            self.add_text(title)
        self.add_text(summary)

    def is_name(self, word: str) -> bool:
        if _shaped_name(word):
            return True
        if not word[0].isupper() or word.lower() in STOPWORDS or len(word) < 2:
            return False
        cap, low = self.capitalised[word.lower()], self.lower[word.lower()]
        return cap > 0 and cap / (cap + low) >= NAME_SHARE


def title_entities(title: str, evidence: CaseEvidence) -> list[str]:
    """The names in one headline, in order, each once (``Claude Opus 4.5``, ``OpenAI``)."""
    found: list[str] = []
    for segment in _SEGMENTS.split(title):
        run: list[str] = []
        for word in [*_words(segment), ""]:
            if word and evidence.is_name(word) and len(run) < MAX_NAME_WORDS:
                run.append(word)
                continue
            if word and run and _NUMBER.match(word) and len(run) < MAX_NAME_WORDS:
                run.append(word)  # "Opus 4.5": the version belongs to the name
                continue
            if run:
                name = " ".join(run)
                if name not in found:
                    found.append(name)
            run = [word] if word and evidence.is_name(word) else []
    return found


def count_entities(
    groups: Iterable[tuple[object, Iterable[str]]], evidence: CaseEvidence, top: int
) -> list[tuple[str, int]]:
    """The ``top`` names by the number of groups (events) whose titles carry them.

    ``groups``: (event key, its titles). A name five outlets put in their headlines about one
    event counts once, like the event itself."""
    counts: Counter[str] = Counter()
    spelled: dict[str, Counter[str]] = {}
    for _key, titles in groups:
        seen: set[str] = set()
        for title in titles:
            for name in title_entities(title, evidence):
                folded = name.casefold()
                spelled.setdefault(folded, Counter())[name] += 1
                seen.add(folded)
        counts.update(seen)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    # Shown as most outlets spell it ("OpenAI", not "OPENAI" from a shouting headline).
    return [(spelled[folded].most_common(1)[0][0], n) for folded, n in ranked]
