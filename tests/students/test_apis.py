# ruff: noqa: E501  (parametrised cases and world bodies read best one per line)
"""API v1 for the campus domain, as an integrator or a portal user sees it."""

import datetime
import json
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiToken
from accounts.roles import Role
from accounts.tokens import api_token_issue
from campusiq.core.models import AuditLogEntry
from students.models import Department, Enrollment, Grade, Student
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    DepartmentFactory,
    EnrollmentFactory,
    GradeFactory,
    ProgramFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    TermOutcomeFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def as_user(client, user):
    client.force_login(user)
    return client


def send(client, method, path, body=None, **headers):
    return getattr(client, method)(path, data=json.dumps(body or {}), content_type="application/json", **headers)


@pytest.fixture
def registrar(client):
    return UserFactory(roles=[Role.REGISTRAR])


@pytest.fixture
def lecturer_setup():
    lecturer = UserFactory(roles=[Role.LECTURER])
    section = SectionFactory(lecturers=[lecturer])
    mine = EnrollmentFactory(section=section).student
    assessment = AssessmentFactory(section=section, max_score=Decimal("20"))
    other_section = SectionFactory()
    theirs = EnrollmentFactory(section=other_section).student
    other_assessment = AssessmentFactory(section=other_section)
    return {"lecturer": lecturer, "mine": mine, "theirs": theirs, "assessment": assessment, "other": other_assessment}


# --- reads are scoped -----------------------------------------------------------------------


def test_student_lists_only_themself(client):
    me, other = StudentFactory(), StudentFactory()
    body = as_user(client, me.user).get("/api/v1/students/").json()
    assert [row["id"] for row in body["results"]] == [me.pk]
    assert other.student_number not in json.dumps(body)


def test_filter_naming_another_student_returns_nothing_of_theirs(client):
    me, other = StudentFactory(), StudentFactory()
    GradeFactory(student=other, assessment=AssessmentFactory(section=EnrollmentFactory(student=other).section))
    as_user(client, me.user)
    queries = [f"/api/v1/{path}/?student={other.pk}" for path in ("grades", "enrollments", "term-outcomes")]
    queries += [f"/api/v1/students/?advisor={other.user.pk}", f"/api/v1/students/?program={other.program_id}"]
    queries += ["/api/v1/students/?advisor=987654321"]  # an id that exists nowhere looks the same
    for query in queries:
        response = client.get(query)
        assert response.status_code == 200 and response.json()["results"] == [], query


def test_other_students_objects_are_404(client):
    me, other = StudentFactory(), StudentFactory()
    enrollment = EnrollmentFactory(student=other)
    as_user(client, me.user)
    assert client.get(f"/api/v1/students/{other.pk}/").status_code == 404
    assert client.get(f"/api/v1/enrollments/{enrollment.pk}/").json()["code"] == "not_found"


def test_lecturer_sees_their_rosters_grades(client, lecturer_setup):
    as_user(client, lecturer_setup["lecturer"])
    students = {row["id"] for row in client.get("/api/v1/students/").json()["results"]}
    assert students == {lecturer_setup["mine"].pk}


# --- incremental sync -----------------------------------------------------------------------


def test_incremental_sync_with_cursor_and_updated_since(client):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    _, key = api_token_issue(user=UserFactory(is_service_account=True, roles=[Role.REGISTRAR]), name="bi")
    start = timezone.now()
    with time_machine.travel(start - datetime.timedelta(days=2)):
        old = StudentFactory.create_batch(3)
    with time_machine.travel(start):
        new = StudentFactory.create_batch(5)
    seen, url = [], f"/api/v1/students/?page_size=2&updated_since={start.isoformat().replace('+00:00', 'Z')}"
    while url:
        body = client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}").json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert seen == [s.pk for s in new]
    assert not set(seen) & {s.pk for s in old}
    assert registrar


def test_invalid_updated_since_is_a_validation_error(client, registrar):
    response = as_user(client, registrar).get("/api/v1/students/?updated_since=yesterday")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "updated_since"


def test_page_size_is_capped(client, registrar):
    DepartmentFactory.create_batch(205)
    body = as_user(client, registrar).get("/api/v1/departments/?page_size=100000").json()
    assert body["count"] == 205 and len(body["results"]) == 200 and body["next"]


def test_search_ordering_and_filters(client, registrar):
    science = DepartmentFactory(code="SCI")
    CourseFactory(code="BIO101", title="Cells", department=science, credits=6)
    CourseFactory(code="CHE101", title="Atoms", department=science, credits=3)
    CourseFactory(code="HIS101", title="Rome")
    as_user(client, registrar)
    assert [c["code"] for c in client.get("/api/v1/courses/?search=atoms").json()["results"]] == ["CHE101"]
    codes = [
        c["code"] for c in client.get(f"/api/v1/courses/?department={science.pk}&ordering=-code").json()["results"]
    ]
    assert codes == ["CHE101", "BIO101"]
    assert [c["code"] for c in client.get("/api/v1/courses/?credits=3").json()["results"]] == ["CHE101"]


