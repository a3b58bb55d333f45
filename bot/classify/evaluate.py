"""Measure a classifier against a labeled JSON Lines file (`frontierwatch eval FILE.jsonl`).

Each line is a JSON object with `title`, optional `summary` and `topics` (the list of topics the
story truly belongs to, possibly empty); other fields (`url`, `outlet`, ...) are carried along.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.classify import Classifier, classify_many
from bot.domain import Classification

__all__ = [
    "EvalReport",
    "LabeledItem",
    "LabeledSetError",
    "Misclassified",
    "TopicMetrics",
    "evaluate",
    "format_report",
    "load_labeled",
    "parse_labeled",
    "score_results",
]


class LabeledSetError(ValueError):
    """A labeled file is unreadable or has a bad line; the message names file and line."""


@dataclass(frozen=True, slots=True)
class LabeledItem:
    title: str
    summary: str
    topics: frozenset[str]
    line: int = 0
    url: str | None = None
    outlet: str | None = None
    hard_negative: bool = False
    published: str | None = None  # "YYYY-MM-DD…": with the outlet, the group a split keeps together


@dataclass(frozen=True, slots=True)
class TopicMetrics:
    topic: str
    tp: int
    fp: int
    fn: int

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        predicted = self.tp + self.fp
        # Nothing predicted: perfect precision only if there was nothing to find either.
        if predicted == 0:
            return 1.0 if self.support == 0 else 0.0
        return self.tp / predicted

    @property
    def recall(self) -> float:
        return self.tp / self.support if self.support else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def in_play(self) -> bool:
        """The topic had items or predictions: its figures say something about the classifier."""
        return bool(self.tp or self.fp or self.fn)


@dataclass(frozen=True, slots=True)
class Misclassified:
    item: LabeledItem
    expected: tuple[str, ...]
    got: tuple[str, ...]
    scores: dict[str, float]
    evidence: dict[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class EvalReport:
    per_topic: dict[str, TopicMetrics]
    items: int
    exact_match: int
    misclassified: list[Misclassified] = field(default_factory=list)
    hard_negatives: int = 0  # items marked hard_negative (no topic, but a trap word or AI off-topic)
    hard_negatives_flagged: int = 0  # of those, how many got a topic

    @property
    def hard_negative_rate(self) -> float:
        return self.hard_negatives_flagged / self.hard_negatives if self.hard_negatives else 0.0

    @property
    def scored_topics(self) -> list[TopicMetrics]:
        """The topics the macro averages are over: those with items or predictions. A topic with
        neither says nothing about the classifier, and counting it as a perfect 1.000 would lift
        the macro-F1 of a file without, say, a distillation story (news-2025: 0.811 against 0.748
        over its three topics). A topic with no items but false alarms stays in, at F1 0."""
        return [m for m in self.per_topic.values() if m.in_play]

    @property
    def unscored_topics(self) -> list[str]:
        return [m.topic for m in self.per_topic.values() if not m.in_play]

    def _macro(self, value: Callable[[TopicMetrics], float]) -> float:
        if not self.per_topic:
            return 0.0
        scored = self.scored_topics
        if not scored:  # nothing to find and nothing flagged: every topic is right
            return 1.0
        return sum(value(m) for m in scored) / len(scored)

    @property
    def macro_f1(self) -> float:
        return self._macro(lambda m: m.f1)

    @property
    def macro_precision(self) -> float:
        return self._macro(lambda m: m.precision)

    @property
    def macro_recall(self) -> float:
        return self._macro(lambda m: m.recall)


def _item_from(record: Any, lineno: int, where: str) -> LabeledItem:
    def bad(message: str) -> LabeledSetError:
        return LabeledSetError(f"{where}:{lineno}: {message}")

    if not isinstance(record, dict):
        raise bad("expected a JSON object")
    title = record.get("title")
    if not isinstance(title, str) or not title.strip():
        raise bad("'title' must be a non-empty string")
    summary = record.get("summary", "")
    if summary is None:
        summary = ""
    if not isinstance(summary, str):
        raise bad("'summary' must be a string")
    key = "topics" if "topics" in record else "labels"
    if key not in record:
        raise bad("missing 'topics' (or 'labels'; use [] for a story that belongs to no topic)")
    topics = record[key]
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise bad(f"'{key}' must be a list of strings")
    url = record.get("url")
    outlet = record.get("outlet")
    return LabeledItem(
        title=title,
        summary=summary,
        topics=frozenset(topics),
        line=lineno,
        url=url if isinstance(url, str) else None,
        outlet=outlet if isinstance(outlet, str) else None,
        hard_negative=record.get("hard_negative") is True and not topics,
        published=published if isinstance(published := record.get("published"), str) else None,
    )


def parse_labeled(lines: Iterable[str], where: str = "<input>") -> list[LabeledItem]:
    """Parse labeled JSON Lines; blank lines are skipped, a bad line raises `LabeledSetError`."""
    items: list[LabeledItem] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        from bot.classify.jsonl import describe_json_error

        line = line.rstrip("\r\n")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LabeledSetError(f"{where}:{lineno}: {describe_json_error(line, exc)}") from None
        items.append(_item_from(record, lineno, where))
    return items


def load_labeled(path: Path | str) -> list[LabeledItem]:
    """Read a labeled file; raises `LabeledSetError` with the line number of a bad line."""
    p = Path(path)
    try:
        with p.open(encoding="utf-8") as fh:
            return parse_labeled(fh, str(p))
    except OSError as exc:
        raise LabeledSetError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise LabeledSetError(f"{p}: not UTF-8 text: {exc}") from None


def evaluate(classifier: Classifier, items: Sequence[LabeledItem]) -> EvalReport:
    """Per-topic precision/recall/F1 over `items`; labels naming unknown topics are an error."""
    _check_topics(classifier.topics, items)
    results = classify_many(classifier, [(i.title, i.summary, i.url) for i in items])
    return score_results(classifier.topics, items, results)


def _check_topics(topics: Sequence[str], items: Sequence[LabeledItem]) -> None:
    known = set(topics)
    for item in items:
        unknown = item.topics - known
        if unknown:
            raise LabeledSetError(
                f"line {item.line}: unknown topic(s) {', '.join(sorted(unknown))}; "
                f"the classifier knows {', '.join(topics)}"
            )


def score_results(
    topics: Sequence[str], items: Sequence[LabeledItem], results: Sequence[Classification]
) -> EvalReport:
    """The report for classifications made elsewhere, one per item in order (e.g. by the fold
    models of a cross-validation, each of which saw only part of `items`)."""
    _check_topics(topics, items)
    if len(results) != len(items):
        raise ValueError(f"{len(results)} classifications for {len(items)} items")
    counts = {t: [0, 0, 0] for t in topics}  # tp, fp, fn
    wrong: list[Misclassified] = []
    exact = 0
    hard = flagged = 0
    for item, result in zip(items, results, strict=True):
        got = set(result.topics)
        if item.hard_negative:
            hard += 1
            flagged += bool(got)
        for topic in topics:
            expected_here = topic in item.topics
            got_here = topic in got
            if expected_here and got_here:
                counts[topic][0] += 1
            elif got_here:
                counts[topic][1] += 1
            elif expected_here:
                counts[topic][2] += 1
        if got == item.topics:
            exact += 1
        else:
            wrong.append(
                Misclassified(
                    item=item,
                    expected=tuple(t for t in topics if t in item.topics),
                    got=tuple(t for t in topics if t in got),
                    scores=dict(result.scores),
                    evidence=dict(result.evidence),
                )
            )
    per_topic = {t: TopicMetrics(t, *counts[t]) for t in topics}
    return EvalReport(
        per_topic=per_topic,
        items=len(items),
        exact_match=exact,
        misclassified=wrong,
        hard_negatives=hard,
        hard_negatives_flagged=flagged,
    )


def format_report(report: EvalReport, *, max_items: int | None = None) -> str:
    """A fixed-width table of the metrics, then the misclassified items with scores and evidence."""
    width = max([len("topic"), len("macro"), *(len(t) for t in report.per_topic)])
    lines = [
        f"{'topic':<{width}}  precision  recall     F1  support   tp   fp   fn",
        "-" * (width + 46),
    ]
    for m in report.per_topic.values():
        lines.append(
            f"{m.topic:<{width}}  {m.precision:9.3f}  {m.recall:6.3f}  {m.f1:5.3f}  {m.support:7d}"
            f"  {m.tp:3d}  {m.fp:3d}  {m.fn:3d}"
        )
    lines.append("-" * (width + 46))
    lines.append(
        f"{'macro':<{width}}  {report.macro_precision:9.3f}  {report.macro_recall:6.3f}  {report.macro_f1:5.3f}"
        f"  {report.items:7d}"
    )
    unscored = report.unscored_topics
    if unscored and len(unscored) < len(report.per_topic):
        lines.append(f"(macro over the topics with items or predictions; not counted: {', '.join(unscored)})")
    lines.append("")
    lines.append(
        f"macro-F1 {report.macro_f1:.3f} · {report.exact_match}/{report.items} items exactly right · "
        f"{len(report.misclassified)} misclassified"
    )
    if report.hard_negatives:
        lines.append(
            f"hard negatives flagged: {report.hard_negatives_flagged}/{report.hard_negatives} "
            f"({report.hard_negative_rate:.1%})"
        )
    if report.misclassified:
        lines.append("")
        lines.append("Misclassified:")
        shown = report.misclassified if max_items is None else report.misclassified[:max_items]
        for miss in shown:
            where = f"line {miss.item.line}: " if miss.item.line else ""
            lines.append(f"- {where}{miss.item.title}")
            lines.append(
                f"    expected [{', '.join(miss.expected) or '-'}]  got [{', '.join(miss.got) or '-'}]"
            )
            scores = "  ".join(f"{t}={s:.2f}" for t, s in miss.scores.items())
            lines.append(f"    scores   {scores}")
            involved = [t for t in miss.scores if t in miss.expected or t in miss.got]
            for topic in involved:
                terms = ", ".join(miss.evidence.get(topic, ())[:6])
                lines.append(f"    {topic:<12} {terms or '(no evidence)'}")
        if max_items is not None and len(report.misclassified) > max_items:
            lines.append(f"... and {len(report.misclassified) - max_items} more")
    return "\n".join(lines)
