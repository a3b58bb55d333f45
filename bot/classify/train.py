"""``frontierwatch train``: fit the learned topic model from labelled JSON Lines, reproducibly.

Inputs: the training split and the validation split of the committed corpus (``config/labelled``),
plus any operator files (``--extra``, e.g. ``frontierwatch feedback export``). The test split is never
read here: it only reports.

Per topic of ``config/topics.toml`` with at least :data:`MIN_POSITIVES` training examples, on the
training and validation items together, in 5 folds grouped by outlet-month (no outlet-month in two
folds, so every choice is judged on outlets and months the model did not see):

1. a logistic regression over the story's text features and the rule scores, its text weights
   pulled toward naive Bayes's log-count ratios by a weight β (:data:`NB_GRID`); the regularisation
   strength C and β are picked together by out-of-fold average precision;
2. Platt calibration fitted on the out-of-fold margins, so the score is a probability;
3. the decision threshold picked on the out-of-fold probabilities: the best F1 among thresholds whose
   precision is at least :data:`MIN_PRECISION`, or the best F1 if none reaches it;
4. the shipped weights fitted on all of it.

Everything is deterministic (stories in a canonical order, folds by outlet-month, liblinear, sorted
vocabulary, a seeded bootstrap), so the same data gives the same model file, byte for byte, whatever
the order of its lines: a test retrains and compares with the shipped one.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.classify.evaluate import LabeledItem, load_labeled
from bot.classify.features import text_features, title_tokens, tokens
from bot.classify.model import LinearTopicModel, TopicWeights
from bot.classify.rules import RuleClassifier
from bot.domain import Classification

__all__ = [
    "MIN_POSITIVES",
    "MIN_PRECISION",
    "TrainingData",
    "canonical_order",
    "cross_validate",
    "group_of",
    "grouped_folds",
    "train_model",
]

MIN_POSITIVES = 20  # fewer labelled examples than this: the topic stays on its rules
MIN_PRECISION = 0.92  # what a threshold must reach out of fold before recall is maximised
# Bootstrap resamples whose best thresholds' median is the threshold. With 50, the draw alone moved
# distillation's threshold between 0.30 and 0.39 and release's between 0.75 and 0.81 (eight seeds,
# same scores); with 1,000 they agree to 0.01 (ip's best thresholds sit on two plateaus, 0.54/0.57).
THRESHOLD_RESAMPLES = 1000
MIN_DF = 2  # a feature must occur in this many training stories
# A feature is shown as a reason for a topic only if it marks the topic in the training data: in at
# least EXPLAIN_MIN_SUPPORT of its stories, and EXPLAIN_MIN_LIFT times as often as the topic's base
# rate ("theft" for ip, "china" for natsec; not "ai", "us" or "without").
EXPLAIN_MIN_SUPPORT = 5
EXPLAIN_MIN_LIFT = 4.0
C_GRID = (1.0, 4.0, 16.0, 64.0)
# How far a topic's text weights are pulled toward naive Bayes's (each feature's log-ratio of its
# rate in the topic's stories to its rate in the others): the interpolation of Wang & Manning's
# NBSVM. Naive Bayes counts a word by how often it marks the topic, so a new headline's many
# familiar words add up even where the regression gave them little weight; out of fold it ranks
# better for ip, natsec and release, and distillation picks 0.
NB_GRID = (0.0, 0.3, 1.0)
NB_SMOOTHING = 1.0  # added to every feature's count in each class (Laplace)
# Out-of-fold average precision within this of the best counts as a tie (what a reshuffle of the
# folds moves it by), and a tie goes to the simpler setting.
AP_TOLERANCE = 0.001
# liblinear stops when its gradient has shrunk by this factor. At its default (1e-4) the weights
# stop short of the optimum by up to 0.015, and where exactly depends on the CPU's BLAS kernels:
# the same data trained on two machines differed by 0.01 on ip's weights. At 1e-6 they are within
# 2e-4 of the optimum (measured against 1e-8), so machines agree to about that, far below anything
# that moves a decision, at the same training time.
SOLVER_TOLERANCE = 1e-6
FOLDS = 5
RULE_SCALE = 2.0
CLASS_WEIGHT: str | None = "balanced"  # topics are rare: weigh positives up, or recall suffers


@dataclass(frozen=True, slots=True)
class TrainingData:
    train: list[LabeledItem]
    validation: list[LabeledItem]
    sources: list[dict[str, Any]]  # file, split, sha256, items: the model's provenance


def load_training_data(train: Sequence[Path], validation: Sequence[Path]) -> TrainingData:
    sources: list[dict[str, Any]] = []
    splits: dict[str, list[LabeledItem]] = {"train": [], "validation": []}
    for split, paths in (("train", train), ("validation", validation)):
        for path in paths:
            items = load_labeled(path)
            splits[split].extend(items)
            sources.append(
                {
                    "file": path.name,
                    "split": split,
                    "items": len(items),
                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                }
            )
    return TrainingData(splits["train"], splits["validation"], sources)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _fit(x: Any, y: np.ndarray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(
        C=c, solver="liblinear", max_iter=1000, class_weight=CLASS_WEIGHT, tol=SOLVER_TOLERANCE
    )
    model.fit(x, y)
    return model


def _out_of_fold_margins(x: Any, y: np.ndarray, c: float, folds: np.ndarray) -> np.ndarray:
    """Each row's margin from a model fitted without its fold."""
    oof = np.zeros(len(y))
    for k in range(FOLDS):
        held = folds == k
        if not held.any():  # a topic trained on part of the stories may leave a fold empty
            continue
        oof[held] = _fit(x[~held], y[~held], c).decision_function(x[held])
    return oof


