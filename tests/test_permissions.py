# ruff: noqa: E501  (parametrised cases and world bodies read best one per line)
"""Walks the literal permission table (tests/permission_table.py) for every role, and the URL resolver
for routes and methods the table forgot. Bodies visible to one student never hold the other student's
data; a filter naming what the caller may not see answers an empty list; a refused write changes
nothing in the database."""

import datetime
import json
import re
import uuid
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.cache import cache, caches
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, path, reverse
from django.utils import timezone

from accounts.models import ApiToken
from accounts.roles import Role
from accounts.tokens import api_token_issue
from attendance.models import AbsenceExcuse
from attendance.qr import numeric_code, qr_token_make, step_at
from attendance.services import calendar_feed_create
from tests.factories import (
    AdvanceAbsenceFactory,
    AssessmentFactory,
    AttendanceRecordFactory,
    ClassSessionFactory,
    DepartmentFactory,
    EnrollmentFactory,
    GradeFactory,
    ImportJobFactory,
    InterventionFactory,
    RiskScoreFactory,
    ScoringRunFactory,
    SectionFactory,
    SectionGroupFactory,
    SectionGroupMemberFactory,
    StudentFactory,
    TermFactory,
    TermOutcomeFactory,
    UserFactory,
)
from tests.permission_table import EXEMPT_ROUTE_PREFIXES, ROLES, SERVICE_TOKEN_STATUS, TABLE

PASSWORD = "correct-horse-battery-staple"

