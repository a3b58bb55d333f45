"""The production classifier: rules + a learned model, trained reproducibly from the committed corpus,
judged on a frozen test split it never saw, explainable, and under the operator's control."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.classify import PACKAGED_MODEL, classify_many, load_classifier
from bot.classify.evaluate import (
    EvalReport,
    LabeledItem,
    evaluate,
    format_report,
    load_labeled,
    score_results,
)
from bot.classify.features import (
    MAX_PAIR_WORDS,
    known_pair_words,
    merge_evidence,
    pair_words,
    readable,
    text_features,
    title_tokens,
)
from bot.classify.hybrid import HybridClassifier
from bot.classify.model import LinearTopicModel, ModelError
from bot.classify.rules import RuleClassifier
from bot.classify.taxonomy import load_taxonomy
from bot.classify.train import (
    NB_GRID,
    TrainingData,
    _nb_ratios,
    cross_validate,
    group_of,
    grouped_folds,
    load_training_data,
    train_model,
)

REPO = Path(__file__).resolve().parent.parent
TOPICS_FILE = REPO / "config" / "topics.toml"
CORPUS = REPO / "config" / "labelled"
SPLITS = ("train", "validation", "test")
TOPICS = ("distillation", "ip", "natsec", "release")

# The test split's membership (titles and urls), frozen before any model was trained. Labels may be
# corrected by the guide; the items may not change.
FROZEN_TEST_MEMBERSHIP = "ce7ab5aed61936c7bbb8282bc8dc050e5f94c63770b0f9bda6cce6e8dd3a3780"

# The CI gate on the frozen test split: the targets (the model reaches 0.907 since the twelfth
# pass; it was held at 0.88 until then).
MIN_TEST_MACRO_F1 = 0.90
MIN_TEST_PRECISION = 0.90
MAX_TEST_HARD_NEGATIVE_RATE = 0.05


def records(split: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (CORPUS / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def classifier() -> HybridClassifier:
    c = load_classifier(TOPICS_FILE)
    assert isinstance(c, HybridClassifier) and c.model is not None
    return c


# ------------------------------------------------------------------------------------------- the data
def test_corpus_is_large_real_and_documented() -> None:
    everything = [r for s in SPLITS for r in records(s)]
    topics = Counter(t for r in everything for t in r["topics"])  # type: ignore[attr-defined]
    none = [r for r in everything if not r["topics"]]
    assert len(everything) >= 3000
    for topic in TOPICS:
        assert topics[topic] >= 300, topic
    assert len(none) >= 1500 and sum(bool(r["hard_negative"]) for r in none) >= 500
    assert len(records("test")) >= 600
    for r in everything:
        assert str(r["url"]).startswith("http"), r["title"]
        assert r["outlet"] and r["provenance"] and r["licence"], r["title"]
        assert r["hard_negative"] is False or not r["topics"]
    outlets = {str(r["outlet"]).lower() for r in everything}
    years = {str(r["published"])[:4] for r in everything if r["published"]}
    assert len(outlets) >= 50 and len(years) >= 4


def test_test_split_is_frozen_and_no_outlet_month_is_in_two_splits() -> None:
    test = records("test")
    membership = "\n".join(sorted(f"{r['title']}\t{r['url']}" for r in test))
    assert hashlib.sha256(membership.encode()).hexdigest() == FROZEN_TEST_MEMBERSHIP
    groups = {
        s: {
            f"{str(r['outlet']).strip().lower()}|{(str(r['published'] or ''))[:7] or 'undated'}"
            for r in records(s)
        }
        for s in SPLITS
    }
    assert not groups["train"] & groups["test"]
    assert not groups["validation"] & groups["test"]
    assert not groups["train"] & groups["validation"]
    recorded = json.loads((CORPUS / "groups.json").read_text())
    assert all(recorded[g] == "test" for g in groups["test"])


@pytest.mark.parametrize(
    ("name", "minimum"),
    [
        ("recent-2024-26", 300),
        ("recent-2025-26", 300),
        ("papers-2025-26", 300),
        ("news-2025", 300),
        ("flagged-2023", 300),
        ("labs-2024-26", 300),
        ("news-2024", 450),  # labelled only after every choice it reports: never tuned on
    ],
)
def test_recent_held_out_set_is_real_labelled_and_never_in_a_split(name: str, minimum: int) -> None:
    """The held-out sets measure the model on text it was never trained on (labs' feeds, Hub
    models, 2024–26 news): they must stay out of every split, or their figures would mean
    nothing."""
    recent = [json.loads(line) for line in (CORPUS / f"{name}.jsonl").read_text().splitlines()]
    assert len(recent) >= minimum
    for r in recent:
        assert str(r["url"]).startswith("http") and r["outlet"] and r["provenance"] and r["licence"]
        assert set(r["topics"]) <= set(TOPICS) and (r["hard_negative"] is False or not r["topics"])
    in_splits = {str(r["url"]) for s in SPLITS for r in records(s)}
    assert not in_splits & {str(r["url"]) for r in recent}
    titles = {" ".join(str(r["title"]).lower().split()) for s in SPLITS for r in records(s)}
    assert not titles & {" ".join(str(r["title"]).lower().split()) for r in recent}
    # No test outlet-month: the test split's weeks stay unseen by anyone tuning on these sets.
    groups = json.loads((CORPUS / "groups.json").read_text())
    keys = {
        f"{str(r['outlet']).strip().lower()}|{(str(r['published'] or ''))[:7] or 'undated'}" for r in recent
    }
    assert not any(groups.get(k) == "test" for k in keys)
    assert name in (REPO / "docs" / "classifier.md").read_text()


def test_second_labelling_is_recorded_with_agreement_per_topic() -> None:
    second = [json.loads(line) for line in (CORPUS / "second-labelling.jsonl").read_text().splitlines()]
    total = sum(len(records(s)) for s in SPLITS)
    assert len(second) >= total // 10 - 10  # a random tenth, drawn before two late batches
    agreement = (CORPUS / "AGREEMENT.md").read_text()
    for topic in TOPICS:
        assert topic in agreement
    settled = [r for r in second if r["first"] != r["second"]]
    assert settled and all(r.get("settled") is not None and r.get("why") for r in settled)


# ------------------------------------------------------------------------------------------- the model
@pytest.mark.timeout(600)  # a full training: 16 s on a quiet 2-core machine, far more under load
def test_shipped_model_is_exactly_what_train_produces_from_the_committed_data(tmp_path: Path) -> None:
    rules = RuleClassifier(load_taxonomy(TOPICS_FILE))
    data = load_training_data([CORPUS / "train.jsonl"], [CORPUS / "validation.jsonl"])
    model = train_model(rules, data)
    shipped = LinearTopicModel.load(PACKAGED_MODEL).to_json()
    trained = model.to_json()
    # The scikit-learn version is provenance, not content: a patch release must not fail this test.
    shipped["meta"].pop("trained_with")
    trained["meta"].pop("trained_with")
    # Floats are compared to 5e-3: numpy/BLAS builds and CPUs round sparse sums differently in the
    # last digits, and liblinear's stopping point moved with them (at its default tolerance: 1.3e-3
    # on release's weights on one machine, 1e-2 on ip's on another). Training now runs liblinear to
    # `SOLVER_TOLERANCE` (1e-6), within 2e-4 of the optimum, so machines should agree far inside
    # this. A threshold step (0.01) is still caught, and anything else the data decides
    # (vocabulary, features, counts) must match exactly.
    assert _same(trained, shipped), "the shipped model is stale: run `frontierwatch train` and commit it"


def _same(a: object, b: object, tol: float = 5e-3) -> bool:
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    if numbers and (isinstance(a, float) or isinstance(b, float)):
        return abs(float(a) - float(b)) <= tol
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.timeout(600)  # a full training
def test_the_model_depends_on_the_stories_not_on_the_order_of_their_lines() -> None:
    """Undated stories are grouped by position and the thresholds' bootstrap draws by position:
    moving four stories between the files once moved natsec's threshold by 0.03. Training sorts
    the stories first, so shuffled files (and the same stories split differently between train
    and validation) give the same model; only the files' hashes in `meta` differ."""
    rules = RuleClassifier(load_taxonomy(TOPICS_FILE))
    items = [*load_labeled(CORPUS / "train.jsonl"), *load_labeled(CORPUS / "validation.jsonl")]
    shuffled = list(items)
    random.Random(7).shuffle(shuffled)
    half = len(shuffled) // 2
    reordered = train_model(rules, TrainingData(shuffled[half:], shuffled[:half], [])).to_json()
    shipped = LinearTopicModel.load(PACKAGED_MODEL).to_json()
    for model in (reordered, shipped):
        for key in ("trained_with", "data", "train_items", "validation_items"):
            model["meta"].pop(key)
    assert _same(reordered, shipped)
    assert [t["threshold"] for t in reordered["topics"]] == [t["threshold"] for t in shipped["topics"]]


