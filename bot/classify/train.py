"""``frontierwatch train``: fit the learned topic model from labelled JSON Lines, reproducibly.

Inputs: the training split and the validation split of the committed corpus (``config/labelled``),
plus any operator files (``--extra``, e.g. ``frontierwatch feedback export``). The test split is never
read here: it only reports.

Per topic of ``config/topics.toml`` with at least :data:`MIN_POSITIVES` training examples:

1. a logistic regression over the story's text features and the rule scores; its regularisation
   strength is picked on the validation split (log-loss);
2. Platt calibration fitted on out-of-fold margins of the training split (5 deterministic folds), so
   the score is a probability;
3. the decision threshold picked on the validation split: the best F1 among thresholds whose
   precision is at least :data:`MIN_PRECISION`, or the best F1 if none reaches it.

Everything is deterministic (fixed folds, liblinear, sorted vocabulary), so the same data gives the
same model file, byte for byte: a test retrains and compares with the shipped one.
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
from bot.classify.features import text_features, tokens
from bot.classify.model import LinearTopicModel, TopicWeights
from bot.classify.rules import RuleClassifier

__all__ = ["MIN_POSITIVES", "MIN_PRECISION", "TrainingData", "train_model"]

MIN_POSITIVES = 20  # fewer labelled examples than this: the topic stays on its rules
MIN_PRECISION = 0.92  # what a threshold must reach on validation before recall is maximised
MIN_DF = 2  # a feature must occur in this many training stories
C_GRID = (1.0, 4.0, 16.0, 64.0)
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

    model = LogisticRegression(C=c, solver="liblinear", max_iter=1000, class_weight=CLASS_WEIGHT)
    model.fit(x, y)
    return model


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _platt(margins: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    calibrator = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
    calibrator.fit(margins.reshape(-1, 1), y)
    return float(calibrator.coef_[0, 0]), float(calibrator.intercept_[0])


def _threshold(p: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, float]]:
    best: tuple[float, float, float, float] | None = None  # f1, threshold, precision, recall
    fallback: tuple[float, float, float, float] | None = None
    positives = float(y.sum())
    for t in np.arange(0.10, 0.951, 0.01):
        predicted = p >= t
        tp = float((predicted & (y == 1)).sum())
        n_pred = float(predicted.sum())
        precision = tp / n_pred if n_pred else 1.0
        recall = tp / positives if positives else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        cand = (f1, float(round(t, 2)), precision, recall)
        if fallback is None or cand[0] > fallback[0]:
            fallback = cand
        if precision >= MIN_PRECISION and (best is None or cand[0] > best[0]):
            best = cand
    chosen = best or fallback
    assert chosen is not None
    f1, t, precision, recall = chosen
    return t, {"f1": round(f1, 4), "precision": round(precision, 4), "recall": round(recall, 4)}


def train_model(rules: RuleClassifier, data: TrainingData) -> LinearTopicModel:
    """Fit one calibrated linear model per topic that has enough training examples."""
    import scipy.sparse as sp

    train, validation = data.train, data.validation
    df: Counter[str] = Counter()
    for item in train:
        df.update(text_features(item.title, item.summary))
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
    )

    def rows(items: list[LabeledItem]) -> Any:
        split = [(tokens(i.title), tokens(i.summary)) for i in items]
        analyses = [rules.analyze_tokens(t, s) for t, s in split]
        matrix = shell.feature_rows(
            split,
            [a.rules_only.scores for a in analyses],
            [a.contexts for a in analyses],
            [a.negatives for a in analyses],
        )
        return sp.csr_matrix(matrix, dtype=np.float64)

    x_train, x_val = rows(train), rows(validation)
    folds = np.arange(len(train)) % FOLDS
    columns: list[np.ndarray] = []
    topics: list[TopicWeights] = []
    report: dict[str, Any] = {}
    for topic in rules.topics:
        y = np.asarray([topic in i.topics for i in train], dtype=np.int64)
        y_val = np.asarray([topic in i.topics for i in validation], dtype=np.int64)
        if y.sum() < MIN_POSITIVES or y_val.sum() == 0:
            report[topic] = {"model": False, "train_positives": int(y.sum()), "reason": "too few examples"}
            continue
        losses = []
        for c in C_GRID:
            fitted = _fit(x_train, y, c)
            losses.append(_log_loss(fitted.predict_proba(x_val)[:, 1], y_val))
        c = C_GRID[int(np.argmin(losses))]
        oof = np.zeros(len(train))
        for k in range(FOLDS):
            held = folds == k
            fold_model = _fit(x_train[~held], y[~held], c)
            oof[held] = fold_model.decision_function(x_train[held])
        a, b = _platt(oof, y)
        final = _fit(x_train, y, c)
        margins_val = final.decision_function(x_val)
        p_val = _sigmoid(a * margins_val + b)
        threshold, metrics = _threshold(p_val, y_val)
        columns.append(np.asarray(final.coef_[0], dtype=np.float32))
        topics.append(TopicWeights(topic, float(final.intercept_[0]), (a, b), threshold))
        report[topic] = {
            "model": True,
            "C": c,
            "train_positives": int(y.sum()),
            "validation_positives": int(y_val.sum()),
            "validation_at_threshold": metrics,
        }
    weights = np.stack(columns, axis=1) if columns else np.zeros((x_train.shape[1], 0), dtype=np.float32)
    import sklearn

    meta = {
        "trained_with": f"scikit-learn {sklearn.__version__}",
        "data": data.sources,
        "train_items": len(train),
        "validation_items": len(validation),
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
        meta=meta,
    )
    # Round-trip through the file format, so the returned model is exactly what loading gives.
    return LinearTopicModel.from_json(model.to_json())