def _nb_ratios(x: Any, y: np.ndarray, n_text: int) -> np.ndarray:
    """Per text feature (the first ``n_text`` columns), naive Bayes's log-count ratio: the log of
    its share of the features present in the topic's stories over its share in the others."""
    present = (x[:, :n_text] > 0).astype(np.float64)
    inside = np.asarray(present[y == 1].sum(axis=0)).ravel() + NB_SMOOTHING
    outside = np.asarray(present[y == 0].sum(axis=0)).ravel() + NB_SMOOTHING
    return np.asarray(np.log(inside / inside.sum()) - np.log(outside / outside.sum()))


def _out_of_fold_nb(x: Any, y: np.ndarray, folds: np.ndarray, n_text: int) -> np.ndarray:
    """Each row's naive Bayes margin (without the prior) from ratios counted without its fold."""
    oof = np.zeros(len(y))
    for k in range(FOLDS):
        held = folds == k
        if held.any():
            oof[held] = x[held][:, :n_text] @ _nb_ratios(x[~held], y[~held], n_text)
    return oof


def _average_precision(margins: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, margins))


def _platt(margins: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    calibrator = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
    calibrator.fit(margins.reshape(-1, 1), y)
    return float(calibrator.coef_[0, 0]), float(calibrator.intercept_[0])


def _threshold(p: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, float]]:
    """The threshold, and precision/recall/F1 at it on all of `p`: the median of the best
    thresholds (:func:`_best_threshold`) of THRESHOLD_RESAMPLES bootstrap resamples. The best
    threshold sits where precision crosses MIN_PRECISION, so a few stories can move it by 0.07 and
    halve a topic's recall; the median over resamples is what the data say, not what a few say."""
    rng = np.random.default_rng(0)  # fixed: `train` must reproduce the shipped model exactly
    picks = [
        _best_threshold(p[idx], y[idx])
        for idx in (rng.integers(0, len(y), len(y)) for _ in range(THRESHOLD_RESAMPLES))
    ]
    t = float(np.round(np.median(picks), 2))
    precision, recall, f1 = _metrics_at(p, y, t)
    return t, {"f1": round(f1, 4), "precision": round(precision, 4), "recall": round(recall, 4)}


def _best_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The threshold of best F1 among those with precision >= MIN_PRECISION (else of best F1)."""
    best: tuple[float, float] | None = None  # f1, threshold
    fallback: tuple[float, float] | None = None
    for t in np.arange(0.10, 0.951, 0.01):
        precision, _recall, f1 = _metrics_at(p, y, t)
        cand = (f1, float(round(t, 2)))
        if fallback is None or f1 > fallback[0]:
            fallback = cand
        if precision >= MIN_PRECISION and (best is None or f1 > best[0]):
            best = cand
    chosen = best or fallback
    assert chosen is not None
    return chosen[1]


def _metrics_at(p: np.ndarray, y: np.ndarray, t: float) -> tuple[float, float, float]:
    """Precision, recall and F1 of attaching where ``p >= t``."""
    predicted = p >= t
    tp = float((predicted & (y == 1)).sum())
    n_pred = float(predicted.sum())
    positives = float(y.sum())
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / positives if positives else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def canonical_order(items: Sequence[LabeledItem]) -> list[LabeledItem]:
    """The items sorted by their content, so a model depends on the data and not on the order of
    its lines: an undated story's group is its position (:func:`group_of`), and the bootstrap of
    the thresholds draws by position. Moving four stories from train.jsonl to validation.jsonl
    moved natsec's threshold 0.66 -> 0.63 before this."""
    return sorted(items, key=_content_key)