def test_the_model_comparison_can_fail() -> None:
    assert _same({"w": [0.1, 0.2], "t": 0.5}, {"w": [0.1004, 0.2], "t": 0.5})
    assert not _same({"w": [0.1, 0.2]}, {"w": [0.1, 0.21]})
    assert not _same({"w": [0.1]}, {"w": [0.1, 0.0]}) and not _same({"v": "a"}, {"v": "b"})


def test_model_artefact_is_small_versioned_and_never_read_the_test_split() -> None:
    assert PACKAGED_MODEL.stat().st_size <= 10 * 1024 * 1024
    model = LinearTopicModel.load(PACKAGED_MODEL)
    assert set(model.topic_names) == set(TOPICS)
    files = {d["file"] for d in model.meta["data"]}
    assert files == {"train.jsonl", "validation.jsonl"}
    for d in model.meta["data"]:
        assert d["sha256"] == hashlib.sha256((CORPUS / d["file"]).read_bytes()).hexdigest()


def test_a_broken_model_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(ModelError, match="cannot read the model"):
        load_classifier(TOPICS_FILE, str(bad))
    with pytest.raises(ModelError, match="not found"):
        load_classifier(TOPICS_FILE, str(tmp_path / "missing.json.gz"))
    assert isinstance(load_classifier(TOPICS_FILE, "off"), RuleClassifier)


