import datetime

import numpy as np
import pytest
import time_machine
from django.core import mail
from django.core.management import CommandError, call_command

from predictions import pipeline as risk_pipeline
from predictions.features import FEATURE_NAMES, term_features
from predictions.models import ModelVersion, RiskScore, ScoringRun
from predictions.registry import _loaded, artifact_bytes, artifact_save, artifact_storage, model_load
from predictions.services import (
    ScoringRefused,
    band_of,
    explanation_factors,
    scoring_model_load,
    scoring_run_create,
    scoring_run_execute,
    student_score,
)
from predictions.tasks import score_current_term
from predictions.training import labelled_terms, model_version_activate, risk_model_train
from students.models import Enrollment, Student
from tests.factories import FlagFeedbackFactory, ModelVersionFactory
from tests.predictions.world import NOW, campus_history

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(autouse=True)
def frozen():
    _loaded.clear()
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def trained():
    history = campus_history(signal="grades")
    # Scoring needs an active model, whatever the gate made of this one (tests/predictions/test_training.py).
    version = model_version_activate(risk_model_train(), actor=None)
    assert version.status == ModelVersion.Status.ACTIVE
    return {**history, "version": version}


def _run(term, trigger=ScoringRun.Trigger.STAFF):
    return scoring_run_execute(scoring_run_create(term=term, trigger=trigger))


def test_a_run_scores_every_active_student_of_the_term_with_bands_and_factors(trained):
    Student.objects.filter(pk=trained["students"][0].pk).update(status=Student.Status.SUSPENDED)
    run = _run(trained["current"])
    assert run.status == ScoringRun.Status.SUCCEEDED
    assert run.students_scored == 59 == run.scores.count()
    assert set(run.timings) == {"features", "predict", "explain", "write", "total"}
    for score in run.scores.all():
        assert score.band == band_of(score.probability)
        assert score.model_version_id == trained["version"].pk
        assert all(f["contribution"] > 0 and f["text"] for f in score.factors)
    # Students who scored low this term get grade factors, said in plain words with the campus median.
    high = run.scores.filter(band=RiskScore.Band.HIGH).first()
    assert high is not None
    assert any("weighted assessment average so far" in f["text"] and "campus median" in f["text"] for f in high.factors)


def test_running_a_run_again_replaces_its_scores_and_keeps_feedback(trained):
    run = _run(trained["current"])
    ids = set(run.scores.values_list("pk", flat=True))
    feedback = FlagFeedbackFactory(risk_score=run.scores.first())
    scoring_run_execute(run)
    assert set(run.scores.values_list("pk", flat=True)) == ids  # replaced in place: nothing duplicated
    feedback.refresh_from_db()
    assert feedback.risk_score_id in ids


def test_the_nightly_task_makes_one_run_per_night_even_if_delivered_twice(trained):
    assert score_current_term.delay().get() == 60
    assert score_current_term.delay().get() == 60
    assert ScoringRun.objects.filter(trigger=ScoringRun.Trigger.SCHEDULE).count() == 1
    assert RiskScore.objects.count() == 60


def test_explanations_are_the_models_own_contributions(trained):
    matrix = term_features(trained["current"], NOW)
    loaded = scoring_model_load()
    contributions, intercept = risk_pipeline.decision_contributions(loaded.pipeline, matrix.values)
    # Contributions plus the intercept are the (uncalibrated) decision function, student by student.
    assert np.allclose(contributions.sum(axis=1) + intercept, loaded.pipeline.decision_function(matrix.values))
    factors = explanation_factors(contributions[0], matrix.values[0], {}, top=len(FEATURE_NAMES))
    positive = sorted((c for c in contributions[0] if c > 0), reverse=True)
    assert [f["contribution"] for f in factors] == pytest.approx([round(c, 4) for c in positive])


def test_explanation_text_on_a_hand_built_case():
    contributions = np.zeros(len(FEATURE_NAMES))
    values = np.full(len(FEATURE_NAMES), np.nan)
    four_weeks = FEATURE_NAMES.index("attendance_rate_4w")
    contributions[four_weeks], values[four_weeks] = 0.9, 0.54
    contributions[FEATURE_NAMES.index("credit_load")] = -0.3
    factors = explanation_factors(contributions, values, {"attendance_rate_4w": 0.88}, top=3)
    assert factors == [
        {
            "feature": "attendance_rate_4w",
            "value": 0.54,
            "contribution": 0.9,
            "text": "attendance over the last 4 weeks: 54%; campus median 88%",
        }
    ]


