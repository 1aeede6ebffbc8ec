# ruff: noqa: E501  (parametrised cases and world bodies read best one per line)
"""Walks the literal permission table (tests/permission_table.py) for every role, and the URL resolver
for routes the table forgot. Bodies visible to one student never hold the other student's data."""

import datetime
import json
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.roles import Role
from attendance.models import AbsenceExcuse
from attendance.qr import numeric_code, qr_token_make, step_at
from tests.factories import (
    AssessmentFactory,
    AttendanceRecordFactory,
    ClassSessionFactory,
    DepartmentFactory,
    EnrollmentFactory,
    GradeFactory,
    RiskScoreFactory,
    ScoringRunFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    TermOutcomeFactory,
    UserFactory,
)
from tests.permission_table import EXEMPT_ROUTE_PREFIXES, ROLES, TABLE

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def world(db):
    term = TermFactory(name="2026 Autumn")
    advisor, other_advisor = UserFactory(roles=[Role.ADVISOR]), UserFactory(roles=[Role.ADVISOR])
    lecturer, other_lecturer = UserFactory(roles=[Role.LECTURER]), UserFactory(roles=[Role.LECTURER])
    section_x = SectionFactory(term=term, lecturers=[lecturer])
    section_y = SectionFactory(term=term, lecturers=[other_lecturer])
    student = StudentFactory(advisor=advisor, student_number="S-SUBJECT-1", user__email="subject@campus.example")
    other = StudentFactory(advisor=other_advisor, student_number="S-OTHER-99", user__email="other@campus.example")
    enrollment = EnrollmentFactory(student=student, section=section_x)
    EnrollmentFactory(student=other, section=section_y)
    assessment = AssessmentFactory(section=section_x, name="Midterm", weight=Decimal("40"), max_score=Decimal("20"))
    other_assessment = AssessmentFactory(section=section_y, name="Midterm", weight=Decimal("40"))
    grade = GradeFactory(student=student, assessment=assessment, score=Decimal("12"))
    GradeFactory(student=other, assessment=other_assessment, score=Decimal("7"))
    outcome = TermOutcomeFactory(
        student=student, term=TermFactory(name="2026 Spring", start_date=datetime.date(2026, 2, 2))
    )
    TermOutcomeFactory(student=other, term=outcome.term, outcome="failed")
    session = ClassSessionFactory(section=section_x, state="closed")
    open_session = ClassSessionFactory(
        section=section_x,
        starts_at=timezone.now() - datetime.timedelta(minutes=5),
        ends_at=timezone.now() + datetime.timedelta(hours=1),
        state="open",
    )
    record = AttendanceRecordFactory(session=session, student=student, status="present")
    earlier = [
        ClassSessionFactory(section=section_x, state="closed", starts_at=session.starts_at + datetime.timedelta(days=d),
                            ends_at=session.ends_at + datetime.timedelta(days=d))
        for d in (1, 2)
    ]  # fmt: skip
    absence = AttendanceRecordFactory(session=earlier[0], student=student, status="absent")
    excuse = AbsenceExcuse.objects.create(
        record=AttendanceRecordFactory(session=earlier[1], student=student, status="absent"), reason="ill"
    )
    AttendanceRecordFactory(session=ClassSessionFactory(section=section_y, state="closed"), student=other)
    run = ScoringRunFactory(term=term)
    risk_score = RiskScoreFactory(run=run, student=student)
    RiskScoreFactory(run=run, student=other)
    objects = {
        "qr_token": lambda: qr_token_make(open_session),
        "absence": absence,
        "excuse": excuse,
        "session": session,
        "open_session": open_session,
        "record": record,
        "department": section_x.course.department,
        "spare_department": DepartmentFactory(code="SPARE", name="Spare department"),
        "program": student.program,
        "course": section_x.course,
        "term": term,
        "section": section_x,
        "assessment": assessment,
        "spare_assessment": AssessmentFactory(section=section_x, name="Unused quiz", weight=Decimal("5")),
        "student": student,
        "enrollment": enrollment,
        "grade": grade,
        "outcome": outcome,
        "risk_score": risk_score,
        "model_version": run.model_version,
        "run": run,
    }
    users = {
        "anon": None,
        "student": student.user,
        "other_student": other.user,
        "lecturer": lecturer,
        "other_lecturer": other_lecturer,
        "advisor": advisor,
        "other_advisor": other_advisor,
        "registrar": UserFactory(roles=[Role.REGISTRAR]),
        "admin": UserFactory(roles=[Role.ADMIN]),
    }
    bodies = {
        "token_login": {"email": "subject@campus.example", "password": PASSWORD},
        "department": {"code": "NEW", "name": "New department"},
        "rename": {"name": "Renamed"},
        "program": {"code": "NEWP", "name": "New program", "department": objects["department"].pk},
        "course": {"code": "NEW101", "title": "New course", "credits": 5, "department": objects["department"].pk},
        "retitle": {"title": "Retitled"},
        "term": {"name": "2027 Spring", "start_date": "2027-02-01", "end_date": "2027-06-30", "add_drop_deadline": "2027-02-15"},
        "section": {"course": section_x.course.pk, "term": term.pk, "code": "Z", "capacity": 30, "min_attendance_rate": "0.80"},
        "section_put": {"course": section_x.course.pk, "term": term.pk, "code": "A", "capacity": 90,
                        "min_attendance_rate": "0.70", "lecturers": [lecturer.pk]},
        "capacity": {"capacity": 80},
        "assessment": {"section": section_x.pk, "name": "Lab report", "weight": "20", "max_score": "10"},
        "assessment_put": {"section": section_x.pk, "name": "Midterm", "weight": "45", "max_score": "20"},
        "new_student": {"student_number": "S-NEW-1", "email": "fresh@campus.example", "first_name": "Fresh",
                        "last_name": "Person", "program": student.program.pk, "semester": 1},
        "semester": {"semester": 2},
        "enrol": {"student": student.pk, "section": section_y.pk, "enrolled_on": str(term.start_date)},
        "end": {"on": str(term.add_drop_deadline)},
        "grade": {"student": student.pk, "assessment": assessment.pk, "score": "15"},
        "score": {"score": "13.5"},
        "outcome": {"student": student.pk, "term": term.pk, "outcome": "passed", "note": "board"},
        "class_session": {"section": section_x.pk, "starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T11:30:00Z"},
        "series": {"section": section_x.pk, "first_date": "2026-12-07", "start_time": "10:00", "duration_minutes": 90,
                   "until": "2026-12-21"},
        "reason": {"reason": "checked by the table"},
        "excuse_status": {"status": "excused", "reason": "medical note"},
        "manual_check_in": {"student": student.pk, "session": open_session.pk, "status": "excused", "reason": "doctor"},
        "form:code": {"code": lambda: numeric_code(open_session, step_at(timezone.now()))},
        "form:reason": {"reason": "checked by the table"},
        "form:session": {"session-date": "2026-12-02", "session-start_time": "10:00", "session-end_time": "11:30",
                         "session-room": "B-2", "session-late_after_minutes": 10},
        "form:series": {"series-first_date": "2026-12-07", "series-start_time": "10:00", "series-duration_minutes": 90,
                        "series-until": "2026-12-21", "series-room": "B-2", "series-late_after_minutes": 10},
        "form:record_set": {"student": student.pk, "status": "excused", "reason": "medical note"},
        "form:decide": {"decision": "approve", "note": ""},
        "form:login": {"username": "subject@campus.example", "password": PASSWORD},
        "form:password": {"old_password": PASSWORD, "new_password1": "Fresh-pass-2026!x", "new_password2": "Fresh-pass-2026!x"},
        "form:reset": {"email": "subject@campus.example"},
        "form:grades": {f"score-{student.pk}": "15", f"initial-score-{student.pk}": "12", "reason": "table"},
        "score_student": {"student": student.pk},
        "scoring_run": {"term": term.pk},
        "form:intervention": {"kind": "contacted", "note": "checked by the table"},
        "form:feedback": {"risk_score": risk_score, "verdict": "useful", "note": ""},
    }  # fmt: skip
    return {"objects": objects, "users": users, "bodies": bodies, "student": student, "other": other}