def test_fast_feature_path_equals_the_training_features() -> None:
    model = LinearTopicModel.load(PACKAGED_MODEL)
    for split in SPLITS:
        for item in load_labeled(CORPUS / f"{split}.jsonl"):
            expected = sorted(
                model.vocabulary[f] for f in text_features(item.title, item.summary) if f in model.vocabulary
            )
            assert sorted(model.feature_ids(item.title, item.summary)) == expected, item.title


def test_title_word_pairs_are_features_and_the_fast_path_keeps_their_cap() -> None:
    features = text_features("China blocks Meta's Manus deal", "")
    assert {"s:blocks china", "s:china manus", "s:deal meta"} <= features
    paired = {w for f in features if f.startswith("s:") for w in f[2:].split(" ")}
    assert paired == {"blocks", "china", "deal", "manus", "meta"}  # not "s" (of "Meta's"), no function word
    assert readable("s:blocks china") == "blocks + china"  # two words of the title, not a phrase
    # A long title pairs only its first MAX_PAIR_WORDS distinct content words...
    long_title = " ".join(f"word{chr(97 + i)}" for i in range(MAX_PAIR_WORDS + 4))
    words = pair_words(title_tokens(long_title))
    assert len(words) == MAX_PAIR_WORDS and "wordp" not in words
    pairs = [f for f in text_features(long_title, "") if f.startswith("s:")]
    assert len(pairs) == MAX_PAIR_WORDS * (MAX_PAIR_WORDS - 1) // 2
    # ...and the hot path's shortcut gives the same words, for long titles and short ones.
    known = frozenset({"worda", "wordl", "wordp", "china", "blocks"})
    for title in (long_title, "China blocks Meta's Manus deal", f"{long_title} China blocks the deal"):
        tokens_ = title_tokens(title)
        assert known_pair_words(tokens_, known) == [w for w in pair_words(tokens_) if w in known], title


def test_naive_bayes_ratios_count_how_often_a_feature_marks_the_topic() -> None:
    import numpy as np
    import scipy.sparse as sp

    # Three text columns and one extra column (a rule score) that naive Bayes never weighs.
    x = sp.csr_matrix(np.array([[1, 0, 1, 0.5], [1, 0, 0, 0.5], [0, 1, 0, 0.0], [0, 1, 1, 0.0]]))
    y = np.array([1, 1, 0, 0])
    ratios = _nb_ratios(x, y, n_text=3)
    assert ratios.shape == (3,)
    # Laplace-smoothed counts: inside (3, 1, 2) of 6, outside (1, 3, 2) of 6.
    assert np.allclose(ratios, np.log([3 / 1, 1 / 3, 2 / 2]))