# --- writes ---------------------------------------------------------------------------------


def test_registrar_creates_updates_and_deletes_catalogue(client, registrar):
    as_user(client, registrar)
    created = send(client, "post", "/api/v1/departments/", {"code": "MUS", "name": "Music"})
    assert created.status_code == 201
    pk = created.json()["id"]
    assert (
        send(client, "patch", f"/api/v1/departments/{pk}/", {"name": "Music and Arts"}).json()["name"]
        == "Music and Arts"
    )
    assert client.delete(f"/api/v1/departments/{pk}/").status_code == 204
    verbs = list(AuditLogEntry.objects.filter(object_type="students.department").values_list("verb", flat=True))
    assert sorted(verbs) == ["department.created", "department.deleted", "department.updated"]


def test_deleting_a_department_in_use_is_a_conflict(client, registrar):
    department = ProgramFactory().department
    response = as_user(client, registrar).delete(f"/api/v1/departments/{department.pk}/")
    assert response.status_code == 409 and response.json()["code"] == "in_use"
    assert Department.objects.filter(pk=department.pk).exists()
    assert not AuditLogEntry.objects.filter(verb="department.deleted").exists()


def test_check_constraints_are_validation_errors_not_500(client, registrar):
    term = TermFactory()
    response = send(as_user(client, registrar), "patch", f"/api/v1/terms/{term.pk}/", {"end_date": "2020-01-01"})
    assert response.status_code == 400 and response.json()["code"] == "validation_error"
    assert [(e["field"], e["message"]) for e in response.json()["errors"]] == [
        (None, "A term must end after it starts."),
        (None, "The add/drop deadline must fall within the term."),
    ]
    ends = term.end_date
    term.refresh_from_db()
    assert term.end_date == ends


def test_registrar_creates_student_and_enrolls(client, registrar):
    as_user(client, registrar)
    program, section = ProgramFactory(), SectionFactory()
    body = {"student_number": "S26001", "email": "new@campus.example", "first_name": "Ana", "last_name": "Lima",
            "program": program.pk, "semester": 2}  # fmt: skip
    student = send(client, "post", "/api/v1/students/", body)
    assert student.status_code == 201 and student.json()["email"] == "new@campus.example"
    enrol = {"student": student.json()["id"], "section": section.pk, "enrolled_on": str(section.term.start_date)}
    assert send(client, "post", "/api/v1/enrollments/", enrol).status_code == 201
    duplicate = send(client, "post", "/api/v1/enrollments/", enrol)
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "already_enrolled"
    assert Enrollment.objects.count() == 1


def test_ending_an_enrollment(client, registrar):
    enrollment = EnrollmentFactory()
    response = send(as_user(client, registrar), "post", f"/api/v1/enrollments/{enrollment.pk}/end/",
                    {"on": str(enrollment.section.term.add_drop_deadline)})  # fmt: skip
    assert response.status_code == 200 and response.json()["status"] == "dropped"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"student_number": "S1", "email": "x", "first_name": "A", "last_name": "B", "program": 999999}, {"email", "program"}),
        ({"student_number": "S 1!", "email": "a@b.cd", "first_name": "A", "last_name": "B", "program": 999999},
         {"student_number", "program"}),
        ({"student_number": "S1", "email": "a@b.cd", "first_name": "A", "last_name": "B", "program": "one"}, {"program"}),
        ({"student_number": "S1", "email": "a@b.cd", "first_name": "A", "last_name": "B", "semester": -1}, {"program", "semester"}),
    ],
)  # fmt: skip
def test_student_create_validation_writes_nothing(client, registrar, body, fields):
    response = send(as_user(client, registrar), "post", "/api/v1/students/", body)
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == fields
    assert not Student.objects.exists()


def test_semester_out_of_range_is_a_service_error(client, registrar):
    body = {"student_number": "S1", "email": "a@b.cd", "first_name": "A", "last_name": "B",
            "program": ProgramFactory().pk, "semester": 12}  # fmt: skip
    response = send(as_user(client, registrar), "post", "/api/v1/students/", body)
    assert response.status_code == 400 and response.json()["code"] == "semester_out_of_range"
    assert response.json()["errors"][0]["field"] == "semester"
    assert not Student.objects.exists()


def test_lecturer_grades_own_section_only(client, lecturer_setup):
    as_user(client, lecturer_setup["lecturer"])
    mine, assessment = lecturer_setup["mine"], lecturer_setup["assessment"]
    ok = send(client, "post", "/api/v1/grades/", {"student": mine.pk, "assessment": assessment.pk, "score": "17.5"})
    assert ok.status_code == 201 and ok.json()["score"] == "17.50"
    changed = send(client, "patch", f"/api/v1/grades/{ok.json()['id']}/", {"score": "18", "reason": "recount"})
    assert changed.json()["score"] == "18.00"
    assert AuditLogEntry.objects.filter(verb="grade.changed", reason="recount").exists()
    other = lecturer_setup["other"]
    refused = send(client, "post", "/api/v1/grades/", {"student": mine.pk, "assessment": other.pk, "score": "10"})
    assert refused.status_code == 403
    hidden = send(
        client,
        "post",
        "/api/v1/grades/",
        {"student": lecturer_setup["theirs"].pk, "assessment": other.pk, "score": "10"},
    )
    assert hidden.status_code == 400 and hidden.json()["errors"][0]["field"] == "student"
    assert Grade.objects.count() == 1


