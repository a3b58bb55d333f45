"""Groups the coverage of one real-world event across outlets into one cluster.

Within a time window (72 h by default), two ways to join a cluster:

* **The matcher.** A story's headline words and the opening words of its summary (stemmed, stop
  words dropped) are compared, weighted by rarity, with each candidate cluster: its closest member,
  its headline, the cluster's words as a whole, shared rare words and version identifiers, time
  apart, whether the outlet is already there, and the rare words of its headline that no story
  of the cluster carries (a saga's next development). A small logistic model, fitted on labelled
  coverage (``cluster_fit.py``), turns that into the probability that both report one event; the
  story joins the most likely cluster above the threshold (an outlet's own earlier stories only
  well above it). Clusters naming different versions (``GPT-5`` vs ``GPT-4o``) are never
  candidates, however alike the rest reads. A story that names no one (no word written as a name:
  a glossary entry, an explainer of a technique) joins nothing; two stories naming one court case
  by its caption ("Getty Images v Stability AI") join.
* **Tracker release + news**: a model found on the Hugging Face Hub or GitHub joins the news
  stories whose headline names that model (``DeepSeek-V3.2`` ~ "DeepSeek launches V3.2 ...").

The index is in memory, bounded by the window, and refreshed from the store before each batch, so
several replicas converge on the same clusters without a shared lock on the hot path. How well it
works is measured by ``frontierwatch cluster-eval`` (docs/clustering.md).
"""

from __future__ import annotations

import functools
import gzip
import heapq
import json
import math
import re
import threading
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import snowballstemmer

_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")
SUMMARY_WORDS = 30  # content words of a summary kept for matching (its opening carries the news)
CONTEXT_WEIGHT = 0.5  # a word only in the summary counts this much against a headline word
RARE_IDF = 4.0  # a word this rare (about 1 story in 55) is a name, a place, a number: a strong clue
MEMBERS_COMPARED = 12  # a big cluster is judged by its latest stories and its centroid
SUMMARY_LOOKUPS = 4  # summary words looked up in the headline index (the rarest)
CANDIDATE_POINTS = 2  # words a candidate's headline must share with this story's headline or summary
CANDIDATES_SCORED = 4  # stories whose clusters the matcher scores, the best of the cheap count
IDF_CACHE_WORDS = 200_000
WEIGHTS_FILE = Path(__file__).resolve().parent / "cluster_weights.json"
RARITY_FILE = Path(__file__).resolve().parent / "word_rarity.json.gz"
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "new",
        "news",
        "of",
        "on",
        "or",
        "our",
        "over",
        "says",
        "say",
        "said",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "after",
        "amid",
        "about",
        "against",
        "report",
        "reports",
        "update",
        "updates",
        "live",
        "exclusive",
        "just",
        "more",
        "most",
        "now",
        "out",
        "off",
        "via",
        "vs",
    ]
)
# Words that distinguish checkpoints of the same release rather than the release itself.
MODEL_SUFFIXES = frozenset(
    [
        "instruct",
        "base",
        "chat",
        "it",
        "hf",
        "gguf",
        "fp8",
        "fp16",
        "bf16",
        "awq",
        "gptq",
        "int4",
        "int8",
        "mlx",
        "onnx",
        "preview",
        "hf-transformers",
    ]
)


_STEMMERS = threading.local()


@functools.lru_cache(maxsize=100_000)
def _fold(token: str) -> str:
    """One form per word, so outlets' wording meets: "distilling", "distilled" and
    "distillation" are all ``distil`` (the Snowball English stemmer). Numbers and versions stay
    as written."""
    token = token.replace("'", "")
    if any(c.isdigit() for c in token):
        return token
    stemmer = getattr(_STEMMERS, "english", None)
    if stemmer is None:  # a stemmer keeps state while it works: one per thread
        stemmer = _STEMMERS.english = snowballstemmer.stemmer("english")
    return str(stemmer.stemWord(token))


def headline_tokens(title: str) -> frozenset[str]:
    """Content words of a headline, folded so that outlets' small wording differences match."""
    words = _WORD.findall(title.lower().replace("’", "'"))
    return frozenset(_fold(w) for w in words if w not in STOP_WORDS and (len(w) > 1 or w.isdigit()))


def raw_tokens(title: str) -> frozenset[str]:
    """Every alphanumeric run of a headline, for matching model names like ``DeepSeek-V3.2``."""
    return frozenset(t for t in re.split(r"[^a-z0-9]+", title.lower()) if t)


_VERSIONED = re.compile(r"[a-z]+-\d+(?:\.\d+)*[a-z]*|[a-z]+\d+[a-z0-9]*|\d+[a-z]+[a-z0-9]*|\d+\.\d+")