def test_the_shipped_model_records_its_pull_toward_naive_bayes_per_topic() -> None:
    model = LinearTopicModel.load(PACKAGED_MODEL)
    for topic in TOPICS:
        assert model.meta["topics"][topic]["naive_bayes_weight"] in NB_GRID, topic


def gate_failures(report: EvalReport) -> list[str]:
    failures = []
    if report.macro_f1 < MIN_TEST_MACRO_F1:
        failures.append(f"macro-F1 {report.macro_f1:.3f} < {MIN_TEST_MACRO_F1}")
    for m in report.per_topic.values():
        if m.precision < MIN_TEST_PRECISION:
            failures.append(f"{m.topic}: precision {m.precision:.3f} < {MIN_TEST_PRECISION}")
    if report.hard_negative_rate > MAX_TEST_HARD_NEGATIVE_RATE:
        failures.append(
            f"hard negatives flagged {report.hard_negative_rate:.1%} > {MAX_TEST_HARD_NEGATIVE_RATE:.0%}"
        )
    return failures


def test_quality_gate_on_the_frozen_test_split(classifier: HybridClassifier) -> None:
    report = evaluate(classifier, load_labeled(CORPUS / "test.jsonl"))
    failures = gate_failures(report)
    assert not failures, "\n".join(failures) + "\n\n" + format_report(report, max_items=30)


def test_the_gate_can_fail() -> None:
    rules = load_classifier(TOPICS_FILE, "off")
    report = evaluate(rules, load_labeled(CORPUS / "test.jsonl"))
    assert gate_failures(report), "the rules alone are known to miss the bar: the gate must see it"


def test_batch_and_single_classification_agree(classifier: HybridClassifier) -> None:
    items = load_labeled(CORPUS / "validation.jsonl")[:200]
    batch = classify_many(classifier, [(i.title, i.summary) for i in items])
    for item, result in zip(items, batch, strict=True):
        single = classifier.classify(item.title, item.summary)
        assert single.topics == result.topics
        assert all(abs(single.scores[t] - result.scores[t]) < 1e-6 for t in TOPICS)


# ------------------------------------------------------------------------------------ explanations
def test_evidence_names_readable_features_and_rule_hits(classifier: HybridClassifier) -> None:
    result = classifier.classify(
        "OpenAI accuses DeepSeek of distilling its models",
        "OpenAI told the House Select Committee on China that DeepSeek used distillation to copy its models.",
    )
    assert {"distillation", "ip", "natsec"} <= set(result.topics)
    evidence = result.evidence["distillation"]
    assert evidence and all(isinstance(t, str) and t for t in evidence)
    assert any("distil" in t for t in evidence)
    for topic in TOPICS:
        if topic not in result.topics and result.scores[topic] == 0:
            assert result.evidence[topic] == ()


def test_evidence_leads_with_rule_terms_and_skips_words_that_mark_no_topic(
    classifier: HybridClassifier,
) -> None:
    model = classifier.model
    assert model is not None and model.explainable is not None
    shown = {
        topic: {f for f, i in model.vocabulary.items() if i in ids}
        for topic, ids in model.explainable.items()
    }
    # Generic words help a score but explain nothing; words that mark a topic are kept.
    for generic in ("w:ai", "t:ai", "w:the", "w:without", "w:get"):
        assert not any(generic in features for features in shown.values()), generic
    assert {"w:theft", "w:lawsuit"} <= shown["ip"]
    assert {"w:china", "w:nvidia"} <= shown["natsec"]
    result = classifier.classify(
        "US restricts sale of AI training chips to China",
        "The US will restrict exports of Nvidia's AI chips to China, citing national security.",
    )
    assert "natsec" in result.topics
    evidence = result.evidence["natsec"]
    assert evidence[0] == "chips to china"  # a rule term of the operator's taxonomy comes first
    assert not {"ai", "ai (title)", "us", "the"} & set(evidence)