@pytest.mark.parametrize(
    ("score", "code"), [("20.01", "score_out_of_range"), ("-1", "score_out_of_range"), ("abc", "validation_error"),
                        ("1e999", "validation_error"), (None, "validation_error")],
)  # fmt: skip
def test_bad_scores_write_nothing(client, lecturer_setup, score, code):
    as_user(client, lecturer_setup["lecturer"])
    body = {"student": lecturer_setup["mine"].pk, "assessment": lecturer_setup["assessment"].pk, "score": score}
    response = send(client, "post", "/api/v1/grades/", body)
    assert response.status_code == 400 and response.json()["code"] == code
    assert not Grade.objects.exists()


def test_student_cannot_write(client):
    student = StudentFactory()
    assessment = AssessmentFactory(section=EnrollmentFactory(student=student).section)
    as_user(client, student.user)
    response = send(
        client, "post", "/api/v1/grades/", {"student": student.pk, "assessment": assessment.pk, "score": "20"}
    )
    assert response.status_code == 403
    assert send(client, "post", "/api/v1/departments/", {"code": "X", "name": "X"}).status_code == 403
    assert not Grade.objects.exists()


def test_registrar_sets_outcome(client, registrar):
    student, term = StudentFactory(), TermFactory()
    response = send(as_user(client, registrar), "post", "/api/v1/term-outcomes/",
                    {"student": student.pk, "term": term.pk, "outcome": "withdrew", "note": "medical"})  # fmt: skip
    assert response.status_code == 201 and response.json()["source"] == "staff"


def test_malformed_json_writes_nothing(client, registrar):
    response = as_user(client, registrar).post(
        "/api/v1/departments/", data='{"code": "X",', content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["code"] == "malformed_request"
    assert not Department.objects.exists()


# --- query counts ---------------------------------------------------------------------------


def build_rows(n: int, lecturer, advisor):
    term = TermFactory()
    section = SectionFactory(term=term, lecturers=[lecturer])
    assessment = AssessmentFactory(section=section)
    for _ in range(n):
        student = StudentFactory(advisor=advisor)
        EnrollmentFactory(student=student, section=section)
        GradeFactory(student=student, assessment=assessment)
        TermOutcomeFactory(student=student, term=term)
        CourseFactory()
        SectionFactory(term=term, lecturers=[lecturer, advisor])
        DepartmentFactory()
        ProgramFactory()
        AssessmentFactory(section=section, weight=Decimal("0.5"))


LIST_ENDPOINTS = [
    "/api/v1/departments/", "/api/v1/programs/", "/api/v1/courses/", "/api/v1/terms/", "/api/v1/sections/",
    "/api/v1/assessments/", "/api/v1/students/", "/api/v1/enrollments/", "/api/v1/grades/", "/api/v1/term-outcomes/",
]  # fmt: skip


@pytest.mark.parametrize("role", [Role.REGISTRAR, Role.LECTURER, Role.ADVISOR])
def test_list_endpoints_do_not_grow_queries_with_rows(client, role):
    viewer = UserFactory(roles=[role])
    lecturer = viewer if role == Role.LECTURER else UserFactory(roles=[Role.LECTURER])
    advisor = viewer if role == Role.ADVISOR else UserFactory(roles=[Role.ADVISOR])
    _, key = api_token_issue(user=viewer, name="q", scope=ApiToken.Scope.READ)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    def counts() -> dict[str, int]:
        client.get("/api/v1/", **auth)  # the token's last use is recorded once, outside the counts
        result = {}
        for path in LIST_ENDPOINTS:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(f"{path}?page_size=200", **auth)
            assert response.status_code == 200
            result[path] = len(queries)
        return result

    build_rows(5, lecturer, advisor)
    small = counts()
    build_rows(95, lecturer, advisor)
    large = counts()
    assert large == small


def test_a_computed_assessment_takes_no_score_from_the_api(client, lecturer_setup):
    as_user(client, lecturer_setup["lecturer"])
    mine = lecturer_setup["mine"]
    attendance = AssessmentFactory(section=lecturer_setup["assessment"].section, name="Attendance", computed=True)
    response = send(client, "post", "/api/v1/grades/", {"student": mine.pk, "assessment": attendance.pk, "score": "5"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert (response.json()["code"], response.json()["errors"][0]["field"]) == ("grade_computed", "score")
    assert not Grade.objects.exists()