# What belongs to each side of the world: a filter naming the far side must come back empty.
SUBJECT_SIDE = {"student", "section", "session", "record", "advisor_a", "=S-SUBJECT-1"}
OTHER_SIDE = {"other", "section_y", "session_y", "advisor_a2", "=S-OTHER-99"}
NEAR_ROLES = {"student", "lecturer", "advisor"}  # S's side: O is hidden from them
FAR_ROLES = {"other_student", "other_lecturer", "other_advisor"}  # O's side: S is hidden from them


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
    advance_absence = AdvanceAbsenceFactory(
        student=student, section=section_x, attachment=SimpleUploadedFile("note.pdf", b"%PDF-1.4 note"),
        attachment_content_type="application/pdf",
    )  # fmt: skip
    session_y = ClassSessionFactory(section=section_y, state="closed")
    AttendanceRecordFactory(session=session_y, student=other)
    group = SectionGroupFactory(section=section_x, name="Lab 1")
    SectionGroupMemberFactory(group=group, student=student)
    run = ScoringRunFactory(term=term)
    risk_score = RiskScoreFactory(run=run, student=student)
    intervention = InterventionFactory(student=student, term=term, advisor=advisor, risk_score=risk_score)
    RiskScoreFactory(run=run, student=other)
    _feed, calendar_token = calendar_feed_create(user=student.user)
    objects = {
        "qr_token": lambda: qr_token_make(open_session),
        "calendar_token": calendar_token,
        "absence": absence,
        "excuse": excuse,
        "advance_absence": advance_absence,
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
        "intervention": intervention,
        "import_job": ImportJobFactory(),
        "student_token": api_token_issue(user=student.user, name="phone")[0],
        "model_version": run.model_version,
        "run": run,
        # O's side of the world, for filters and writes that name it.
        "other": other,
        "section_y": section_y,
        "session_y": session_y,
        "group": group,
        "spare_group": SectionGroupFactory(section=section_x, name="Spare lab"),
        "advisor_a": advisor,
        "advisor_a2": other_advisor,
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
        # O's grade on an assessment of L's section X: O is not enrolled there, and only L grades it.
        "grade_o_in_x": {"student": other.pk, "assessment": assessment.pk, "score": "15"},
        "score": {"score": "13.5"},
        "outcome": {"student": student.pk, "term": term.pk, "outcome": "passed", "note": "board"},
        "class_session": {"section": section_x.pk, "starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T11:30:00Z"},
        "class_session_y": {"section": section_y.pk, "starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T11:30:00Z"},
        "series": {"section": section_x.pk, "first_date": "2026-12-07", "start_time": "10:00", "duration_minutes": 90,
                   "until": "2026-12-21"},
        "reason": {"reason": "checked by the table"},
        "excuse_status": {"status": "excused", "reason": "medical note"},
        "manual_check_in": {"student": student.pk, "session": open_session.pk, "status": "excused", "reason": "doctor"},
        "form:code": {"code": lambda: numeric_code(open_session, step_at(timezone.now()))},
        "form:reason": {"reason": "checked by the table"},
        "form:series_cancel": {"series": str(uuid.uuid4()), "reason": "checked by the table"},
        "form:group": {"name": "Lab 2"},
        "form:group_members": {"action": "remove", "remove-students": student.pk},
        "form:networks": {"networks": "10.20.0.0/16"},
        "form:session": {"session-date": "2026-12-02", "session-start_time": "10:00", "session-end_time": "11:30",
                         "session-room": "B-2", "session-late_after_minutes": 10},
        "form:series": {"series-first_date": "2026-12-07", "series-start_time": "10:00", "series-duration_minutes": 90,
                        "series-until": "2026-12-21", "series-room": "B-2", "series-late_after_minutes": 10},
        "form:record_set": {"student": student.pk, "status": "excused", "reason": "medical note"},
        "form:record_set_o": {"student": other.pk, "status": "excused", "reason": "medical note"},
        "form:marks": {f"mark-{student.pk}": "late", "unmarked_to": "absent"},
        "form:grid": {"session": session.pk, f"mark-{student.pk}": "excused", "reason": "checked by the table"},
        "form:decide": {"decision": "approve", "note": ""},
        "form:attendance_grade": {"weight": "10", "drop_lowest": 1},
        "form:advance_absence": {"section": section_x.pk, "first_day": lambda: str(timezone.localdate()),
                                 "last_day": lambda: str(timezone.localdate()), "reason": "checked by the table"},
        "form:login": {"username": "subject@campus.example", "password": PASSWORD},
        "form:api_token": {"name": "checked by the table", "scope": "read", "lifetime_days": 7},
        "form:password": {"old_password": PASSWORD, "new_password1": "Fresh-pass-2026!x", "new_password2": "Fresh-pass-2026!x"},
        "form:reset": {"email": "subject@campus.example"},
        "form:new_password": {"new_password1": "Fresh-pass-2026!x", "new_password2": "Fresh-pass-2026!x"},
        "form:grades": {f"score-{student.pk}": "15", f"initial-score-{student.pk}": "12", "reason": "table"},
        "score_student": {"student": student.pk},
        "score_other": {"student": other.pk},
        "scoring_run": {"term": term.pk},
        "form:intervention": {"kind": "contacted", "note": "checked by the table"},
        "form:feedback": {"risk_score": risk_score, "verdict": "useful", "note": ""},
        "form:intervention_close": {"outcome": "checked by the table"},
    }  # fmt: skip
    return {"objects": objects, "users": users, "bodies": bodies, "student": student, "other": other}


# --- Sending a row's request ------------------------------------------------------------------------


def _path(world, name: str, args: dict) -> str:
    """The row's URL. "=value" is a literal; anything else names an object of the world (or makes a
    value now); a key starting with "?" is a query parameter."""
    values = {
        key: value[1:] if value.startswith("=") else _resolve(world["objects"][value]) for key, value in args.items()
    }
    url = reverse(name, kwargs={key: value for key, value in values.items() if not key.startswith("?")})
    query = "&".join(f"{key[1:]}={value}" for key, value in values.items() if key.startswith("?"))
    return f"{url}?{query}" if query else url