def test_explanations_come_from_an_older_model_file_too(classifier: HybridClassifier) -> None:
    """A model file written before `explainable` and `bare` existed still loads and explains, with
    every readable feature."""
    model = classifier.model
    assert model is not None
    data = model.to_json()
    del data["explainable"]
    # ... and before the bare-headline features: one weight per rule topic, the last block.
    del data["bare"]
    data["weights"] = {t: column[: -len(data["rule_topics"])] for t, column in data["weights"].items()}
    older = LinearTopicModel.from_json(data)
    assert older.explainable is None and not older.bare
    result = HybridClassifier(classifier.rules, older).classify("Authors sue OpenAI for theft of their books")
    assert "ip" in result.topics and result.evidence["ip"]


def test_evidence_gives_each_reason_once() -> None:
    assert merge_evidence(["us (title)", "us", "government", "gover…"]) == ["us (title)", "government"]
    # A whole word replaces its prefix; a prefix after its word adds nothing.
    assert merge_evidence(["disti…", "deepseek", "distillation"]) == ["distillation", "deepseek"]
    assert merge_evidence(["technology", "techn…", "tech"]) == ["technology", "tech"]
    assert merge_evidence(["model distillation", "model"]) == ["model distillation", "model"]


def _rules_with_robotics(tmp_path: Path, *, gated: bool = False) -> RuleClassifier:
    """The shipped taxonomy plus an operator's new topic, `robotics`."""
    path = tmp_path / "topics.toml"
    path.write_text(
        TOPICS_FILE.read_text()
        + '\n[topics.robotics]\ndescription = "Robots"\ncontexts = ["ai"]\n'
        + ("model_requires_context = true\n" if gated else "")
        + '[topics.robotics.signals.core]\nweight = 3.0\nterms = ["humanoid robot*"]\n'
    )
    return RuleClassifier(load_taxonomy(path))


def _robot_stories(
    n: int, title: Callable[[int], str], outlet: Callable[[int], str], published: Callable[[int], str]
) -> list[LabeledItem]:
    return [
        LabeledItem(
            title=title(k),
            summary="",
            topics=frozenset({"robotics"}),
            outlet=outlet(k),
            published=published(k),
        )
        for k in range(n)
    ]


def test_a_topic_labelled_from_one_outlet_month_stays_on_its_rules(tmp_path: Path) -> None:
    """An operator's first labels of a new topic often come from one feed in one month: training
    must not fail on folds without a positive, and the topic keeps running on its rules."""
    rules = _rules_with_robotics(tmp_path)
    news = load_labeled(CORPUS / "validation.jsonl")[:300]
    robots = _robot_stories(
        25,
        lambda n: f"Humanoid robot maker {n} shows a new AI model",
        lambda n: "Robot Weekly",
        lambda n: "2026-11-02",
    )
    model = train_model(rules, TrainingData([*news, *robots], [], []))
    assert model.meta["topics"]["robotics"] == {
        "model": False,
        "train_positives": 25,
        "reason": "examples from a single outlet-month",
    }
    assert "robotics" in HybridClassifier(rules, model).classify("AI humanoid robots fold laundry").topics


def test_a_topic_gated_by_its_contexts_counts_only_the_examples_inside_them(tmp_path: Path) -> None:
    """`model_requires_context`: the examples without one of the topic's contexts are not trained
    on, so a topic whose examples mostly lack them stays on its rules instead of failing."""
    rules = _rules_with_robotics(tmp_path, gated=True)
    news = load_labeled(CORPUS / "validation.jsonl")[:300]
    robots = _robot_stories(
        25,
        lambda n: f"Humanoid robot maker {n} shows a new {'AI model' if n < 5 else 'gripper'}",
        lambda n: f"Robot Weekly {n % 5}",
        lambda n: f"2026-{n % 12 + 1:02d}-02",
    )
    model = train_model(rules, TrainingData([*news, *robots], [], []))
    assert model.meta["topics"]["robotics"] == {
        "model": False,
        "train_positives": 25,
        "reason": "too few examples with one of its contexts",
    }
    assert model.meta["topics"]["natsec"]["model_requires_context"]["stories_in_context"] < len(news) + 25


