"""Measure story clustering against labelled coverage (`frontierwatch cluster-eval FILE.jsonl`).

Each line is a JSON object with `title`, `summary`, `url`, `outlet`, `published` (ISO 8601) and
`event` (the real-world happening it reports; two records with the same `event` are the same
story). Records run through :class:`~bot.pipeline.cluster.ClusterIndex` exactly as ingest feeds it,
one story at a time in published order, and the resulting clusters are compared with the events:

* pairwise precision / recall / F1 over pairs of records (same cluster vs same event);
* B-cubed precision / recall / F1, averaged over records (each record's cluster against its event),
  which weighs every story equally however big its event.

A wrong merge hides a story from a channel, a split only repeats one: read precision first.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.pipeline.cluster import ClusterIndex, IndexedStory, index_entry

__all__ = [
    "ClusterReport",
    "CoverageItem",
    "CoverageSetError",
    "arriving",
    "cluster_items",
    "evaluate_clustering",
    "format_details",
    "load_coverage",
    "parse_coverage",
    "score_clusters",
]


class CoverageSetError(ValueError):
    """A coverage file is unreadable or has a bad line; the message names file and line."""


@dataclass(frozen=True, slots=True)
class CoverageItem:
    title: str
    summary: str
    url: str
    outlet: str
    published: datetime
    event: str
    line: int = 0


@dataclass(slots=True)
class ClusterReport:
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    events: int
    clusters: int
    items: int
    wrong_merges: list[list[CoverageItem]] = field(default_factory=list)  # clusters holding 2+ events
    splits: list[list[list[CoverageItem]]] = field(default_factory=list)  # events over 2+ clusters

    def figures(self) -> dict[str, Any]:
        return {
            "pairwise_precision": round(self.pairwise_precision, 4),
            "pairwise_recall": round(self.pairwise_recall, 4),
            "pairwise_f1": round(self.pairwise_f1, 4),
            "bcubed_precision": round(self.bcubed_precision, 4),
            "bcubed_recall": round(self.bcubed_recall, 4),
            "bcubed_f1": round(self.bcubed_f1, 4),
            "events": self.events,
            "clusters": self.clusters,
        }


def _parse_time(value: object, where: str) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise CoverageSetError(f"{where}: 'published' must be an ISO 8601 date-time")
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CoverageSetError(f"{where}: 'published' is not an ISO 8601 date-time: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_coverage(lines: Iterable[str], where: str = "<input>") -> list[CoverageItem]:
    """Parse coverage JSON Lines; blank lines are skipped, a bad line raises `CoverageSetError`."""
    from bot.classify.jsonl import describe_json_error

    items: list[CoverageItem] = []
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        at = f"{where}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CoverageSetError(f"{at}: {describe_json_error(line, exc)}") from None
        if not isinstance(record, dict):
            raise CoverageSetError(f"{at}: expected a JSON object")
        for key in ("title", "outlet", "event"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise CoverageSetError(f"{at}: {key!r} must be a non-empty string")
        summary = record.get("summary") or ""
        if not isinstance(summary, str):
            raise CoverageSetError(f"{at}: 'summary' must be a string")
        items.append(
            CoverageItem(
                title=record["title"],
                summary=summary,
                url=str(record.get("url") or ""),
                outlet=record["outlet"],
                published=_parse_time(record.get("published"), at),
                event=record["event"],
                line=lineno,
            )
        )
    return items


def load_coverage(path: Path) -> list[CoverageItem]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CoverageSetError(f"{path}: cannot read: {exc}") from None
    return parse_coverage(text.splitlines(), str(path))


def arriving(items: Sequence[CoverageItem], index: ClusterIndex) -> Iterator[tuple[int, IndexedStory]]:
    """Each item's position and index view, one at a time in published order, with ``index``
    pruned to that moment, as ingest feeds it; the caller places the story and adds it."""
    order = sorted(range(len(items)), key=lambda i: (items[i].published, i))
    for n, i in enumerate(order, start=1):
        item = items[i]
        index.prune(item.published)
        yield (
            i,
            index_entry(
                story_id=n,
                cluster_id=n,
                outlet=item.outlet,
                title=item.title,
                summary=item.summary,
                at=item.published,
            ),
        )


def cluster_items(items: Sequence[CoverageItem], index: ClusterIndex | None = None) -> list[int]:
    """The cluster id of each item, clustered one at a time in published order, as ingest does."""
    index = ClusterIndex() if index is None else index  # an empty index is falsy (len 0)
    assigned = [0] * len(items)
    for i, story in arriving(items, index):
        match = index.find(story)
        if match is not None:
            story.cluster_id = match.cluster_id
        index.add(story)
        assigned[i] = story.cluster_id
    return assigned


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def evaluate_clustering(items: Sequence[CoverageItem], index: ClusterIndex | None = None) -> ClusterReport:
    """Cluster ``items`` as ingest would and compare the clusters with their events."""
    if not items:
        raise CoverageSetError("no labelled items")
    return score_clusters(items, cluster_items(items, index))


def score_clusters(items: Sequence[CoverageItem], clusters: Sequence[int]) -> ClusterReport:
    """Compare a cluster id per item with the items' events."""
    if not items:
        raise CoverageSetError("no labelled items")
    events = [item.event for item in items]
    by_cluster: dict[int, list[int]] = defaultdict(list)
    by_event: dict[str, list[int]] = defaultdict(list)
    for i, (c, e) in enumerate(zip(clusters, events, strict=True)):
        by_cluster[c].append(i)
        by_event[e].append(i)

    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    together = sum(pairs(len(m)) for m in by_cluster.values())
    same_event = sum(pairs(len(m)) for m in by_event.values())
    correct = sum(pairs(n) for m in by_cluster.values() for n in Counter(events[i] for i in m).values())
    pp = correct / together if together else 1.0
    pr = correct / same_event if same_event else 1.0

    bp = br = 0.0
    for i in range(len(items)):
        mine = by_cluster[clusters[i]]
        shared = sum(1 for j in mine if events[j] == events[i])
        bp += shared / len(mine)
        br += shared / len(by_event[events[i]])
    bp /= len(items)
    br /= len(items)

    merges = [
        [items[i] for i in sorted(m, key=lambda i: events[i])]
        for m in by_cluster.values()
        if len({events[i] for i in m}) > 1
    ]
    splits = []
    for members in by_event.values():
        parts: dict[int, list[CoverageItem]] = defaultdict(list)
        for i in members:
            parts[clusters[i]].append(items[i])
        if len(parts) > 1:
            splits.append(list(parts.values()))
    return ClusterReport(
        pairwise_precision=pp,
        pairwise_recall=pr,
        pairwise_f1=_f1(pp, pr),
        bcubed_precision=bp,
        bcubed_recall=br,
        bcubed_f1=_f1(bp, br),
        events=len(by_event),
        clusters=len(by_cluster),
        items=len(items),
        wrong_merges=merges,
        splits=splits,
    )


def _brief(item: CoverageItem) -> dict[str, str]:
    return {"event": item.event, "outlet": item.outlet, "title": item.title}


def format_details(report: ClusterReport) -> dict[str, Any]:
    """The wrong merges and the splits, for ``--details``."""
    return {
        "wrong_merges": [[_brief(i) for i in cluster] for cluster in report.wrong_merges],
        "splits": [[[_brief(i) for i in part] for part in parts] for parts in report.splits],
    }
