"""Fit the cluster matcher's weights on the dev split of ``config/coverage``, reproducibly.

    python -m bot.pipeline.cluster_fit [--data config/coverage] [--labelled config/labelled]

First the background word rarity (:class:`~bot.pipeline.cluster.WordRarity`) is counted from the
repository's labelled news (the classifier's corpus and the dev coverage), then the weights are
fitted with it.

The dev coverage runs through a :class:`~bot.pipeline.cluster.ClusterIndex` one story at a time
in published order, as ingest feeds it. Each story is scored against every candidate cluster the
index offers (the features of :data:`~bot.pipeline.cluster.FEATURES`); the example is positive
when the cluster reports the story's event. Stories then join their *true* cluster, so the
examples describe the situations the matcher meets when it has been right so far.

A logistic regression (deterministic: lbfgs, fixed data order) gives the weights. The default
threshold (``FW_CLUSTER_SIMILARITY``) and linkage floor (``FW_CLUSTER_LINKAGE``) are chosen by
leaving each dev day out in turn: for each floor of :data:`LINKAGE_FLOORS`, the lowest threshold
whose held-out pairwise precision averages at least :data:`TARGET_PRECISION` (searched from 0.30
in steps of 0.05, then of :data:`FINE_STEP` below the first step that is precise enough), because
a wrong merge hides a story from a channel while a split only repeats one; then the floor whose
pair gives the best held-out B-cubed F1. The test split is never read here. A test refits and
compares with the shipped file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.pipeline.cluster import (
    FEATURES,
    RARITY_FILE,
    WEIGHTS_FILE,
    ClusterIndex,
    MatcherWeights,
    WordRarity,
)
from bot.pipeline.cluster_eval import CoverageItem, arriving, evaluate_clustering, load_coverage

__all__ = ["LINKAGE_FLOORS", "TARGET_PRECISION", "fit", "training_examples"]

TARGET_PRECISION = 0.95
THRESHOLDS = tuple(round(0.30 + 0.05 * k, 2) for k in range(13))  # 0.30 … 0.90
FINE_STEP = 0.01  # then the step below the first coarse threshold that is precise enough, finely
# Linkage floors tried (MatcherWeights.linkage_floor); 0.0 is the matcher without one.
LINKAGE_FLOORS = (0.0, *(round(0.16 + 0.02 * k, 2) for k in range(9)))  # 0.16 … 0.32
REGULARISATION = 1.0


def count_rarity(labelled: Path, dev: Sequence[CoverageItem]) -> WordRarity:
    """Background word counts: the classifier's labelled news and the dev coverage (never test)."""
    stories: list[tuple[str, str]] = []
    for name in ("train", "validation", "test"):
        path = labelled / f"{name}.jsonl"
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    record = json.loads(line)
                    stories.append((str(record.get("title") or ""), str(record.get("summary") or "")))
    stories.extend((item.title, item.summary) for item in dev)
    return WordRarity.count(stories)


def training_examples(
    items: Sequence[CoverageItem], rarity: WordRarity | None = None
) -> tuple[list[list[float]], list[int]]:
    """(features, same event?) for every candidate cluster of every story, teacher-forced."""
    index = ClusterIndex(threshold=0.0, rarity=rarity)
    cluster_of_event: dict[str, int] = {}
    event_of_cluster: dict[int, str] = {}
    rows: list[list[float]] = []
    labels: list[int] = []
    for i, story in arriving(items, index):
        event = items[i].event
        for cluster_id, rule in sorted(index.candidate_clusters(story).items()):
            if rule != "headline":
                continue
            rows.append(index.features(story, cluster_id))
            labels.append(int(event_of_cluster[cluster_id] == event))
        story.cluster_id = cluster_of_event.setdefault(event, story.story_id)
        event_of_cluster[story.cluster_id] = event
        index.add(story)
    return rows, labels


def _logistic(rows: list[list[float]], labels: list[int]) -> MatcherWeights:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=REGULARISATION, solver="lbfgs", max_iter=5000, tol=1e-10)
    model.fit(np.asarray(rows, dtype=np.float64), np.asarray(labels))
    return MatcherWeights(
        tuple(round(float(w), 6) for w in model.coef_[0]), round(float(model.intercept_[0]), 6)
    )


def _day(item: CoverageItem) -> str:
    """The capture day, which event ids start with (``2023-03-14-gpt-4-launch``): a day's events
    and near misses stay together when a day is held out."""
    prefix = item.event[:10]
    return prefix if re.fullmatch(r"\d{4}-\d{2}-\d{2}", prefix) else item.published.date().isoformat()


