"""The model layer: exact explanations, thresholds, metrics, missing values and honest out-of-fold scores."""

import io
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.pipeline import Pipeline

from predictions import pipeline as risk_pipeline
from predictions.pipeline import (
    classification_metrics,
    decision_contributions,
    fold_splits,
    out_of_fold_predictions,
    out_of_fold_probabilities,
    risk_pipeline_build,
    threshold_choose,
)

NAMES = ["attendance_rate", "assessment_average", "grade_trend", "credit_load", "previous_term_at_risk"]


def synthetic_term(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Students whose risk rises as attendance and grades fall; a fifth of the grade values unknown."""
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.uniform(0.3, 1.0, n),
            rng.uniform(0.2, 1.0, n),
            rng.normal(0, 0.1, n),
            rng.integers(10, 40, n).astype(float),
            rng.integers(0, 2, n).astype(float),
        ]
    )
    logit = 4 - 4 * X[:, 0] - 5 * X[:, 1] + X[:, 4]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X[rng.random(n) < 0.2, 1] = np.nan
    X[rng.random(n) < 0.2, 2] = np.nan
    return X, y


@pytest.fixture
def fitted() -> tuple[Pipeline, np.ndarray, np.ndarray]:
    X, y = synthetic_term()
    return risk_pipeline_build(NAMES).fit(X, y), X, y


def test_contributions_sum_to_the_decision_function_with_missing_values(fitted):
    model, _, _ = fitted
    X_new, _ = synthetic_term(n=80, seed=1)
    X_new[:5, 0] = np.nan  # attendance was never missing in training: filled with the median
    X_new[5:10, :] = np.nan  # nothing known at all

    contributions, intercept = decision_contributions(model, X_new)

    assert contributions.shape == (80, len(NAMES))
    assert np.isfinite(contributions).all()
    assert np.abs(contributions.sum(axis=1) + intercept - model.decision_function(X_new)).max() < 1e-9
    assert np.allclose(model.predict_proba(X_new)[:, 1], 1 / (1 + np.exp(-model.decision_function(X_new))))


def test_a_feature_changes_only_its_own_contribution(fitted):
    model, X, _ = fitted
    changed = X.copy()
    changed[:, 0] = 0.35  # everyone's attendance drops

    before, intercept_before = decision_contributions(model, X)
    after, intercept_after = decision_contributions(model, changed)

    assert intercept_before == intercept_after
    assert np.array_equal(before[:, 1:], after[:, 1:])
    assert after[:, 0].min() == after[:, 0].max()  # one attendance, one share of the logit
    assert (after[X[:, 0] > 0.8, 0] > before[X[:, 0] > 0.8, 0]).all()  # good attenders' risk rises


def test_missingness_itself_is_learned():
    rng = np.random.default_rng(3)
    n = 400
    y = rng.integers(0, 2, n)
    X = np.column_stack([rng.uniform(0, 1, n), rng.uniform(0, 1, n)])
    X[(y == 1) & (rng.random(n) < 0.8), 0] = np.nan  # at-risk students mostly have no grades yet
    model = risk_pipeline_build(["assessment_average", "attendance_rate"]).fit(X, y)

    p = model.predict_proba(np.array([[np.nan, 0.5], [0.5, 0.5]]))[:, 1]
    contributions, _ = decision_contributions(model, np.array([[np.nan, 0.5], [0.5, 0.5]]))

    assert p[0] > 0.8 > 0.5 > p[1]
    assert contributions[0, 0] > contributions[1, 0]
    assert contributions[0, 1] == contributions[1, 1]


def test_a_feature_unknown_for_everyone_in_training_is_harmless():
    X, y = synthetic_term()
    X[:, 2] = np.nan  # no student has a second assessment yet
    model = risk_pipeline_build(NAMES).fit(X, y)

    contributions, intercept = decision_contributions(model, X)

    assert np.abs(contributions[:, 2]).max() == 0
    assert np.abs(contributions.sum(axis=1) + intercept - model.decision_function(X)).max() < 1e-9


def test_pipeline_survives_clone_and_joblib(fitted):
    model, X, y = fitted
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)

    assert np.array_equal(joblib.load(buffer).predict_proba(X), model.predict_proba(X))
    assert np.allclose(clone(model).fit(X, y).predict_proba(X), model.predict_proba(X))
    assert risk_pipeline.risk_pipeline_feature_names(model) == NAMES


def test_feature_names_must_be_unique():
    with pytest.raises(ValueError, match="unique"):
        risk_pipeline_build(["absences", "absences"])


# y = [0, 0, 1, 1], p = [0.1, 0.4, 0.35, 0.8]. Cuts: 0.225 -> 3 flagged (1 wrong), 0.375 -> 2 (2 wrong),
# 0.6 -> 1 flagged (1 missed). Accuracy 3/4 at 0.225 and 0.6 (0.6 is nearer 0.5); F1 0.8 at 0.225 only.
HAND_Y = [0, 0, 1, 1]
HAND_P = [0.1, 0.4, 0.35, 0.8]


def test_threshold_choose_for_accuracy_picks_the_best_cut_nearest_one_half():
    assert threshold_choose(HAND_Y, HAND_P, objective="accuracy") == pytest.approx(0.6, abs=1e-12)


def test_threshold_choose_for_f1():
    assert threshold_choose(HAND_Y, HAND_P, objective="f1") == pytest.approx(0.225, abs=1e-12)


def test_threshold_choose_tolerance_prefers_the_cut_nearest_one_half():
    # F1 0.8 at 0.225, 2/3 at 0.6 and at 0.05: within 0.2 of the best, 0.6 is nearest 0.5.
    assert threshold_choose(HAND_Y, HAND_P, objective="f1", tolerance=0.2) == pytest.approx(0.6, abs=1e-12)


def test_threshold_choose_can_flag_nobody_or_everybody():
    assert threshold_choose([0, 0, 0, 1], [0.2, 0.3, 0.4, 0.1], objective="accuracy") > 0.4
    assert threshold_choose([1, 1, 1, 0], [0.2, 0.3, 0.4, 0.9], objective="accuracy") <= 0.2


def test_threshold_choose_refuses_an_unknown_objective():
    with pytest.raises(ValueError, match="objective"):
        threshold_choose(HAND_Y, HAND_P, objective="recall")


def test_classification_metrics_on_a_hand_built_case():
    metrics = classification_metrics(HAND_Y, HAND_P, 0.5)

    assert metrics["n"] == 4 and metrics["positives"] == 2
    assert metrics["roc_auc"] == pytest.approx(0.75)  # 3 of the 4 (at risk, not) pairs ordered right
    assert metrics["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert metrics["brier"] == pytest.approx((0.1**2 + 0.4**2 + 0.65**2 + 0.2**2) / 4)
    assert metrics["accuracy"] == 0.75
    assert metrics["precision"] == 1.0
    assert metrics["recall"] == 0.5
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["calibration"] == [
        {"bin_lower": 0.1, "bin_upper": 0.2, "n": 1, "mean_predicted": 0.1, "observed_rate": 0.0},
        {"bin_lower": 0.3, "bin_upper": 0.4, "n": 1, "mean_predicted": 0.35, "observed_rate": 1.0},
        {"bin_lower": 0.4, "bin_upper": 0.5, "n": 1, "mean_predicted": 0.4, "observed_rate": 0.0},
        {"bin_lower": 0.8, "bin_upper": 0.9, "n": 1, "mean_predicted": 0.8, "observed_rate": 1.0},
    ]


def test_calibration_puts_certainty_in_the_last_bin():
    table = classification_metrics([1, 1, 0], [1.0, 0.95, 0.0], 0.5)["calibration"]

    assert table == [
        {"bin_lower": 0.0, "bin_upper": 0.1, "n": 1, "mean_predicted": 0.0, "observed_rate": 0.0},
        {"bin_lower": 0.9, "bin_upper": 1.0, "n": 2, "mean_predicted": 0.975, "observed_rate": 1.0},
    ]


def test_classification_metrics_with_one_class_gives_no_auc_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = classification_metrics([0, 0, 0], [0.2, 0.7, 0.1], 0.5)

    assert metrics["roc_auc"] is None and metrics["pr_auc"] is None
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["precision"] == 0.0 and metrics["recall"] == 0.0 and metrics["f1"] == 0.0
    assert metrics["brier"] == pytest.approx((0.04 + 0.49 + 0.01) / 3)


class Memoriser(ClassifierMixin, BaseEstimator):
    """Says "at risk, certainly" for exactly the students (ids in column 0) it was trained on."""

    def fit(self, X, y):
        self.seen_ = set(X[:, 0].tolist())
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        seen = np.array([value in self.seen_ for value in X[:, 0]], dtype=float)
        return np.column_stack([1 - seen, seen])


def memoriser_build() -> Pipeline:
    return Pipeline([("memo", Memoriser())])


def test_out_of_fold_scores_never_come_from_a_model_trained_on_the_row():
    n = 103
    X = np.arange(n, dtype=float).reshape(-1, 1)
    y = (np.arange(n) % 3 == 0).astype(int)

    probabilities = out_of_fold_probabilities(memoriser_build, X, y, folds=5, repeats=3, seed=7)

    assert probabilities.shape == (3, n)
    assert np.array_equal(probabilities, np.zeros((3, n)))  # scored, and never by a model that saw the row


def test_out_of_fold_folds_are_stratified_and_repeatable():
    y = (np.arange(100) < 30).astype(int)
    splits = list(fold_splits(y, folds=5, repeats=2, seed=4))

    assert [repeat for repeat, _, _ in splits] == [0] * 5 + [1] * 5
    for repeat in (0, 1):
        tests = [test for r, _, test in splits if r == repeat]
        assert sorted(np.concatenate(tests).tolist()) == list(range(100))
        assert all(y[test].sum() == 6 for test in tests)
    assert [t.tolist() for _, _, t in splits] == [t.tolist() for _, _, t in fold_splits(y, folds=5, repeats=2, seed=4)]
    assert splits[0][2].tolist() != splits[5][2].tolist()


def test_out_of_fold_needs_enough_students_in_each_class():
    with pytest.raises(ValueError, match="at least 5 students in each class"):
        out_of_fold_probabilities(memoriser_build, np.zeros((20, 1)), [1] * 4 + [0] * 16, folds=5)


def test_each_fold_threshold_is_chosen_on_its_training_part_only(monkeypatch):
    X, y = synthetic_term(n=120)
    sizes = []
    real = risk_pipeline.threshold_choose

    def spy(y_true, probabilities, **kwargs):
        sizes.append(len(y_true))
        return real(y_true, probabilities, **kwargs)

    monkeypatch.setattr(risk_pipeline, "threshold_choose", spy)
    result = out_of_fold_predictions(lambda: risk_pipeline_build(NAMES), X, y, folds=4, repeats=2)

    assert sizes == [90] * 8  # 3 of 4 folds of 120 students, never the held-out 30
    assert result.probabilities.shape == result.at_risk.shape == (2, 120)
    assert result.thresholds.shape == (2, 4) and np.isfinite(result.thresholds).all()
    assert np.isfinite(result.probabilities).all()


def test_resampled_pr_auc_is_sklearns_average_precision_under_each_resamples_weights():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 150)
    p = np.round(rng.random(150), 1)  # many ties: they must step together, as in sklearn
    weights = risk_pipeline.bootstrap_weights(150, resamples=7, seed=3)
    expected = [average_precision_score(y, p, sample_weight=w) for w in weights]
    assert risk_pipeline.average_precision_resampled(y, p, weights) == pytest.approx(expected)
    one_class = risk_pipeline.average_precision_resampled(np.array([1, 0]), np.array([0.9, 0.1]), np.array([[2, 0]]))
    assert np.isnan(one_class).all()


def test_bootstrap_resamples_are_fixed_by_the_seed_and_draw_n_students():
    first = risk_pipeline.bootstrap_weights(30, resamples=20, seed=5)
    assert (first == risk_pipeline.bootstrap_weights(30, resamples=20, seed=5)).all()
    assert (first.sum(axis=1) == 30).all()
    assert not (first == risk_pipeline.bootstrap_weights(30, resamples=20, seed=6)).all()


def test_the_paired_interval_is_tight_for_a_copy_and_excludes_zero_only_for_a_clear_gain():
    rng = np.random.default_rng(2)
    y = np.array([1] * 60 + [0] * 140)
    good = np.clip(0.5 * y + rng.normal(0.25, 0.15, 200), 0, 1)
    noise = rng.random(200)
    weights = risk_pipeline.bootstrap_weights(200, resamples=500, seed=0)
    same = risk_pipeline.paired_pr_auc_difference(y, good, good, weights=weights, confidence=0.95)
    assert same["difference"] == same["lower"] == same["upper"] == 0
    gain = risk_pipeline.paired_pr_auc_difference(y, good, noise, weights=weights, confidence=0.95)
    assert 0 < gain["lower"] < gain["difference"] < gain["upper"] and gain["resamples"] == 500
    # Pairing: the same resamples score both, so a small consistent gain is seen beyond noise; two
    # independent intervals would overlap.
    slightly = np.clip(good + 0.03 * y, 0, 1)
    paired = risk_pipeline.paired_pr_auc_difference(y, slightly, good, weights=weights, confidence=0.95)
    alone = [risk_pipeline.interval(risk_pipeline.average_precision_resampled(y, p, weights), confidence=0.95)
             for p in (slightly, good)]  # fmt: skip
    assert paired["lower"] > 0 and alone[0][0] < alone[1][1]


def test_nested_thresholds_are_chosen_without_the_fold_they_are_applied_to(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    y = (X[:, 0] + rng.normal(0, 1, 100) > 0.5).astype(int)
    seen = []
    real = risk_pipeline.threshold_choose
    monkeypatch.setattr(risk_pipeline, "threshold_choose", lambda t, p, **k: seen.append(len(t)) or real(t, p, **k))
    result = risk_pipeline.nested_out_of_fold_predictions(
        lambda: risk_pipeline.risk_pipeline_build(["a", "b"]), X, y, folds=4, seed=0
    )
    assert seen == [75] * 4  # each on its fold's 75 training rows, never all 100
    assert np.isfinite(result.probabilities).all() and np.isfinite(result.thresholds).all()
    fold_of = np.empty(100, dtype=int)
    for fold, (_, _, test) in enumerate(risk_pipeline.fold_splits(y, folds=4, seed=0)):
        fold_of[test] = fold
    assert (result.at_risk[0] == (result.probabilities[0] >= result.thresholds[0][fold_of])).all()
