"""The at-risk model: one additive logistic model (a GAM-like logit) and the helpers that evaluate it.

Every feature gets its own small basis (its value, a cubic spline on quantile knots, and a missing
indicator when it was ever missing in training); the basis columns are standardised and fed to an
L2-regularised logistic regression. The logit is therefore a sum of one shape per feature, so
`decision_contributions` explains each score exactly. Class 1 = at risk. Pure scikit-learn/numpy:
no Django here. Chosen on the UCI Student Performance data (docs/PREDICTIONS.md).
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler

# Quantile knots per feature (fewer when a feature has fewer distinct values).
SPLINE_KNOTS = 5
# Inverse L2 strength on standardised basis columns: strong, because terms hold a few hundred students.
INVERSE_REGULARIZATION = 0.03
# Thresholds whose training accuracy (or F1) is within this of the best count as equally good; of
# those, the one nearest 0.5 wins. Used by evaluate_uci; keeps the cut from chasing a few students.
THRESHOLD_TOLERANCE = 0.01
THRESHOLD_OBJECTIVES = ("f1", "accuracy")
CALIBRATION_BINS = 10
# Bootstrap resamples are scored this many at a time, so memory stays flat in the number of resamples.
BOOTSTRAP_CHUNK = 100


class FeatureBasis(TransformerMixin, BaseEstimator):
    """One feature's additive basis: the value (NaN filled with the training median), a cubic B-spline
    on quantile knots (linear beyond them), and a missing indicator if the feature was missing in
    training. Input is one column."""

    def __init__(self, n_knots: int = SPLINE_KNOTS, degree: int = 3):
        self.n_knots = n_knots
        self.degree = degree

    def fit(self, X, y=None):
        column = self._column(X)
        missing = np.isnan(column)
        observed = column[~missing]
        self.fill_value_ = float(np.median(observed)) if observed.size else 0.0
        self.has_missing_ = bool(missing.any())
        knots = np.unique(np.quantile(observed, np.linspace(0, 1, self.n_knots))) if observed.size else []
        self.spline_ = None
        if len(knots) >= 2:
            self.spline_ = SplineTransformer(
                knots=np.asarray(knots).reshape(-1, 1), degree=self.degree, extrapolation="linear", include_bias=False
            ).fit(self._filled(column))
        self.n_features_in_ = 1
        return self

    def transform(self, X):
        column = self._column(X)
        parts = [self._filled(column)]
        if self.spline_ is not None:
            parts.append(self.spline_.transform(self._filled(column)))
        if self.has_missing_:
            parts.append(np.isnan(column).astype(float).reshape(-1, 1))
        return np.hstack(parts)

    def get_feature_names_out(self, input_features=None):
        name = input_features[0] if input_features is not None else "x0"
        names = [name]
        if self.spline_ is not None:
            names += [f"{name}_spline{i}" for i in range(self.spline_.n_features_out_)]
        if self.has_missing_:
            names.append(f"{name}_missing")
        return np.asarray(names, dtype=object)

    def _filled(self, column: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(column), self.fill_value_, column).reshape(-1, 1)

    @staticmethod
    def _column(X) -> np.ndarray:
        array = np.asarray(X, dtype=float)
        if array.ndim != 2 or array.shape[1] != 1:
            raise ValueError(f"FeatureBasis takes one column, got shape {array.shape}")
        return array[:, 0]


def risk_pipeline_build(
    feature_names: Sequence[str],
    *,
    random_state: int = 0,
    n_knots: int = SPLINE_KNOTS,
    inverse_regularization: float = INVERSE_REGULARIZATION,
) -> Pipeline:
    """The at-risk pipeline for a float matrix whose columns are `feature_names`, in that order;
    NaN means unknown. Steps: "features" (one FeatureBasis per feature, named after it), "scale",
    "model" (logistic regression; class 1 = at risk). `predict_proba` is the sigmoid of
    `decision_function`: no separate calibration step."""
    names = list(feature_names)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"feature names must be non-empty and unique: {names}")
    features = ColumnTransformer(
        [(name, FeatureBasis(n_knots=n_knots), [index]) for index, name in enumerate(names)], remainder="drop"
    )
    return Pipeline(
        [
            ("features", features),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=inverse_regularization, max_iter=5000, random_state=random_state)),
        ]
    )


def risk_pipeline_feature_names(pipeline: Pipeline) -> list[str]:
    """The feature names a pipeline from `risk_pipeline_build` was built for, in input order."""
    return [name for name, _, _ in pipeline.named_steps["features"].transformers]


def decision_contributions(pipeline: Pipeline, X) -> tuple[np.ndarray, float]:
    """Each original feature's additive share of the logit, and the intercept:
    `contributions.sum(axis=1) + intercept == pipeline.decision_function(X)`.

    Contributions are coefficient x standardised basis column, summed over a feature's value, spline
    and missing-indicator columns; so 0 means "like the average training student on this feature".
    They explain the uncalibrated logit, which is what `predict_proba` applies the sigmoid to."""
    features = pipeline.named_steps["features"]
    model = pipeline.named_steps["model"]
    basis = pipeline.named_steps["scale"].transform(features.transform(X))
    terms = basis * model.coef_[0]
    contributions = np.column_stack(
        [terms[:, features.output_indices_[name]].sum(axis=1) for name in risk_pipeline_feature_names(pipeline)]
    )
    return contributions, float(model.intercept_[0])


def threshold_choose(y_true, probabilities, *, objective: str = "f1", tolerance: float = 0.0) -> float:
    """The probability cut (at risk iff probability >= threshold) that maximises `objective` ("f1":
    F1 of the at-risk class; "accuracy") on the given data, which must be training data.

    Candidates are 0 and the midpoints between consecutive distinct probabilities (with 0 and 1 at the
    ends). Of the candidates within `tolerance` of the best score, the one nearest 0.5 is chosen."""
    if objective not in THRESHOLD_OBJECTIVES:
        raise ValueError(f"objective must be one of {THRESHOLD_OBJECTIVES}, not {objective!r}")
    y = np.asarray(y_true).astype(int)
    p = np.asarray(probabilities, dtype=float)
    if y.shape != p.shape or y.size == 0:
        raise ValueError("y_true and probabilities must be non-empty and of the same length")
    values = np.unique(np.concatenate([[0.0], p, [1.0]]))
    candidates = np.concatenate([[0.0], (values[:-1] + values[1:]) / 2])
    if p.max() >= 1.0:
        candidates = np.append(candidates, np.nextafter(1.0, 2.0))
    positives = np.sort(p[y == 1])
    negatives = np.sort(p[y == 0])
    true_positives = positives.size - np.searchsorted(positives, candidates, side="left")
    false_positives = negatives.size - np.searchsorted(negatives, candidates, side="left")
    false_negatives = positives.size - true_positives
    if objective == "accuracy":
        scores = (true_positives + negatives.size - false_positives) / y.size
    else:
        denominator = 2 * true_positives + false_positives + false_negatives
        scores = np.divide(2 * true_positives, denominator, out=np.zeros(candidates.size), where=denominator > 0)
    good = candidates[scores >= scores.max() - tolerance]
    return float(good[np.argmin(np.abs(good - 0.5))])


def classification_metrics(y_true, probabilities, threshold: float | None, *, at_risk=None) -> dict:
    """Ranking, calibration and at-threshold metrics for the at-risk class (1). With one class in
    y_true, roc_auc and pr_auc are None. `at_risk` (bool per row) replaces `probabilities >= threshold`
    where each row had its own threshold (nested cross-validation; `threshold` is then None)."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(probabilities, dtype=float)
    predicted = p >= threshold if at_risk is None else np.asarray(at_risk, dtype=bool)
    true_positives = int(np.sum(predicted & (y == 1)))
    predicted_positives = int(predicted.sum())
    positives = int(y.sum())
    precision = true_positives / predicted_positives if predicted_positives else 0.0
    recall = true_positives / positives if positives else 0.0
    both_classes = 0 < positives < y.size
    return {
        "n": int(y.size),
        "positives": positives,
        "threshold": None if threshold is None else float(threshold),
        "roc_auc": float(roc_auc_score(y, p)) if both_classes else None,
        "pr_auc": float(average_precision_score(y, p)) if both_classes else None,
        "brier": float(brier_score_loss(y, p, labels=[0, 1])),
        "accuracy": float(np.mean(predicted == (y == 1))),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "calibration": calibration_table(y, p),
    }