def _request(world, method: str, name: str, args: dict, body_key: str | None, role: str):
    client = Client(raise_request_exception=False)
    user = world["users"][role]
    if user is not None:
        client.force_login(user)
    # "=value" is a literal path argument; anything else names an object of the world (or makes a value now).
    kwargs = {
        key: value[1:] if value.startswith("=") else _resolve(world["objects"][value]) for key, value in args.items()
    }
    path = reverse(name, kwargs=kwargs)
    send = getattr(client, method.lower())
    caches["ratelimit"].clear()
    # Each request runs in a savepoint that is rolled back, so every role meets the same world.
    with transaction.atomic():
        if body_key is None:
            response = send(path)
        elif body_key.startswith("form:"):
            response = send(path, data={name: _resolve(value) for name, value in world["bodies"][body_key].items()})
        else:
            response = send(path, data=json.dumps(world["bodies"][body_key]), content_type="application/json")
        transaction.set_rollback(True)
    return path, response


def _resolve(value):
    """An object's id; a callable's fresh value (a QR token or code made at the moment of the request)."""
    value = value() if callable(value) else value
    return getattr(value, "pk", value)


def _leaks(world, role: str, content: bytes) -> list[str]:
    """What of the student a role must not see appears in the body."""
    hidden = world["other"] if role in {"student", "lecturer", "advisor"} else None
    if role in {"other_student", "other_lecturer", "other_advisor"}:
        hidden = world["student"]
    if hidden is None:
        return []
    return [marker for marker in (hidden.student_number, hidden.user.email) if marker.encode() in content]


