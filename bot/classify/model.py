"""The learned topic model: a linear model per topic over :mod:`~bot.classify.features`, with
calibrated probabilities and a decision threshold per topic chosen out of fold (outlet-month folds).

The artefact is a small gzipped JSON file (vocabulary, weights, calibration, thresholds and the
provenance of the training data), loaded without scikit-learn: scoring is one sparse matrix product
per batch of stories. ``frontierwatch train`` (:mod:`bot.classify.train`) writes it.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, combinations, pairwise, repeat
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from bot.classify.features import (
    CHAR_N,
    MAX_SUMMARY_TOKENS,
    PREFIX_LEN,
    add_evidence,
    known_pair_words,
    readable,
    tokens,
)
from bot.classify.features import title_tokens as split_title
from bot.classify.taxonomy import TopicsConfigError

__all__ = ["MODEL_FORMAT", "LinearTopicModel", "ModelError", "TopicWeights"]

MODEL_FORMAT = "frontierwatch-topic-model/1"
_TOKEN_CACHE_LIMIT = 200_000
CONTEXT_SCALE = 1.0  # context features are dense and few: a larger value means less shrinkage

# word and prefix ids by token, title-word ids, bigram ids, version ids, title character-piece ids,
# title word-pair ids
_Lookup = tuple[
    dict[str, tuple[int, ...]],
    dict[str, int],
    dict[tuple[str, str], int],
    dict[str, int],
    dict[str, int],
    dict[tuple[str, str], int],
]


class ModelError(TopicsConfigError):
    """The model file is missing, unreadable or of another format. One line, names the file."""


@dataclass(frozen=True, slots=True)
class TopicWeights:
    name: str
    intercept: float
    calibration: tuple[float, float]  # Platt scaling: p = sigmoid(a * z + b)
    threshold: float  # on the calibrated probability


@dataclass(slots=True)
class LinearTopicModel:
    """Scores stories for the topics it was trained on. ``rule_scale`` weighs the rule scores."""

    vocabulary: dict[str, int]
    weights: np.ndarray  # (features, topics), float32
    topics: tuple[TopicWeights, ...]
    rule_topics: tuple[str, ...]  # rule scores used as features, in this order, after the vocabulary
    rule_scale: float = 1.0
    # Then, per taxonomy context (e.g. "ai"), two features: present, absent. "No AI vocabulary at
    # all" is what separates whisky distillation from model distillation.
    contexts: tuple[str, ...] = ()
    # Then, when set, per rule topic: a `negative` term of that topic matched (whisky, IP address…):
    # the operator's own list of contexts where a topic word means something else.
    negatives: bool = False
    # Then, when set, per rule topic: the headline is bare, nothing but a model's name (see
    # `bare_title` in topics.toml).
    bare: bool = False
    # Per topic, the text features worth showing as a reason: the ones that, in the training data,
    # mark the topic (see ``bot.classify.train``). A weight on "ai" or "us" helps the score but
    # explains nothing. None (a model file from before): every readable feature may be shown.
    explainable: dict[str, frozenset[int]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    _readable: list[str] = field(default_factory=list)
    _lookup: _Lookup | None = None
    _token_cache: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _title_cache: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _pair_words: frozenset[str] = frozenset()  # the words of the ``s:`` features
    _shown: np.ndarray | None = None  # see _shown_mask

    @property
    def topic_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.topics)

    # ------------------------------------------------------------------ features
    def feature_ids(self, title: str, summary: str) -> list[int]:
        """The vocabulary ids of :func:`~bot.classify.features.text_features`, computed without
        building feature strings (the hot path; a test checks both agree)."""
        return self.token_feature_ids(split_title(title), tokens(summary))

    def token_feature_ids(self, title_tokens: list[str], summary_tokens: list[str]) -> list[int]:
        lookup = self._lookup or self._compile()
        _word, _title_word, bigram, version, _chars, pairs = lookup
        cache, title_cache = self._token_cache, self._title_cache
        summary_tokens = summary_tokens[:MAX_SUMMARY_TOKENS]
        distinct = set(title_tokens)
        distinct.update(summary_tokens)
        # Per distinct token, its ids come from a cache; only new tokens are worked out. The loops
        # run as comprehensions and C-level set operations: this is the classifier's hot path.
        try:
            ids = set(chain.from_iterable(map(cache.__getitem__, distinct)))
        except KeyError:
            for tok in [t for t in distinct if t not in cache]:
                cache[tok] = self._word_ids(tok)
            ids = set(chain.from_iterable(map(cache.__getitem__, distinct)))
        try:
            ids.update(chain.from_iterable(map(title_cache.__getitem__, title_tokens)))
        except KeyError:
            for tok in [t for t in title_tokens if t not in title_cache]:
                title_cache[tok] = self._title_ids(tok)
            ids.update(chain.from_iterable(map(title_cache.__getitem__, title_tokens)))
        ids.update(map(bigram.get, pairwise(title_tokens), repeat(-1)))
        if pairs:
            words = known_pair_words(title_tokens, self._pair_words)
            if len(words) > 1:
                ids.update(map(pairs.get, combinations(words, 2), repeat(-1)))
        ids.discard(-1)
        if not version.keys().isdisjoint(distinct):  # rare: a known name followed by a number
            for seq in (title_tokens, summary_tokens):
                for previous, tok in pairwise(seq):
                    if tok[0].isdigit() and not previous[0].isdigit():
                        ver = version.get(previous)
                        if ver is not None:
                            ids.add(ver)
        if len(cache) > _TOKEN_CACHE_LIMIT or len(title_cache) > _TOKEN_CACHE_LIMIT:
            cache.clear()
            title_cache.clear()
        return list(ids)

    def _word_ids(self, tok: str) -> tuple[int, ...]:
        word = (self._lookup or self._compile())[0]
        found = word.get(tok, ())
        if len(tok) > PREFIX_LEN + 1 and not tok[0].isdigit():
            found = (*found, *word.get("\x00" + tok[:PREFIX_LEN], ()))
        return found

    def _title_ids(self, tok: str) -> tuple[int, ...]:
        _word, title_word, _bigram, _version, chars, _pairs = self._lookup or self._compile()
        padded = " " + tok + " "
        pieces = [chars.get(padded[i : i + CHAR_N]) for i in range(len(padded) - CHAR_N + 1)]
        return tuple(i for i in (title_word.get(tok), *pieces) if i is not None)

    def _compile(self) -> _Lookup:
        word: dict[str, tuple[int, ...]] = {}
        title_word: dict[str, int] = {}
        bigram: dict[tuple[str, str], int] = {}
        version: dict[str, int] = {}
        chars: dict[str, int] = {}
        pairs: dict[tuple[str, str], int] = {}
        for feature, i in self.vocabulary.items():
            kind, _, text = feature.partition(":")
            if kind == "w":
                word[text] = (*word.get(text, ()), i)
            elif kind == "p":
                word["\x00" + text] = (i,)  # prefixes live beside words, marked so they never clash
            elif kind == "t":
                title_word[text] = i
            elif kind == "b":
                first, _, second = text.partition(" ")
                bigram[(first, second)] = i
            elif kind == "v":
                version[text.removesuffix(" #")] = i
            elif kind == "c":
                chars[text] = i
            elif kind == "s":
                first, _, second = text.partition(" ")
                pairs[(first, second)] = i
        self._pair_words = frozenset(w for pair in pairs for w in pair)
        self._lookup = (word, title_word, bigram, version, chars, pairs)
        return self._lookup

    @property
    def n_extra(self) -> int:
        return _extra_columns(len(self.rule_topics), len(self.contexts), self.negatives, self.bare)

    def feature_rows(
        self,
        stories: Sequence[tuple[list[str], list[str]]],
        rule_scores: Sequence[dict[str, float]],
        contexts: Sequence[frozenset[str]] | None = None,
        negatives: Sequence[dict[str, float]] | None = None,
        bare: Sequence[frozenset[str]] | None = None,
    ) -> sp.csr_matrix:
        """One row per story, given as (title tokens, summary tokens)."""
        n_text = len(self.vocabulary)
        n_rules = len(self.rule_topics)
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        present_all = contexts or [frozenset()] * len(stories)
        negatives_all = negatives or [{}] * len(stories)
        bare_all = bare or [frozenset()] * len(stories)
        n_ctx = 2 * len(self.contexts)
        bare_offset = n_text + n_rules + n_ctx + (n_rules if self.negatives else 0)
        for (title_tokens, summary_tokens), rules, present, negative, bare_topics in zip(
            stories, rule_scores, present_all, negatives_all, bare_all, strict=True
        ):
            ids = self.token_feature_ids(title_tokens, summary_tokens)
            if ids:
                value = 1.0 / math.sqrt(len(ids))
                indices.extend(ids)
                data.extend([value] * len(ids))
            for k, topic in enumerate(self.rule_topics):
                score = rules.get(topic, 0.0)
                if score:
                    indices.append(n_text + k)
                    data.append(score * self.rule_scale)
            for c, name in enumerate(self.contexts):
                indices.append(n_text + n_rules + 2 * c + (0 if name in present else 1))
                data.append(CONTEXT_SCALE)
            if self.negatives and negative:
                for k, topic in enumerate(self.rule_topics):
                    if topic in negative:
                        indices.append(n_text + n_rules + n_ctx + k)
                        data.append(CONTEXT_SCALE)
            if self.bare and bare_topics:
                for k, topic in enumerate(self.rule_topics):
                    if topic in bare_topics:
                        indices.append(bare_offset + k)
                        data.append(CONTEXT_SCALE)
            indptr.append(len(indices))
        shape = (len(stories), n_text + self.n_extra)
        return sp.csr_matrix(
            (np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int32), indptr), shape=shape
        )

    # ------------------------------------------------------------------ scoring
    def margins(self, rows: sp.csr_matrix) -> np.ndarray:
        intercepts = np.asarray([t.intercept for t in self.topics], dtype=np.float32)
        return np.asarray(rows @ self.weights) + intercepts

    def probabilities(self, margins: np.ndarray) -> np.ndarray:
        a = np.asarray([t.calibration[0] for t in self.topics], dtype=np.float64)
        b = np.asarray([t.calibration[1] for t in self.topics], dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-(margins * a + b)))

    def explain(self, rows: sp.csr_matrix, row: int, topic: int, limit: int = 4) -> list[str]:
        """The features that raised this story's score for this topic the most, readable."""
        start, end = rows.indptr[row], rows.indptr[row + 1]
        found = rows.indices[start:end]
        weighted = self.weights[found, topic] * rows.data[start:end]
        # Only text features worth showing that raised the score, then in Python lists: the loop
        # reads a few of them, and numpy scalars are slow to compare.
        keep = (weighted > 0) & self._shown_mask(topic)[found]
        found, weighted = found[keep], weighted[keep]
        order = np.argsort(-weighted, kind="stable").tolist()
        idx = found.tolist()
        texts = self._texts()
        out: list[str] = []
        keys: list[tuple[str, bool]] = []
        for j in order:
            add_evidence(out, keys, texts[idx[j]])
            if len(out) >= limit:
                break
        return out

    def _shown_mask(self, topic: int) -> np.ndarray:
        """Per column, whether it may be shown as a reason for ``topic``: a text feature (the rule's
        own terms are listed separately) that marks the topic (``explainable``)."""
        if self._shown is None:
            readable_text = np.zeros(self.weights.shape[0], dtype=bool)
            readable_text[: len(self.vocabulary)] = [bool(text) for text in self._texts()]
            shown = np.zeros((self.weights.shape[0], len(self.topics)), dtype=bool)
            for k, t in enumerate(self.topics):
                marks = self.explainable.get(t.name) if self.explainable is not None else None
                if marks is None:
                    shown[:, k] = readable_text
                elif marks:
                    shown[np.fromiter(marks, dtype=np.int64, count=len(marks)), k] = True
                    shown[:, k] &= readable_text
            self._shown = shown
        return self._shown[:, topic]

    def _texts(self) -> list[str]:
        """Per text feature, how an explanation shows it, by vocabulary id: "" for a feature never
        shown (kept small: only the features that mark some topic are worked out)."""
        if not self._readable:
            texts = [""] * len(self.vocabulary)
            marks = frozenset().union(*self.explainable.values()) if self.explainable is not None else None
            for feature, i in self.vocabulary.items():
                if marks is None or i in marks:
                    texts[i] = readable(feature)
            self._readable = texts
        return self._readable

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        features = [""] * len(self.vocabulary)
        for feature, i in self.vocabulary.items():
            features[i] = feature
        columns = {
            t.name: [round(float(x), 6) for x in self.weights[:, k]] for k, t in enumerate(self.topics)
        }
        return {
            "format": MODEL_FORMAT,
            "meta": self.meta,
            "rule_topics": list(self.rule_topics),
            "rule_scale": self.rule_scale,
            "contexts": list(self.contexts),
            "negatives": self.negatives,
            **({"bare": True} if self.bare else {}),
            "topics": [
                {
                    "name": t.name,
                    "intercept": round(t.intercept, 6),
                    "calibration": [round(t.calibration[0], 6), round(t.calibration[1], 6)],
                    "threshold": round(t.threshold, 4),
                }
                for t in self.topics
            ],
            "features": features,
            "weights": columns,
            **(
                {"explainable": {name: sorted(ids) for name, ids in self.explainable.items()}}
                if self.explainable is not None
                else {}
            ),
        }

    def save(self, path: Path) -> None:
        text = json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # mtime=0 and no file name in the header: the same model gives the same bytes.
        with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:
            fh.write(text.encode("utf-8"))

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "<model>") -> LinearTopicModel:
        if data.get("format") != MODEL_FORMAT:
            raise ModelError(f"{where}: not a {MODEL_FORMAT} file (format {data.get('format')!r})")
        try:
            features: list[str] = list(data["features"])
            topics = tuple(
                TopicWeights(
                    t["name"], float(t["intercept"]), (float(t["calibration"][0]), float(t["calibration"][1])),
                    float(t["threshold"]),
                )
                for t in data["topics"]
            )  # fmt: skip
            rule_topics = tuple(data["rule_topics"])
            contexts = tuple(data.get("contexts") or ())
            negatives = bool(data.get("negatives", False))
            shown = data.get("explainable")
            explainable = (
                {str(name): frozenset(int(i) for i in ids) for name, ids in shown.items()}
                if shown is not None
                else None
            )
            bare = bool(data.get("bare", False))
            n = len(features) + _extra_columns(len(rule_topics), len(contexts), negatives, bare)
            weights = np.zeros((n, len(topics)), dtype=np.float32)
            for k, t in enumerate(topics):
                column = data["weights"][t.name]
                if len(column) != n:
                    raise ModelError(f"{where}: topic {t.name!r} has {len(column)} weights, expected {n}")
                weights[:, k] = np.asarray(column, dtype=np.float32)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"{where}: malformed model file ({type(exc).__name__}: {exc})") from None
        return cls(
            vocabulary={f: i for i, f in enumerate(features)},
            weights=weights,
            topics=topics,
            rule_topics=rule_topics,
            rule_scale=float(data.get("rule_scale", 1.0)),
            contexts=contexts,
            negatives=negatives,
            bare=bare,
            explainable=explainable,
            meta=dict(data.get("meta") or {}),
        )

    @classmethod
    def load(cls, path: Path) -> LinearTopicModel:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            raise ModelError(f"{path}: model file not found (run `frontierwatch train`)") from None
        except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path}: cannot read the model: {exc}") from None
        if not isinstance(data, dict):
            raise ModelError(f"{path}: not a model file")
        return cls.from_json(data, str(path))


def _extra_columns(rule_topics: int, contexts: int, negatives: bool, bare: bool) -> int:
    """Columns after the text features: per rule topic its score, then (when set) whether one of
    its negatives matched and whether the headline is bare; two per context."""
    return rule_topics * (1 + negatives + bare) + 2 * contexts