def identifiers_of(title: str) -> frozenset[str]:
    """Names with a version or model number (``gpt-5``, ``gpt-4o``, ``h20``, ``3.5``): two
    headlines naming different ones are different stories however alike the rest reads. Plain
    numbers are not identifiers: outlets report different death tolls and prices of one event."""
    if not any(c.isdigit() for c in title):
        return frozenset()
    found = _VERSIONED.findall(title.lower().replace("’", "'"))
    # Units and ordinals are numbers, not names.
    return frozenset(
        f for f in found if not re.fullmatch(r"\d+(st|nd|rd|th|s|m|bn|b|k|pm|am|gb|tb|mb|mph|km|kg|x)", f)
    )


def model_key(model_name: str) -> tuple[str, ...] | None:
    """Tokens a headline must contain to be about this model; None when too generic to match on."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", model_name.lower()) if t and t not in MODEL_SUFFIXES]
    # Size and date tags (235b, a22b, 2507) rarely appear in headlines.
    core = [t for t in tokens if not re.fullmatch(r"a?\d+(\.\d+)?[bmk]|\d{4}", t)]
    if len(core) < 2 or (len("".join(core)) < 6 and not any(c.isdigit() for c in "".join(core))):
        return None
    return tuple(core)


# Capitalised, but no one's name: they would make "On Tuesday, ..." share a name with every story.
CALENDAR_WORDS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may "
    "june july august september october november december".split()
)
_CASED_WORD = re.compile(r"[A-Za-z0-9]+(?:[.'][A-Za-z0-9]+)*")
_SENTENCE_START = frozenset(".!?:;|\"“‘'([–—-")
_INNER_CAPITAL = re.compile(r".[A-Z0-9]")  # a capital or digit past a word's first letter


def _casing(text: str, *, headline: bool) -> Iterable[tuple[str, str]]:
    """Each content word of ``text`` (lower case) with how it is written: ``"name"`` (a capital
    or digit past its first letter, as in ``iPhone``, ``AMD``; or capitalised where no sentence
    starts), ``"lower"``, or ``"unsure"`` (capitalised at a sentence's start, or anywhere in a
    headline in Title Case, where every word is)."""
    text = text.replace("’", "'")
    # Title Case: no content word of four letters or more is left in lower case.
    title_case = headline and not any(
        w[0].islower() for w in _CASED_WORD.findall(text) if len(w) > 3 and w.lower() not in STOP_WORDS
    )
    for match in _CASED_WORD.finditer(text):
        word = match.group()
        lower = word.lower()
        if len(word) < 2 or lower in STOP_WORDS or lower in CALENDAR_WORDS or lower.isdigit():
            continue
        if word.islower() and (word.isalpha() or not _INNER_CAPITAL.search(word)):
            yield lower, "lower"
        elif _INNER_CAPITAL.search(word):
            yield lower, "name"
        else:
            before = match.start() - 1
            while before >= 0 and text[before].isspace():
                before -= 1
            initial = title_case or before < 0 or text[before] in _SENTENCE_START
            yield lower, "unsure" if initial else "name"


def names_of(title: str, summary: str = "") -> tuple[frozenset[str], frozenset[str]]:
    """The story's words (folded) written as names (``Getty``, ``iPhone``, ``AMD``), and those
    capitalised only where any word would be (a sentence's start, a Title Case headline): the
    background's casing decides those (``WordRarity.names``)."""
    sure: set[str] = set()
    unsure: set[str] = set()
    for text, headline in ((title, True), (summary[: SUMMARY_WORDS * 20], False)):
        for word, how in _casing(text, headline=headline):
            if how == "name":
                sure.add(_fold(word))
            elif how == "unsure":
                unsure.add(_fold(word))
    return frozenset(sure), frozenset(unsure - sure)


# A case caption: "Getty Images v Stability AI", "Getty v. Stability", "US v. Google" ("vs" is
# left out: "Nvidia vs AMD" compares, it does not sue).
_CAPTION = re.compile(
    r"\b([A-Z][\w&'.-]*(?:\s+(?:[A-Z][\w&'.-]*|\([A-Z]+\)))*)\s+v\.?\s+(?:the\s+)?([A-Z][\w&'.-]*)"
)


_V = re.compile(r"\sv\.?\s")


def cases_of(title: str, summary: str = "") -> frozenset[str]:
    """The court cases a story names by their caption, as ``"getti v stabil"`` (the first word
    of each party, folded): two stories naming one case in one window report the same case."""
    found = set()
    for text in (title, summary[: SUMMARY_WORDS * 20]):
        for first, second in _CAPTION.findall(text.replace("’", "'")):
            parties = [w.lower() for w in first.split() if w.lower() not in STOP_WORDS]
            if parties and second.lower() not in STOP_WORDS:
                found.add(f"{_fold(parties[0].strip('.'))} v {_fold(second.lower().strip('.'))}")
    return frozenset(found)


def summary_tokens(summary: str, title_tokens: frozenset[str], limit: int = SUMMARY_WORDS) -> frozenset[str]:
    """Content words of the summary's opening, minus the headline's: what a second outlet's
    differently worded headline can still share (names, places, the case, the number)."""
    # The opening is all that is kept; a feed's full-text description can be 100 times longer.
    words = _WORD.findall(summary[: limit * 20].lower().replace("’", "'"))
    out: set[str] = set()
    for w in words:
        if w in STOP_WORDS or (len(w) < 2 and not w.isdigit()):
            continue
        folded = _fold(w)
        if folded not in title_tokens:
            out.add(folded)
            if len(out) >= limit:
                break
    return frozenset(out)


@dataclass(slots=True)
class IndexedStory:
    story_id: int
    cluster_id: int
    outlet: str
    tokens: frozenset[str]  # headline_tokens(title)
    raw: frozenset[str]  # raw_tokens(title)
    at: datetime
    model: tuple[str, ...] | None = None  # set for tracker stories
    seen: datetime | None = None  # when it was first stored (prunes the index); None: ``at``
    # Content words of the summary's opening that the headline lacks (see ``summary_tokens``).
    context: frozenset[str] = frozenset()
    identifiers: frozenset[str] = frozenset()  # identifiers_of(title)
    names: frozenset[str] = frozenset()  # names_of(title, summary): written as names
    maybe_names: frozenset[str] = frozenset()  # names_of: capitalised only where any word is
    cases: frozenset[str] = frozenset()  # cases_of(title, summary)
    terms: frozenset[str] = frozenset()  # tokens | context
    # Set by the index on first use (they need word rarity): vector norms, headline mass, rare words.
    norm: float = 0.0
    title_norm: float = 0.0
    title_mass: float = 0.0
    rare: frozenset[str] = frozenset()
    named: bool = False  # it names anyone or anything at all (``names_of``)
    seq: int = 0  # set by the index: the order stories were added in (breaks ties between candidates)

    def __post_init__(self) -> None:
        self.terms = self.tokens | self.context


@dataclass(slots=True)
class Match:
    cluster_id: int
    story_id: int
    score: float  # the matcher's probability that the story reports the cluster's event
    rule: str  # "headline" | "model" | "case"


def index_entry(
    *,
    story_id: int,
    cluster_id: int,
    outlet: str,
    title: str,
    summary: str = "",
    at: datetime,
    seen: datetime | None = None,
    model: str | None = None,
) -> IndexedStory:
    """The index's view of one story; ingest, the index refresh and ``cluster-eval`` all build it
    here, so what is measured is what runs."""
    tokens = headline_tokens(title)
    names, maybe_names = names_of(title, summary)
    return IndexedStory(
        story_id=story_id,
        cluster_id=cluster_id,
        outlet=outlet,
        tokens=tokens,
        raw=raw_tokens(title),
        at=at,
        model=model_key(model) if model else None,
        seen=seen,
        context=summary_tokens(summary, tokens) if summary else frozenset(),
        identifiers=identifiers_of(title),
        names=names,
        maybe_names=maybe_names,
        cases=cases_of(title, summary) if _V.search(title) or _V.search(summary) else frozenset(),
    )


# ---------------------------------------------------------------------------------------- matcher
FEATURES = (
    "best_pair",  # rarity-weighted cosine with the most similar member (headline + summary words)
    "best_title",  # the same, headlines only
    "centroid",  # rarity-weighted cosine with the cluster's words, all members together
    "rare_shared",  # rare words shared with the closest member (names, places, numbers), up to 5, / 5
    "identifiers_shared",  # numbers and versions shared with the cluster, up to 3, / 3
    "days_apart",  # to the nearest member
    "outlet_in_cluster",  # the outlet already has a story in the cluster (an update, or a live blog)
    "title_covered",  # share of the headline's rarity found in the closest member's words, either way
    # Rare headline words (a name, a place) that no story of the cluster carries, up to 3, / 3: the
    # next development of a saga brings a new actor ("Putin meets Orban" after "Putin arrives in
    # Beijing"), while another outlet's headline on the same event reuses the cluster's names.
    "new_names",
)


@dataclass(frozen=True, slots=True)
class MatcherWeights:
    """A logistic model over :data:`FEATURES`: how likely a story reports a cluster's event.

    Fitted on the dev split of ``config/coverage`` by ``python -m bot.pipeline.cluster_fit``
    (a test refits and compares); ``threshold`` is what ``FW_CLUSTER_SIMILARITY`` overrides,
    ``linkage_floor`` what ``FW_CLUSTER_LINKAGE`` does."""

    weights: tuple[float, ...]
    intercept: float
    threshold: float = 0.5  # the default probability to join; chosen on held-out dev days
    meta: dict[str, object] = field(default_factory=dict, compare=False)
    # The least *linkage* (the story's rarity-weighted cosine averaged over the cluster's latest
    # members) with which a story may join, whatever its probability; chosen on held-out dev days
    # with the threshold. A logistic model adds its evidence up, so a story that matches one or two
    # members of a saga's cluster strongly (the names every development repeats) can outscore a
    # weak match with all the rest; the next development of a saga ("Putin blames Ukraine and the
    # West" after a mob stormed Dagestan's airport) is close to a few of the cluster's stories,
    # another outlet's report of the same event to most of them.
    linkage_floor: float = 0.0

    def probability(self, features: Iterable[float]) -> float:
        z = self.intercept + sum(w * f for w, f in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE) -> MatcherWeights:
        data = json.loads(path.read_text(encoding="utf-8"))
        if list(data["features"]) != list(FEATURES):
            raise ValueError(
                f"{path}: fitted for features {data['features']}, this code has {list(FEATURES)}"
            )
        return cls(
            tuple(float(w) for w in data["weights"]),
            float(data["intercept"]),
            float(data["threshold"]),
            dict(data.get("meta") or {}),
            float(data.get("linkage_floor", 0.0)),
        )


_DEFAULT_WEIGHTS: MatcherWeights | None = None


def default_weights() -> MatcherWeights:
    global _DEFAULT_WEIGHTS
    if _DEFAULT_WEIGHTS is None:
        _DEFAULT_WEIGHTS = MatcherWeights.load()
    return _DEFAULT_WEIGHTS


@dataclass(frozen=True, slots=True)
class WordRarity:
    """In how many of a background set of news stories each word occurs.

    Rarity from the live index alone misleads while the index is small (a new install, the demo,
    a quiet night): every word then looks rare, and two explainers of "knowledge distillation"
    look like one event. The background, counted from the repository's labelled news by
    ``python -m bot.pipeline.cluster_fit``, is added to the live counts."""

    documents: int
    df: dict[str, int]
    # Words the background writes as names more often than in lower case ("Zoom", "Turkey", not
    # "knowledge"): a word capitalised only at a sentence's start is a name if it is one of these.
    names: frozenset[str] = frozenset()

    @classmethod
    def count(cls, stories: Iterable[tuple[str, str]], min_df: int = 2) -> WordRarity:
        counts: dict[str, int] = {}
        written: dict[str, list[int]] = {}  # word -> [times written as a name, in lower case]
        documents = 0
        for title, summary in stories:
            documents += 1
            tokens = headline_tokens(title)
            for token in tokens | summary_tokens(summary, tokens):
                counts[token] = counts.get(token, 0) + 1
            for text, headline in ((title, True), (summary[: SUMMARY_WORDS * 20], False)):
                for word, how in _casing(text, headline=headline):
                    if how != "unsure":
                        written.setdefault(_fold(word), [0, 0])[how == "lower"] += 1
        names = frozenset(w for w, (name, lower) in written.items() if name >= 2 and name > lower)
        return cls(documents, {t: n for t, n in sorted(counts.items()) if n >= min_df}, names)

    def save(self, path: Path) -> None:
        document = {"documents": self.documents, "df": self.df, "names": sorted(self.names)}
        text = json.dumps(document, separators=(",", ":"), sort_keys=True)
        with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:
            fh.write(text.encode("utf-8"))

    @classmethod
    def load(cls, path: Path = RARITY_FILE) -> WordRarity:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
        return cls(
            int(data["documents"]),
            {str(k): int(v) for k, v in data["df"].items()},
            frozenset(str(w) for w in data.get("names", ())),
        )


_DEFAULT_RARITY: WordRarity | None = None


def default_rarity() -> WordRarity:
    global _DEFAULT_RARITY
    if _DEFAULT_RARITY is None:
        _DEFAULT_RARITY = WordRarity.load()
    return _DEFAULT_RARITY


@dataclass(slots=True)
class _Cluster:
    """One cluster's stories in the window: its members, and their weighted words summed (its
    centroid) with the sum of their squares, kept as stories come and go."""

    members: list[IndexedStory] = field(default_factory=list)
    words: dict[str, float] = field(default_factory=dict)
    square: float = 0.0
    outlets: dict[str, int] = field(default_factory=dict)
    identifiers: dict[str, int] = field(default_factory=dict)
    cases: dict[str, int] = field(default_factory=dict)
    named: int = 0  # members that name anyone (``IndexedStory.named``)

    def change(self, story: IndexedStory, sign: int, weights: dict[str, float]) -> None:
        if sign > 0:
            self.members.append(story)
        else:
            self.members = [m for m in self.members if m.story_id != story.story_id]
        words = self.words
        for token, weight in weights.items():
            before = words.get(token, 0.0)
            after = before + sign * weight
            self.square += after * after - before * before
            if after > 1e-9:
                words[token] = after
            else:
                words.pop(token, None)
        if not words:
            self.square = 0.0
        self.named += sign * story.named
        for counter, keys in (
            (self.outlets, (story.outlet,)),
            (self.identifiers, story.identifiers),
            (self.cases, story.cases),
        ):
            for key in keys:
                n = counter.get(key, 0) + sign
                if n > 0:
                    counter[key] = n
                else:
                    counter.pop(key, None)


@dataclass
class ClusterIndex:
    """Recent stories, searchable by their words and by tracked model names.

    A new story joins the cluster the matcher finds most likely to report the same event, when
    that likelihood reaches ``threshold`` and the story's mean similarity to the cluster's latest
    stories reaches ``linkage_floor``; a wrong merge hides a story from a channel while a split
    only repeats it, so both defaults are chosen for precision."""

    window: timedelta = timedelta(hours=72)
    threshold: float | None = None  # None: the threshold fitted with the weights
    linkage_floor: float | None = None  # None: the floor fitted with the weights
    weights: MatcherWeights | None = None  # None: the shipped, fitted weights
    rarity: WordRarity | None = None  # None: the shipped background counts
    # At most this many stories (0: no cap); the oldest leave first. A story costs a few KB here,
    # and a busy window on a big install would otherwise hold hundreds of thousands.
    max_stories: int = 0
    _by_time: list[tuple[datetime, int]] = field(default_factory=list)  # heap of (at, story id)
    _horizon: datetime | None = None  # stories older than this are outside every window
    _postings: dict[str, set[int]] = field(default_factory=dict)  # headline word -> story ids
    _idf: dict[str, float] = field(default_factory=dict)  # a cache of ``idf``
    _by_id: dict[int, IndexedStory] = field(default_factory=dict)
    _models: dict[int, IndexedStory] = field(default_factory=dict)
    _clusters: dict[int, _Cluster] = field(default_factory=dict)
    last_story_id: int = 0
    _added: int = 0  # stories added so far (``IndexedStory.seq``)

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, story_id: object) -> bool:
        return story_id in self._by_id

    def add(self, story: IndexedStory, *, provisional: bool = False) -> None:
        """Index a story. ``provisional``: one of the write batch being planned (see
        :meth:`rename`): it goes in even if older than the window, so the batch's other old posts
        (a first poll's backlog) can still join it, as ``cluster-eval`` lets them, and it evicts
        nothing until it is stored."""
        self.last_story_id = max(self.last_story_id, story.story_id)
        if story.story_id in self._by_id:
            return
        if story.seen is not None and story.at > story.seen:
            story.at = story.seen  # a date in the future is not trusted
        if not provisional and self._horizon is not None and story.at < self._horizon:
            return  # an old post (a backlog, a resurfaced item): nothing new can cluster with it
        self._by_id[story.story_id] = story
        self._added += 1
        story.seq = self._added
        heapq.heappush(self._by_time, (story.at, story.story_id))
        for token in story.tokens:
            self._postings.setdefault(token, set()).add(story.story_id)
        self._clusters.setdefault(story.cluster_id, _Cluster()).change(story, +1, self._weights(story))
        if story.model:
            self._models[story.story_id] = story
        if not provisional:
            self._enforce_cap()

    def _enforce_cap(self) -> None:
        if self.max_stories and len(self._by_id) > self.max_stories:
            self._evict_oldest(len(self._by_id) - self.max_stories)

    def rename(self, new_ids: dict[int, int]) -> None:
        """Give provisional stories their stored ids. Ingest indexes a write batch's stories while
        it plans them (under ids of its own), so each is matched against the ones before it, as
        ``cluster-eval`` measures; once stored they take the store's ids. A cluster a provisional
        story founded takes its founder's new id, as in the store (a new cluster takes the id of
        the story that founded it). A story the index already holds under its new id (a refresh
        read it from the store first) is dropped in its provisional form."""
        for old, new in new_ids.items():
            story = self._by_id.get(old)
            if story is None:
                continue
            if new in self._by_id:
                self._remove(old)
                continue
            del self._by_id[old]
            for token in story.tokens:
                posting = self._postings[token]
                posting.discard(old)
                posting.add(new)
            if self._models.pop(old, None) is not None:
                self._models[new] = story
            story.story_id = new
            self._by_id[new] = story
            heapq.heappush(self._by_time, (story.at, new))  # the old entry finds nothing when it leaves
            self.last_story_id = max(self.last_story_id, new)
        for old, new in new_ids.items():
            cluster = self._clusters.get(old)
            if cluster is None:
                continue
            if new not in self._clusters:
                self._clusters[new] = self._clusters.pop(old)
                for member in cluster.members:
                    member.cluster_id = new
            else:  # the founder was read from the store first, in its stored cluster: join it
                for member in list(cluster.members):
                    self.move(member.story_id, new)
        self._enforce_cap()  # provisional stories evicted nothing; stored, they count

    def withdraw(self, story_ids: Iterable[int]) -> None:
        """Take provisional stories out again (a write batch that was not stored); as they evicted
        nothing, the index is as it was before them."""
        for story_id in story_ids:
            self._remove(story_id)

    def move(self, story_id: int, cluster_id: int) -> None:
        story = self._by_id.get(story_id)
        if story is not None and story.cluster_id != cluster_id:
            self._leave(story)
            story.cluster_id = cluster_id
            self._clusters.setdefault(cluster_id, _Cluster()).change(story, +1, self._weights(story))

    def _leave(self, story: IndexedStory) -> None:
        cluster = self._clusters.get(story.cluster_id)
        if cluster is not None:
            cluster.change(story, -1, self._weights(story))
            if not cluster.members:
                del self._clusters[story.cluster_id]

    def prune(self, now: datetime) -> None:
        # By the story's time (published, never later than first seen), in a heap: a backlog of
        # old posts leaves at once, and no date, however wrong, can pin the index.
        cutoff = now - self.window
        self._horizon = cutoff if self._horizon is None else max(self._horizon, cutoff)
        while self._by_time and self._by_time[0][0] < cutoff:
            self._remove(heapq.heappop(self._by_time)[1])

    def _evict_oldest(self, count: int) -> None:
        while count > 0 and self._by_time:
            at, story_id = heapq.heappop(self._by_time)
            if self._remove(story_id):
                count -= 1
                # Nothing older comes back in (a refresh finding it again would only evict it anew).
                self._horizon = at if self._horizon is None else max(self._horizon, at)

    def _remove(self, story_id: int) -> bool:
        old = self._by_id.pop(story_id, None)
        if old is None:
            return False
        self._models.pop(old.story_id, None)
        self._leave(old)
        for token in old.tokens:
            posting = self._postings.get(token)
            if posting is not None:
                posting.discard(old.story_id)
                if not posting:
                    del self._postings[token]
        return True

    # ------------------------------------------------------------------ matching
    def idf(self, token: str) -> float:
        """Rarity of a word in news: a name or a number that few stories carry says "same event"
        far more than "ai" or "china" does. From the background counts only, so a story's
        weights never change and a cluster's centroid can be kept up to date as stories come and
        go (held-out dev figures were the same as with live counts added)."""
        cache = self._idf
        value = cache.get(token)
        if value is None:
            if len(cache) > IDF_CACHE_WORDS:
                cache.clear()
            rarity = self.rarity or default_rarity()
            value = cache[token] = math.log((rarity.documents + 1) / (rarity.df.get(token, 0) + 1))
        return value

    def _weights(self, story: IndexedStory) -> dict[str, float]:
        """A story's words weighted by rarity (a summary word counts ``CONTEXT_WEIGHT``); on first
        use also sets its norms, headline mass and rare words."""
        idf = self.idf
        weights = {t: idf(t) for t in story.tokens}
        for t in story.context:
            weights[t] = CONTEXT_WEIGHT * idf(t)
        if not story.norm:
            story.norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            story.title_norm = math.sqrt(sum(weights[t] ** 2 for t in story.tokens)) or 1.0
            story.title_mass = sum(weights[t] for t in story.tokens) or 1.0
            story.rare = frozenset(t for t in story.terms if idf(t) >= RARE_IDF)
            background = (self.rarity or default_rarity()).names
            story.named = bool(story.names or story.maybe_names & background)
        return weights

    def _rarest(self, words: frozenset[str]) -> list[str]:
        """The summary words worth looking up: the rarest by the background counts."""
        if len(words) <= SUMMARY_LOOKUPS:
            return list(words)
        df = (self.rarity or default_rarity()).df
        # Ties broken by a fixed hash of the word: set order changes with every process (hash
        # seeds), and alphabetical order would send every story to the same few words.
        return heapq.nsmallest(SUMMARY_LOOKUPS, words, key=lambda w: (df.get(w, 0), zlib.crc32(w.encode())))

    def features(
        self, story: IndexedStory, cluster_id: int, mine: dict[str, float] | None = None
    ) -> list[float]:
        """The matcher's inputs (:data:`FEATURES`) for a story against one cluster; ``mine`` is
        the story's ``_weights`` when the caller already has them."""
        return self.compare(story, cluster_id, mine)[0]

    def compare(
        self, story: IndexedStory, cluster_id: int, mine: dict[str, float] | None = None
    ) -> tuple[list[float], float]:
        """The matcher's inputs for a story against one cluster, and the story's linkage to it:
        its cosine averaged over the cluster's latest members from other outlets (its best cosine
        when there are none; see ``MatcherWeights.linkage_floor``)."""
        cluster = self._clusters[cluster_id]
        if mine is None:
            mine = self._weights(story)
        idf = self.idf
        best_pair = best_title = covered = 0.0
        # The linkage averages over other outlets' stories only: this outlet's own are compared by
        # headline alone (below), which says less than a whole story and would drag the mean down.
        pair_sum = 0.0
        others = 0
        rare = 0
        nearest = math.inf
        for member in cluster.members[-MEMBERS_COMPARED:]:
            nearest = min(nearest, abs((story.at - member.at).total_seconds()))
            # Two stories of one outlet compare by their headlines only: a feed may put the same
            # boilerplate ("Read more at …", a standing dek) under every item.
            own = member.outlet == story.outlet
            others += not own
            shared = story.tokens & member.tokens if own else story.terms & member.terms
            if not shared:
                continue
            if not member.norm:
                self._weights(member)
            theirs_context = member.context
            dot = 0.0
            for t in shared:
                dot += mine[t] * (CONTEXT_WEIGHT * idf(t) if t in theirs_context else idf(t))
            pair = dot / (story.norm * member.norm)
            if not own:
                pair_sum += pair
            best_pair = max(best_pair, pair)
            titles = story.tokens & member.tokens
            if titles:
                title_dot = sum(idf(t) ** 2 for t in titles)
                best_title = max(best_title, title_dot / (story.title_norm * member.title_norm))
            rare = max(rare, len(story.rare & shared))
            theirs, ours = (member.tokens, story.tokens) if own else (member.terms, story.terms)
            mine_in_theirs = sum(idf(t) for t in story.tokens & theirs) / story.title_mass
            theirs_in_mine = sum(idf(t) for t in member.tokens & ours) / member.title_mass
            covered = max(covered, min(mine_in_theirs, theirs_in_mine))
        words = cluster.words
        # With the outlet already in the cluster, its summary words may be that outlet's boilerplate.
        compared = story.tokens if story.outlet in cluster.outlets else mine
        dot = sum(mine[t] * words[t] for t in compared if t in words)
        centroid = dot / (story.norm * math.sqrt(cluster.square)) if dot and cluster.square > 0 else 0.0
        shared_ids = sum(1 for i in story.identifiers if i in cluster.identifiers)
        new_names = sum(1 for t in story.tokens if t not in words and idf(t) >= RARE_IDF)
        days = nearest / 86400 if nearest != math.inf else self.window.total_seconds() / 86400
        linkage = pair_sum / others if others else best_pair
        features = [
            best_pair,
            best_title,
            min(centroid, 1.0),
            min(rare, 5) / 5,
            min(shared_ids, 3) / 3,
            days,
            1.0 if story.outlet in cluster.outlets else 0.0,
            covered,
            min(new_names, 3) / 3,
        ]
        return features, linkage

    def candidate_clusters(self, story: IndexedStory) -> dict[int, str]:
        """Clusters worth scoring for this story: cluster id -> the rule that found it."""
        found: dict[int, str] = {}
        for candidate, rule in self._candidates(story):
            if abs(candidate.at - story.at) > self.window:
                continue
            if rule == "model":
                if candidate.outlet != story.outlet:
                    found[candidate.cluster_id] = "model"
            elif candidate.cluster_id not in found:
                cluster = self._clusters.get(candidate.cluster_id)
                mine, theirs = story.identifiers, cluster.identifiers if cluster else {}
                # GPT-5 vs GPT-4o: different stories however similar the rest reads.
                if cluster is not None and not (mine and theirs and mine.isdisjoint(theirs)):
                    found[candidate.cluster_id] = "headline"
        return found

    def find(self, story: IndexedStory) -> Match | None:
        """The best cluster for a new story, or None when it starts a cluster of its own."""
        weights, threshold, linkage_floor = self._matcher()
        best: Match | None = None
        mine: dict[str, float] | None = None
        for cluster_id, rule in self.candidate_clusters(story).items():
            if rule == "model":
                score = 1.0
            else:
                mine = mine or self._weights(story)
                cluster = self._clusters[cluster_id]
                if self._same_case(story, cluster):
                    rule = "case"
                    score = max(threshold, weights.probability(self.features(story, cluster_id, mine)))
                elif not story.named or not cluster.named:
                    # No name on one side (a glossary entry, an explainer of a technique): nothing
                    # says it reports a happening, and two explainers of one technique share every
                    # rare word. Events have actors.
                    continue
                else:
                    features, linkage = self.compare(story, cluster_id, mine)
                    score = weights.probability(features)
                    bar, floor = self._bars(story, cluster, threshold, linkage_floor)
                    if score < bar or linkage < floor:
                        # Below the floor: close to a few of the cluster's stories and far from
                        # the rest, the next development of a saga, not another report of it.
                        continue
            if best is None or score > best.score:
                member = self._clusters[cluster_id].members[-1]
                best = Match(cluster_id, member.story_id, score, rule)
        return best

    def _matcher(self) -> tuple[MatcherWeights, float, float]:
        """The weights, and the threshold and linkage floor in force (settings over fitted values)."""
        weights = self.weights or default_weights()
        threshold = weights.threshold if self.threshold is None else self.threshold
        floor = weights.linkage_floor if self.linkage_floor is None else self.linkage_floor
        return weights, threshold, floor

    @staticmethod
    def _bars(story: IndexedStory, cluster: _Cluster, threshold: float, floor: float) -> tuple[float, float]:
        """The probability and the linkage a story needs to join this cluster."""
        if len(cluster.outlets) == 1 and story.outlet in cluster.outlets:
            # Only this outlet's own stories: a feed's next story on the same subject shares its
            # words and rarely brings new names; it joins only when clearly the same news, halfway
            # from the threshold (and from the floor, when there is one) to certainty.
            return (threshold + 1) / 2, (floor + 1) / 2 if floor else 0.0
        return threshold, floor

    def _same_case(self, story: IndexedStory, cluster: _Cluster) -> bool:
        """The story and the cluster report one court case, in one window: one names it by the
        caption the other uses ("Getty Images v Stability AI"), or names both its parties, when
        both are rare names ("a case brought against Stability AI by Getty Images"; "US v.
        Google" does not make every story about Google one about the case)."""
        if not story.cases and not cluster.cases:
            return False
        if not story.cases.isdisjoint(cluster.cases):
            return True
        idf = self.idf
        for cases, words in ((cluster.cases, story.terms), (story.cases, cluster.words)):
            for case in cases:
                first, _v, second = case.partition(" v ")
                if all(p in words and idf(p) >= RARE_IDF for p in (first, second)):
                    return True
        return False

    def _candidates(self, story: IndexedStory) -> list[tuple[IndexedStory, str]]:
        # Cheap first: the window's headline words (an inverted index), looked up with this
        # story's headline words and its summary's rarest words; only the best few go on to the
        # matcher. A word that a large share of recent headlines carry ("ai", "china") says
        # little about sameness and is not looked up, which keeps the search near-linear however
        # uniform the stories are. (Also indexing each summary's rarest words found no more on
        # the dev coverage and cost twice the time.)
        points: Counter[int] = Counter()
        too_common = max(200, len(self._by_id) // 20)
        postings = self._postings
        for tokens in (story.tokens, self._rarest(story.context)):
            for token in tokens:
                posting = postings.get(token)
                if posting and len(posting) <= too_common:
                    points.update(posting)  # counted in C
        needed = min(CANDIDATE_POINTS, len(story.tokens) + len(story.context))
        by_id = self._by_id
        # The most words shared first; among equals the latest added, not the highest id: ingest
        # indexes a write batch in published order under ids of its own, and cluster-eval's ids
        # follow published order, so both rank alike.
        best = heapq.nlargest(
            CANDIDATES_SCORED,
            ((n, by_id[sid].seq, sid) for sid, n in points.items() if n >= needed),
        )
        found = [(by_id[sid], "headline") for _n, _seq, sid in best]
        # Release rule, both ways: a news headline naming a tracked model, or a tracker story
        # whose model an earlier headline already named. Tracker stories are few, so scans are cheap.
        for tracked in self._models.values():
            if tracked.model and set(tracked.model) <= story.raw:
                found.append((tracked, "model"))
        if story.model:
            wanted = set(story.model)
            found.extend((other, "model") for other in self._by_id.values() if wanted <= other.raw)
        return found