@pytest.mark.django_db
def test_every_row_and_role_gets_its_status_and_no_leak(world):
    mismatches, leaks = [], []
    for method, name, args, body_key, *expected in TABLE:
        assert len(expected) == len(ROLES), name
        for role, want in zip(ROLES, expected, strict=True):
            path, response = _request(world, method, name, args, body_key, role)
            if response.status_code != want:
                mismatches.append(f"{method} {path} as {role}: {response.status_code}, table says {want}")
            if method == "GET" and response.status_code == 200 and (found := _leaks(world, role, response.content)):
                leaks.append(f"{method} {path} as {role} shows {found}")
    assert not mismatches, "\n".join(mismatches)
    assert not leaks, "\n".join(leaks)


def _route_names(patterns, namespace: str = "") -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= _route_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            names.add(f"{namespace}{pattern.name}" if pattern.name else f"{namespace}<unnamed {pattern.pattern}>")
    return names


def test_every_route_has_a_row():
    routes = {
        name for name in _route_names(get_resolver().url_patterns) if not name.startswith(tuple(EXEMPT_ROUTE_PREFIXES))
    }
    in_table = {row[1] for row in TABLE}
    missing = sorted(routes - in_table)
    assert not missing, f"routes with no row in tests/permission_table.py: {missing}"
    assert not sorted(in_table - routes), "rows for routes that do not exist"


def test_table_covers_every_method_a_route_allows():
    """A route that accepts a method must have a row for it (OPTIONS and HEAD excepted)."""
    # The API's viewsets declare their methods; each declared unsafe method needs a row.
    from students import apis

    declared = {
        "department": apis.DepartmentViewSet, "student": apis.StudentViewSet, "enrollment": apis.EnrollmentViewSet,
        "grade": apis.GradeViewSet, "termoutcome": apis.TermOutcomeViewSet,
    }  # fmt: skip
    rows = {(row[0], row[1]) for row in TABLE}
    for basename, viewset in declared.items():
        methods = {m.upper() for m in viewset.http_method_names} - {"HEAD", "OPTIONS"}
        covered = {method for method, name in rows if name.startswith(f"{basename}-")}
        assert methods <= covered, (basename, methods - covered)
