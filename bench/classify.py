"""Classifier throughput on one core, batched as ingest calls it, and the model's memory; prints JSON.

Cycles the labelled corpus's validation split to 10,000 stories (or --stories N) and classifies them
in batches of --batch (ingest hands the classifier every new story of a write batch at once).
Target: >= 10,000 stories/s with the learned model.

    .venv/bin/python bench/classify.py [--stories N] [--batch 500] [--model ""|off|PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.classify import PACKAGED_MODEL, classify_many, load_classifier  # noqa: E402
from bot.classify.evaluate import load_labeled  # noqa: E402
from bot.sources.normalize import cut_at_word  # noqa: E402

TARGET = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stories", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="stories per classify call (1 = one by one)")
    parser.add_argument("--topics", type=Path, default=REPO / "config" / "topics.toml")
    parser.add_argument("--model", default="", help='"" = the packaged model, "off" = rules only, or a file')
    parser.add_argument("--data", type=Path, default=REPO / "config" / "labelled" / "validation.jsonl")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    parser.add_argument("--summary-chars", type=int, default=400, help="as FW_SUMMARY_CHARS")
    args = parser.parse_args()

    tracemalloc.start()
    build_start = time.perf_counter()
    classifier = load_classifier(args.topics, args.model)
    build_seconds = time.perf_counter() - build_start
    model_bytes, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    items = load_labeled(args.data)
    # As ingest sees them: summaries are cut at FW_SUMMARY_CHARS (400) when a feed is parsed, and
    # the address comes along (a Hub model repository is a release).
    stories = [
        (i.title, cut_at_word(i.summary, args.summary_chars), i.url)
        for i in itertools.islice(itertools.cycle(items), args.stories)
    ]
    chars = sum(len(t) + len(s) for t, s, _url in stories) / len(stories)
    batches = [stories[i : i + args.batch] for i in range(0, len(stories), args.batch)]

    runs = []
    for _ in range(args.repeat):
        # A fresh classifier per run, so the rules' per-token cache starts cold every time.
        classifier = load_classifier(args.topics, args.model)
        start = time.perf_counter()
        for batch in batches:
            classify_many(classifier, batch)
        runs.append(time.perf_counter() - start)
    best = min(runs)
    rate = len(stories) / best
    model_file = PACKAGED_MODEL if args.model == "" else (None if args.model == "off" else Path(args.model))
    print(
        json.dumps(
            {
                "benchmark": "classify",
                "classifier": type(classifier).__name__,
                "model": str(model_file) if model_file else "off (rules only)",
                "model_file_bytes": model_file.stat().st_size if model_file else 0,
                "classifier_memory_bytes": model_bytes,
                "stories": len(stories),
                "batch": args.batch,
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
