"""The predictions admin: versions side by side with their metrics, promote and roll back (audited),
a scoring run started from a button, read-only scores, and lists that do not grow queries with rows."""

import re

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.urls import reverse

from accounts.roles import Role
from campusiq.core.models import AuditLogEntry
from predictions.model_report import model_version_report
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
                 "baselines": {"attendance_only": {"pr_auc": 0.41}},
                 "gate": {"best_baseline": "grades_only", "baselines": {"grades_only": {"lower": 0.0234}}}},
    )  # fmt: skip
    ModelVersionFactory(name="risk-b", metrics={})
    page = registrar_client.get(changelist_url(ModelVersion)).content.decode()
    for figure in ("0.810", "0.620", "0.410", "0.110", "0.700", "0.500", "0.023"):
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
        from predictions.training import model_version_activate, risk_model_train

        model_version_activate(risk_model_train(), actor=None)
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


def test_the_train_button_trains_in_the_registrars_name_and_shows_the_outcome(client):
    registrar = UserFactory(roles=[Role.REGISTRAR], is_staff=True)
    client.force_login(registrar)
    with time_machine.travel(NOW, tick=False):
        campus_history(signal="grades")
        assert b"Train a model now" in client.get(changelist_url(ModelVersion)).content
        response = client.post(reverse("admin:predictions_modelversion_train"), follow=True)
    version = ModelVersion.objects.get()
    page = response.content.decode()
    assert "Training started" in page
    assert f"The last training registered {version.name} ({version.status}):" in page
    trained = AuditLogEntry.objects.get(verb="model.trained")
    assert trained.actor == registrar and trained.object_id == str(version.pk)


def test_training_without_enough_history_is_a_refusal_shown_on_the_list(registrar_client):
    with time_machine.travel(NOW, tick=False):
        campus_history(past_terms=0, students=3)
        response = registrar_client.post(reverse("admin:predictions_modelversion_train"), follow=True)
    assert "The last training was refused:" in response.content.decode()
    assert not ModelVersion.objects.exists()


def test_a_second_training_while_one_is_queued_is_refused_and_a_get_starts_nothing(registrar_client):
    from predictions.training import TRAINING_STATE_KEY

    cache.set(TRAINING_STATE_KEY, {"state": "running", "at": "2026-11-02T12:00:00+00:00"})
    response = registrar_client.post(reverse("admin:predictions_modelversion_train"), follow=True)
    page = response.content.decode()
    assert "Nothing was started: A training is already queued or running" in page
    assert "A training is running." in page
    cache.clear()
    registrar_client.get(reverse("admin:predictions_modelversion_train"))
    assert cache.get(TRAINING_STATE_KEY) is None and not ModelVersion.objects.exists()


def test_staff_who_may_only_view_model_versions_cannot_train(client):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_modelversion"))
    client.force_login(viewer)
    assert b"Train a model now" not in client.get(changelist_url(ModelVersion)).content
    response = client.post(reverse("admin:predictions_modelversion_train"), follow=True)
    assert "Start a training with the button on this page." in response.content.decode()


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


# --- The admin's name and a version's page ------------------------------------------------------------


def test_the_admin_names_campusiq_not_django(registrar_client):
    page = registrar_client.get(reverse("admin:index")).content.decode()
    assert "<title>CampusIQ administration | CampusIQ administration</title>" in page
    assert 'id="site-name"><a href="/admin/">CampusIQ administration</a>' in page
    assert "Django administration" not in page and "Django site admin" not in page


SEVENTEEN = 0.34567890123456789