def calibration_table(y_true, probabilities, *, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Equal-width probability bins (the last one includes 1.0); empty bins omitted."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(probabilities, dtype=float)
    index = np.clip(np.floor(p * bins).astype(int), 0, bins - 1)
    table = []
    for b in range(bins):
        members = index == b
        if members.any():
            table.append(
                {
                    "bin_lower": round(b / bins, 10),
                    "bin_upper": round((b + 1) / bins, 10),
                    "n": int(members.sum()),
                    "mean_predicted": float(p[members].mean()),
                    "observed_rate": float(y[members].mean()),
                }
            )
    return table


def fold_splits(y, *, folds: int, repeats: int = 1, seed: int = 0) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(repeat, train indices, test indices) of `repeats` shuffled stratified k-fold splits; repeat r
    uses random_state seed + r, so the same seed always gives the same folds."""
    y = np.asarray(y).astype(int)
    smallest_class = int(np.bincount(y, minlength=2).min())
    if folds < 2 or smallest_class < folds:
        raise ValueError(
            f"{folds}-fold stratified CV needs at least {folds} students in each class, "
            f"the smaller class has {smallest_class}"
        )
    placeholder = np.zeros((y.size, 1))
    for repeat in range(repeats):
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + repeat)
        for train, test in splitter.split(placeholder, y):
            yield repeat, train, test


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold results, one row per repeat: each row's probability comes from the model of the
    fold that held it out, `at_risk` applies that fold's threshold (chosen on its training part)."""

    probabilities: np.ndarray  # repeats x n
    at_risk: np.ndarray  # repeats x n, bool
    thresholds: np.ndarray  # repeats x folds


def out_of_fold_predictions(
    build: Callable[[], Pipeline],
    X,
    y,
    *,
    folds: int,
    repeats: int = 1,
    seed: int = 0,
    objective: str = "accuracy",
    tolerance: float = THRESHOLD_TOLERANCE,
) -> OutOfFold:
    """Repeated stratified k-fold: fit `build()` on each training part, choose its threshold on that
    training part only (`threshold_choose` on the fitted model's training probabilities), and predict
    the held-out part."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(int)
    probabilities = np.full((repeats, y.size), np.nan)
    at_risk = np.zeros((repeats, y.size), dtype=bool)
    thresholds = np.full((repeats, folds), np.nan)
    fold_of_repeat = [0] * repeats
    for repeat, train, test in fold_splits(y, folds=folds, repeats=repeats, seed=seed):
        model = build().fit(X[train], y[train])
        threshold = threshold_choose(
            y[train], model.predict_proba(X[train])[:, 1], objective=objective, tolerance=tolerance
        )
        probabilities[repeat, test] = model.predict_proba(X[test])[:, 1]
        at_risk[repeat, test] = probabilities[repeat, test] >= threshold
        thresholds[repeat, fold_of_repeat[repeat]] = threshold
        fold_of_repeat[repeat] += 1
    return OutOfFold(probabilities=probabilities, at_risk=at_risk, thresholds=thresholds)


def out_of_fold_probabilities(
    build: Callable[[], Pipeline], X, y, *, folds: int, repeats: int = 1, seed: int = 0
) -> np.ndarray:
    """repeats x n out-of-fold probabilities of the at-risk class (stratified k-fold, see fold_splits):
    no row is scored by a model trained on it."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(int)
    probabilities = np.full((repeats, y.size), np.nan)
    for repeat, train, test in fold_splits(y, folds=folds, repeats=repeats, seed=seed):
        probabilities[repeat, test] = build().fit(X[train], y[train]).predict_proba(X[test])[:, 1]
    return probabilities


def nested_out_of_fold_predictions(
    build: Callable[[], Pipeline], X, y, *, folds: int, seed: int = 0, objective: str = "f1"
) -> OutOfFold:
    """Stratified k-fold in which each fold's threshold is chosen as the final model's is: on out-of-fold
    probabilities of an inner k-fold over that fold's training part. The held-out fold never sees its
    own threshold being chosen, so precision, recall and F1 over `at_risk` are clean estimates."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(int)
    probabilities = np.full((1, y.size), np.nan)
    at_risk = np.zeros((1, y.size), dtype=bool)
    thresholds = np.full((1, folds), np.nan)
    for fold, (_, train, test) in enumerate(fold_splits(y, folds=folds, seed=seed)):
        inner_folds = max(2, min(folds, int(np.bincount(y[train], minlength=2).min())))
        inner = out_of_fold_probabilities(build, X[train], y[train], folds=inner_folds, seed=seed)[0]
        threshold = threshold_choose(y[train], inner, objective=objective)
        probabilities[0, test] = build().fit(X[train], y[train]).predict_proba(X[test])[:, 1]
        at_risk[0, test] = probabilities[0, test] >= threshold
        thresholds[0, fold] = threshold
    return OutOfFold(probabilities=probabilities, at_risk=at_risk, thresholds=thresholds)


def bootstrap_weights(n: int, *, resamples: int, seed: int) -> np.ndarray:
    """resamples x n: how often each row is drawn in each bootstrap resample (n draws with replacement).
    One matrix serves every comparison on the same rows, which is what makes them paired."""
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples)


def average_precision_resampled(y_true, probabilities, weights: np.ndarray) -> np.ndarray:
    """PR-AUC (average precision, as `average_precision_score`) under each row of `weights`, vectorised:
    one sort, cumulative weighted counts at each distinct score (ties step together). NaN where a
    resample holds one class only."""
    y = np.asarray(y_true).astype(float)
    p = np.asarray(probabilities, dtype=float)
    order = np.argsort(-p, kind="mergesort")
    y, p = y[order], p[order]
    ends = np.append(np.nonzero(np.diff(p))[0], p.size - 1)
    result = np.empty(len(weights))
    for start in range(0, len(weights), BOOTSTRAP_CHUNK):
        w = np.asarray(weights[start : start + BOOTSTRAP_CHUNK], dtype=float)[:, order]
        true_positives = np.cumsum(w * y, axis=1)[:, ends]
        predicted = np.cumsum(w, axis=1)[:, ends]
        positives = true_positives[:, -1:]
        precision = np.divide(true_positives, predicted, out=np.zeros_like(predicted), where=predicted > 0)
        recall = np.divide(true_positives, positives, out=np.zeros_like(predicted), where=positives > 0)
        steps = np.diff(recall, axis=1, prepend=0.0)
        both = (positives[:, 0] > 0) & (positives[:, 0] < predicted[:, -1])
        result[start : start + len(w)] = np.where(both, (steps * precision).sum(axis=1), np.nan)
    return result


def interval(samples: np.ndarray, *, confidence: float) -> tuple[float, float] | None:
    """The percentile interval of the finite samples, or None if there are none."""
    finite = samples[np.isfinite(samples)]
    if not finite.size:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def paired_pr_auc_difference(y_true, candidate, baseline, *, weights: np.ndarray, confidence: float) -> dict:
    """PR-AUC of `candidate` minus `baseline` on the same students, with the paired bootstrap interval
    (each resample scores both on the same drawn students)."""
    y = np.asarray(y_true).astype(int)
    point = float(average_precision_score(y, candidate) - average_precision_score(y, baseline))
    samples = average_precision_resampled(y, candidate, weights) - average_precision_resampled(y, baseline, weights)
    bounds = interval(samples, confidence=confidence)
    return {
        "difference": point,
        "lower": None if bounds is None else bounds[0],
        "upper": None if bounds is None else bounds[1],
        "confidence": confidence,
        "resamples": int(np.isfinite(samples).sum()),
    }


def metric_intervals(y_true, probabilities, at_risk, *, weights: np.ndarray, confidence: float) -> dict:
    """Bootstrap intervals of PR-AUC and recall (recall: resamples with at least one positive)."""
    y = np.asarray(y_true).astype(float)
    flagged = np.asarray(at_risk, dtype=float)
    w = np.asarray(weights, dtype=float)
    positives = w @ y
    recall = np.divide(w @ (y * flagged), positives, out=np.full(len(w), np.nan), where=positives > 0)
    return {
        "pr_auc": interval(average_precision_resampled(y, probabilities, weights), confidence=confidence),
        "recall": interval(recall, confidence=confidence),
    }