def fit(
    items: Sequence[CoverageItem], rarity: WordRarity | None = None
) -> tuple[MatcherWeights, float, dict[str, Any]]:
    """Weights from all of ``items``, and the threshold and linkage floor chosen by leaving one day
    out at a time: for each floor of :data:`LINKAGE_FLOORS` the lowest threshold whose held-out
    pairwise precision averages at least :data:`TARGET_PRECISION`; of those pairs, the one with the
    best held-out B-cubed F1 (ties: the higher floor)."""
    days: dict[str, list[CoverageItem]] = defaultdict(list)
    for item in items:
        days[_day(item)].append(item)
    examples = {day: training_examples(day_items, rarity) for day, day_items in sorted(days.items())}
    day_weights = {}
    for day in examples:
        rows = [r for other, (x, _y) in examples.items() if other != day for r in x]
        labels = [v for other, (_x, y) in examples.items() if other != day for v in y]
        day_weights[day] = _logistic(rows, labels)

    def held_out(floor: float, thresholds: Sequence[float], table: dict[str, dict[str, float]]) -> None:
        for threshold in thresholds:
            figures = [
                evaluate_clustering(
                    days[day],
                    ClusterIndex(
                        threshold=threshold, weights=replace(weights, linkage_floor=floor), rarity=rarity
                    ),
                ).figures()
                for day, weights in day_weights.items()
            ]
            table[str(threshold)] = {
                key: round(sum(f[key] for f in figures) / len(figures), 4)
                for key in (
                    "pairwise_precision",
                    "pairwise_recall",
                    "bcubed_precision",
                    "bcubed_recall",
                    "bcubed_f1",
                )
            }

    def lowest_precise(floor: float) -> tuple[float, dict[str, dict[str, float]]]:
        table: dict[str, dict[str, float]] = {}

        def precise(thresholds: Sequence[float]) -> list[float]:
            return [t for t in thresholds if table[str(t)]["pairwise_precision"] >= TARGET_PRECISION]

        held_out(floor, THRESHOLDS, table)
        good = precise(THRESHOLDS)
        threshold = min(good) if good else max(THRESHOLDS)
        if good and threshold > THRESHOLDS[0]:
            # The coarse step (0.05) can overshoot by most of a step, and recall falls fast there.
            below = THRESHOLDS[THRESHOLDS.index(threshold) - 1]
            fine = [round(below + FINE_STEP * k, 2) for k in range(1, round((threshold - below) / FINE_STEP))]
            held_out(floor, fine, table)
            threshold = min(precise(fine), default=threshold)
        return threshold, table

    by_floor = {floor: lowest_precise(floor) for floor in LINKAGE_FLOORS}

    def merit(floor: float) -> tuple[bool, float, float]:
        threshold, table = by_floor[floor]
        figures = table[str(threshold)]
        return (figures["pairwise_precision"] >= TARGET_PRECISION, figures["bcubed_f1"], floor)

    floor = max(LINKAGE_FLOORS, key=merit)
    threshold, table = by_floor[floor]
    rows = [r for x, _y in examples.values() for r in x]
    labels = [v for _x, y in examples.values() for v in y]
    weights = replace(_logistic(rows, labels), linkage_floor=floor)
    meta = {
        "examples": len(rows),
        "positives": sum(labels),
        "days": len(days),
        "held_out_day_means": table,
        "held_out_by_linkage_floor": {
            str(f): {"threshold": t, **tab[str(t)]} for f, (t, tab) in by_floor.items()
        },
    }
    return weights, threshold, meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("config/coverage"))
    parser.add_argument("--labelled", type=Path, default=Path("config/labelled"))
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    parser.add_argument("--rarity-out", type=Path, default=RARITY_FILE)
    args = parser.parse_args(argv)
    dev = args.data / "dev.jsonl"
    items = load_coverage(dev)
    rarity = count_rarity(args.labelled, items)
    rarity.save(args.rarity_out)
    weights, threshold, meta = fit(items, rarity)
    document = {
        "features": list(FEATURES),
        "weights": list(weights.weights),
        "intercept": weights.intercept,
        "threshold": threshold,
        "linkage_floor": weights.linkage_floor,
        "meta": {
            "fitted_on": {"file": dev.name, "sha256": hashlib.sha256(dev.read_bytes()).hexdigest()},
            "rarity_documents": rarity.documents,
            **meta,
        },
    }
    args.out.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.rarity_out}: {rarity.documents} stories, {len(rarity.df)} words")
    print(
        f"wrote {args.out}: threshold {threshold}, linkage floor {weights.linkage_floor}, "
        f"{meta['examples']} examples"
    )
    print(json.dumps(meta["held_out_day_means"][str(threshold)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
