import numpy as np
import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import override_settings

from campusiq.core.models import AuditLogEntry
from predictions import pipeline as risk_pipeline
from predictions.models import ModelVersion
from predictions.registry import model_load
from predictions.training import (
    TrainingRefused,
    labelled_terms,
    model_version_activate,
    model_version_retire,
    risk_model_train,
)
from tests.factories import ModelVersionFactory, TermOutcomeFactory
from tests.predictions.world import NOW, campus_history

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_a_model_whose_grades_carry_the_signal_beats_the_attendance_rule_and_goes_live():
    campus_history(signal="grades")
    version = risk_model_train()
    metrics = version.metrics
    assert version.status == ModelVersion.Status.ACTIVE
    assert metrics["holdout"]["pr_auc"] >= metrics["baselines"]["attendance_only"]["pr_auc"] + 0.02
    assert "beats" in version.status_reason
    # The time split: trained on the older past terms, tested on the newest.
    assert version.training_terms == [t.name for t in labelled_terms_names()[:-1]]
    assert version.holdout_term == labelled_terms_names()[-1].name
    assert metrics["examples"] == {"train": 120, "holdout": 60}
    for block in (metrics["holdout"], metrics["cross_validation"], metrics["baselines"]["majority_class"]):
        assert {"roc_auc", "pr_auc", "brier", "precision", "recall", "f1", "calibration"} <= set(block)
    assert set(metrics["groups"]) == {"department", "program"}
    assert AuditLogEntry.objects.filter(verb="model.activated", object_id=str(version.pk)).exists()


def labelled_terms_names():
    return [t.term for t in labelled_terms()]


def test_the_threshold_is_chosen_on_the_training_folds_not_on_the_hold_out(monkeypatch):
    campus_history(signal="grades")
    seen = []
    real = risk_pipeline.threshold_choose
    monkeypatch.setattr(risk_pipeline, "threshold_choose", lambda y, p, **k: seen.append(len(y)) or real(y, p, **k))
    version = risk_model_train()
    # Once for the model (its out-of-fold training probabilities), once for the attendance rule: both on
    # the 120 training examples, never the 60 of the hold-out.
    assert seen == [120, 120]
    assert 0 < version.threshold < 1


def test_a_model_no_better_than_the_attendance_rule_stays_a_candidate_with_the_reason():
    campus_history(signal="attendance")
    with override_settings(PREDICTIONS_ACTIVATION_MARGIN=0.5):
        version = risk_model_train()
    assert version.status == ModelVersion.Status.CANDIDATE
    assert "does not beat it by the required 0.50" in version.status_reason
    assert not ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists()


def test_too_little_history_is_refused_with_a_clear_message_and_no_model():
    campus_history(past_terms=2, students=20)  # 40 outcomes < 50
    with pytest.raises(TrainingRefused, match="40 term outcomes, at least 50"):
        risk_model_train()
    assert not ModelVersion.objects.exists()


def test_one_class_history_is_refused():
    history = campus_history(students=30)
    from students.models import TermOutcome

    TermOutcome.objects.update(outcome=TermOutcome.Outcome.PASSED)
    with pytest.raises(TrainingRefused, match="one class only"):
        risk_model_train()
    assert history["terms"]


def test_a_single_past_term_cannot_be_held_out():
    history = campus_history(past_terms=1, students=60)
    assert len(history["terms"]) == 2
    with pytest.raises(TrainingRefused, match="at least two past terms"):
        risk_model_train()


def test_the_command_prints_the_comparison_and_refuses_clearly(capsys):
    with pytest.raises(CommandError, match="Too little labelled history: 0 term outcomes"):
        call_command("train_risk_model")
    campus_history(signal="grades")
    call_command("train_risk_model")
    out = capsys.readouterr().out
    assert "attendance-only rule" in out and "majority class" in out and "model, hold-out" in out


def test_the_stored_artifact_is_the_evaluated_model_and_reloads_to_the_same_predictions():
    campus_history(signal="grades")
    version = risk_model_train()
    terms = labelled_terms()
    loaded = model_load(ModelVersion.objects.get(pk=version.pk))
    holdout = terms[-1]
    p = loaded.pipeline.predict_proba(holdout.X)[:, 1]
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(holdout.y, p) == pytest.approx(version.metrics["holdout"]["roc_auc"])
    contributions, intercept = risk_pipeline.decision_contributions(loaded.pipeline, holdout.X)
    assert np.allclose(contributions.sum(axis=1) + intercept, loaded.pipeline.decision_function(holdout.X))


def test_promote_and_roll_back_are_audited_and_keep_one_active():
    first = ModelVersionFactory(status=ModelVersion.Status.CANDIDATE)
    second = ModelVersionFactory(status=ModelVersion.Status.CANDIDATE)
    model_version_activate(first, actor=None)
    model_version_activate(second, actor=None, reason="better PR-AUC")
    first.refresh_from_db()
    assert first.status == ModelVersion.Status.RETIRED
    assert ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).get() == second
    model_version_retire(second, actor=None, reason="drifted")
    first.refresh_from_db()
    assert first.status == ModelVersion.Status.ACTIVE  # rolled back to the version active before
    verbs = list(AuditLogEntry.objects.order_by("pk").values_list("verb", flat=True))
    assert verbs == ["model.activated", "model.retired", "model.activated", "model.retired", "model.activated"]


def test_the_database_allows_one_active_version_only():
    from django.db import IntegrityError, transaction

    ModelVersionFactory(status=ModelVersion.Status.ACTIVE)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersionFactory(status=ModelVersion.Status.ACTIVE)


def test_training_as_a_celery_task():
    from predictions.tasks import train_risk_model

    campus_history(signal="grades")
    assert train_risk_model.delay().get().endswith("(active)")


def test_labels_and_history_come_from_past_terms_only():
    history = campus_history(past_terms=2, students=30)
    TermOutcomeFactory(student=history["students"][0], term=history["current"])  # a running term's outcome
    assert [t.term for t in labelled_terms()] == history["terms"][:2]