def _content_key(item: LabeledItem) -> tuple[str, str, str, str, str, list[str]]:
    return (
        item.title,
        item.summary,
        item.url or "",
        item.outlet or "",
        item.published or "",
        sorted(item.topics),
    )


def group_of(item: LabeledItem, index: int) -> str:
    """The item's outlet-month: the unit that never straddles two folds (or two splits)."""
    if item.outlet and item.published:
        # As config/labelled/groups.json: "POLITICO" and "Politico" are one outlet.
        return f"{item.outlet.strip().lower()}|{item.published[:7]}"
    return f"#{index}"  # an operator's item without outlet or date is a group of its own


def grouped_folds(items: Sequence[LabeledItem], folds: int = FOLDS) -> np.ndarray:
    """Each item's fold, every outlet-month in one fold: a model is then judged on outlets and months
    it never saw, as it will be in a channel. Largest groups first, each to the smallest fold so far
    (ties by name): balanced and deterministic."""
    members: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        members.setdefault(group_of(item, i), []).append(i)
    sizes = [0] * folds
    fold = np.zeros(len(items), dtype=np.int64)
    for _name, indices in sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        k = min(range(folds), key=lambda j: (sizes[j], j))
        fold[indices] = k
        sizes[k] += len(indices)
    return fold


def train_model(rules: RuleClassifier, data: TrainingData) -> LinearTopicModel:
    """Fit one calibrated linear model per topic that has enough training examples.

    Everything is chosen out of fold on train + validation with folds grouped by outlet-month
    (:func:`grouped_folds`): the regularisation strength and the pull toward naive Bayes (by average
    precision), the Platt calibration and the threshold. Every story is scored by a model that
    never saw its outlet-month, so a threshold is
    picked on about 4,800 such scores instead of the 1,000 of the validation split alone, where one
    story could move it by 0.05. The shipped weights are then fitted on all of it."""
    import scipy.sparse as sp

    pool = canonical_order([*data.train, *data.validation])
    df: Counter[str] = Counter()
    df_in: dict[str, Counter[str]] = {topic: Counter() for topic in rules.topics}
    for item in pool:
        features = text_features(item.title, item.summary)
        df.update(features)
        for topic in item.topics & df_in.keys():
            df_in[topic].update(features)
    vocabulary = {f: i for i, f in enumerate(sorted(f for f, n in df.items() if n >= MIN_DF))}
    rule_topics = rules.topics
    shell = LinearTopicModel(
        vocabulary=vocabulary,
        weights=np.zeros((0, 0), dtype=np.float32),
        topics=(),
        rule_topics=rule_topics,
        rule_scale=RULE_SCALE,
        contexts=rules.contexts,
        negatives=True,
        bare=True,
    )
    split = [(title_tokens(i.title), tokens(i.summary)) for i in pool]
    analyses = [rules.analyze_tokens(t, s) for t, s in split]
    x = sp.csr_matrix(
        shell.feature_rows(
            split,
            [a.rules_only.scores for a in analyses],
            [a.contexts for a in analyses],
            [a.negatives for a in analyses],
            [a.bare for a in analyses],
        ),
        dtype=np.float64,
    )
    folds = grouped_folds(pool)
    n_text = len(vocabulary)
    gated = rules.taxonomy.model_gates
    columns: list[np.ndarray] = []
    topics: list[TopicWeights] = []
    report: dict[str, Any] = {}
    for topic in rules.topics:
        y = np.asarray([topic in i.topics for i in pool], dtype=np.int64)
        xt, yt, ft = x, y, folds
        gate: dict[str, int] | None = None
        if topic in gated:
            # Only stories where one of the topic's contexts is present: elsewhere the rules decide.
            keep = np.asarray([bool(a.contexts & gated[topic]) for a in analyses], dtype=bool)
            gate = {"stories_in_context": int(keep.sum()), "positives_outside": int(y[~keep].sum())}
            xt, yt, ft = x[keep], y[keep], folds[keep]
        where = " with one of its contexts" if gate else ""
        if yt.sum() < MIN_POSITIVES:
            report[topic] = {
                "model": False,
                "train_positives": int(y.sum()),
                "reason": f"too few examples{where}",
            }
            continue
        if len(set(ft[yt == 1].tolist())) < 2:
            # Every example from one outlet-month (an operator's first batch of labels): no fold
            # could be scored by a model that learned the topic, and nothing says it generalises.
            report[topic] = {
                "model": False,
                "train_positives": int(y.sum()),
                "reason": f"examples{where} from a single outlet-month",
            }
            continue
        regression = {c: _out_of_fold_margins(xt, yt, c, ft) for c in C_GRID}
        bayes = _out_of_fold_nb(xt, yt, ft, n_text)
        margins = {(c, nb): regression[c] + nb * bayes for c in C_GRID for nb in NB_GRID}
        # Ranking is what C and β are for (calibration and threshold come next): the simplest
        # setting (the smallest β, then the smallest C) within AP_TOLERANCE of the best.
        precision_of = {key: _average_precision(margins[key], yt) for key in margins}
        best = max(precision_of.values())
        c, nb = min(
            (key for key, ap in precision_of.items() if ap >= best - AP_TOLERANCE), key=lambda k: (k[1], k[0])
        )
        a, b = _platt(margins[(c, nb)], yt)
        threshold, metrics = _threshold(_sigmoid(a * margins[(c, nb)] + b), yt)
        final = _fit(xt, yt, c)
        weights_of_topic = np.asarray(final.coef_[0], dtype=np.float64)
        if nb:
            weights_of_topic[:n_text] += nb * _nb_ratios(xt, yt, n_text)
        columns.append(np.asarray(weights_of_topic, dtype=np.float32))
        topics.append(TopicWeights(topic, float(final.intercept_[0]), (a, b), threshold))
        report[topic] = {
            "model": True,
            "C": c,
            "naive_bayes_weight": nb,
            "train_positives": int(y.sum()),
            "cross_validated_at_threshold": metrics,
        }
        if gate is not None:
            report[topic]["model_requires_context"] = gate
    weights = np.stack(columns, axis=1) if columns else np.zeros((x.shape[1], 0), dtype=np.float32)
    explainable = {
        t.name: _explainable(vocabulary, df, df_in[t.name], report[t.name]["train_positives"], len(pool))
        for t in topics
    }
    import sklearn

    meta = {
        "trained_with": f"scikit-learn {sklearn.__version__}",
        "data": data.sources,
        "train_items": len(data.train),
        "validation_items": len(data.validation),
        "chosen_by": f"{FOLDS}-fold cross-validation grouped by outlet-month on train + validation",
        "features": len(vocabulary),
        "topics": report,
    }
    model = LinearTopicModel(
        vocabulary=vocabulary,
        weights=weights,
        topics=tuple(topics),
        rule_topics=rule_topics,
        rule_scale=RULE_SCALE,
        contexts=rules.contexts,
        negatives=True,
        bare=True,
        explainable=explainable,
        meta=meta,
    )
    # Round-trip through the file format, so the returned model is exactly what loading gives.
    return LinearTopicModel.from_json(model.to_json())


