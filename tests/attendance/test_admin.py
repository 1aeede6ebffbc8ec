"""The attendance admin: lists that cost the same at 5 rows as at 100, sessions and records written by
the services (rules and audit log hold), actions with a reason, no hard deletes, read-only logs."""

import csv
import datetime
import io
from decimal import Decimal

import pytest
import time_machine
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from attendance.models import (
    AbsenceExcuse,
    AdvanceAbsence,
    AttendanceRecord,
    AttendanceStatusSet,
    AttendanceWarningRule,
    AttendanceWarningState,
    CardReader,
    ClassSession,
    DeviceSighting,
    ProxyFlag,
    SectionAttendanceGrade,
    StudentCard,
    TermHoliday,
)
from campusiq.core.models import AuditLogEntry
from tests.factories import (
    SESSION_START,
    AbsenceExcuseFactory,
    AdvanceAbsenceFactory,
    AssessmentFactory,
    AttendanceRecordFactory,
    AttendanceStatusFactory,
    AttendanceStatusSetFactory,
    AttendanceWarningRuleFactory,
    AttendanceWarningStateFactory,
    CardReaderFactory,
    ClassSessionFactory,
    DepartmentFactory,
    DeviceSightingFactory,
    EnrollmentFactory,
    ProxyFlagFactory,
    SectionAttendanceGradeFactory,
    SectionFactory,
    StudentCardFactory,
    TermHolidayFactory,
    UserFactory,
)
from tests.support.admin import assert_changelist_queries_do_not_grow, changelist_url

pytestmark = pytest.mark.django_db
MINUTE = datetime.timedelta(minutes=1)
ATTENDANCE_MODELS = [
    ClassSession, AttendanceRecord, ProxyFlag, AbsenceExcuse, TermHoliday, StudentCard, CardReader, DeviceSighting,
    AttendanceWarningState, AttendanceStatusSet, SectionAttendanceGrade, AttendanceWarningRule, AdvanceAbsence,
]  # fmt: skip


@pytest.fixture
def superadmin():
    return UserFactory(roles=[Role.ADMIN])


@pytest.fixture
def admin_client_(client, superadmin):
    client.force_login(superadmin)
    return client


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def add_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")