def test_a_gated_topic_trains_when_its_stories_fill_only_some_folds(tmp_path: Path) -> None:
    """The folds are cut over every story; the stories with one of the topic's contexts may all
    fall in two or three of them, and the folds left empty must not stop the training."""
    rules = _rules_with_robotics(tmp_path, gated=True)

    def story(title: str, outlet: str, published: str, topics: frozenset[str]) -> LabeledItem:
        return LabeledItem(title=title, summary="", topics=topics, outlet=outlet, published=published)

    robots = frozenset({"robotics"})
    items = [
        *(
            story(
                f"Humanoid robot maker {n} shows a new AI model",
                f"Robot Weekly {n % 3}",
                "2026-11-02",
                robots,
            )
            for n in range(24)
        ),
        *(
            story(
                f"AI startup {n} raises money for chatbots",
                f"Robot Weekly {n % 3}",
                "2026-11-03",
                frozenset(),
            )
            for n in range(12)
        ),
        *(
            story(f"Local weather report {n}", f"Paper {n}", f"2026-{n % 9 + 1:02d}-01", frozenset())
            for n in range(60)
        ),
    ]
    assert len(set(grouped_folds(items)[:36].tolist())) < 5  # the AI stories fill only some folds
    model = train_model(rules, TrainingData(items, [], []))
    assert model.meta["topics"]["robotics"]["model"] is True
    assert model.meta["topics"]["robotics"]["model_requires_context"] == {
        "stories_in_context": 36,
        "positives_outside": 0,
    }


# ------------------------------------------------------------------------------------ operators
def test_a_topic_without_training_data_runs_on_its_rules(tmp_path: Path) -> None:
    extra = """
[topics.chips]
description = "AI chips."
threshold = 0.5
[topics.chips.signals.core]
weight = 3.0
terms = ["ai chip*", "gpu*"]
"""
    path = tmp_path / "topics.toml"
    path.write_text(TOPICS_FILE.read_text() + extra)
    c = load_classifier(path)
    assert isinstance(c, HybridClassifier)
    assert "chips" in c.topics and "chips" not in c.model_topics
    result = c.classify("Nvidia ships new AI chips", "The GPUs are faster.")
    assert "chips" in result.topics and result.evidence["chips"]


def test_always_and_never_terms_override_the_model(tmp_path: Path) -> None:
    text = TOPICS_FILE.read_text().replace(
        "[topics.release]", '[topics.release]\nalways = ["glm 4 5"]\nnever = ["release notes"]', 1
    )
    path = tmp_path / "topics.toml"
    path.write_text(text)
    c = load_classifier(path)
    assert "release" in c.classify("zai-org/GLM-4.5").topics
    assert c.classify("zai-org/GLM-4.5").evidence["release"][0] == "always: glm 4 5"
    vetoed = c.classify(
        "Anthropic releases Claude Opus 5, release notes inside", "Available today in the API."
    )
    assert "release" not in vetoed.topics and vetoed.evidence["release"] == ("never: release notes",)


def test_always_together_attaches_a_topic_only_when_every_list_matches(tmp_path: Path) -> None:
    text = TOPICS_FILE.read_text().replace(
        "[topics.release.signals",
        '[topics.release.always_together]\nlab = ["zai org", "zhipu"]\nverb = ["open sources", "ships"]\n'
        "[topics.release.signals",
        1,
    )
    path = tmp_path / "topics.toml"
    path.write_text(text)
    c = load_classifier(path)
    both = c.classify("Zhipu quietly ships a thing", "")
    assert "release" in both.topics and both.evidence["release"][0] == "always: zhipu + ships"
    for one in ("Zhipu quietly posts a thing", "Startup quietly ships a thing"):
        evidence = c.classify(one, "").evidence["release"]
        assert not evidence or not evidence[0].startswith("always:"), one
    # The shipped taxonomy: a distillation accusation is ip, and natsec against a rival state's lab.
    shipped = load_classifier(TOPICS_FILE)
    story = shipped.classify("OpenAI says DeepSeek distilled its models to train a rival chatbot", "")
    assert {"distillation", "ip", "natsec"} <= set(story.topics)
    assert story.evidence["natsec"][0] == "always: distilled its models + deepseek"
    domestic = shipped.classify("Anthropic accuses OpenAI of distillation attack", "")
    assert "ip" in domestic.topics
    assert not any(e.startswith("always:") for e in domestic.evidence["natsec"])


# ------------------------------------------------------------------------------------ the CLI
def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


