"""Story text → sparse features for the learned topic model; the same code at training and at run time.

Features are readable on purpose, because explanations show them to users:

* ``w:export`` — a word anywhere in the title or summary;
* ``b:export controls`` — two adjacent words of the title (summary bigrams were measured to add
  nothing on validation, and cost half the time);
* ``t:distills`` — a word of the title (headlines carry most of the signal);
* ``p:distil`` — the first five letters of a longer word, so "distilled", "distilling" and
  "distillation" share evidence and a new inflection is not an unknown word;
* ``v:opus #`` — a word followed by a number, so "Opus 5" shares evidence with "Opus 4" and
  a new version of a known model is not an unknown name;
* ``c:stil`` — four-character pieces of each title word, the word padded with a space on each side
  (model and lab names, inflections the word features miss); measured +0.015 macro-F1 on
  validation. Never shown as evidence.
* ``s:blocks china`` — two content words of the title, anywhere in it, in alphabetical order, so
  "China blocks …" and "… blocked by China" share nothing but "chatbot" + "china" does: a linear
  model over single words cannot say "both", and a topic is often two things at once (a state and
  an AI product). Only the first :data:`MAX_PAIR_WORDS` distinct content words pair up.

Each feature is present or not (binary); a story's text features are scaled to unit length so a long
summary does not outvote a headline. The rule classifier's per-topic scores are added by the model as
extra features (``rule:<topic>``), so reviewed operator knowledge and learned weights combine.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet

__all__ = [
    "CHAR_N",
    "PREFIX_LEN",
    "features_of_tokens",
    "known_pair_words",
    "merge_evidence",
    "pair_words",
    "readable",
    "text_features",
    "title_tokens",
    "tokens",
]

# The rule classifier's tokenizer too: the hybrid classifier splits a story once for both.
_TOKEN = re.compile(r"[a-z0-9]+")
PREFIX_LEN = 5
CHAR_N = 4
MAX_SUMMARY_TOKENS = 40  # the summary's opening carries its gist; the rest costs time, not accuracy
MAX_PAIR_WORDS = 12  # a long title (a Hacker News thread's) would otherwise make hundreds of pairs


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower()) if text else []


# A headline that is nothing but a Hub or GitHub repository id: "zai-org/GLM-4.5".
_REPOSITORY_ID = re.compile(r"\s*[A-Za-z0-9_.-]+/([A-Za-z0-9_.-]+)\s*")


def title_tokens(title: str) -> list[str]:
    """The words of a headline. A bare repository id is read as its name: the owner ("zai-org",
    "Qwen") is who published it, as an outlet is, and "GLM-4.5" alone reads as the model it is."""
    repository = _REPOSITORY_ID.fullmatch(title) if title else None
    return tokens(repository.group(1) if repository else title)


def text_features(title: str, summary: str) -> set[str]:
    """The set of text features of one story."""
    return features_of_tokens(title_tokens(title), tokens(summary))


def features_of_tokens(title_tokens: list[str], summary_tokens: list[str]) -> set[str]:
    summary_tokens = summary_tokens[:MAX_SUMMARY_TOKENS]
    out: set[str] = set()
    add = out.add
    for seq, pairs in ((title_tokens, True), (summary_tokens, False)):
        previous = ""
        for tok in seq:
            add("w:" + tok)
            if len(tok) > PREFIX_LEN + 1 and not tok[0].isdigit():
                add("p:" + tok[:PREFIX_LEN])
            if previous:
                if pairs:
                    add("b:" + previous + " " + tok)
                if tok[0].isdigit() and not previous[0].isdigit():
                    add("v:" + previous + " #")  # a name and a version: "opus 5", "glm 4"
            previous = tok
    for tok in title_tokens:
        add("t:" + tok)
    words = pair_words(title_tokens)
    for i, first in enumerate(words):
        for second in words[i + 1 :]:
            add("s:" + first + " " + second)
    for tok in title_tokens:
        padded = " " + tok + " "
        for i in range(len(padded) - CHAR_N + 1):
            add("c:" + padded[i : i + CHAR_N])
    return out


# Words that carry weight in a model but explain nothing to a reader ("on", "that"): never shown.
_FUNCTION_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my no nor not
    now of off on once only or other our ours out over own s same she should so some such t than that the
    their them then there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your says said new""".split()
)


def pair_words(title_tokens: list[str]) -> list[str]:
    """The title words that pair up for ``s:`` features, sorted: the first :data:`MAX_PAIR_WORDS`
    distinct words that are neither function words nor numbers (nor single letters)."""
    words: list[str] = []
    for tok in title_tokens:
        if len(tok) > 1 and tok not in _FUNCTION_WORDS and not tok[0].isdigit() and tok not in words:
            words.append(tok)
            if len(words) == MAX_PAIR_WORDS:
                break
    words.sort()
    return words


def known_pair_words(title_tokens: list[str], known: AbstractSet[str]) -> list[str]:
    """``[w for w in pair_words(title_tokens) if w in known]``, fast: ``known`` (the words of a
    model's pair features) holds content words only, so when the title has no more than
    :data:`MAX_PAIR_WORDS` distinct candidates the cap cannot bite and a set intersection says it."""
    distinct = set(title_tokens)
    if len(distinct) <= MAX_PAIR_WORDS or len(distinct - _FUNCTION_WORDS) <= MAX_PAIR_WORDS:
        return sorted(distinct.intersection(known))
    return [w for w in pair_words(title_tokens) if w in known]


def readable(feature: str) -> str:
    """How a feature is shown in an explanation: the words themselves ("" = not worth showing)."""
    kind, _, text = feature.partition(":")
    if kind in ("w", "t") and (text in _FUNCTION_WORDS or text.isdigit() or len(text) < 2):
        return ""
    if kind == "p":
        return text + "…"
    if kind == "t":
        return text + " (title)"
    if kind == "v":
        return text.replace(" #", " N")
    if kind == "s":
        return text.replace(" ", " + ")  # two words of the title, not adjacent ones
    if kind == "c":
        return ""  # a piece of a word explains nothing to a reader
    return text


def merge_evidence(terms: list[str]) -> list[str]:
    """Evidence listed once per reason: "us (title)" after "us", or "techn…" after "technology",
    says nothing new, and a whole word ("distillation") replaces its prefix ("disti…")."""
    out: list[str] = []
    keys: list[tuple[str, bool]] = []
    for text in terms:
        add_evidence(out, keys, text)
    return out


def add_evidence(out: list[str], keys: list[tuple[str, bool]], text: str) -> None:
    """Add ``text`` to ``out`` unless it repeats a reason there (``keys`` runs beside ``out``:
    each entry's word and whether it is a prefix). The hot path's form of :func:`merge_evidence`."""
    key = text.removesuffix(" (title)")
    prefix = key.endswith("…")
    if prefix:
        key = key[:-1]
    for n, (known, known_prefix) in enumerate(keys):
        if known == key or (prefix and known.startswith(key)):
            return  # already said
        if known_prefix and key.startswith(known):
            out[n] = text  # the whole word says it better than its first letters
            keys[n] = (key, prefix)
            return
    out.append(text)
    keys.append((key, prefix))
