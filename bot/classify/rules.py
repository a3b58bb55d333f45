"""The rule-based topic classifier driven by the taxonomy.

Why rules and not a learned model: the development set is a few hundred headlines, far too few to
train anything that generalises better than explicit, reviewable evidence; rules explain themselves
(every score comes with the terms that produced it), operators can fix a miss by editing TOML, and a
dictionary-driven matcher classifies tens of thousands of stories a second on one core.

How a score is made, per topic:

* Text is lower-cased and split into alphanumeric tokens, so "GPT-5.5", "gpt 5.5" and "GPT 5.5" are
  the same token sequence and hyphens never break a phrase.
* Each signal (a named group of terms with a weight) contributes once, with a small bonus for each
  further distinct term of the same group, multiplied by `title_weight` when it matched in the title.
* A *gated* signal counts only when one of the topic's contexts (e.g. "ai": AI labs, models, LLMs)
  is present anywhere in the story. This is what separates "distillation" of whisky from distillation
  of Claude, and "IP" of a camera from IP of a model, without memorising headlines.
* `requires` expresses co-occurrence: e.g. a release needs both an announcement verb and a model noun;
  when a group is missing, the raw evidence is multiplied by `unmet_factor`.
* Negative terms (prisoners, whisky, IP address, fashion model ...) subtract weight.
* raw evidence r maps to a score 1 - exp(-r / scale), monotone and bounded in [0, 1).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.classify.addresses import address_kind
from bot.classify.features import title_tokens
from bot.classify.taxonomy import NUMBER, Taxonomy, TopicSpec, pattern_tokens, size_pattern
from bot.domain import Classification

__all__ = ["RuleAnalysis", "RuleClassifier", "apply_overrides"]

_TOKEN = re.compile(r"[a-z0-9]+")
_CACHE_LIMIT = 200_000

# A term occurrence is recorded against "slots": which context, signal or negative list it feeds.
_CONTEXT = 0
_SIGNAL = 1
_NEGATIVE = 2
_ALWAYS = 3
_NEVER = 4
_REQUIRED = 5  # a term of a topic's `address_requires` (signal = the index of its kind of address)
_TOGETHER = 6  # a term of one of a topic's `always_together` groups (signal = the group's index)


@dataclass(frozen=True, slots=True)
class _Pattern:
    term_id: int
    rest: tuple[tuple[str, bool], ...]  # tokens after the first one


# (kind, owner, signal): owner is a context index or a topic index; signal indexes the topic's signals.
_Slot = tuple[int, int, int]


class _Matcher:
    """Finds every configured term in a token list with one dictionary probe per token."""

    def __init__(self, terms: Iterable[str]) -> None:
        self.terms: list[str] = []
        self._ids: dict[str, int] = {}
        self._exact: dict[str, list[_Pattern]] = {}
        self._prefix: dict[int, dict[str, list[_Pattern]]] = {}
        # Size words ("#b" matches "7b") anywhere in a term, and the patterns that start with one.
        self._sizes: dict[str, re.Pattern[str]] = {}
        self._size_first: list[tuple[re.Pattern[str], _Pattern]] = []
        for term in terms:
            if term in self._ids:
                continue
            term_id = len(self.terms)
            self._ids[term] = term_id
            self.terms.append(term)
            tokens = pattern_tokens(term)
            for word, _ in tokens:
                size = size_pattern(word)
                if size is not None:
                    self._sizes[word] = size
            (first, first_is_prefix), rest = tokens[0], tokens[1:]
            pattern = _Pattern(term_id, rest)
            if first in self._sizes:
                self._size_first.append((self._sizes[first], pattern))
            elif first_is_prefix:
                self._prefix.setdefault(len(first), {}).setdefault(first, []).append(pattern)
            else:
                self._exact.setdefault(first, []).append(pattern)
        self._prefix_lengths = sorted(self._prefix)
        # Vocabulary repeats heavily across stories; caching each token's candidates keeps matching
        # close to one dict lookup per token.
        self._cache: dict[str, tuple[_Pattern, ...]] = {}

    def term_id(self, term: str) -> int:
        return self._ids[term]

    def _candidates(self, token: str) -> tuple[_Pattern, ...]:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        found: list[_Pattern] = list(self._exact.get(token, ()))
        for length in self._prefix_lengths:
            if length > len(token):
                break
            found.extend(self._prefix[length].get(token[:length], ()))
        if not token.isalpha():  # a size word has digits
            found.extend(pattern for size, pattern in self._size_first if size.fullmatch(token))
        result = tuple(found)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[token] = result
        return result

    def find(self, tokens: list[str]) -> dict[int, str]:
        """term id -> the matched text (first occurrence), for every term found."""
        found: dict[int, str] = {}
        cache = self._cache
        n = len(tokens)
        for i, token in enumerate(tokens):
            candidates = cache.get(token)
            if candidates is None:
                candidates = self._candidates(token)
            if not candidates:
                continue
            for pattern in candidates:
                if pattern.term_id in found:
                    continue
                rest = pattern.rest
                if not rest:
                    found[pattern.term_id] = token
                    continue
                end = i + 1 + len(rest)
                if end > n:
                    continue
                for offset, (word, is_prefix) in enumerate(rest, start=i + 1):
                    other = tokens[offset]
                    if word == NUMBER:
                        if not other[0].isdigit():
                            break
                    elif word in self._sizes:
                        if not self._sizes[word].fullmatch(other):
                            break
                    elif not (other.startswith(word) if is_prefix else other == word):
                        break
                else:
                    found[pattern.term_id] = " ".join(tokens[i:end])
        return found


@dataclass(frozen=True, slots=True)
class _TopicPlan:
    spec: TopicSpec
    context_ids: frozenset[int]
    weights: tuple[float, ...]
    gated: tuple[bool, ...]
    requires: tuple[tuple[int, ...], ...]
    title_requires: tuple[tuple[int, ...], ...]
    bare_title: frozenset[int]
    bare_only: frozenset[int]


class RuleClassifier:
    """Classifies a story's title and summary into the taxonomy's topics, with evidence."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self._topics = taxonomy.topic_names
        context_names = list(taxonomy.contexts)
        context_index = {name: i for i, name in enumerate(context_names)}

        all_terms: list[str] = []
        for ctx in taxonomy.contexts.values():
            all_terms.extend(ctx.terms)
        for topic in taxonomy.topics:
            for signal in topic.signals:
                all_terms.extend(signal.terms)
            all_terms.extend(topic.negative_terms)
            all_terms.extend(topic.always)
            all_terms.extend(topic.never)
            for _kind, required in topic.address_requires:
                all_terms.extend(required)
            for _group, together in topic.always_together:
                all_terms.extend(together)
        self._matcher = _Matcher(all_terms)

        slots: dict[int, list[_Slot]] = {}
        for i, ctx in enumerate(taxonomy.contexts.values()):
            for term in ctx.terms:
                slots.setdefault(self._matcher.term_id(term), []).append((_CONTEXT, i, -1))
        plans: list[_TopicPlan] = []
        for t, topic in enumerate(taxonomy.topics):
            for s, signal in enumerate(topic.signals):
                for term in signal.terms:
                    slots.setdefault(self._matcher.term_id(term), []).append((_SIGNAL, t, s))
            for term in topic.negative_terms:
                slots.setdefault(self._matcher.term_id(term), []).append((_NEGATIVE, t, -1))
            for term in topic.always:
                slots.setdefault(self._matcher.term_id(term), []).append((_ALWAYS, t, -1))
            for term in topic.never:
                slots.setdefault(self._matcher.term_id(term), []).append((_NEVER, t, -1))
            for k, (_kind, required) in enumerate(topic.address_requires):
                for term in required:
                    slots.setdefault(self._matcher.term_id(term), []).append((_REQUIRED, t, k))
            for k, (_group, together) in enumerate(topic.always_together):
                for term in together:
                    slots.setdefault(self._matcher.term_id(term), []).append((_TOGETHER, t, k))
            signal_index = {sig.name: i for i, sig in enumerate(topic.signals)}
            plans.append(
                _TopicPlan(
                    spec=topic,
                    context_ids=frozenset(context_index[c] for c in topic.contexts),
                    weights=tuple(sig.weight for sig in topic.signals),
                    gated=tuple(sig.gated for sig in topic.signals),
                    requires=tuple(tuple(signal_index[name] for name in group) for group in topic.requires),
                    title_requires=tuple(
                        tuple(signal_index[name] for name in group) for group in topic.title_requires
                    ),
                    bare_title=frozenset(signal_index[name] for name in topic.bare_title),
                    bare_only=frozenset(signal_index[name] for name in topic.bare_only),
                )
            )
        self._slots = {term_id: tuple(found) for term_id, found in slots.items()}
        self._plans = tuple(plans)
        self._n_contexts = len(context_names)
        self._context_names = tuple(context_names)
        address_topics: dict[str, list[str]] = {}
        for topic in taxonomy.topics:
            for kind in topic.always_addresses:
                address_topics.setdefault(kind, []).append(topic.name)
        self._address_topics = {kind: tuple(names) for kind, names in address_topics.items()}
        # kind of address -> (topic index, index of the kind in that topic's address_requires)
        address_requires: dict[str, list[tuple[int, int]]] = {}
        for t, topic in enumerate(taxonomy.topics):
            for k, (kind, _required) in enumerate(topic.address_requires):
                address_requires.setdefault(kind, []).append((t, k))
        self._address_requires = {kind: tuple(pairs) for kind, pairs in address_requires.items()}
        # (topic index, number of groups) of the topics with `always_together`
        self._together = tuple(
            (t, len(topic.always_together))
            for t, topic in enumerate(taxonomy.topics)
            if topic.always_together
        )

    @property
    def topics(self) -> tuple[str, ...]:
        return self._topics

    @property
    def contexts(self) -> tuple[str, ...]:
        return self._context_names

    def classify(self, title: str, summary: str = "", url: str | None = None) -> Classification:
        return self.analyze(title, summary, url).classification

    def analyze(self, title: str, summary: str = "", url: str | None = None) -> RuleAnalysis:
        """The rule classification plus the operator's `always`/`never` hits per topic.

        ``url``, the story's address, is read only for the topics' ``always_addresses`` and
        ``address_requires``."""
        return self.analyze_tokens(
            title_tokens(title), _TOKEN.findall(summary.lower()) if summary else [], url
        )

    def analyze_tokens(
        self, title_tokens: list[str], summary_tokens: list[str], url: str | None = None
    ) -> RuleAnalysis:
        """As :meth:`analyze`, on text already split by :func:`bot.classify.features.tokens`."""
        title_hits = self._matcher.find(title_tokens)
        summary_hits = self._matcher.find(summary_tokens) if summary_tokens else {}

        contexts_present: set[int] = set()
        # per topic: signal index -> (best location factor, matched texts in order)
        per_topic: list[dict[int, tuple[float, list[str]]]] = [{} for _ in self._plans]
        negatives: list[float] = [0.0] * len(self._plans)
        title_signals: list[set[int]] = [set() for _ in self._plans]
        # per topic: the title's texts matched by `bare_title` signals
        bare_texts: list[set[str]] = [set() for _ in self._plans]
        always: dict[str, str] = {}
        never: dict[str, str] = {}
        required: set[tuple[int, int]] = set()  # (topic, kind) whose `address_requires` term matched
        together: dict[tuple[int, int], str] = {}  # (topic, group) of `always_together` -> the text
        title_weight = self.taxonomy.title_weight

        plans = self._plans
        slots_of = self._slots
        for hits, factor, is_title in ((title_hits, title_weight, True), (summary_hits, 1.0, False)):
            for term_id, text in hits.items():
                for kind, owner, signal in slots_of.get(term_id, ()):
                    if kind == _SIGNAL:
                        if is_title:
                            title_signals[owner].add(signal)
                            if signal in plans[owner].bare_title:
                                bare_texts[owner].add(text)
                        bucket = per_topic[owner]
                        current = bucket.get(signal)
                        if current is None:
                            bucket[signal] = (factor, [text])
                        else:
                            if text not in current[1]:
                                current[1].append(text)
                            if factor > current[0]:
                                bucket[signal] = (factor, current[1])
                    elif kind == _CONTEXT:
                        contexts_present.add(owner)
                    elif kind == _ALWAYS:
                        always.setdefault(plans[owner].spec.name, text)
                    elif kind == _NEVER:
                        never.setdefault(plans[owner].spec.name, text)
                    elif kind == _REQUIRED:
                        required.add((owner, signal))
                    elif kind == _TOGETHER:
                        together.setdefault((owner, signal), text)
                    elif factor > negatives[owner]:
                        negatives[owner] = factor
        for t, groups in self._together:
            texts = [hit for k in range(groups) if (hit := together.get((t, k)))]
            if len(texts) == groups:
                # "accuses deepseek + deepseek" says "accuses deepseek": a text inside another goes.
                shown = [a for a in texts if not any(a != b and f" {a} " in f" {b} " for b in texts)]
                always.setdefault(plans[t].spec.name, " + ".join(dict.fromkeys(shown)))
        if url and (self._address_topics or self._address_requires):
            found = address_kind(url)
            if found is not None:
                address, reason = found
                for name in self._address_topics.get(address, ()):
                    always.setdefault(name, reason)
                # "Hala Technical Report": a paper that names a model but never says it is out.
                for t, k in self._address_requires.get(address, ()):
                    if (t, k) not in required:
                        never.setdefault(plans[t].spec.name, f"{reason} without a required word")

        scores: dict[str, float] = {}
        evidence: dict[str, tuple[str, ...]] = {}
        passing: list[str] = []
        bare_topics: list[str] = []
        scale = self.taxonomy.scale
        unmet = self.taxonomy.unmet_factor
        for t, plan in enumerate(self._plans):
            in_context = not plan.context_ids or not plan.context_ids.isdisjoint(contexts_present)
            raw = 0.0
            contributions: list[tuple[float, list[str]]] = []
            matched: set[int] = set()
            # "Mistral Small 3": a headline that is nothing but a model name announces that model.
            bare = bool(bare_texts[t]) and _uncovered(title_tokens, bare_texts[t]) <= 1
            for s, (factor, texts) in per_topic[t].items():
                if (plan.gated[s] and not in_context) or (s in plan.bare_only and not bare):
                    continue
                weight = plan.weights[s]
                if weight < 0:
                    raw += weight * factor
                    continue
                matched.add(s)
                # Extra distinct terms of one group corroborate, but must not let one noisy
                # group (e.g. many generic legal words) outweigh a second, independent signal.
                value = weight * factor * (1.0 + 0.25 * min(len(texts) - 1, 2))
                raw += value
                contributions.append((value, texts))
            if bare:
                bare_topics.append(plan.spec.name)
            for group in () if bare else plan.requires:
                if not any(s in matched for s in group):
                    raw *= unmet
                    break
            for group in plan.title_requires:
                if not any(s in matched and s in title_signals[t] for s in group):
                    raw *= unmet
                    break
            if negatives[t]:
                raw -= plan.spec.negative_weight * negatives[t]
            score = 0.0 if raw <= 0 else 1.0 - math.exp(-raw / scale)
            name = plan.spec.name
            scores[name] = score
            if score > 0:
                contributions.sort(key=lambda item: -item[0])
                terms: list[str] = []
                for _, texts in contributions:
                    for text in texts:
                        if text not in terms:
                            terms.append(text)
                evidence[name] = tuple(terms)
            else:
                evidence[name] = ()
            if score >= plan.spec.threshold:
                passing.append(name)
        rules_only = Classification(scores=scores, topics=tuple(passing), evidence=evidence)
        classification = rules_only
        if always or never:
            classification = apply_overrides(rules_only, self._topics, always, never)
        contexts = frozenset(self._context_names[i] for i in contexts_present)
        negative = {self._topics[t]: f for t, f in enumerate(negatives) if f}
        return RuleAnalysis(
            classification, rules_only, always, never, contexts, negative, frozenset(bare_topics)
        )