def test_a_tampered_artifact_is_refused_and_scoring_falls_back_to_the_previous_active_version(trained, caplog):
    first = trained["version"]
    second = model_version_activate(risk_model_train(), actor=None)  # now active, the first retired
    assert second.status == ModelVersion.Status.ACTIVE
    with artifact_storage().open(second.artifact.name, "rb") as handle:
        content = handle.read()
    with open(artifact_storage().path(second.artifact.name), "wb") as handle:
        handle.write(content[:-10] + b"0123456789")
    _loaded.clear()
    loaded = scoring_model_load()
    assert loaded.version == first
    run = _run(trained["current"])
    assert run.scores.first().model_version_id == first.pk


def test_with_no_usable_model_scoring_refuses_and_the_site_stays_up(trained):
    version = trained["version"]
    artifact_storage().delete(version.artifact.name)
    _loaded.clear()
    with pytest.raises(ScoringRefused, match="cannot be used"):
        scoring_model_load()
    # The nightly task logs it and does not crash the worker.
    assert score_current_term.delay().get() == 0


def test_a_schema_mismatched_version_is_refused(trained):
    version = trained["version"]
    ModelVersion.objects.filter(pk=version.pk).update(feature_schema_version=99)
    version.refresh_from_db()
    _loaded.clear()
    from predictions.registry import ArtifactRefused

    with pytest.raises(ArtifactRefused, match="schema 99"):
        model_load(version)


def test_a_model_trained_before_a_feature_was_added_still_scores_on_its_own_features(trained):
    # As a release before prior achievement trained it: the first 13 features, in their order then.
    legacy = FEATURE_NAMES[:13]
    holdout = labelled_terms()[-1]
    columns = [FEATURE_NAMES.index(name) for name in legacy]
    pipeline = risk_pipeline.risk_pipeline_build(legacy).fit(holdout.X[:, columns], holdout.y)
    version = ModelVersionFactory(status=ModelVersion.Status.CANDIDATE, feature_names=legacy)
    artifact_save(version, artifact_bytes(pipeline))
    version.save()
    model_version_activate(version, actor=None)
    run = _run(trained["current"])
    assert run.status == ScoringRun.Status.SUCCEEDED and run.students_scored == 60
    assert set(run.scores.values_list("model_version", flat=True)) == {version.pk}
    named = {factor["feature"] for score in run.scores.all() for factor in score.factors}
    assert named and named <= set(legacy)
    matrix = term_features(trained["current"], NOW).restricted(legacy)
    assert student_score(trained["students"][0], term=trained["current"])["probability"] == pytest.approx(
        float(pipeline.predict_proba(matrix.values[:1])[0, 1]), abs=1e-4
    )


def test_a_model_trained_on_a_feature_this_release_does_not_compute_is_refused(trained):
    version = trained["version"]
    ModelVersion.objects.filter(pk=version.pk).update(feature_names=[*FEATURE_NAMES, "shoe_size"])
    version.refresh_from_db()
    _loaded.clear()
    from predictions.registry import ArtifactRefused

    with pytest.raises(ArtifactRefused, match="does not compute \\(shoe_size\\)"):
        model_load(version)


def test_no_active_model_is_a_clear_refusal():
    with pytest.raises(ScoringRefused, match="No model is active"):
        scoring_model_load()


def test_one_student_on_demand_is_not_stored(trained):
    student = trained["students"][1]
    body = student_score(student, term=trained["current"])
    assert 0 <= body["probability"] <= 1
    assert body["band"] == band_of(body["probability"])
    assert RiskScore.objects.count() == 0


def test_advisor_digest_lists_advisees_newly_high_once_per_run(trained):
    run = _run(trained["current"])
    from predictions.services import advisor_digests_send

    high = run.scores.filter(band=RiskScore.Band.HIGH).count()
    assert high > 0
    assert advisor_digests_send(run) == 1  # one advisor in this world
    assert advisor_digests_send(run) == 0  # once per run
    assert len(mail.outbox) == 1
    assert f"{high} advisee(s) newly at high risk" in mail.outbox[0].subject
    # The next run: nobody is *newly* high.
    with time_machine.travel(NOW + datetime.timedelta(days=1), tick=False):
        later = _run(trained["current"])
    assert advisor_digests_send(later) == 0


def test_the_score_command(trained, capsys):
    call_command("score_risk")
    assert "Scored 60 students" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No term named"):
        call_command("score_risk", "--term", "Nope")


def test_a_student_whose_enrolment_ended_before_the_run_is_not_scored_as_training_would_not_learn_from_them(trained):
    leaver = trained["students"][0]
    current = trained["current"]
    Enrollment.objects.filter(student=leaver, section__term=current).update(
        ended_on=current.start_date + datetime.timedelta(weeks=1), status=Enrollment.Status.WITHDRAWN
    )
    run = _run(current)
    assert run.students_scored == 59
    assert not run.scores.filter(student=leaver).exists()
