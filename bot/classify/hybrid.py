"""The production classifier: the learned model where it was trained, the rules everywhere else.

* A topic the model knows is scored by the model's calibrated probability (the rule scores are among
  its inputs) and attached at the threshold chosen out of fold on train + validation.
* A topic added to ``config/topics.toml`` without training data runs on its rules alone.
* A topic with ``model_requires_context`` (natsec) is scored by the model only in a story where one
  of its contexts is present (an AI or AI-chip word), as it was trained; in any other story its
  rules decide, where only ungated terms can score.
* ``always`` / ``never`` terms of a topic override both, and so does the story's address: one that
  a topic's ``always_addresses`` names attaches it (a Hugging Face model repository is a release),
  one whose ``address_requires`` words are missing removes it (a paper that never says its model
  is out is not a release).
* Evidence lists up to three rule terms that matched, then the model's strongest features for the
  topic (only words that mark the topic in the training data, not "ai" or "us"), so an alert can
  always say why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.classify.features import merge_evidence, title_tokens, tokens
from bot.classify.model import LinearTopicModel
from bot.classify.rules import RuleClassifier, apply_overrides
from bot.domain import Classification, StoryText, story_url

__all__ = ["HybridClassifier"]

log = logging.getLogger(__name__)

MAX_EVIDENCE = 6
LEADING_RULE_TERMS = 3


class HybridClassifier:
    def __init__(self, rules: RuleClassifier, model: LinearTopicModel | None) -> None:
        self.rules = rules
        self.model = model
        self._topics = rules.topics
        known = set(self._topics)
        self._model_topics = (
            {name: k for k, name in enumerate(model.topic_names) if name in known} if model else {}
        )
        # Topics the model scores only where one of their contexts is present (as it was trained).
        self._gates = rules.taxonomy.model_gates
        trained = model.meta.get("topics", {}) if model else {}
        for name in self._model_topics:
            info = trained.get(name)
            if isinstance(info, dict) and ("model_requires_context" in info) != (name in self._gates):
                log.warning(
                    "topic %r: model_requires_context is %s in the taxonomy but the model was trained "
                    "%s it; run `frontierwatch train` so the two agree",
                    name,
                    "on" if name in self._gates else "off",
                    "without" if name in self._gates else "with",
                )

    @property
    def topics(self) -> tuple[str, ...]:
        return self._topics

    @property
    def model_topics(self) -> tuple[str, ...]:
        """Topics scored by the learned model (the others run on their rules)."""
        return tuple(t for t in self._topics if t in self._model_topics)

    @property
    def thresholds(self) -> dict[str, float]:
        """The score at which each topic is attached: the model's threshold (picked on
        validation) for a topic it was trained on, the rules' threshold from topics.toml for the
        others. What the console's Review queue measures "near a threshold" against."""
        model_thresholds = {t.name: t.threshold for t in self.model.topics} if self.model else {}
        rule_thresholds = {t.name: t.threshold for t in self.rules.taxonomy.topics}
        return {
            topic: model_thresholds[topic] if topic in self._model_topics else rule_thresholds[topic]
            for topic in self._topics
        }

    def classify(self, title: str, summary: str = "", url: str | None = None) -> Classification:
        return self.classify_many([(title, summary or "", url)])[0]

    def classify_many(self, stories: Sequence[StoryText]) -> list[Classification]:
        """Classify a batch: one sparse product for the whole batch (how ingest calls it)."""
        split = [(title_tokens(story[0]), tokens(story[1])) for story in stories]
        analyses = [
            self.rules.analyze_tokens(t, s, story_url(story))
            for (t, s), story in zip(split, stories, strict=True)
        ]
        model = self.model
        if model is None or not self._model_topics:
            return [a.classification for a in analyses]
        rows = model.feature_rows(
            split,
            [a.rules_only.scores for a in analyses],
            [a.contexts for a in analyses],
            [a.negatives for a in analyses],
            [a.bare for a in analyses],
        )
        probs = model.probabilities(model.margins(rows)).tolist()  # Python floats: cheap to index
        thresholds = {t.name: t.threshold for t in model.topics}
        plan = [
            (topic, self._model_topics.get(topic), thresholds.get(topic, 1.0), self._gates.get(topic))
            for topic in self._topics
        ]
        out: list[Classification] = []
        for i, analysis in enumerate(analyses):
            rules_only = analysis.rules_only
            rule_scores, rule_evidence = rules_only.scores, rules_only.evidence
            row = probs[i]
            scores: dict[str, float] = {}
            evidence: dict[str, tuple[str, ...]] = {}
            passing: list[str] = []
            for topic, k, threshold, gate in plan:
                # No training data, or a story outside those the model was trained on (a gated
                # topic without its contexts, where only ungated terms such as "lethal autonomous
                # weapons" can score): the rules decide.
                if k is None or (gate is not None and not gate & analysis.contexts):
                    scores[topic] = rule_scores.get(topic, 0.0)
                    evidence[topic] = rule_evidence.get(topic, ())
                    if topic in rules_only.topics:
                        passing.append(topic)
                    continue
                score = scores[topic] = row[k]
                if score >= threshold:  # attached: say why, from the model and the rules
                    # The operator's rule terms lead (curated reasons), then the learned features
                    # that raised the score most, then any further rule terms.
                    ruled = rule_evidence.get(topic, ())
                    terms = merge_evidence(
                        [*ruled[:LEADING_RULE_TERMS], *model.explain(rows, i, k), *ruled[LEADING_RULE_TERMS:]]
                    )
                    evidence[topic] = tuple(terms[:MAX_EVIDENCE])
                    passing.append(topic)
                else:  # not attached: the rule terms that matched, if any, still say what was seen
                    evidence[topic] = rule_evidence.get(topic, ())
            result = Classification(scores=scores, topics=tuple(passing), evidence=evidence)
            if analysis.always or analysis.never:
                result = apply_overrides(result, self._topics, analysis.always, analysis.never)
            out.append(result)
        return out