def _explainable(
    vocabulary: dict[str, int], df: Counter[str], df_in: Counter[str], positives: int, n: int
) -> frozenset[int]:
    """The ids of the features that mark a topic with `positives` of the `n` stories (see
    EXPLAIN_MIN_LIFT)."""
    if not positives:
        return frozenset()
    base = positives / n
    return frozenset(
        vocabulary[f]
        for f, k in df_in.items()
        if k >= EXPLAIN_MIN_SUPPORT and f in vocabulary and k / df[f] >= EXPLAIN_MIN_LIFT * base
    )


def cross_validate(rules: RuleClassifier, items: Sequence[LabeledItem]) -> list[Classification]:
    """Every item classified by a model that ``train_model`` fitted without its outlet-month (the
    outer folds of :func:`grouped_folds`; each fit chooses C, calibration and thresholds inside its
    own data). What the training procedure does on headlines it has never seen, for
    ``frontierwatch eval --cross-validate``; five full trainings, so minutes, not seconds."""
    from bot.classify.hybrid import HybridClassifier

    # Folds over the canonical order, as train_model's: an undated story's group is its position.
    order = sorted(range(len(items)), key=lambda k: _content_key(items[k]))
    fold_at = grouped_folds([items[k] for k in order])
    folds = np.zeros(len(items), dtype=np.int64)
    folds[order] = fold_at
    out: list[Classification | None] = [None] * len(items)
    for k in range(FOLDS):
        held = [i for i in range(len(items)) if folds[i] == k]
        rest = [items[i] for i in range(len(items)) if folds[i] != k]
        classifier = HybridClassifier(rules, train_model(rules, TrainingData(rest, [], [])))
        results = classifier.classify_many([(items[i].title, items[i].summary, items[i].url) for i in held])
        for i, result in zip(held, results, strict=True):
            out[i] = result
    return [r for r in out if r is not None]