def _request(
    world,
    method: str,
    name: str,
    args: dict,
    body_key: str | None,
    role: str,
    *,
    client=None,
    headers=None,
    snapshot=False,
):
    """(path, response, what a refused request changed in the database). Each request runs in a savepoint
    that is rolled back, so every role meets the same world. A refused request that sent a write
    statement is sent again with the whole database compared before and after (`snapshot`)."""
    if client is None:
        client = Client(raise_request_exception=False)
        user = world["users"][role]
        if user is not None:
            client.force_login(user)
    path = _path(world, name, args)
    send = getattr(client, method.lower())
    caches["ratelimit"].clear()
    cache.clear()
    with transaction.atomic():
        before = _database_state() if snapshot else None
        connection.queries_log.clear()  # the log holds 9000 queries: a full one would capture nothing
        with CaptureQueriesContext(connection) as queries:
            if body_key is None:
                response = send(path, headers=headers)
            elif body_key.startswith("form:"):
                data = {field: _resolve(value) for field, value in world["bodies"][body_key].items()}
                response = send(path, data=data, headers=headers)
            else:
                body = json.dumps(world["bodies"][body_key])
                response = send(path, data=body, content_type="application/json", headers=headers)
        refused = _refused(response)
        changed = _changes(before, _database_state()) if snapshot and refused else []
        wrote = refused and not snapshot and any(_is_write(query["sql"]) for query in queries.captured_queries)
        transaction.set_rollback(True)
    if wrote:
        return _request(world, method, name, args, body_key, role, client=client, headers=headers, snapshot=True)
    return path, response, changed


def _resolve(value):
    """An object's id; a callable's fresh value (a QR token or code made at the moment of the request)."""
    value = value() if callable(value) else value
    return getattr(value, "pk", value)


def _refused(response: HttpResponse) -> bool:
    """An error, or the portal's "sign in first" redirect."""
    if response.status_code >= 400:
        return True
    return response.status_code == 302 and response["Location"].startswith(reverse("login"))


WRITE_SQL = re.compile(r'^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+"?(\w+)"?', re.I)
# Tables any request may write: sessions, and the rate limits' counters (a database cache in tests).
ANY_REQUEST_WRITES = {"django_session", "campusiq_ratelimit_cache"}


def _is_write(sql: str) -> bool:
    """A statement that may change a row other than a session, a rate-limit counter or a token's last use."""
    match = WRITE_SQL.match(sql)
    if match is None or match.group(1) in ANY_REQUEST_WRITES:
        return False
    return not (
        match.group(1) == "accounts_apitoken"
        and re.match(r'^\s*UPDATE\s+\S+\s+SET\s+"last_used_at"\s*=[^,]*\sWHERE\s', sql, re.I)
    )


# Written by every request that is let in at all (the last sign-in, a token's last use), never campus data.
VOLATILE_FIELDS = {"accounts.user": {"last_login"}, "accounts.apitoken": {"last_used_at"}}
# The sign-in itself and flash messages live in sessions; rate-limit counters count refused attempts too
# (that is their point), in their table when the suite has no Redis.
SKIPPED_MODELS = {"sessions.session", "core.ratecounter"}


def _database_state() -> dict[str, list[tuple]]:
    """Every row of every table (many-to-many links included), to compare before and after a request."""
    state, tables = {}, set(connection.introspection.table_names())
    for model in apps.get_models(include_auto_created=True):
        label = model._meta.label_lower
        if label in SKIPPED_MODELS or model._meta.db_table not in tables:
            continue
        fields = [f.attname for f in model._meta.concrete_fields if f.attname not in VOLATILE_FIELDS.get(label, ())]
        state[label] = list(model._base_manager.order_by("pk").values_list(*fields))
    return state


def _changes(before: dict, after: dict) -> list[str]:
    return [
        f"{label}: {len(rows)} rows -> {len(after[label])}"
        if len(rows) != len(after[label])
        else f"{label}: a row changed"
        for label, rows in before.items()
        if rows != after[label]
    ]


