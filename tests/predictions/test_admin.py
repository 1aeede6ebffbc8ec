"""The predictions admin: versions side by side with their metrics, promote and roll back (audited),
a scoring run started from a button, read-only scores, and lists that do not grow queries with rows."""

import pytest
import time_machine
from django.urls import reverse

from accounts.roles import Role
from campusiq.core.models import AuditLogEntry
from predictions.models import FlagFeedback, Intervention, ModelVersion, RiskScore, ScoringRun
from tests.factories import (
    FlagFeedbackFactory,
    InterventionFactory,
    ModelVersionFactory,
    RiskScoreFactory,
    ScoringRunFactory,
    UserFactory,
)
from tests.predictions.world import NOW, campus_history
from tests.support.admin import assert_changelist_queries_do_not_grow, changelist_url

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture
def registrar_client(client):
    client.force_login(UserFactory(roles=[Role.REGISTRAR], is_staff=True))
    return client


def test_versions_are_listed_with_their_metrics_side_by_side(registrar_client):
    ModelVersionFactory(
        name="risk-a",
        metrics={"holdout": {"roc_auc": 0.81, "pr_auc": 0.62, "brier": 0.11, "recall": 0.7, "precision": 0.5},
                 "baselines": {"attendance_only": {"pr_auc": 0.41}}},
    )  # fmt: skip
    ModelVersionFactory(name="risk-b", metrics={})
    page = registrar_client.get(changelist_url(ModelVersion)).content.decode()
    for figure in ("0.810", "0.620", "0.410", "0.110", "0.700", "0.500"):
        assert figure in page
    assert "risk-b" in page


def test_promote_then_retire_rolls_back_and_both_are_audited(registrar_client):
    old = ModelVersionFactory(status=ModelVersion.Status.CANDIDATE)
    new = ModelVersionFactory(status=ModelVersion.Status.CANDIDATE)
    url = changelist_url(ModelVersion)
    for version in (old, new):
        registrar_client.post(url, {"action": "promote", "_selected_action": [version.pk], "reason": "checked"})
    assert ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE) == new
    registrar_client.post(url, {"action": "retire", "_selected_action": [new.pk], "reason": "drift"})
    assert ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE) == old
    entries = AuditLogEntry.objects.filter(verb__startswith="model.")
    assert entries.filter(verb="model.retired", reason="drift").exists()
    assert entries.filter(verb="model.activated", reason="checked").count() == 2


def test_promoting_two_at_once_is_refused(registrar_client):
    versions = [ModelVersionFactory(), ModelVersionFactory()]
    response = registrar_client.post(
        changelist_url(ModelVersion),
        {"action": "promote", "_selected_action": [v.pk for v in versions]},
        follow=True,
    )
    assert "Select exactly one version" in response.content.decode()
    assert not ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists()


def test_a_version_cannot_be_edited_or_deleted(registrar_client):
    version = ModelVersionFactory()
    page = registrar_client.get(reverse("admin:predictions_modelversion_change", args=[version.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    delete = registrar_client.post(reverse("admin:predictions_modelversion_delete", args=[version.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert ModelVersion.objects.filter(pk=version.pk).exists()


def test_the_button_scores_the_current_term(registrar_client):
    with time_machine.travel(NOW, tick=False):
        campus_history(signal="grades")
        from predictions.training import risk_model_train

        risk_model_train()
        page = registrar_client.get(changelist_url(ScoringRun))
        assert b"Score the current term now" in page.content
        response = registrar_client.post(reverse("admin:predictions_scoringrun_start"), follow=True)
    run = ScoringRun.objects.get()
    assert run.trigger == ScoringRun.Trigger.STAFF and run.students_scored == 60
    assert "started" in response.content.decode()
    # A GET does nothing.
    registrar_client.get(reverse("admin:predictions_scoringrun_start"))
    assert ScoringRun.objects.count() == 1


def test_the_button_without_an_active_model_says_why(registrar_client):
    with time_machine.travel(NOW, tick=False):
        campus_history(past_terms=0, students=3)
        response = registrar_client.post(reverse("admin:predictions_scoringrun_start"), follow=True)
    assert "Nothing was started: No model is active" in response.content.decode()
    assert not ScoringRun.objects.exists()


def test_advisors_and_lecturers_cannot_reach_the_predictions_admin(client):
    client.force_login(UserFactory(roles=[Role.ADVISOR, Role.LECTURER]))
    assert client.get(changelist_url(RiskScore)).status_code == 302  # to the admin login


@pytest.mark.parametrize(
    ("model", "build_one"),
    [
        (ModelVersion, ModelVersionFactory),
        (ScoringRun, ScoringRunFactory),
        (RiskScore, RiskScoreFactory),
        (Intervention, InterventionFactory),
        (FlagFeedback, FlagFeedbackFactory),
    ],
)
def test_changelist_query_count_does_not_grow_with_rows(registrar_client, model, build_one):
    assert_changelist_queries_do_not_grow(registrar_client, model, build_one)
