"""`frontierwatch cluster-eval`, its metrics, the labelled coverage and the fitted matcher."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.pipeline.cluster import RARITY_FILE, WEIGHTS_FILE, ClusterIndex, MatcherWeights, WordRarity
from bot.pipeline.cluster_eval import (
    ClusterReport,
    CoverageItem,
    CoverageSetError,
    evaluate_clustering,
    load_coverage,
    parse_coverage,
    score_clusters,
)
from tests.test_cli import base_env, run_cli

REPO = Path(__file__).resolve().parent.parent
COVERAGE = REPO / "config" / "coverage"
T0 = datetime(2023, 3, 14, 12, tzinfo=UTC)
# The test split was frozen (committed) before any matcher was measured on it; it only reports.
TEST_SPLIT_SHA256 = "a214134df0111470dd797a0db88e01f7ece47d72a19438edc3ea2be3adbc5527"


def item(event: str, n: int = 0) -> CoverageItem:
    return CoverageItem(f"headline {event} {n}", "", f"https://x.example/{event}/{n}", f"O{n}", T0, event)


def test_metrics_by_hand() -> None:
    # Events: a a a b b; clusters: {a a} {a b} {b}.
    items = [item("a", 0), item("a", 1), item("a", 2), item("b", 3), item("b", 4)]
    report = score_clusters(items, [1, 1, 2, 2, 3])
    # Pairs: together (a0 a1) (a2 b3); same event: a×3, b×1 = 4; correct: 1.
    assert report.pairwise_precision == pytest.approx(1 / 2)
    assert report.pairwise_recall == pytest.approx(1 / 4)
    assert report.pairwise_f1 == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    # B-cubed per item: precision 1, 1, 1/2, 1/2, 1 → 4/5; recall 2/3, 2/3, 1/3, 1/2, 1/2 → 8/3/5.
    assert report.bcubed_precision == pytest.approx(4 / 5)
    assert report.bcubed_recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 2 + 1 / 2) / 5)
    assert (report.events, report.clusters) == (2, 3)
    assert [sorted(i.event for i in c) for c in report.wrong_merges] == [["a", "b"]]
    assert [[len(part) for part in parts] for parts in report.splits] == [[2, 1], [1, 1]]
    perfect = score_clusters(items, [1, 1, 1, 2, 2])
    assert perfect.figures() | {"events": 0, "clusters": 0} == {
        "pairwise_precision": 1.0,
        "pairwise_recall": 1.0,
        "pairwise_f1": 1.0,
        "bcubed_precision": 1.0,
        "bcubed_recall": 1.0,
        "bcubed_f1": 1.0,
        "events": 0,
        "clusters": 0,
    }


def test_clustering_runs_in_published_order_like_ingest() -> None:
    def at(hours: float, title: str, outlet: str, event: str) -> CoverageItem:
        return CoverageItem(title, "", "", outlet, T0 + timedelta(hours=hours), event)

    later = at(2, "OpenAI launches GPT-4 with image input for ChatGPT Plus", "B", "gpt4")
    first = at(0, "OpenAI launches GPT-4, its most capable model, for ChatGPT Plus users", "A", "gpt4")
    other = at(1, "Google opens its PaLM language model API to developers", "C", "palm")
    report = evaluate_clustering([later, other, first])
    assert (report.events, report.clusters, report.pairwise_precision, report.pairwise_recall) == (
        2,
        2,
        1.0,
        1.0,
    )
    # Three days apart (outside the window): never one cluster.
    far = at(80, "OpenAI launches GPT-4 with image input for ChatGPT Plus", "D", "gpt4")
    assert evaluate_clustering([first, far]).clusters == 2


def test_bad_coverage_lines_are_named() -> None:
    good = {
        "title": "t",
        "summary": "",
        "url": "u",
        "outlet": "o",
        "published": "2023-03-14T12:00:00Z",
        "event": "e",
    }
    for broken, words in (
        ('{"title": ', r"set\.jsonl:1: invalid JSON: the line ends early"),
        (json.dumps({**good, "event": ""}), "'event' must be a non-empty string"),
        (json.dumps({**good, "published": "yesterday"}), "not an ISO 8601 date-time"),
        (json.dumps([good]), "expected a JSON object"),
    ):
        with pytest.raises(CoverageSetError, match=words):
            parse_coverage([broken], "set.jsonl")
    [parsed] = parse_coverage([json.dumps({**good, "published": "2023-03-14 12:00:00"})])
    assert parsed.published == T0  # a date without a zone is UTC


async def test_cluster_eval_command_contract(tmp_path: Path) -> None:
    records = [
        {"title": "Microsoft unveils new Bing with ChatGPT built in", "outlet": "BBC", "event": "bing"},
        {"title": "Microsoft launches ChatGPT-powered Bing search", "outlet": "CNBC", "event": "bing"},
        {
            "title": "Turkey declares three-month state of emergency after quake",
            "outlet": "BBC",
            "event": "tr",
        },
    ]
    path = tmp_path / "coverage.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {**r, "summary": "", "url": f"https://x.example/{n}", "published": "2023-02-07T18:00:00Z"}
            )
            + "\n"
            for n, r in enumerate(records)
        )
    )
    env = base_env(tmp_path)
    code, out, err = await run_cli("cluster-eval", str(path), env=env)
    assert code == 0, err
    figures = json.loads(out)
    assert list(figures) == [
        "pairwise_precision",
        "pairwise_recall",
        "pairwise_f1",
        "bcubed_precision",
        "bcubed_recall",
        "bcubed_f1",
        "events",
        "clusters",
    ]
    assert figures["events"] == 2 and figures["pairwise_precision"] == 1.0
    code, out, _ = await run_cli("cluster-eval", str(path), "--details", env=env)
    details = json.loads(out)
    assert code == 0 and set(details) >= {"wrong_merges", "splits"}
    path.write_text('{"title": "x"}\n')
    code, out, err = await run_cli("cluster-eval", str(path), env=env)
    assert code == 2 and out == "" and err.strip().count("\n") == 0
    assert err.startswith(f"error: {path}:1: 'outlet' must be a non-empty string")


async def test_cluster_eval_reads_the_linkage_floor_from_the_environment(tmp_path: Path) -> None:
    # FW_CLUSTER_LINKAGE=0 with the old threshold is the matcher before the floor (see the saga
    # test below): on the Dagestan day it merges the Kremlin's reaction into the riot's cluster.
    path = tmp_path / "dagestan.jsonl"
    lines = (COVERAGE / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    path.write_text("".join(line + "\n" for line in lines if '"2023-10-30-' in line))
    env = base_env(tmp_path)
    code, out, err = await run_cli("cluster-eval", str(path), env=env)
    assert code == 0, err
    fitted = json.loads(out)
    code, out, err = await run_cli(
        "cluster-eval", str(path), env={**env, "FW_CLUSTER_LINKAGE": "0", "FW_CLUSTER_SIMILARITY": "0.72"}
    )
    assert code == 0, err
    without = json.loads(out)
    assert fitted["pairwise_precision"] > 0.98 > 0.93 > without["pairwise_precision"], (fitted, without)
    code, out, err = await run_cli("cluster-eval", str(path), env={**env, "FW_CLUSTER_LINKAGE": "1.5"})
    assert code != 0 and "FW_CLUSTER_LINKAGE" in err and out == ""


def test_the_coverage_corpus_is_as_documented() -> None:
    assert hashlib.sha256((COVERAGE / "test.jsonl").read_bytes()).hexdigest() == TEST_SPLIT_SHA256
    dev, test = load_coverage(COVERAGE / "dev.jsonl"), load_coverage(COVERAGE / "test.jsonl")
    assert len(dev) + len(test) >= 600
    events = {i.event for i in dev} | {i.event for i in test}
    assert len(events) >= 150
    assert not {i.event[:10] for i in dev} & {i.event[:10] for i in test}  # split by day
    for split in (dev, test):
        outlets: dict[str, set[str]] = {}
        for i in split:
            outlets.setdefault(i.event, set()).add(i.outlet)
        multi = sum(1 for names in outlets.values() if len(names) >= 2)
        assert multi / len(outlets) > 0.85  # the rest are single-headline near misses


def test_the_held_out_saga_days_are_their_own_and_documented() -> None:
    # Never fitted on: it measures wrong merges in a saga (docs/clustering.md, "A held-out saga day").
    held = load_coverage(COVERAGE / "held-out-2026.jsonl")
    dev, test = load_coverage(COVERAGE / "dev.jsonl"), load_coverage(COVERAGE / "test.jsonl")
    assert {i.published.date().isoformat() for i in held} == {"2026-01-08", "2026-01-09"}
    assert not {i.url for i in held} & {i.url for i in [*dev, *test]}
    outlets: dict[str, set[str]] = {}
    for i in held:
        outlets.setdefault(i.event, set()).add(i.outlet)
    assert len(held) >= 250 and sum(1 for names in outlets.values() if len(names) >= 2) >= 40
    assert "held-out-2026.jsonl" in (REPO / "docs" / "clustering.md").read_text(encoding="utf-8")


def test_the_test_split_keeps_its_measured_quality() -> None:
    # Measured once on the frozen test split (see docs/clustering.md). Below the goal
    # (B-cubed F1 0.90 at pairwise precision 0.95): this guards against regressions only.
    report = evaluate_clustering(load_coverage(COVERAGE / "test.jsonl"))
    assert report.bcubed_f1 >= 0.83, report.figures()
    assert report.bcubed_precision >= 0.90, report.figures()
    # Raised from 0.80 when the linkage floor took pairwise precision from 0.852 to 0.890.
    assert report.pairwise_precision >= 0.85, report.figures()


def test_shipped_matcher_is_what_the_fit_produces(tmp_path: Path) -> None:
    from bot.pipeline.cluster_fit import main

    weights, rarity = tmp_path / "weights.json", tmp_path / "rarity.json.gz"
    assert main(["--out", str(weights), "--rarity-out", str(rarity)]) == 0
    assert rarity.read_bytes() == RARITY_FILE.read_bytes()
    fitted, shipped = json.loads(weights.read_text()), json.loads(WEIGHTS_FILE.read_text())
    for key in ("features", "threshold", "linkage_floor"):
        assert fitted[key] == shipped[key], key
    meta, shipped_meta = fitted.pop("meta"), shipped.pop("meta")
    held_out, shipped_held_out = meta.pop("held_out_day_means"), shipped_meta.pop("held_out_day_means")
    assert meta.pop("held_out_smoothed") == pytest.approx(shipped_meta.pop("held_out_smoothed"), abs=2e-3)
    floors, shipped_floors = (
        meta.pop("held_out_by_linkage_floor"),
        shipped_meta.pop("held_out_by_linkage_floor"),
    )
    assert meta == shipped_meta
    # Sums over sets may add in another order in another process: equal to rounding, not to the bit.
    for threshold, figures in shipped_held_out.items():
        assert held_out[threshold] == pytest.approx(figures, abs=2e-3), threshold
    assert floors.keys() == shipped_floors.keys()
    for floor, figures in shipped_floors.items():
        assert floors[floor] == pytest.approx(figures, abs=2e-3), floor
    assert fitted["weights"] == pytest.approx(shipped["weights"], abs=1e-3)
    assert fitted["intercept"] == pytest.approx(shipped["intercept"], abs=1e-3)
    loaded = MatcherWeights.load(weights)
    assert 0 < loaded.threshold < 1 and WordRarity.load(rarity).documents > 5000


def _wrong_pairs(report: ClusterReport) -> int:
    pairs = 0
    for cluster in report.wrong_merges:
        sizes = Counter(i.event for i in cluster).values()
        pairs += (sum(sizes) ** 2 - sum(n * n for n in sizes)) // 2
    return pairs


def test_a_sagas_next_development_stays_out_of_its_cluster() -> None:
    # 30 October 2023 (dev): a mob storms Makhachkala airport over a flight from Israel; hours later
    # Putin and the Kremlin blame Ukraine and the West, and Telegram blocks a channel. Every story
    # repeats Dagestan, airport, Israel and Russia. Without the linkage floor (the matcher before it:
    # threshold 0.72, no floor) the Kremlin's reaction joined the riot's cluster; with it, a story
    # must be close to most of a cluster's latest stories, not just to one or two.
    day = [i for i in load_coverage(COVERAGE / "dev.jsonl") if i.event.startswith("2023-10-30-")]
    shipped = evaluate_clustering(day)
    weights = MatcherWeights.load()
    assert weights.linkage_floor > 0
    without = evaluate_clustering(
        day, ClusterIndex(weights=replace(weights, linkage_floor=0.0, threshold=0.72))
    )

    def riot_with_reaction(report: ClusterReport) -> bool:
        # The riot's main cluster (five or more of its reports) holding a story of the reaction.
        for cluster in report.wrong_merges:
            events = Counter(i.event for i in cluster)
            if (
                events["2023-10-30-dagestan-airport-mob"] >= 5
                and events["2023-10-30-kremlin-blames-west-dagestan"]
            ):
                return True
        return False

    assert riot_with_reaction(without) and not riot_with_reaction(shipped)
    assert _wrong_pairs(shipped) * 3 < _wrong_pairs(without), (_wrong_pairs(shipped), _wrong_pairs(without))
    assert shipped.bcubed_f1 >= without.bcubed_f1


def test_the_index_stays_bounded_by_its_window() -> None:
    from bot.pipeline.cluster import index_entry

    index = ClusterIndex(window=timedelta(hours=72))
    for n in range(3000):
        at = T0 + timedelta(minutes=10 * n)
        index.prune(at)
        index.add(
            index_entry(
                story_id=n + 1,
                cluster_id=n + 1,
                outlet=f"O{n % 7}",
                title=f"Story {n} about subject {n % 50} and place {n % 13}",
                summary=f"Details of event {n} involving name{n % 97} and figure {n}.",
                at=at,
            )
        )
    # 72 h at one story every 10 minutes: 432 stories, whatever ran before.
    assert len(index) <= 433 and len(index._clusters) <= 433
    assert max(len(p) for p in index._postings.values()) <= 433


def _point(precision: float, f1: float) -> dict[str, float]:
    return {
        "pairwise_precision": precision,
        "pairwise_recall": 0.5,
        "bcubed_precision": precision,
        "bcubed_recall": 0.7,
        "bcubed_f1": f1,
    }


def test_the_fit_prefers_a_setting_whose_neighbours_hold_to_a_lucky_point() -> None:
    from bot.pipeline.cluster_fit import choose_operating_point

    # Floor 0.24 at threshold 0.45 is the best single point and just precise enough, but its
    # neighbours are not: a small change of data moves it (as a background counted without one
    # corpus did on the real dev days). Floor 0.28 is a little worse at its best and good all round.
    grid = {
        floor: {t: _point(0.93, 0.70) for t in (0.30, 0.35, 0.40, 0.45, 0.50, 0.55)}
        for floor in (0.0, 0.22, 0.24, 0.26, 0.28, 0.30, 0.32)
    }
    grid[0.24][0.45] = _point(0.951, 0.83)
    for floor in (0.26, 0.28, 0.30, 0.32):
        for t in (0.30, 0.35, 0.40):
            grid[floor][t] = _point(0.96, 0.80)
    floor, threshold, smoothed = choose_operating_point(grid)
    assert (floor, threshold) != (0.24, 0.45)
    assert smoothed["pairwise_precision"] >= 0.95 and smoothed["bcubed_f1"] == pytest.approx(0.8)
    # Every point whose block lies inside the plateau ties: the stricter (higher floor, then
    # higher threshold) is chosen.
    assert (floor, threshold) == (0.32, 0.35)


def test_the_fit_falls_back_to_the_most_precise_setting_when_none_reaches_the_target() -> None:
    from bot.pipeline.cluster_fit import choose_operating_point

    grid = {
        floor: {t: _point(0.80 + floor / 10 + t / 10, 0.9 - t) for t in (0.3, 0.4, 0.5)}
        for floor in (0.0, 0.2, 0.3)
    }
    floor, threshold, smoothed = choose_operating_point(grid)
    assert (floor, threshold) == (0.3, 0.5) and smoothed["pairwise_precision"] < 0.95