def run_action(client, model, action: str, rows, reason: str = ""):
    return client.post(
        changelist_url(model),
        {"action": action, "_selected_action": [row.pk for row in rows], "reason": reason},
        follow=True,
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def enrolled_session(**kwargs) -> tuple[ClassSession, list]:
    session = ClassSessionFactory(**kwargs)
    students = [EnrollmentFactory(section=session.section).student for _ in range(2)]
    return session, students


# --- Registration -----------------------------------------------------------------------------


def test_every_attendance_model_is_registered_searchable_and_exportable(superadmin):
    request = RequestFactory().get("/admin/")
    request.user = superadmin
    for model in ATTENDANCE_MODELS:
        model_admin = admin.site._registry[model]
        assert model_admin.search_fields, model
        assert "export_admin_action" in model_admin.get_actions(request), model


def test_every_page_opens(admin_client_):
    record = AttendanceRecordFactory()
    rows = [
        record.session, record, ProxyFlagFactory(record=record), AbsenceExcuseFactory(), TermHolidayFactory(),
        StudentCardFactory(), CardReaderFactory(), DeviceSightingFactory(), AttendanceWarningStateFactory(),
        AttendanceWarningRuleFactory(), AdvanceAbsenceFactory(),
    ]  # fmt: skip
    for row in rows:
        assert admin_client_.get(changelist_url(type(row))).status_code == 200, row
        assert admin_client_.get(f"{changelist_url(type(row))}export/").status_code == 200, row
        assert admin_client_.get(change_url(row)).status_code == 200, row
    for model in (ClassSession, AttendanceRecord, TermHoliday, StudentCard, CardReader):
        assert admin_client_.get(add_url(model)).status_code == 200, model
    for model in (ProxyFlag, AbsenceExcuse, DeviceSighting, AttendanceWarningState, AdvanceAbsence):
        assert admin_client_.get(add_url(model)).status_code == 403, model


def test_a_registrar_sets_warning_rules_and_a_rule_without_its_threshold_is_refused(client):
    client.force_login(UserFactory(roles=[Role.REGISTRAR]))
    section = SectionFactory()
    fields = {"kind": "absences_in_row", "section": section.pk, "max_per_term": 2, "notify_student": "on"}
    refused = client.post(add_url(AttendanceWarningRule), fields)
    assert refused.status_code == 200 and not AttendanceWarningRule.objects.filter(section=section).exists()
    assert "a count." in refused.content.decode()  # the constraint's message
    assert client.post(add_url(AttendanceWarningRule), {**fields, "absences_in_row": 3}).status_code == 302
    rule = AttendanceWarningRule.objects.get(section=section)
    assert (rule.absences_in_row, rule.notify_student, rule.notify_lecturers) == (3, True, False)


def test_a_lecturer_cannot_reach_the_attendance_admin(client):
    client.force_login(UserFactory(roles=[Role.LECTURER]))
    response = client.get(changelist_url(AttendanceRecord))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


# --- Lists cost the same at 5 rows as at 100 ---------------------------------------------------


def _session():
    session = ClassSessionFactory(section=SectionFactory(lecturers=[UserFactory(roles=[Role.LECTURER])]))
    for status in ("present", "late", "absent", "excused"):
        AttendanceRecordFactory(session=session, status=status)
    return session


def _record():
    return AttendanceRecordFactory(recorded_by=UserFactory())


def _excuse():
    return AbsenceExcuseFactory(decided_by=UserFactory())


ROW_BUILDERS = [
    (ClassSession, _session),
    (AttendanceRecord, _record),
    (ProxyFlag, ProxyFlagFactory),
    (AbsenceExcuse, _excuse),
    (TermHoliday, TermHolidayFactory),
    (StudentCard, StudentCardFactory),
    (CardReader, CardReaderFactory),
    (DeviceSighting, DeviceSightingFactory),
    (AttendanceWarningState, AttendanceWarningStateFactory),
]


@pytest.mark.parametrize(("model", "build_one"), ROW_BUILDERS, ids=[model.__name__ for model, _ in ROW_BUILDERS])
def test_changelist_query_count_does_not_grow_with_rows(admin_client_, model, build_one):
    assert_changelist_queries_do_not_grow(admin_client_, model, build_one)


def test_session_list_shows_the_counts(admin_client_):
    _session()
    response = admin_client_.get(changelist_url(ClassSession))
    [row] = response.context["cl"].result_list
    assert (row.attended_count, row.absent_count, row.excused_count) == (2, 1, 1)


# --- Sessions ---------------------------------------------------------------------------------


def test_session_added_in_the_admin_goes_through_the_service(admin_client_, superadmin):
    section = SectionFactory()
    data = {"section": section.pk, "starts_at_0": "2026-09-21", "starts_at_1": "09:00:00", "ends_at_0": "2026-09-21",
            "ends_at_1": "10:30:00", "room": "B2.14", "late_after_minutes": 10}  # fmt: skip
    assert admin_client_.post(add_url(ClassSession), data).status_code == 302
    session = ClassSession.objects.get()
    assert session.room == "B2.14" and session.state == "scheduled"
    assert AuditLogEntry.objects.get(verb="class_session.created").actor == superadmin


def test_session_outside_the_term_is_a_form_error(admin_client_):
    data = {"section": SectionFactory().pk, "starts_at_0": "2030-01-07", "starts_at_1": "09:00:00",
            "ends_at_0": "2030-01-07", "ends_at_1": "10:00:00", "late_after_minutes": 10}  # fmt: skip
    response = admin_client_.post(add_url(ClassSession), data)
    assert response.status_code == 200
    assert "within term" in str(response.context["adminform"].form.errors)
    assert not ClassSession.objects.exists()
    assert not AuditLogEntry.objects.exists()


def test_an_existing_session_is_read_only_and_cannot_be_deleted(admin_client_):
    session = ClassSessionFactory(room="B2.14")
    admin_client_.post(change_url(session), {"room": "Elsewhere"})
    session.refresh_from_db()
    assert session.room == "B2.14"
    assert admin_client_.post(reverse("admin:attendance_classsession_delete", args=[session.pk])).status_code == 403
    assert ClassSession.objects.exists()


def test_open_close_and_cancel_actions_go_through_the_services(admin_client_, superadmin):
    session, students = enrolled_session()
    with time_machine.travel(SESSION_START - 5 * MINUTE, tick=False):
        response = run_action(admin_client_, ClassSession, "open_sessions", [session])
    assert "1 sessions opened." in messages_of(response)
    session.refresh_from_db()
    assert session.state == "open"
    with time_machine.travel(SESSION_START + 100 * MINUTE, tick=False):
        AttendanceRecordFactory(session=session, student=students[0])
        run_action(admin_client_, ClassSession, "close_sessions", [session])
    session.refresh_from_db()
    assert session.state == "closed"
    assert AttendanceRecord.objects.get(session=session, student=students[1]).status == "absent"

    refused = run_action(admin_client_, ClassSession, "cancel_sessions", [session])
    assert any("Say why" in message for message in messages_of(refused))
    session.refresh_from_db()
    assert session.state == "closed"
    run_action(admin_client_, ClassSession, "cancel_sessions", [session], reason="Fire drill")
    session.refresh_from_db()
    assert session.state == "cancelled"
    entry = AuditLogEntry.objects.get(verb="class_session.cancelled")
    assert (entry.actor, entry.reason) == (superadmin, "Fire drill")


def test_an_action_refused_for_one_session_still_does_the_others(admin_client_):
    ready = ClassSessionFactory()
    too_early = ClassSessionFactory(starts_at=SESSION_START + datetime.timedelta(days=7))
    with time_machine.travel(SESSION_START, tick=False):
        response = run_action(admin_client_, ClassSession, "open_sessions", [ready, too_early])
    assert "1 sessions opened." in messages_of(response)
    assert any("cannot be opened yet" in message for message in messages_of(response))
    assert ClassSession.objects.get(pk=too_early.pk).state == "scheduled"


# --- Records ----------------------------------------------------------------------------------


def test_record_status_change_goes_through_the_service_with_the_reason(admin_client_, superadmin):
    session, [student, _] = enrolled_session()
    record = AttendanceRecordFactory(session=session, student=student)
    response = admin_client_.post(change_url(record), {"status": "excused", "reason": "Medical certificate"})
    assert response.status_code == 302
    record.refresh_from_db()
    assert (record.status, record.recorded_by, record.note) == ("excused", superadmin, "Medical certificate")
    entry = AuditLogEntry.objects.get(verb="attendance.changed")
    assert (entry.actor, entry.changes, entry.reason) == (
        superadmin,
        {"status": ["present", "excused"]},
        "Medical certificate",
    )


def test_record_change_without_a_reason_is_a_form_error(admin_client_):
    session, [student, _] = enrolled_session()
    record = AttendanceRecordFactory(session=session, student=student)
    response = admin_client_.post(change_url(record), {"status": "absent", "reason": ""})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["reason"] == ["Give a reason for the change."]
    record.refresh_from_db()
    assert record.status == "present"
    assert not AuditLogEntry.objects.exists()


def test_record_added_in_the_admin_goes_through_the_service(admin_client_, superadmin):
    session, [student, _] = enrolled_session()
    data = {"session": session.pk, "student": student.pk, "status": "present", "reason": "Paper sign-in sheet"}
    assert admin_client_.post(add_url(AttendanceRecord), data).status_code == 302
    record = AttendanceRecord.objects.get()
    assert (record.method, record.recorded_by) == ("manual", superadmin)
    outsider = EnrollmentFactory().student
    response = admin_client_.post(add_url(AttendanceRecord), {**data, "student": outsider.pk})
    assert "was not enrolled" in str(response.context["adminform"].form.errors)
    assert AttendanceRecord.objects.count() == 1


def test_void_action_needs_a_reason(admin_client_, superadmin):
    record = AttendanceRecordFactory()
    refused = run_action(admin_client_, AttendanceRecord, "void_records", [record])
    assert any("Say why" in message for message in messages_of(refused))
    run_action(admin_client_, AttendanceRecord, "void_records", [record], reason="Proxy")
    record.refresh_from_db()
    assert (record.status, record.voided, record.note) == ("absent", True, "Proxy")
    assert AuditLogEntry.objects.get(verb="attendance.voided").actor == superadmin


def test_records_are_never_deleted_in_the_admin(admin_client_):
    record = AttendanceRecordFactory()
    assert admin_client_.post(reverse("admin:attendance_attendancerecord_delete", args=[record.pk])).status_code == 403
    response = admin_client_.get(changelist_url(AttendanceRecord))
    assert "delete_selected" not in dict(response.context["action_form"].fields["action"].choices)
    assert AttendanceRecord.objects.exists()


def test_record_export_leaves_the_evidence_out(admin_client_):
    record = AttendanceRecordFactory(ip="10.7.7.7", user_agent="SecretPhone", device_id="secret-device")
    response = admin_client_.post(changelist_url(AttendanceRecord),
                                  {"action": "export_admin_action", "_selected_action": [record.pk]})  # fmt: skip
    content = response.content.decode()
    rows = list(csv.DictReader(io.StringIO(content)))
    assert rows[0]["student_number"] == record.student.student_number and rows[0]["status"] == "present"
    for secret in ("10.7.7.7", "SecretPhone", "secret-device"):
        assert secret not in content


# --- Excuses and read-only logs ---------------------------------------------------------------


def test_excuses_are_approved_and_rejected_through_the_service(admin_client_, superadmin):
    approve, reject = AbsenceExcuseFactory(), AbsenceExcuseFactory()
    run_action(admin_client_, AbsenceExcuse, "approve_excuses", [approve], reason="Certificate seen")
    run_action(admin_client_, AbsenceExcuse, "reject_excuses", [reject])
    approve.refresh_from_db()
    reject.refresh_from_db()
    assert (approve.state, approve.decided_by, approve.decision_note) == ("approved", superadmin, "Certificate seen")
    assert approve.record.status == "excused"
    assert reject.state == "rejected" and reject.record.status == "absent"
    again = run_action(admin_client_, AbsenceExcuse, "reject_excuses", [approve])
    assert any("already decided" in message for message in messages_of(again))
    approve.refresh_from_db()
    assert approve.state == "approved"


@pytest.mark.parametrize("build", [ProxyFlagFactory, DeviceSightingFactory, AttendanceWarningStateFactory])
def test_logs_of_the_checks_are_read_only(admin_client_, build):
    row = build()
    model = type(row)
    assert admin_client_.post(change_url(row), {}).status_code == 403
    assert (
        admin_client_.post(reverse(f"admin:attendance_{model._meta.model_name}_delete", args=[row.pk])).status_code
        == 403
    )
    assert model.objects.filter(pk=row.pk).exists()


# --- Status sets and attendance grades -----------------------------------------------------------

DEFAULT_FOUR = [("p", "present", "2"), ("l", "late", "1"), ("a", "absent", "0"), ("e", "excused", "")]


def status_set_post(client, statuses, *, url=None, existing=(), **fields):
    """Posts the set's form with its statuses inline; `existing` are (status, changes) already saved."""
    rows = [{"id": s.pk, "order": s.order, "code": s.code, "label": s.label, "acronym": s.acronym, "kind": s.kind,
             "points": "" if s.points is None else s.points, **changes} for s, changes in existing]  # fmt: skip
    rows += [
        {"order": n, "code": code, "label": code.title(), "acronym": code.upper()[:3], "kind": kind, "points": points}
        for n, (code, kind, points) in enumerate(statuses, start=len(rows))
    ]
    data = {"name": "Engineering", "statuses-TOTAL_FORMS": len(rows), "statuses-INITIAL_FORMS": len(existing),
            "statuses-MIN_NUM_FORMS": 0, "statuses-MAX_NUM_FORMS": 1000, **fields}  # fmt: skip
    for n, row in enumerate(rows):
        data.update({f"statuses-{n}-{name}": value for name, value in row.items()})
    return client.post(url or add_url(AttendanceStatusSet), data)


def test_a_department_set_is_added_with_its_statuses_and_audited(admin_client_, superadmin):
    department = DepartmentFactory()
    response = status_set_post(admin_client_, [*DEFAULT_FOUR, ("remote", "present", "2")], department=department.pk)
    assert response.status_code == 302, response.context["adminform"].form.errors
    made = AttendanceStatusSet.objects.get(department=department)
    assert [(s.code, s.kind) for s in made.statuses.all()][-1] == ("remote", "present")
    entry = AuditLogEntry.objects.get(verb="attendance_status_set.created")
    assert entry.actor == superadmin and "remote (present, 2.00)" in entry.changes["statuses"][1]


@pytest.mark.parametrize(
    ("statuses", "fields", "message"),
    [
        (DEFAULT_FOUR[:3], {}, "add one for: Excused"),
        ([*DEFAULT_FOUR[:3], ("e", "excused", "1")], {}, "An excused status has no points"),
        ([*DEFAULT_FOUR, ("pp", "present", "-1")], {}, "points of 0 or more"),
        ([*DEFAULT_FOUR, ("p", "present", "1")], {}, "Please correct the duplicate data for"),  # code and acronym
        (DEFAULT_FOUR, {"is_campus_default": "on"}, "A status set is the campus default, a department"),
    ],
)
def test_a_set_that_breaks_a_rule_is_a_form_error_and_writes_nothing(admin_client_, statuses, fields, message):
    response = status_set_post(admin_client_, statuses, department=DepartmentFactory().pk, **fields)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert AttendanceStatusSet.objects.count() == 1  # the campus default only
    assert not AuditLogEntry.objects.exists()


def test_a_status_given_to_students_is_neither_removed_nor_given_another_kind(admin_client_):
    made = AttendanceStatusSetFactory(department=None, section=SectionFactory())
    statuses = [AttendanceStatusFactory(status_set=made, code=c, acronym=c.upper(), kind=k, points=p or None)
                for c, k, p in DEFAULT_FOUR]  # fmt: skip
    AttendanceRecordFactory(status="late", status_choice=statuses[1])
    url = change_url(made)
    # Each time a new late status joins, so that the set would still hold every kind.
    for changes, message in [
        ({"DELETE": "on"}, "would require deleting the following protected related objects"),
        ({"kind": "present"}, "its kind cannot change"),
    ]:
        existing = [(s, changes if s == statuses[1] else {}) for s in statuses]
        response = status_set_post(admin_client_, [("x", "late", "1")], url=url, existing=existing,
                                   section=made.section_id)  # fmt: skip
        assert response.status_code == 200 and message in response.content.decode()
    assert made.statuses.count() == 4 and made.statuses.get(code="l").kind == "late"
    # One never given may go.
    existing = [(s, {"DELETE": "on"} if s == statuses[0] else {}) for s in statuses]
    response = status_set_post(admin_client_, [("on", "present", "2")], url=url, existing=existing,
                               section=made.section_id)  # fmt: skip
    assert response.status_code == 302
    assert sorted(made.statuses.values_list("code", flat=True)) == ["a", "e", "l", "on"]


def test_status_set_pages_open_and_cost_the_same_with_more_statuses(admin_client_):
    made = AttendanceStatusSetFactory()
    assert admin_client_.get(changelist_url(AttendanceStatusSet)).status_code == 200
    assert admin_client_.get(add_url(AttendanceStatusSet)).status_code == 200
    AttendanceStatusFactory(status_set=made)
    admin_client_.get(change_url(made))  # warms per-process caches
    with CaptureQueriesContext(connection) as with_one:
        assert admin_client_.get(change_url(made)).status_code == 200
    AttendanceStatusFactory.create_batch(9, status_set=made)
    with CaptureQueriesContext(connection) as with_ten:
        response = admin_client_.get(change_url(made))
    assert response.content.decode().count('name="statuses-') > 9 * 7
    assert len(with_ten) == len(with_one)


def test_status_set_list_cost_does_not_grow_with_rows(admin_client_):
    def one_set():
        AttendanceStatusFactory(status_set=AttendanceStatusSetFactory(department=DepartmentFactory()))

    assert_changelist_queries_do_not_grow(admin_client_, AttendanceStatusSet, one_set)


def test_a_registrar_enables_an_attendance_grade_in_the_admin(admin_client_, superadmin):
    section = SectionFactory()
    response = admin_client_.post(add_url(SectionAttendanceGrade), {"section": section.pk, "weight": "12.5",
                                                                    "drop_lowest": 2})  # fmt: skip
    assert response.status_code == 302
    config = SectionAttendanceGrade.objects.get()
    assert (config.drop_lowest, config.assessment.weight, config.assessment.computed) == (2, Decimal("12.5"), True)
    assert AuditLogEntry.objects.get(verb="attendance_grade.enabled").actor == superadmin
    assert admin_client_.get(change_url(config)).status_code == 200
    assert admin_client_.get(changelist_url(SectionAttendanceGrade)).status_code == 200
    assert admin_client_.post(change_url(config), {"drop_lowest": 0}).status_code == 302
    config.refresh_from_db()
    assert config.drop_lowest == 0


@pytest.mark.parametrize(
    ("weight", "message"), [("", "Give the weight"), ("95", "more than 100")], ids=["no weight", "over 100"]
)
def test_an_attendance_grade_the_service_refuses_is_a_form_error(admin_client_, weight, message):
    section = SectionFactory()
    AssessmentFactory(section=section, weight=Decimal(10))
    response = admin_client_.post(add_url(SectionAttendanceGrade), {"section": section.pk, "weight": weight,
                                                                    "drop_lowest": 0})  # fmt: skip
    assert response.status_code == 200 and message in response.content.decode()
    assert not SectionAttendanceGrade.objects.exists() and section.assessments.count() == 1


def test_the_attendance_grade_list_cost_does_not_grow_with_rows(admin_client_):
    assert_changelist_queries_do_not_grow(admin_client_, SectionAttendanceGrade, SectionAttendanceGradeFactory)
