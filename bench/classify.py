"""Classifier throughput on one core: cycles the development set to 10,000 stories (or --stories N)
and prints JSON. Target: >= 20,000 stories/s.

    .venv/bin/python bench/classify.py [--stories N] [--topics config/topics.toml]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.classify import load_classifier  # noqa: E402
from bot.classify.evaluate import load_labeled  # noqa: E402

TARGET = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stories", type=int, default=10_000)
    parser.add_argument("--topics", type=Path, default=REPO / "config" / "topics.toml")
    parser.add_argument("--data", type=Path, default=REPO / "tests" / "data" / "classify_devset.jsonl")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    args = parser.parse_args()

    build_start = time.perf_counter()
    classifier = load_classifier(args.topics)
    build_seconds = time.perf_counter() - build_start
    items = load_labeled(args.data)
    stories = [(i.title, i.summary) for i in itertools.islice(itertools.cycle(items), args.stories)]
    chars = sum(len(t) + len(s) for t, s in stories) / len(stories)

    runs = []
    for _ in range(args.repeat):
        # A fresh classifier per run, so the per-token cache starts cold every time.
        classifier = load_classifier(args.topics)
        classify = classifier.classify
        start = time.perf_counter()
        for title, summary in stories:
            classify(title, summary)
        runs.append(time.perf_counter() - start)
    best = min(runs)
    rate = len(stories) / best
    print(
        json.dumps(
            {
                "benchmark": "classify",
                "stories": len(stories),
                "distinct_stories": len(items),
                "mean_chars_per_story": round(chars, 1),
                "seconds": round(best, 4),
                "stories_per_second": round(rate),
                "runs_seconds": [round(r, 4) for r in runs],
                "target_stories_per_second": TARGET,
                "meets_target": rate >= TARGET,
                "classifier_build_seconds": round(build_seconds, 4),
                "topics": list(classifier.topics),
                "python": platform.python_version(),
                "cpu_cores_used": 1,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
