""" "Download my data": a student gets everything stored about them, and nothing about anyone else, as a
JSON attachment, for a fixed number of queries; staff cannot use it; every download is logged."""

import datetime
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken
from accounts.roles import Role
from accounts.tokens import api_token_issue
from predictions.models import Intervention
from tests.factories import (
    AbsenceExcuseFactory,
    AssessmentFactory,
    AttendanceRecordFactory,
    AttendanceWarningStateFactory,
    ClassSessionFactory,
    DeviceSightingFactory,
    EnrollmentFactory,
    FlagFeedbackFactory,
    GradeFactory,
    InterventionFactory,
    ProxyFlagFactory,
    RiskScoreFactory,
    ScoringRunFactory,
    SectionFactory,
    StudentCardFactory,
    StudentFactory,
    TermOutcomeFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
URL = reverse("portal:student-data-export")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def history(student, term, *, courses: int, tag: str) -> dict:
    """`courses` sections of the term with an assessment, a grade, two attendance records (one flagged
    check-in, one excused absence), a risk score, an intervention and flag feedback for the student."""
    made = {"sections": [], "records": []}
    run = ScoringRunFactory(term=term)
    score = RiskScoreFactory(run=run, student=student, probability=0.81, band="high")
    for n in range(courses):
        section = SectionFactory(term=term, code=f"{tag}{n}"[:8])
        EnrollmentFactory(student=student, section=section)
        assessment = AssessmentFactory(section=section, name=f"Exam {tag}{n}", weight=Decimal("50"))
        GradeFactory(student=student, assessment=assessment, score=Decimal("61.50"))
        present = AttendanceRecordFactory(
            session=ClassSessionFactory(section=section, state="closed"),
            student=student,
            ip=f"10.9.{n}.{len(tag)}",
            user_agent=f"Phone {tag}{n}",
            device_id=f"dev-{tag}-{n}",
        )
        ProxyFlagFactory(
            record=present, kind="off_campus", detail=f"Address {present.ip} is outside the campus networks."
        )
        absence = AttendanceRecordFactory(
            session=ClassSessionFactory(
                section=section,
                state="closed",
                starts_at=present.session.starts_at + datetime.timedelta(days=7),
                ends_at=present.session.ends_at + datetime.timedelta(days=7),
            ),
            student=student,
            status="absent",
            ip=None,
            user_agent="",
            device_id="",
        )
        AbsenceExcuseFactory(record=absence, reason=f"Flu {tag}{n}", state="approved", decision_note="Get well")
        AttendanceWarningStateFactory(student=student, section=section)
        DeviceSightingFactory(student=student, device_id=f"dev-{tag}-{n}")
        StudentCardFactory(student=student)
        InterventionFactory(student=student, term=term, risk_score=score, note=f"Met {tag}{n}")
        FlagFeedbackFactory(risk_score=score, verdict="incorrect", note=f"Was ill {tag}{n}")
        TermOutcomeFactory(student=student, term=SectionFactory(code=f"P{tag}{n}"[:8]).term, outcome="passed")
        made["sections"].append(section)
        made["records"] += [present, absence]
    return made


@pytest.fixture
def advisor():
    return UserFactory(roles=[Role.ADVISOR], first_name="Adele", last_name="Advisor")


@pytest.fixture
def ana(advisor):
    return StudentFactory(
        student_number="S2000001",
        user__email="ana@campus.example",
        user__first_name="Ana",
        advisor=advisor,
        admission_grade=Decimal("151.25"),
    )


@pytest.fixture
def otto(term):
    """Another student with a full history: nothing of his may appear in Ana's download."""
    otto = StudentFactory(student_number="S2000009", user__email="otto@campus.example", user__first_name="Otto")
    history(otto, term, courses=2, tag="otto")
    return otto


def download(user) -> tuple:
    response = signed_in(user).get(URL)
    return response, json.loads(response.content) if response.status_code == 200 else None


def test_a_student_downloads_their_own_data_as_a_json_attachment(ana, term, otto):
    history(ana, term, courses=2, tag="ana")
    response, data = download(ana.user)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="campusiq-my-data-S2000001-')
    assert "no-store" in response["Cache-Control"]
    assert (data["format"], data["version"]) == ("campusiq-personal-data", 1)
    assert data["retention"]["check_in_evidence_days"] == 180
    assert data["account"]["email"] == "ana@campus.example" and data["account"]["roles"] == ["student"]
    profile = data["profile"]
    assert (profile["student_number"], profile["status"]) == ("S2000001", "active")
    assert (profile["admission_grade"], profile["prior_qualification_grade"]) == ("151.25", None)
    assert profile["advisor"] == {"name": "Adele Advisor", "email": ana.advisor.email}
    assert len(data["enrollments"]) == 2 and {e["status"] for e in data["enrollments"]} == {"enrolled"}
    assert [g["score"] for g in data["grades"]] == ["61.50", "61.50"]
    assert {g["assessment"] for g in data["grades"]} == {"Exam ana0", "Exam ana1"}
    assert len(data["term_outcomes"]) == 2


def test_attendance_comes_with_the_students_own_evidence_flags_and_excuses(ana, term):
    history(ana, term, courses=1, tag="ana")
    records = download(ana.user)[1]["attendance"]["records"]
    present, absent = records
    assert present["evidence"] == {"ip": "10.9.0.3", "user_agent": "Phone ana0", "device_id": "dev-ana-0"}
    assert present["proxy_flags"] == [
        {"kind": "off_campus", "detail": "Address 10.9.0.3 is outside the campus networks.",
         "created_at": present["proxy_flags"][0]["created_at"]}
    ]  # fmt: skip
    assert present["excuse"] is None
    assert absent["status"] == "absent" and absent["evidence"] == {"ip": None, "user_agent": "", "device_id": ""}
    assert absent["excuse"]["reason"] == "Flu ana0" and absent["excuse"]["state"] == "approved"
    assert absent["excuse"]["decision_note"] == "Get well"
    attendance = download(ana.user)[1]["attendance"]
    assert [d["device_id"] for d in attendance["devices"]] == ["dev-ana-0"]
    assert len(attendance["cards"]) == 1 and attendance["warnings"][0]["below_warning_level"] is True


@pytest.mark.parametrize("students_see_own_risk", [False, True])
def test_risk_scores_and_what_advisors_recorded_are_included_whatever_the_portal_shows(
    ana, term, settings, students_see_own_risk
):
    """The setting decides what the portal shows day to day, not what a student may obtain about themself."""
    settings.PREDICTIONS_STUDENTS_SEE_OWN_RISK = students_see_own_risk
    history(ana, term, courses=1, tag="ana")
    data = download(ana.user)[1]
    [score] = data["risk_scores"]
    assert (score["probability"], score["band"]) == (0.81, "high")
    assert score["factors"][0]["text"] == "attendance over the last 4 weeks: 54%; campus median 88%"
    assert [(i["kind"], i["note"], i["closed_at"], i["outcome"]) for i in data["interventions"]] == [
        ("contacted", "Met ana0", None, "")
    ]
    Intervention.objects.filter(student=ana).update(closed_at=timezone.now(), outcome="Back in class ana0")
    [closed] = download(ana.user)[1]["interventions"]
    assert closed["outcome"] == "Back in class ana0" and closed["closed_at"] is not None
    assert [(f["verdict"], f["note"]) for f in data["flag_feedback"]] == [("incorrect", "Was ill ana0")]


def test_nothing_of_another_student_is_in_the_download(ana, term, otto):
    history(ana, term, courses=1, tag="ana")
    response, _ = download(ana.user)
    body = response.content.decode()
    for marker in ("S2000009", "otto@campus.example", "Otto", "Exam otto", "dev-otto", "Phone otto", "Flu otto",
                   "Met otto", "Was ill otto", "10.9.0.4"):  # fmt: skip
        assert marker not in body, marker


def test_token_keys_and_hashes_are_never_in_the_download(ana):
    token, key = api_token_issue(user=ana.user, name="laptop", scope=ApiToken.Scope.READ)
    response, data = download(ana.user)
    assert [t["name"] for t in data["account"]["api_tokens"]] == ["laptop"]
    assert key not in response.content.decode() and token.key_hash not in response.content.decode()


def test_the_download_costs_the_same_queries_for_a_short_and_a_long_history(ana, term):
    client = signed_in(ana.user)
    history(ana, term, courses=1, tag="a")
    client.get(URL)  # warm: the session and the user's roles
    with CaptureQueriesContext(connection) as short:
        assert len(json.loads(client.get(URL).content)["attendance"]["records"]) == 2
    history(ana, term, courses=12, tag="b")
    with CaptureQueriesContext(connection) as long:
        data = json.loads(client.get(URL).content)
    assert len(data["attendance"]["records"]) == 26 and len(data["grades"]) == 13
    assert len(long) == len(short), [q["sql"] for q in long.captured_queries]


@pytest.mark.parametrize("role", [Role.LECTURER, Role.ADVISOR, Role.REGISTRAR, Role.ADMIN])
def test_staff_cannot_download_anyones_data(ana, role):
    response = signed_in(UserFactory(roles=[role])).get(URL)
    assert response.status_code == 403
    assert "S2000001" not in response.content.decode()


def test_signing_in_comes_first_and_the_download_is_read_only(client, ana):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert signed_in(ana.user).post(URL).status_code == 405


def test_a_student_account_without_a_student_record_gets_404():
    assert signed_in(UserFactory(roles=[Role.STUDENT])).get(URL).status_code == 404


def test_each_download_is_logged_with_ids_only(ana, term, log_output):
    history(ana, term, courses=1, tag="ana")
    download(ana.user)
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if "personal_data_exported" in line]
    assert len(lines) == 1
    line = lines[0]
    assert (line["viewer"], line["student"]) == (ana.user.pk, ana.pk)
    assert line["rows"] == {
        "enrollments": 1,
        "grades": 1,
        "attendance_records": 2,
        "risk_scores": 1,
        "interventions": 1,
    }
    flat = json.dumps(line)
    assert "S2000001" not in flat and "ana@campus.example" not in flat and "Ana" not in flat