@pytest.mark.timeout(600)  # a full training and an evaluation of every split, in subprocesses
def test_train_cli_writes_a_model_that_eval_and_classify_use(tmp_path: Path) -> None:
    out = tmp_path / "mine.json.gz"
    extra = tmp_path / "mine.jsonl"
    extra.write_text(
        json.dumps({"title": "Totally new words qwxz", "summary": "", "labels": ["release"]}) + "\n"
    )
    done = run_cli("train", "--out", str(out), "--extra", str(extra))
    assert done.returncode == 0, done.stderr
    assert "release: learned" in done.stdout and f"wrote {out}" in done.stdout
    assert LinearTopicModel.load(out).meta["train_items"] == len(records("train")) + 1
    evaluated = run_cli("eval", "--splits")
    assert evaluated.returncode == 0, evaluated.stderr
    for split in SPLITS:
        assert f"== config/labelled/{split}.jsonl ==" in evaluated.stdout
    assert evaluated.stdout.count("hard negatives flagged") == 3
    classified = run_cli("classify", "--explain", stdin='{"title": "Alibaba open-sources Qwen3 models"}\n')
    line = json.loads(classified.stdout)
    assert (
        line["topics"] == ["release"] and set(line["scores"]) == set(TOPICS) and line["evidence"]["release"]
    )


def test_eval_refuses_an_empty_file_and_accepts_labels(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    done = run_cli("eval", str(empty))
    assert (
        done.returncode == 2
        and done.stderr.strip().startswith("error:")
        and "no labelled items" in done.stderr
    )
    labelled = tmp_path / "labels.jsonl"
    labelled.write_text(
        json.dumps({"title": "Whisky distillery opens", "labels": [], "hard_negative": True}) + "\n"
    )
    done = run_cli("eval", str(labelled))
    assert done.returncode == 0 and "hard negatives flagged: 0/1" in done.stdout


def test_folds_keep_each_outlet_month_together_and_are_balanced() -> None:
    items = [*load_labeled(CORPUS / "train.jsonl"), *load_labeled(CORPUS / "validation.jsonl")]
    folds = grouped_folds(items)
    fold_of_group: dict[str, set[int]] = {}
    for i, item in enumerate(items):
        fold_of_group.setdefault(group_of(item, i), set()).add(int(folds[i]))
    assert all(len(f) == 1 for f in fold_of_group.values())
    assert len(fold_of_group) > 200  # outlet-months, not a handful of outlets
    sizes = Counter(int(k) for k in folds)
    assert sorted(sizes) == [0, 1, 2, 3, 4]
    assert max(sizes.values()) - min(sizes.values()) <= 0.05 * len(items)
    # An operator's item without outlet or date is its own group: never glued to another.
    bare = LabeledItem(title="x", summary="", topics=frozenset())
    assert group_of(bare, 1) != group_of(bare, 2)


@pytest.mark.timeout(600)  # ten trainings (the CLI's five folds, then the same here)
def test_eval_cross_validate_scores_each_story_with_a_model_that_never_saw_its_outlet_month(
    tmp_path: Path,
) -> None:
    data = tmp_path / "labelled"
    data.mkdir()
    # A small corpus keeps the five trainings quick; the procedure is the one `train` runs.
    for split, n in (("train", 700), ("validation", 200)):
        (data / f"{split}.jsonl").write_text("".join(f"{json.dumps(r)}\n" for r in records(split)[:n]))
    done = run_cli("eval", "--cross-validate", "--data", str(data))
    assert done.returncode == 0, done.stderr
    assert "5 folds by outlet-month" in done.stdout
    assert "hard negatives flagged" in done.stdout and "macro" in done.stdout
    items = [*load_labeled(data / "train.jsonl"), *load_labeled(data / "validation.jsonl")]
    rules = RuleClassifier(load_taxonomy(TOPICS_FILE))
    results = cross_validate(rules, items)
    assert len(results) == len(items)
    # A model that saw a story recites its label; out of fold it cannot: if a fold leaked into its
    # own model, the two would agree.
    in_sample = evaluate(HybridClassifier(rules, train_model(rules, TrainingData(items, [], []))), items)
    out_of_fold = score_results(TOPICS, items, results)
    assert in_sample.exact_match > 0.90 * len(items)
    assert out_of_fold.exact_match < in_sample.exact_match - 0.03 * len(items)