def full_metrics() -> dict:
    """The shape risk_model_train stores, with the long floats it stores."""

    def block(roc, pr, **extra):
        return {"n": 400, "positives": 60, "threshold": SEVENTEEN, "roc_auc": roc, "pr_auc": pr, "brier": 0.1234567,
                "accuracy": 0.8765432, "precision": 0.5555555, "recall": 0.7142857, "f1": 0.625, **extra}  # fmt: skip

    calibration = [
        {"bin_lower": 0.0, "bin_upper": 0.1, "n": 200, "mean_predicted": 0.0512345678, "observed_rate": 0.04},
        {"bin_lower": 0.5, "bin_upper": 0.6, "n": 50, "mean_predicted": 0.5498765432, "observed_rate": 0.6},
        {"bin_lower": 0.9, "bin_upper": 1.0, "n": 10, "mean_predicted": 0.95, "observed_rate": 0.9},
    ]
    return {
        "holdout": block(0.81234567890123456, 0.61987654321, calibration=calibration),
        "cross_validation": {"folds": 5, **block(0.79, 0.58)},
        "baselines": {
            "majority_class": block(0.5, 0.15),
            "attendance_only": {"rule": "at risk when attendance this term < 0.70", **block(0.7, 0.41234)},
        },
        "groups": {"department": {"CS": block(0.83, 0.64), "MATH": block(0.77, 0.55)}, "program": {}},
        "examples": {"train": 1200, "holdout": 400},
    }


def version_page(client, version) -> str:
    response = client.get(reverse("admin:predictions_modelversion_change", args=[version.pk]))
    assert response.status_code == 200
    return response.content.decode()


def report_of(page: str) -> str:
    """The metrics part of the page (the admin's own icons are SVGs too)."""
    start = page.index('<div class="model-report">')
    return page[start : page.index("</fieldset>", start)]


def test_a_versions_page_shows_its_metrics_as_tables_not_json(registrar_client):
    version = ModelVersionFactory(threshold=SEVENTEEN, metrics=full_metrics())
    page = version_page(registrar_client, version)
    assert "0.34567890" not in page and '"holdout"' not in page and "&quot;holdout&quot;" not in page
    assert page.count("0.346") >= 2  # the version's threshold and the table's
    header = re.search(r"<thead><tr><th scope=\"col\">Metric</th>(.*?)</tr></thead>", page).group(1)
    assert re.findall(r'<th scope="col" class="num">(.*?)</th>', header) == [
        "Model, hold-out term", "Model, cross-validation", "Attendance-only rule", "Majority class",
    ]  # fmt: skip
    pr_auc = re.search(r'<tr><th scope="row">PR-AUC</th>(.*?)</tr>', page).group(1)
    assert re.findall(r'<td class="num">(.*?)</td>', pr_auc) == ["0.620", "0.580", "0.412", "0.150"]
    assert "at risk when attendance this term &lt; 0.70" in page
    cs = re.search(r'<tr><th scope="row">CS</th>(.*?)</tr>', page).group(1)
    # A version trained before group intervals were recorded shows dashes for them.
    assert re.findall(r'<td class="num">(.*?)</td>', cs) == ["400", "60", "0.830", "0.640", "0.556", "0.714", "—", "—"]
    assert "css/admin-model-version.css" in page


def test_a_versions_page_draws_its_calibration_bins_without_inline_code(registrar_client):
    page = version_page(registrar_client, ModelVersionFactory(metrics=full_metrics()))
    report = report_of(page)
    chart = report[report.index("<svg") : report.index("</svg>")]
    circles = re.findall(r'<circle class="bin" cx="([\d.]+)" cy="([\d.]+)" r="([\d.]+)">', chart)
    # x is the mean predicted, y the observed rate upwards, on a 240-unit plot; the biggest bin the biggest dot.
    assert [(float(x), float(y)) for x, y, _ in circles] == [(12.3, 230.4), (132.0, 96.0), (228.0, 24.0)]
    radii = [float(r) for _, _, r in circles]
    assert radii[0] == max(radii) and radii[2] == min(radii)
    assert "style=" not in report and "<script" not in report
    assert "0.5\u20130.6: 50 students, predicted 0.550, observed 0.600" in chart


def test_an_older_version_without_calibration_bins_says_not_recorded(registrar_client):
    metrics = full_metrics()
    del metrics["holdout"]["calibration"]
    page = version_page(registrar_client, ModelVersionFactory(metrics=metrics))
    assert "Calibration bins: not recorded" in page and "<svg" not in report_of(page)
    assert "0.812" in page  # the tables still show
    empty = version_page(registrar_client, ModelVersionFactory(metrics={}))
    # Comparison, gate, feature families and calibration bins.
    assert report_of(empty).count("not recorded") == 4


