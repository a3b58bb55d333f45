"""Groups the same real-world story across outlets into one cluster.

Two rules, both limited to a time window (72 h by default):

* **Near-identical headlines** from different outlets: the headlines' content words (stop words
  dropped, plural ``s`` folded) overlap strongly, and they name no conflicting identifiers
  (``GPT-5`` vs ``GPT-4o`` are different stories however similar the rest reads).
* **Tracker release + news**: a model found on the Hugging Face Hub or GitHub joins the news
  stories whose headline names that model (``DeepSeek-V3.2`` ~ "DeepSeek launches V3.2 ...").

The index is in memory and is refreshed from the store before each batch, so several replicas
converge on the same clusters without a shared lock on the hot path.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")
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


def _fold(token: str) -> str:
    token = token.replace("'", "")
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if (
        len(token) > 3
        and token.endswith("s")
        and not token.endswith("ss")
        and not any(c.isdigit() for c in token)
    ):
        return token[:-1]
    return token


def headline_tokens(title: str) -> frozenset[str]:
    """Content words of a headline, folded so that outlets' small wording differences match."""
    words = _WORD.findall(title.lower().replace("’", "'"))
    return frozenset(_fold(w) for w in words if w not in STOP_WORDS and (len(w) > 1 or w.isdigit()))


def raw_tokens(title: str) -> frozenset[str]:
    """Every alphanumeric run of a headline, for matching model names like ``DeepSeek-V3.2``."""
    return frozenset(t for t in re.split(r"[^a-z0-9]+", title.lower()) if t)


def _identifiers(tokens: frozenset[str]) -> frozenset[str]:
    return frozenset(t for t in tokens if any(c.isdigit() for c in t))


def model_key(model_name: str) -> tuple[str, ...] | None:
    """Tokens a headline must contain to be about this model; None when too generic to match on."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", model_name.lower()) if t and t not in MODEL_SUFFIXES]
    # Size and date tags (235b, a22b, 2507) rarely appear in headlines.
    core = [t for t in tokens if not re.fullmatch(r"a?\d+(\.\d+)?[bmk]|\d{4}", t)]
    if len(core) < 2 or (len("".join(core)) < 6 and not any(c.isdigit() for c in "".join(core))):
        return None
    return tuple(core)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """0..1: mean of Jaccard and overlap coefficient of two headlines' content words."""
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return 0.5 * shared / len(a | b) + 0.5 * shared / min(len(a), len(b))


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
    identifiers: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.identifiers = _identifiers(self.tokens)


@dataclass(slots=True)
class Match:
    cluster_id: int
    story_id: int
    score: float
    rule: str  # "headline" | "model"


@dataclass
class ClusterIndex:
    """Recent stories, searchable by headline words and by tracked model names."""

    window: timedelta = timedelta(hours=72)
    threshold: float = 0.6
    min_shared: int = 3
    _by_time: list[tuple[datetime, int]] = field(default_factory=list)  # heap of (at, story id)
    _horizon: datetime | None = None  # stories older than this are outside every window
    _postings: dict[str, set[int]] = field(default_factory=dict)
    _by_id: dict[int, IndexedStory] = field(default_factory=dict)
    _models: dict[int, IndexedStory] = field(default_factory=dict)
    last_story_id: int = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, story_id: object) -> bool:
        return story_id in self._by_id

    def add(self, story: IndexedStory) -> None:
        self.last_story_id = max(self.last_story_id, story.story_id)
        if story.story_id in self._by_id:
            return
        if story.seen is not None and story.at > story.seen:
            story.at = story.seen  # a date in the future is not trusted
        if self._horizon is not None and story.at < self._horizon:
            return  # an old post (a backlog, a resurfaced item): nothing new can cluster with it
        self._by_id[story.story_id] = story
        heapq.heappush(self._by_time, (story.at, story.story_id))
        for token in story.tokens:
            self._postings.setdefault(token, set()).add(story.story_id)
        if story.model:
            self._models[story.story_id] = story

    def move(self, story_id: int, cluster_id: int) -> None:
        story = self._by_id.get(story_id)
        if story is not None:
            story.cluster_id = cluster_id

    def prune(self, now: datetime) -> None:
        # By the story's time (published, never later than first seen), in a heap: a backlog of
        # old posts leaves at once, and no date, however wrong, can pin the index.
        cutoff = now - self.window
        self._horizon = cutoff
        while self._by_time and self._by_time[0][0] < cutoff:
            _at, story_id = heapq.heappop(self._by_time)
            old = self._by_id.pop(story_id, None)
            if old is None:
                continue
            self._models.pop(old.story_id, None)
            for token in old.tokens:
                posting = self._postings.get(token)
                if posting is not None:
                    posting.discard(old.story_id)
                    if not posting:
                        del self._postings[token]

    def find(self, story: IndexedStory) -> Match | None:
        """The best cluster for a new story, or None when it starts a cluster of its own."""
        tokens, outlet, at = story.tokens, story.outlet, story.at
        best: Match | None = None
        for candidate, rule in self._candidates(story):
            if candidate.outlet == outlet or abs(candidate.at - at) > self.window:
                continue
            if rule == "model":
                score = 1.0
            else:
                mine, theirs = story.identifiers, candidate.identifiers
                if mine and theirs and mine.isdisjoint(theirs):
                    continue
                score = similarity(tokens, candidate.tokens)
                if score < self.threshold:
                    continue
            if best is None or score > best.score:
                best = Match(candidate.cluster_id, candidate.story_id, score, rule)
        return best

    def _candidates(self, story: IndexedStory) -> list[tuple[IndexedStory, str]]:
        counts: dict[int, int] = {}
        # A word that a large share of recent headlines carry ("ai", "china") says little about
        # sameness; skipping it keeps the search near-linear however uniform the headlines are.
        too_common = max(200, len(self._by_id) // 20)
        for token in story.tokens:
            posting = self._postings.get(token, ())
            if len(posting) > too_common:
                continue
            for story_id in posting:
                counts[story_id] = counts.get(story_id, 0) + 1
        needed = min(self.min_shared, len(story.tokens))
        found = [(self._by_id[sid], "headline") for sid, n in counts.items() if n >= needed]
        # Release rule, both ways: a news headline naming a tracked model, or a tracker story
        # whose model an earlier headline already named. Tracker stories are few, so scans are cheap.
        for tracked in self._models.values():
            if tracked.model and set(tracked.model) <= story.raw:
                found.append((tracked, "model"))
        if story.model:
            wanted = set(story.model)
            found.extend((other, "model") for other in self._by_id.values() if wanted <= other.raw)
        return found