def _uncovered(title_tokens: list[str], texts: set[str]) -> int:
    """Title words outside the matched texts; version numbers ("4.5" in "GLM-4.5") count as covered."""
    covered = {word for text in texts for word in text.split(" ")}
    return sum(1 for tok in title_tokens if tok not in covered and not tok[0].isdigit())


@dataclass(frozen=True, slots=True)
class RuleAnalysis:
    classification: Classification  # with the operator's overrides applied
    rules_only: Classification  # before them (what the learned model takes as features)
    always: dict[str, str]  # topic -> the `always` term (or the kind of address) that matched
    never: dict[str, str]  # topic -> the `never` term that matched
    contexts: frozenset[str] = frozenset()  # the taxonomy's contexts present (e.g. "ai", "compute")
    negatives: dict[str, float] = field(default_factory=dict)  # topic -> a `negative` term matched
    # Topics whose headline is nothing but terms of their `bare_title` signals ("GLM-5.1",
    # "Qwen/Qwen3-Coder-480B-A35B-Instruct"): the model learns how much that alone says.
    bare: frozenset[str] = frozenset()


def apply_overrides(
    result: Classification, order: tuple[str, ...], always: dict[str, str], never: dict[str, str]
) -> Classification:
    """The operator has the last word: `never` terms remove a topic, `always` terms attach it."""
    scores = dict(result.scores)
    evidence = dict(result.evidence)
    topics = set(result.topics)
    for topic, term in always.items():
        topics.add(topic)
        scores[topic] = max(scores.get(topic, 0.0), 1.0)
        evidence[topic] = (f"always: {term}", *evidence.get(topic, ()))
    for topic, term in never.items():
        topics.discard(topic)
        scores[topic] = 0.0
        evidence[topic] = (f"never: {term}",)
    return Classification(scores=scores, topics=tuple(t for t in order if t in topics), evidence=evidence)