# --- What a role must not see -------------------------------------------------------------------------


def _hidden(world, role: str):
    if role in NEAR_ROLES:
        return world["other"]
    if role in FAR_ROLES:
        return world["student"]
    return None


def _rows_of(body, student_id: int):
    """Dicts anywhere in a JSON body that belong to the student (their `student` is that id)."""
    if isinstance(body, dict):
        if body.get("student") == student_id:
            yield body
        for value in body.values():
            yield from _rows_of(value, student_id)
    elif isinstance(body, list):
        for item in body:
            yield from _rows_of(item, student_id)


def _leaks(world, role: str, response: HttpResponse, args: dict) -> list[str]:
    """What of the student a role must not see appears in the response: their number or email in any
    answer (errors included); in a JSON list, a row of theirs, or any row at all when a filter named
    their side of the world."""
    hidden = _hidden(world, role)
    if hidden is None:
        return []
    found = [marker for marker in (hidden.student_number, hidden.user.email) if marker.encode() in response.content]
    if response.status_code == 200 and response.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        if next(_rows_of(body, hidden.pk), None) is not None:
            found.append(f"rows of student {hidden.pk}")
        far_side = OTHER_SIDE if role in NEAR_ROLES else SUBJECT_SIDE
        named = {value for key, value in args.items() if key.startswith("?")} & far_side
        if named and isinstance(body, dict) and body.get("results"):
            found.append(f"{len(body['results'])} results for a filter naming {sorted(named)}")
    return found


# --- The table, role by role ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_row_and_role_gets_its_status_no_leak_and_refusals_change_nothing(world):
    mismatches, leaks, writes = [], [], []
    for method, name, args, body_key, *expected in TABLE:
        assert len(expected) == len(ROLES), name
        for role, want in zip(ROLES, expected, strict=True):
            path, response, changed = _request(world, method, name, args, body_key, role)
            if response.status_code != want:
                mismatches.append(f"{method} {path} as {role}: {response.status_code}, table says {want}")
            if found := _leaks(world, role, response, args):
                leaks.append(f"{method} {path} as {role} ({response.status_code}) shows {found}")
            if changed:
                writes.append(f"{method} {path} as {role} was refused ({response.status_code}) but changed {changed}")
    assert not mismatches, "\n".join(mismatches)
    assert not leaks, "\n".join(leaks)
    assert not writes, "\n".join(writes)


def test_the_table_has_write_rows_and_filter_rows_naming_another_student():
    """The write and cross-student filter rows this suite relies on are there (and stay there)."""
    writes = [row for row in TABLE if row[0] in {"POST", "PUT", "PATCH", "DELETE"}]
    filters_naming = [row for row in TABLE if any(key.startswith("?") for key in row[2])]
    assert len(writes) >= 60 and len(filters_naming) >= 30
    for name in ("grade-list", "enrollment-list", "termoutcome-list", "attendancerecord-list", "attendancerate-list",
                 "attendancerate-sections", "riskscore-list"):  # fmt: skip
        named = {row[2].get("?student") for row in filters_naming if row[1] == name}
        assert {"student", "other"} <= named, f"{name} needs ?student= rows for both students"


@pytest.mark.django_db
def test_the_write_check_sees_a_changed_row_and_ignores_sessions_and_token_use(world):
    """The "refusals change nothing" check is not vacuous."""
    assert _is_write('UPDATE "students_grade" SET "score" = 1 WHERE "students_grade"."id" = 1')
    assert _is_write('INSERT INTO "core_auditlogentry" ("verb") VALUES (\'x\')')
    assert _is_write('UPDATE "accounts_apitoken" SET "revoked_at" = 1, "last_used_at" = 2 WHERE "id" = 1')
    assert not _is_write('UPDATE "accounts_apitoken" SET "last_used_at" = \'2026-11-25\' WHERE "id" = 1')
    assert not _is_write('UPDATE "django_session" SET "session_data" = \'x\' WHERE "session_key" = \'k\'')
    assert not _is_write('SELECT "students_grade"."id" FROM "students_grade"')
    with transaction.atomic():
        before = _database_state()
        world["objects"]["grade"].__class__.objects.filter(pk=world["objects"]["grade"].pk).update(score=Decimal("1"))
        world["other"].user.__class__.objects.filter(pk=world["other"].user_id).update(last_login=timezone.now())
        assert _changes(before, _database_state()) == ["students.grade: a row changed"]
        transaction.set_rollback(True)


