"""Every read of students' risk scores by staff leaves a log line naming the viewer and the students (ids
only, never names): the portal's dashboard, one student's page and the CSV; the API's list, detail and
on-demand scoring; the admin's list and detail pages. Students' own reads are not staff reads."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from tests.factories import RiskScoreFactory, ScoringRunFactory, StudentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(term):
    advisor, other_advisor = UserFactory(roles=[Role.ADVISOR]), UserFactory(roles=[Role.ADVISOR])
    mine = [StudentFactory(advisor=advisor, student_number=f"S300000{n}", user__first_name=f"Mina{n}") for n in (1, 2)]
    theirs = StudentFactory(advisor=other_advisor, student_number="S3000009", user__first_name="Theo")
    run = ScoringRunFactory(term=term)
    scores = [RiskScoreFactory(run=run, student=student) for student in [*mine, theirs]]
    return {"advisor": advisor, "mine": mine, "theirs": theirs, "run": run, "scores": scores}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def events(log_output, event: str) -> list[dict]:
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip().startswith("{")]
    found = [line for line in lines if line.get("event") == event]
    for line in found:  # ids only: no name, number or email of any student
        flat = json.dumps(line)
        assert "Mina" not in flat and "Theo" not in flat and "S300000" not in flat and "@" not in flat
    return found


def test_the_portal_dashboard_logs_whose_scores_it_showed(scored, log_output):
    signed_in(scored["advisor"]).get(reverse("predictions:at-risk"))
    [line] = events(log_output, "risk_scores_listed")
    assert line["viewer"] == scored["advisor"].pk and line["run"] == scored["run"].pk
    assert sorted(line["students"]) == sorted(s.pk for s in scored["mine"])  # not the other advisor's student


def test_the_csv_logs_the_run_the_filters_and_the_rows(scored, log_output):
    signed_in(scored["advisor"]).get(reverse("predictions:at-risk-csv") + "?band=high")
    [line] = events(log_output, "risk_scores_exported")
    assert (line["viewer"], line["run"], line["rows"]) == (scored["advisor"].pk, scored["run"].pk, 2)
    assert line["filters"] == {"department": "", "program": "", "section": "", "band": "high"}


def test_one_students_page_logs_the_student(scored, log_output):
    student = scored["mine"][0]
    signed_in(scored["advisor"]).get(reverse("predictions:student-risk", args=[student.pk]))
    [line] = events(log_output, "risk_score_viewed")
    assert (line["viewer"], line["student"]) == (scored["advisor"].pk, student.pk)


def test_the_api_list_and_detail_log_whose_scores_they_returned(scored, log_output):
    client = signed_in(scored["advisor"])
    client.get("/api/v1/risk-scores/")
    client.get(f"/api/v1/risk-scores/{scored['scores'][1].pk}/")
    [listed] = events(log_output, "risk_scores_read")
    assert listed["viewer"] == scored["advisor"].pk and listed["rows"] == 2
    assert sorted(listed["students"]) == sorted(s.pk for s in scored["mine"])
    [viewed] = events(log_output, "risk_score_viewed")
    assert viewed["student"] == scored["mine"][1].pk


def test_scoring_a_student_on_demand_is_logged(scored, log_output, monkeypatch):
    student = scored["mine"][0]
    body = {"student": student.pk, "term": scored["run"].term_id, "model_version": "m", "probability": 0.5,
            "band": "medium", "factors": []}  # fmt: skip
    monkeypatch.setattr("predictions.apis.student_score", lambda student, term: body)
    response = signed_in(scored["advisor"]).post(
        "/api/v1/risk-scores/score-student/", {"student": student.pk}, content_type="application/json"
    )
    assert response.status_code == 200
    [line] = events(log_output, "risk_score_viewed")
    assert (line["student"], line["on_demand"]) == (student.pk, True)


def test_the_admin_logs_its_list_and_detail_pages(scored, log_output):
    client = signed_in(UserFactory(roles=[Role.REGISTRAR]))
    assert client.get(reverse("admin:predictions_riskscore_changelist")).status_code == 200
    score = scored["scores"][2]
    assert client.get(reverse("admin:predictions_riskscore_change", args=[score.pk])).status_code == 200
    [listed] = events(log_output, "risk_scores_listed")
    assert listed["via"] == "admin" and sorted(listed["students"]) == sorted(s.student_id for s in scored["scores"])
    [viewed] = events(log_output, "risk_score_viewed")
    assert (viewed["via"], viewed["student"]) == ("admin", scored["theirs"].pk)


def test_a_refused_read_logs_no_read(scored, log_output):
    signed_in(UserFactory(roles=[Role.LECTURER])).get(reverse("predictions:at-risk"))
    signed_in(scored["advisor"]).get(reverse("predictions:student-risk", args=[scored["theirs"].pk]))
    assert events(log_output, "risk_scores_listed") == [] and events(log_output, "risk_score_viewed") == []
