"""The predictions API: scores scoped per role, filters, one student on demand, model versions and
scoring runs for registry staff, refusals in the problem shape, and constant query counts."""

import json

import pytest
import time_machine
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from campusiq.core.errors import PROBLEM_CONTENT_TYPE
from predictions.models import ScoringRun
from predictions.training import model_version_activate, risk_model_train
from tests.factories import (
    ModelVersionFactory,
    RiskScoreFactory,
    ScoringRunFactory,
    StudentFactory,
    TermFactory,
    UserFactory,
)
from tests.predictions.world import NOW, campus_history

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def scored():
    """The current term's latest run: the advisor's two advisees and another advisor's one."""
    term = TermFactory(start_date=NOW.date().replace(day=1), name="Current")
    advisor, other_advisor = UserFactory(roles=[Role.ADVISOR]), UserFactory(roles=[Role.ADVISOR])
    mine = [StudentFactory(advisor=advisor), StudentFactory(advisor=advisor)]
    theirs = StudentFactory(advisor=other_advisor)
    old_run = ScoringRunFactory(term=term, as_of=NOW.replace(day=1))
    RiskScoreFactory(run=old_run, student=mine[0], probability=0.2, band="low")
    run = ScoringRunFactory(term=term, as_of=NOW)
    scores = [
        RiskScoreFactory(run=run, student=mine[0], probability=0.7, band="high"),
        RiskScoreFactory(run=run, student=mine[1], probability=0.35, band="medium"),
        RiskScoreFactory(run=run, student=theirs, probability=0.9, band="high"),
    ]
    return {"term": term, "advisor": advisor, "other_advisor": other_advisor, "mine": mine, "theirs": theirs,
            "run": run, "old_run": old_run, "scores": scores}  # fmt: skip


def get(client, user, path):
    client.force_login(user)
    return client.get(path)


def post(client, user, path, body):
    client.force_login(user)
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_an_advisor_lists_only_their_advisees_of_the_latest_run(client, scored):
    body = get(client, scored["advisor"], "/api/v1/risk-scores/").json()
    assert [r["student"] for r in body["results"]] == [scored["mine"][0].pk, scored["mine"][1].pk]
    first = body["results"][0]
    assert first["probability"] == 0.7 and first["band"] == "high" and first["run"] == scored["run"].pk
    assert first["factors"][0]["text"].startswith("attendance over the last 4 weeks")


def test_registry_staff_see_everyone_and_filter(client, scored):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    everyone = get(client, registrar, "/api/v1/risk-scores/").json()["results"]
    assert len(everyone) == 3
    high = get(client, registrar, "/api/v1/risk-scores/?band=high").json()["results"]
    assert {r["student"] for r in high} == {scored["mine"][0].pk, scored["theirs"].pk}
    older = get(client, registrar, f"/api/v1/risk-scores/?run={scored['old_run'].pk}").json()["results"]
    assert [r["probability"] for r in older] == [0.2]
    assert get(client, registrar, "/api/v1/risk-scores/?min_probability=0.8").json()["count"] == 1


def test_a_filter_naming_another_advisors_student_returns_nothing_of_theirs(client, scored):
    body = get(client, scored["advisor"], f"/api/v1/risk-scores/?student={scored['theirs'].pk}").json()
    assert body["results"] == []
    theirs = scored["scores"][2]
    assert get(client, scored["advisor"], f"/api/v1/risk-scores/{theirs.pk}/").status_code == 404


@pytest.mark.parametrize("role", [Role.STUDENT, Role.LECTURER])
def test_students_and_lecturers_get_no_scores(client, scored, role):
    user = scored["mine"][0].user if role == Role.STUDENT else UserFactory(roles=[role])
    response = get(client, user, "/api/v1/risk-scores/")
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE


def test_a_student_sees_their_own_score_only_where_the_institution_allows_it(client, scored):
    student = scored["mine"][0]
    with override_settings(PREDICTIONS_STUDENTS_SEE_OWN_RISK=True):
        body = get(client, student.user, "/api/v1/risk-scores/").json()
    assert [r["student"] for r in body["results"]] == [student.pk]


def test_score_reads_by_staff_are_logged(client, scored, log_output):
    get(client, scored["advisor"], f"/api/v1/risk-scores/{scored['scores'][0].pk}/")
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if "risk_score_viewed" in line]
    assert lines and lines[0]["viewer"] == scored["advisor"].pk and lines[0]["student"] == scored["mine"][0].pk


def test_the_list_costs_the_same_queries_for_3_and_30_rows(client, scored):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    client.force_login(registrar)
    client.get("/api/v1/risk-scores/")
    with CaptureQueriesContext(connection) as few:
        assert client.get("/api/v1/risk-scores/").json()["count"] == 3
    for _ in range(27):
        RiskScoreFactory(run=scored["run"])
    with CaptureQueriesContext(connection) as many:
        assert client.get("/api/v1/risk-scores/").json()["count"] == 30
    assert len(many) == len(few)


def test_model_versions_and_runs_are_for_registry_staff(client, scored):
    ModelVersionFactory(status="active")
    registrar = UserFactory(roles=[Role.REGISTRAR])
    versions = get(client, registrar, "/api/v1/model-versions/").json()["results"]
    assert {"metrics", "status", "threshold", "artifact_sha256"} <= set(versions[0])
    assert get(client, registrar, "/api/v1/scoring-runs/").json()["count"] == 2
    assert get(client, scored["advisor"], "/api/v1/model-versions/").status_code == 403
    assert get(client, scored["advisor"], "/api/v1/scoring-runs/").status_code == 403


def test_starting_a_run_without_an_active_model_is_a_409_problem(client, scored):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    response = post(client, registrar, "/api/v1/scoring-runs/", {"term": scored["term"].pk})
    assert response.status_code == 409
    assert response.json()["code"] == "no_active_model"
    assert ScoringRun.objects.count() == 2  # nothing written


def test_a_registrar_starts_a_run_and_an_advisor_scores_an_advisee_on_demand(client):
    history = campus_history(signal="grades")
    model_version_activate(risk_model_train(), actor=None)
    registrar = UserFactory(roles=[Role.REGISTRAR])
    response = post(client, registrar, "/api/v1/scoring-runs/", {})
    assert response.status_code == 202
    run = ScoringRun.objects.get(pk=response.json()["id"])
    assert run.status == ScoringRun.Status.SUCCEEDED and run.students_scored == 60  # eager Celery in tests
    advisee = history["students"][0]
    body = post(client, history["advisor"], "/api/v1/risk-scores/score-student/", {"student": advisee.pk}).json()
    assert body["student"] == advisee.pk and 0 <= body["probability"] <= 1
    stranger = UserFactory(roles=[Role.ADVISOR])
    refused = post(client, stranger, "/api/v1/risk-scores/score-student/", {"student": advisee.pk})
    assert refused.status_code in (403, 404)
    bad = post(client, history["advisor"], "/api/v1/risk-scores/score-student/", {"student": "x"})
    assert bad.status_code == 400 and bad["Content-Type"] == PROBLEM_CONTENT_TYPE