# --- Routes and methods the table forgot ---------------------------------------------------------------------


def _route_names(patterns, namespace: str = "") -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= _route_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            names.add(f"{namespace}{pattern.name}" if pattern.name else f"{namespace}<unnamed {pattern.pattern}>")
    return names


def _routes_without_rows(patterns, table) -> tuple[list[str], list[str]]:
    """(routes with no row, rows for routes that do not exist)."""
    routes = {name for name in _route_names(patterns) if not name.startswith(tuple(EXEMPT_ROUTE_PREFIXES))}
    in_table = {row[1] for row in table}
    return sorted(routes - in_table), sorted(in_table - routes)


def test_every_route_has_a_row():
    missing, stale = _routes_without_rows(get_resolver().url_patterns, TABLE)
    assert not missing, f"routes with no row in tests/permission_table.py: {missing}"
    assert not stale, f"rows for routes that do not exist: {stale}"


def test_the_route_check_fails_for_a_route_without_a_row():
    """The check above is not vacuous: a new route, or a row taken away, is reported."""
    resolver = get_resolver().url_patterns
    already = set(_routes_without_rows(resolver, TABLE)[0])
    patterns = [*resolver, path("new-page/", lambda request: HttpResponse(), name="new-page")]
    assert set(_routes_without_rows(patterns, TABLE)[0]) - already == {"new-page"}
    unnamed = [*resolver, path("anonymous/", lambda request: HttpResponse())]
    assert set(_routes_without_rows(unnamed, TABLE)[0]) - already == {"<unnamed anonymous/>"}
    without_grades = [row for row in TABLE if row[1] != "grade-detail"]
    assert set(_routes_without_rows(resolver, without_grades)[0]) - already == {"grade-detail"}


def _declared_methods(patterns, namespace: str = ""):
    """(route name, methods) of every API view, as DRF will dispatch them (HEAD and OPTIONS aside)."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _declared_methods(pattern.url_patterns, inner)
            continue
        callback = pattern.callback
        if getattr(callback, "actions", None):  # a viewset route: the router's method -> action map
            methods = set(callback.actions)
        elif getattr(callback, "cls", None) is not None:  # an APIView
            view = callback.cls
            methods = {m for m in view.http_method_names if hasattr(view, m)}
        else:
            continue
        yield f"{namespace}{pattern.name}", {m.upper() for m in methods} - {"HEAD", "OPTIONS"}


def test_every_method_an_api_view_declares_has_a_row():
    rows = {(row[0], row[1]) for row in TABLE}
    missing = sorted(
        f"{method} {name}"
        for name, methods in _declared_methods(get_resolver().url_patterns)
        if not name.startswith(tuple(EXEMPT_ROUTE_PREFIXES))
        for method in methods
        if (method, name) not in rows
    )
    assert not missing, f"methods with no row in tests/permission_table.py: {missing}"


PROBE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# One of each kind of gate: nobody, a student, a lecturer, an advisor, registry staff.
PROBE_ROLES = ("anon", "student", "lecturer", "advisor", "admin")


@pytest.mark.django_db
def test_a_method_without_a_row_is_refused_by_everyone(world):
    """Whatever the view (DRF, a class-based view, a function view with or without a method decorator),
    a method the table has no row for answers 405 to whoever gets past sign-in and role checks, and
    writes nothing: so the table's rows are every method a route accepts."""
    rows = {(row[0], row[1]) for row in TABLE}
    args_of: dict[str, dict] = {}
    for _method, name, args, *_ in TABLE:
        args_of.setdefault(name, {key: value for key, value in args.items() if not key.startswith("?")})
    accepted = []
    for name, args in args_of.items():
        for method in PROBE_METHODS:
            if (method, name) in rows:
                continue
            answers = {}
            for role in PROBE_ROLES:
                _path_, response, changed = _request(world, method, name, args, None, role)
                answers[role] = response.status_code
                if changed or not (response.status_code in {401, 403, 405} or _refused(response)):
                    accepted.append(f"{method} {_path_} as {role}: {response.status_code} {changed or ''}")
            if 405 not in answers.values():
                accepted.append(f"{method} {name}: nobody got 405 ({answers})")
    assert not accepted, "\n".join(accepted)


