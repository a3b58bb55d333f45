"""Topic classification: taxonomy loading, the rule classifier, channel keyword filters, evaluation.

Everything the rest of the bot needs is importable from here; `load_classifier` is the one
constructor the composition root calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from bot.classify.keywords import KeywordFilter
from bot.classify.rules import RuleClassifier
from bot.classify.taxonomy import Taxonomy, TopicsConfigError, load_taxonomy, parse_taxonomy
from bot.domain import Classification, StoryText, story_url

#: The model shipped with the package, trained by `frontierwatch train` from `config/labelled`.
PACKAGED_MODEL = Path(__file__).resolve().parent / "data" / "topic-model.json.gz"

__all__ = [
    "PACKAGED_MODEL",
    "Classifier",
    "KeywordFilter",
    "RuleClassifier",
    "Taxonomy",
    "TopicsConfigError",
    "classify_many",
    "load_classifier",
    "parse_taxonomy",
    "topic_thresholds",
]


@runtime_checkable
class Classifier(Protocol):
    """Anything that scores a story against the topics. Implementations must be pure and thread-safe
    enough to call from a worker: no I/O, no network."""

    @property
    def topics(self) -> tuple[str, ...]: ...

    def classify(self, title: str, summary: str = "", url: str | None = None) -> Classification: ...


def classify_many(classifier: Classifier, stories: Sequence[StoryText]) -> list[Classification]:
    """Classify a batch, in one pass when the classifier can (the learned model scores batches)."""
    many = getattr(classifier, "classify_many", None)
    if callable(many):
        return list(many(stories))
    # A classifier written before addresses existed takes (title, summary): pass a url only when known.
    return [
        classifier.classify(story[0], story[1], url)
        if (url := story_url(story))
        else classifier.classify(*story[:2])
        for story in stories
    ]


def topic_thresholds(classifier: Classifier) -> dict[str, float]:
    """Each topic's attach threshold, for the hybrid and the rules-only classifier alike."""
    known = getattr(classifier, "thresholds", None)
    if isinstance(known, dict):
        return {str(t): float(v) for t, v in known.items()}
    taxonomy = getattr(classifier, "taxonomy", None)
    if taxonomy is not None:
        return {t.name: float(t.threshold) for t in taxonomy.topics}
    return {}


def load_classifier(path: Path, model: Path | str | None = "") -> Classifier:
    """Build the classifier: the taxonomy's rules, plus the learned model where it was trained.

    ``model``: ``""`` = the packaged model, ``"off"`` or None = rules only, else a model file (e.g.
    one written by ``frontierwatch train --out``). Raises `TopicsConfigError` (file, line and key)
    for a bad taxonomy and `ModelError` for an unreadable model file."""
    from bot.classify.hybrid import HybridClassifier
    from bot.classify.model import LinearTopicModel

    rules = RuleClassifier(load_taxonomy(path))
    if model is None or model == "off":
        return rules
    model_path = PACKAGED_MODEL if model == "" else Path(model)
    if model == "" and not model_path.exists():
        return HybridClassifier(rules, None)
    return HybridClassifier(rules, LinearTopicModel.load(model_path))
