"""Clustering: the same story across outlets becomes one cluster; different stories do not."""

from __future__ import annotations

import html
import io
import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser

from bot.pipeline.cluster import ClusterIndex, IndexedStory, headline_tokens, model_key, raw_tokens

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def story(sid: int, title: str, outlet: str, at: datetime = NOW, model: str | None = None) -> IndexedStory:
    return IndexedStory(
        story_id=sid,
        cluster_id=sid,
        outlet=outlet,
        tokens=headline_tokens(title),
        raw=raw_tokens(title),
        at=at,
        model=model_key(model) if model else None,
    )


def google_news_groups(shared: Path) -> list[list[tuple[str, str]]]:
    """Real headline groups: each Google News item lists other outlets' headlines on its story."""
    path = shared / "corpus/real-feeds/google_news_top_stories_en-US_2019-11-14.rss.xml"
    feed = feedparser.parse(io.BytesIO(path.read_bytes()))
    groups = []
    for entry in feed.entries:
        items = []
        for li in re.findall(r"<li>(.*?)</li>", entry.summary):
            link = re.search(r"<a[^>]*>(.*?)</a>", li)
            outlet = re.search(r"<font[^>]*>(.*?)</font>", li)
            if link and "View full coverage" not in link.group(1):
                items.append(
                    (html.unescape(link.group(1)), html.unescape(outlet.group(1)) if outlet else "?")
                )
        groups.append(items)
    return groups


def clusters_together(a: tuple[str, str], b: tuple[str, str], at_b: datetime = NOW) -> bool:
    index = ClusterIndex()
    index.add(story(1, *a))
    return index.find(story(2, b[0], b[1], at_b)) is not None


REAL_SAME_STORY = [
    # Pairs from the real Google News capture (2019-11-14), different outlets, same story.
    (
        (
            "Exclusive: Trump DC hotel sales pitch boasts of millions to be made from foreign governments",
            "CNN",
        ),
        ("Trump hotel sales pitch boasts of profit potential from foreign governments", "The Guardian"),
    ),
    (
        ("Two people diagnosed with plague in China", "CNN"),
        (
            "The deadliest form of plague has infected two people in China, and information is scarce",
            "Business Insider",
        ),
    ),
    (
        ("Facebook fixes bug that caused iOS app to use the camera in the background", "The Verge"),
        ("Facebook fixes iPhone camera bug", "CNET"),
    ),
    (
        ("Mustang Mach-E: Ford's 'Mustang-Inspired' Electric Crossover Gets A Name", "Jalopnik"),
        ("Ford Mustang Mach-E: Ford's First All-Electric Crossover Finally Has a Name", "Car and Driver"),
    ),
]


def test_real_pairs_of_one_story_cluster() -> None:
    for a, b in REAL_SAME_STORY:
        assert clusters_together(a, b), (a, b)


def test_same_outlet_or_outside_window_does_not_cluster() -> None:
    a, b = REAL_SAME_STORY[0]
    assert not clusters_together(a, (b[0], a[1]))  # same outlet: an update, not a second outlet
    assert not clusters_together(a, b, at_b=NOW + timedelta(hours=73))


def test_conflicting_identifiers_keep_stories_apart() -> None:
    assert not clusters_together(
        ("OpenAI releases GPT-5 to all users", "A"), ("OpenAI releases GPT-4o to all users", "B")
    )


def test_real_corpus_different_stories_never_cluster(shared_dir: Path) -> None:
    groups = google_news_groups(shared_dir)
    assert len(groups) > 30
    headlines = [(i, h) for i, g in enumerate(groups) for h in g]
    wrong = [
        (a, b)
        for (i, a), (j, b) in itertools.combinations(headlines, 2)
        if i != j and a[1] != b[1] and clusters_together(a, b)
    ]
    assert wrong == []


def test_real_corpus_finds_same_story_pairs(shared_dir: Path) -> None:
    found = 0
    for group in google_news_groups(shared_dir):
        found += sum(
            1 for a, b in itertools.combinations(group, 2) if a[1] != b[1] and clusters_together(a, b)
        )
    assert found >= 5


def test_tracker_release_joins_news_about_that_model_both_ways() -> None:
    index = ClusterIndex()
    index.add(
        story(
            1,
            "deepseek-ai releases DeepSeek-V3.2-Exp on Hugging Face",
            "Hugging Face Hub",
            model="DeepSeek-V3.2-Exp",
        )
    )
    news = story(2, "DeepSeek unveils V3.2-Exp model with sparse attention, halves API prices", "Reuters")
    match = index.find(news)
    assert match is not None and match.rule == "model" and match.cluster_id == 1

    later = ClusterIndex()
    later.add(news)
    tracker = story(
        3,
        "deepseek-ai releases DeepSeek-V3.2-Exp on Hugging Face",
        "Hugging Face Hub",
        model="DeepSeek-V3.2-Exp",
    )
    match = later.find(tracker)
    assert match is not None and match.cluster_id == 2


def test_model_key_ignores_checkpoint_suffixes_and_refuses_generic_names() -> None:
    assert model_key("DeepSeek-V3.2-Exp") == ("deepseek", "v3", "2", "exp")
    assert model_key("gemma-3-27b-it") == ("gemma", "3")
    assert model_key("Kimi-K2-Thinking") == ("kimi", "k2", "thinking")
    assert model_key("model") is None
    assert model_key("Qwen3-235B-A22B-Instruct-2507") is None  # only "qwen3" left: too generic


def test_prune_forgets_old_stories() -> None:
    index = ClusterIndex(window=timedelta(hours=72))
    index.add(story(1, "Old headline about chips export rules", "A", at=NOW - timedelta(hours=80)))
    index.add(story(2, "New headline about something else entirely", "B", at=NOW))
    index.prune(NOW)
    assert len(index) == 1


def test_a_future_dated_story_does_not_stop_pruning() -> None:
    index = ClusterIndex(window=timedelta(hours=72))
    stuck = story(1, "Feed dated next year by mistake", "A", at=NOW + timedelta(days=365))
    stuck.seen = NOW - timedelta(hours=80)
    index.add(stuck)
    old = story(2, "An old headline about chip rules", "B", at=NOW - timedelta(hours=79))
    old.seen = NOW - timedelta(hours=79)
    index.add(old)
    index.prune(NOW)
    assert len(index) == 0