# --- Service accounts -----------------------------------------------------------------------------------


@pytest.fixture
def sync_account(world):
    """An integration with the Registrar role (docs/API.md: a sync tool), and its two kinds of token."""
    account = UserFactory(is_service_account=True, roles=[Role.REGISTRAR], email="sync@campus.example")
    _, read_write = api_token_issue(user=account, name="sync", scope=ApiToken.Scope.READ_WRITE)
    _, read_only = api_token_issue(user=account, name="bi", scope=ApiToken.Scope.READ)
    return {"user": account, "read_write": read_write, "read_only": read_only}


def _is_api(world, row) -> bool:
    return _path(world, row[1], row[2]).startswith("/api/")


@pytest.mark.django_db
def test_a_service_account_is_a_stranger_on_the_portal(world, sync_account):
    """Service accounts never sign in: a session made for one anyway, or its bearer token, opens no portal
    page and no form: every portal route answers it as it answers nobody, and nothing is written."""
    session = Client(raise_request_exception=False)
    session.force_login(sync_account["user"])
    bearer = {"Authorization": f"Bearer {sync_account['read_write']}"}
    problems = []
    for method, name, args, body_key, *expected in TABLE:
        if _is_api(world, (method, name, args)):
            continue
        want = expected[ROLES.index("anon")]
        for how, client, headers in (
            ("session", session, None),
            ("token", Client(raise_request_exception=False), bearer),
        ):
            path, response, changed = _request(
                world, method, name, args, body_key, "anon", client=client, headers=headers
            )
            if response.status_code != want or changed:
                problems.append(f"{method} {path} by {how}: {response.status_code} (anonymous: {want}) {changed or ''}")
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_service_tokens_on_the_api(world, sync_account):
    """A read-write token acts as its account's roles (the registrar column); a read-only one is refused
    every write (403 token_read_only) and the refusal writes nothing. SERVICE_TOKEN_STATUS lists where a
    token differs from a browser session."""
    problems = []
    for method, name, args, body_key, *expected in TABLE:
        if not _is_api(world, (method, name, args)):
            continue
        for scope in ("read_write", "read_only"):
            want = expected[ROLES.index("registrar")]
            if scope == "read_only" and method != "GET":
                want = 403
            want = SERVICE_TOKEN_STATUS.get((method, name, scope), want)
            headers = {"Authorization": f"Bearer {sync_account[scope]}"}
            client = Client(raise_request_exception=False)
            path, response, changed = _request(
                world, method, name, args, body_key, "anon", client=client, headers=headers
            )
            if response.status_code != want or changed:
                problems.append(
                    f"{method} {path} with a {scope} token: {response.status_code}, want {want} {changed or ''}"
                )
            refused_as_read_only = scope == "read_only" and response.status_code == 403 and method != "GET"
            if refused_as_read_only and response.json().get("code") != "token_read_only":
                problems.append(f"{method} {path}: {response.json()}")
    assert not problems, "\n".join(problems)