def test_the_calibration_charts_axes_run_from_zero_at_the_bottom_left():
    chart = model_version_report(full_metrics())["calibration"]
    assert chart.ticks[0] == ("0.00", 0) and chart.ticks[-1] == ("1.00", 240)
    assert chart.y_ticks[0] == ("0.00", 240) and chart.y_ticks[-1] == ("1.00", 0)


def gated_metrics() -> dict:
    """full_metrics() with what the gate records: families, rules not gated, intervals, groups too few."""
    metrics = full_metrics()
    metrics["baselines"]["attendance_only"].update(
        available=False, unavailable_reason="the attendance features are missing in the training data"
    )
    metrics["baselines"]["grades_only"] = {
        "rule": "at risk when weighted assessment average so far < 0.55",
        "available": True,
        "unavailable_reason": None,
        **metrics["baselines"]["majority_class"],
    }
    metrics["features"] = {
        "attendance": {
            "status": "missing",
            "features": {"attendance_rate": "missing", "longest_absence_run": "constant"},
        },
        "grades": {"status": "varies", "features": {"assessment_average": "varies"}},
    }
    metrics["gate"] = {
        "passes": False,
        "confidence": 0.95,
        "margin": 0.0,
        "resamples": 1000,
        "seed": 0,
        "best_baseline": "grades_only",
        "baselines": {
            "grades_only": {"difference": 0.0123456, "lower": -0.0412345, "upper": 0.0654321, "passes": False}
        },
        "active": {"version": "risk-old", "not_compared": "artifact file risk-old.joblib is missing"},
    }
    metrics["groups"]["program"] = {
        "BSC-CS": {
            **metrics["groups"]["department"]["CS"],
            "intervals": {"pr_auc": [0.5123, 0.7344], "recall": [0.6, 0.8]},
        },
        "BSC-ART": {"n": 12, "too_few": True},
    }
    metrics["group_min_size"] = 30
    metrics["excluded"] = {"train": {"left_before_cutoff": 7}, "holdout": {}}
    return metrics


def test_a_versions_page_shows_the_gate_its_intervals_the_missing_families_and_small_groups(registrar_client):
    report = report_of(version_page(registrar_client, ModelVersionFactory(metrics=gated_metrics())))
    header = re.search(r"<thead><tr><th scope=\"col\">Metric</th>(.*?)</tr></thead>", report).group(1)
    assert "Attendance-only rule (not gated)" in header and "Grades-only rule" in header
    assert "Attendance-only rule is not used for gating: the attendance features are missing" in report
    gate = re.search(r'<tr><th scope="row">Grades-only rule</th>(.*?)</tr>', report).group(1)
    assert re.findall(r'<td class="num">(.*?)</td>', gate) == ["+0.012", "[-0.041, +0.065]", "fails"]
    assert "not compared: artifact file risk-old.joblib is missing" in report
    attendance = re.search(r'<tr><th scope="row">attendance</th>(.*?)</tr>', report).group(1)
    assert "missing" in attendance and "attendance_rate (missing), longest_absence_run (constant)" in attendance
    small = re.search(r'<tr><th scope="row">BSC-ART</th>(.*?)</tr>', report).group(1)
    assert re.findall(r'<td class="num">(.*?)</td>', small) == ["12"] + ["too few"] * 7
    cs = re.search(r'<tr><th scope="row">BSC-CS</th>(.*?)</tr>', report).group(1)
    assert re.findall(r'<td class="num">(.*?)</td>', cs)[-2:] == ["[+0.512, +0.734]", "[+0.600, +0.800]"]
    assert "fewer than 30 students" in report and "95% bootstrap intervals" in report
    assert "train: 7 (their enrolments had ended by the cut-off)" in report
    assert "style=" not in report and "<script" not in report
