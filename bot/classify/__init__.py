"""Topic classification: taxonomy loading, the rule classifier, channel keyword filters, evaluation.

Everything the rest of the bot needs is importable from here; `load_classifier` is the one
constructor the composition root calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from bot.classify.keywords import KeywordFilter
from bot.classify.rules import RuleClassifier
from bot.classify.taxonomy import Taxonomy, TopicsConfigError, load_taxonomy, parse_taxonomy
from bot.domain import Classification

__all__ = [
    "Classifier",
    "KeywordFilter",
    "RuleClassifier",
    "Taxonomy",
    "TopicsConfigError",
    "load_classifier",
    "parse_taxonomy",
]


@runtime_checkable
class Classifier(Protocol):
    """Anything that scores a story against the topics. Implementations must be pure and thread-safe
    enough to call from a worker: no I/O, no network."""

    @property
    def topics(self) -> tuple[str, ...]: ...

    def classify(self, title: str, summary: str = "") -> Classification: ...


def load_classifier(path: Path) -> Classifier:
    """Build the classifier from a taxonomy file; raises `TopicsConfigError` with file, line and key."""
    return RuleClassifier(load_taxonomy(path))