def test_the_profile_page_offers_the_download_and_says_how_long_evidence_is_kept(ana, settings):
    settings.ATTENDANCE_EVIDENCE_RETENTION_DAYS = 90
    page = signed_in(ana.user).get(reverse("portal:student-profile")).content.decode()
    assert f'href="{URL}"' in page and "Download my data (JSON)" in page
    assert "erased after 90 days" in page


# Models with a key to a student or an account whose rows are not in the download, and why. A new model
# holding someone's data fails the test below until a section carries it or it is listed here.
NOT_IN_THE_DOWNLOAD = {
    "admin.LogEntry": "the admin's trail of staff actions",
    "core.AuditLogEntry": "the institution's trail of who changed what; the data changed is in the sections",
    "core.IdempotencyKey": "a request's replay key, purged after its window",
    "accounts.User_groups": "the roles the groups grant are account.roles",
    "accounts.User_user_permissions": "permissions are granted through roles, account.roles",
    "accounts.SignedInSession": "which server session is whose: a session id and a sign-in time, ended with it",
    "students.Section_lecturers": "who teaches a section: staff assignments",
    "predictions.ScoringRun": "the staff member who asked for a scoring run",
    "otp_totp.TOTPDevice": "a two-factor secret, never handed out",
    "attendance.CalendarFeed": "a timetable feed's secret (its hash) and dates; the timetable is the attendance",
    "core.ImportJob": "the registrar who imported a file: staff work; the rows it imported are in the sections",
}


def test_every_model_holding_rows_about_a_student_or_their_account_is_in_the_download():
    from django.apps import apps

    from accounts.models import User
    from students.exports import personal_data_sections
    from students.models import Student

    covered = {model for section in personal_data_sections() for model in section.models}
    about_someone = {
        model._meta.label
        for model in apps.get_models(include_auto_created=True)
        for field in model._meta.get_fields()
        if field.concrete and (field.many_to_one or field.one_to_one) and field.related_model in (Student, User)
    }
    missing = about_someone - {model._meta.label for model in covered} - set(NOT_IN_THE_DOWNLOAD)
    assert not missing, f"personal data in no section of the download (students/exports.py): {sorted(missing)}"
    assert set(NOT_IN_THE_DOWNLOAD) <= about_someone, "an entry of NOT_IN_THE_DOWNLOAD names no such model any more"
    # The sections come in the order of the apps: the campus's first.
    assert [section.key for section in personal_data_sections()][:2] == ["account", "profile"]
