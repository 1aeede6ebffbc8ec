"""Status sets (campus default, department, section override), the marks lecturers give from them,
the one rate unchanged by them, and attendance counted as a grade from their points."""

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction

from attendance import selectors, services
from attendance.models import (
    AttendanceRecord,
    AttendanceStatus,
    AttendanceStatusSet,
    ClassSession,
    SectionAttendanceGrade,
    StatusKind,
)
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from students import services as students_services
from students.models import Assessment, Grade
from tests.factories import (
    SESSION_START,
    AssessmentFactory,
    AttendanceRecordFactory,
    AttendanceStatusFactory,
    AttendanceStatusSetFactory,
    ClassSessionFactory,
    DepartmentFactory,
    EnrollmentFactory,
    SectionAttendanceGradeFactory,
    SectionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
DAY = datetime.timedelta(days=1)
Kind = StatusKind


def status_set(*, section=None, department=None, statuses=None) -> AttendanceStatusSet:
    """A set holding the given (code, kind, points), by default Present 2, Late 1, Absent 0, Excused,
    Remote 2: the issue's example."""
    owner = {"section": section, "department": None} if section else {"department": department or DepartmentFactory()}
    made = AttendanceStatusSetFactory(**owner)
    statuses = statuses or [
        ("p", Kind.PRESENT, "2"),
        ("l", Kind.LATE, "1"),
        ("a", Kind.ABSENT, "0"),
        ("e", Kind.EXCUSED, None),
        ("remote", Kind.PRESENT, "2"),
    ]
    for order, (code, kind, points) in enumerate(statuses):
        AttendanceStatusFactory(
            status_set=made,
            code=code,
            acronym=code[:3].upper(),
            kind=kind,
            points=None if points is None else Decimal(points),
            order=order,
        )
    return made


def closed_session(section, day: int, **kwargs) -> ClassSession:
    starts_at = SESSION_START + day * DAY
    return ClassSessionFactory(
        section=section,
        starts_at=starts_at,
        ends_at=starts_at + datetime.timedelta(minutes=90),
        state=kwargs.pop("state", ClassSession.State.CLOSED),
        **kwargs,
    )


def mark(session, student, code: str) -> AttendanceRecord:
    """A record as a lecturer gives it: the kind and, for a status of a set, the status itself."""
    choice = AttendanceStatus.objects.filter(code=code).first() if code not in Kind.values else None
    return AttendanceRecordFactory(
        session=session, student=student, status=choice.kind if choice else code, status_choice=choice
    )


def score_of(student, assessment) -> Decimal | None:
    return Grade.objects.filter(student=student, assessment=assessment).values_list("score", flat=True).first()


# --- The default set, and which set a section uses ----------------------------------------------


def test_the_migration_created_todays_four_statuses_as_the_campus_default():
    default = AttendanceStatusSet.objects.get(is_campus_default=True)
    assert [(s.code, s.acronym, s.kind, s.points) for s in default.statuses.all()] == [
        ("present", "P", "present", Decimal("2.00")),
        ("late", "L", "late", Decimal("1.00")),
        ("absent", "A", "absent", Decimal("0.00")),
        ("excused", "E", "excused", None),
    ]


def test_a_section_uses_its_own_set_else_its_departments_else_the_default(django_assert_max_num_queries):
    section = SectionFactory()
    default = AttendanceStatusSet.objects.get(is_campus_default=True)
    status_set(department=DepartmentFactory())  # another department's: never this section's
    assert selectors.status_set_for_section(section.pk) == default
    departments = status_set(department=section.course.department)
    assert selectors.status_set_for_section(section.pk) == departments
    own = status_set(section=section)
    status_set(section=SectionFactory(course=section.course))  # a parallel section's own
    with django_assert_max_num_queries(2):
        resolved = selectors.status_set_for_section(section.pk)
        codes = [s.code for s in resolved.statuses.all()]
    assert resolved == own and codes == ["p", "l", "a", "e", "remote"]


def test_session_statuses_lists_the_sections_statuses_in_their_order():
    section = SectionFactory()
    status_set(section=section, statuses=[("x", Kind.ABSENT, "0"), ("y", Kind.PRESENT, "3")])
    AttendanceStatus.objects.filter(code="x").update(order=9)
    statuses = selectors.session_statuses(ClassSessionFactory(section=section))
    assert [(s.code, s.label, s.acronym, s.kind, s.points) for s in statuses] == [
        ("y", "Y", "Y", "present", Decimal("3.00")),
        ("x", "X", "X", "absent", Decimal("0.00")),
    ]


def test_with_no_set_at_all_the_built_in_statuses_stand_in():
    AttendanceStatusSet.objects.all().delete()
    statuses = selectors.session_statuses(ClassSessionFactory())
    assert [(s.code, s.kind, s.points) for s in statuses] == [
        ("present", "present", Decimal(2)),
        ("late", "late", Decimal(1)),
        ("absent", "absent", Decimal(0)),
        ("excused", "excused", None),
    ]


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"department": None}, "attendance_status_set_one_scope"),
        ({"is_campus_default": True}, "attendance_status_set_one_scope"),
    ],
)
def test_a_set_belongs_to_exactly_one_scope(fields, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        AttendanceStatusSetFactory(**fields)


def test_one_set_per_department_per_section_and_one_default():
    section = SectionFactory()
    AttendanceStatusSetFactory(department=section.course.department)
    AttendanceStatusSetFactory(department=None, section=section)
    for fields in (
        {"department": section.course.department},
        {"department": None, "section": section},
        {"department": None, "is_campus_default": True},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            AttendanceStatusSetFactory(**fields)


def test_statuses_keep_their_codes_acronyms_and_points_by_kind():
    made = status_set()
    for fields in (
        {"code": "p"},  # the code of another status of the set
        {"acronym": "P"},
        {"kind": "remote"},  # not a kind
        {"kind": Kind.EXCUSED, "points": Decimal(1)},  # excused counts for nothing: no points
        {"kind": Kind.PRESENT, "points": None},
        {"kind": Kind.PRESENT, "points": Decimal(-1)},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            AttendanceStatusFactory(status_set=made, **{"acronym": "Z", **fields})


# --- Marks ----------------------------------------------------------------------------------------


@pytest.fixture
def section_with_set():
    section = SectionFactory()
    status_set(section=section)
    return section


def test_a_code_of_the_sections_set_sets_the_kind_and_the_status(section_with_set):
    session = ClassSessionFactory(section=section_with_set)
    student = EnrollmentFactory(section=section_with_set).student
    record = services.attendance_record_set(session=session, student=student, status="remote", actor=None, reason="x")
    record.refresh_from_db()
    assert (record.status, record.status_choice.code) == ("present", "remote")
    entry = AuditLogEntry.objects.get(verb="attendance.changed")
    assert entry.changes == {"status": [None, "remote"]}  # marks are audited by their code


def test_a_code_outside_the_sections_set_is_refused_and_nothing_written(section_with_set):
    session = ClassSessionFactory(section=section_with_set)
    student = EnrollmentFactory(section=section_with_set).student
    status_set(department=DepartmentFactory(), statuses=[("online", Kind.PRESENT, "2"), ("x", Kind.ABSENT, "0")])
    for code in ("online", "nonsense"):  # another set's code; no set's code
        with pytest.raises(ServiceError) as error:
            services.attendance_record_set(session=session, student=student, status=code, actor=None, reason="x")
        assert error.value.code == "status_invalid"
        assert "p, l, a, e, remote" in error.value.detail
    assert not AttendanceRecord.objects.exists() and not AuditLogEntry.objects.exists()


def test_a_kind_still_works_and_means_the_sets_first_status_of_it(section_with_set):
    session = ClassSessionFactory(section=section_with_set)
    student = EnrollmentFactory(section=section_with_set).student
    record = services.attendance_record_set(session=session, student=student, status="late", actor=None, reason="x")
    assert (record.status, record.status_choice.code) == ("late", "l")


def test_voiding_or_excusing_leaves_no_status_of_another_kind_behind(section_with_set):
    session = ClassSessionFactory(section=section_with_set)
    student = EnrollmentFactory(section=section_with_set).student
    record = services.attendance_record_set(session=session, student=student, status="remote", actor=None, reason="x")
    services.attendance_record_void(record=record, actor=None, reason="proxy")
    record.refresh_from_db()
    assert (record.status, record.status_choice) == ("absent", None)
    student = EnrollmentFactory(section=section_with_set).student
    record = services.attendance_record_set(session=session, student=student, status="a", actor=None, reason="x")
    assert record.status_choice.code == "a"
    excuse = services.absence_excuse_submit(record=record, student=student, reason="ill")
    services.absence_excuse_decide(excuse=excuse, approve=True, actor=None)
    record.refresh_from_db()
    assert (record.status, record.status_choice) == ("excused", None)


@pytest.mark.parametrize("kind", Kind.values)
def test_the_rate_counts_a_custom_status_as_its_kind(kind):
    """Two students, one marked with the built-in status of a kind, one with a custom status of it:
    the one rate sees no difference."""
    section = SectionFactory()
    status_set(section=section, statuses=[(f"m{k[0]}", k, None if k == Kind.EXCUSED else "5") for k in Kind.values])
    built_in, custom = (EnrollmentFactory(section=section).student for _ in range(2))
    for day in range(3):
        session = closed_session(section, day)
        mark(session, built_in, kind if day == 0 else "present")
        mark(session, custom, f"m{kind[0]}" if day == 0 else "present")
    with time_machine.travel(SESSION_START + 5 * DAY):
        rows = {row.enrollment.student_id: row for row in selectors.attendance_rates_for_section(section)}
    assert _counts(rows[custom.pk]) == _counts(rows[built_in.pk])
    assert rows[custom.pk].attended == (3 if kind in ("present", "late") else 2)


def _counts(row) -> tuple:
    return (row.held, row.attended, row.late, row.excused, row.absent, row.rate)


# --- Attendance as a grade: the score -------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "drop", "expected"),
    [
        (["2", "1", "0"], 0, Decimal(50)),
        (["2", "1", "0"], 1, Decimal(75)),  # the absence dropped
        (["2", "1", "0"], 3, None),  # every session dropped: nothing to count
        (["2", "1", "0"], 5, None),  # fewer sessions than N
        ([], 0, None),
        (["3"], 0, Decimal(100)),  # a mark of a former, richer set never passes 100
    ],
)
def test_the_score_is_the_points_kept_over_the_most_possible(points, drop, expected):
    score = services.attendance_grade_score([Decimal(p) for p in points], best=Decimal(2), drop_lowest=drop)
    assert score == expected


def test_no_status_earning_points_gives_no_score():
    assert services.attendance_grade_score([Decimal(0)], best=Decimal(0), drop_lowest=0) is None


@pytest.fixture
def graded_section():
    """A section counting attendance for 10%, with the issue's set."""
    section = SectionFactory()
    status_set(section=section)
    return SectionAttendanceGradeFactory(section=section)


def test_grades_count_closed_sessions_only_and_leave_out_the_excused(graded_section):
    section = graded_section.section
    ana, ben, cem = (EnrollmentFactory(section=section).student for _ in range(3))
    sessions = [closed_session(section, day) for day in range(4)]
    cancelled = closed_session(section, 4, state=ClassSession.State.CANCELLED)
    still_open = closed_session(section, 5, state=ClassSession.State.OPEN)
    for session, code in zip(sessions, ["p", "l", "a", "e"], strict=True):
        mark(session, ana, code)
    for session, code in zip(sessions, ["remote", "remote", "p", "l"], strict=True):
        mark(session, ben, code)
    for session in sessions:
        mark(session, cem, "e")
    mark(cancelled, ana, "a")
    mark(still_open, ana, "a")
    assert services.section_attendance_grades_compute(section_id=section.pk) == 2
    assessment = graded_section.assessment
    assert score_of(ana, assessment) == Decimal("50.00")  # (2 + 1 + 0) / (3 x 2)
    assert score_of(ben, assessment) == Decimal("87.50")  # (2 + 2 + 2 + 1) / (4 x 2)
    assert score_of(cem, assessment) is None  # every session excused: no grade
    assert services.section_attendance_grades_compute(section_id=section.pk) == 0  # idempotent
    assert AuditLogEntry.objects.filter(verb="grade.computed").count() == 1


def test_drop_lowest_leaves_out_the_worst_sessions(graded_section):
    section = graded_section.section
    ana = EnrollmentFactory(section=section).student
    for day, code in enumerate(["a", "a", "l", "p"]):
        mark(closed_session(section, day), ana, code)
    services.section_attendance_grade_update(config=graded_section, drop_lowest=2, actor=None)
    assert score_of(ana, graded_section.assessment) == Decimal("75.00")  # (1 + 2) / (2 x 2)
    services.section_attendance_grade_update(config=graded_section, drop_lowest=4, actor=None)
    assert score_of(ana, graded_section.assessment) is None  # fewer sessions than N: no grade kept


def test_sessions_before_the_student_enrolled_do_not_count(graded_section):
    section = graded_section.section
    first = closed_session(section, 0)
    late_joiner = EnrollmentFactory(section=section, enrolled_on=SESSION_START.date() + DAY).student
    mark(closed_session(section, 1), late_joiner, "p")
    assert not AttendanceRecord.objects.filter(session=first).exists()
    services.section_attendance_grades_compute(section_id=section.pk)
    assert score_of(late_joiner, graded_section.assessment) == Decimal("100.00")


def test_a_section_without_an_attendance_grade_computes_nothing():
    session = closed_session(SectionFactory(), 0)
    mark(session, EnrollmentFactory(section=session.section).student, "present")
    assert services.section_attendance_grades_compute(section_id=session.section_id) == 0
    assert not Grade.objects.exists()


def test_the_grade_follows_a_close_and_a_later_change(graded_section, django_capture_on_commit_callbacks):
    section = graded_section.section
    ana, ben = (EnrollmentFactory(section=section).student for _ in range(2))
    session = ClassSessionFactory(section=section, state=ClassSession.State.OPEN)
    mark(session, ana, "l")
    with time_machine.travel(session.ends_at), django_capture_on_commit_callbacks(execute=True):
        services.class_session_close(session=session, actor=None)
    assert (score_of(ana, graded_section.assessment), score_of(ben, graded_section.assessment)) == (
        Decimal("50.00"),
        Decimal("0.00"),  # marked absent by the close
    )
    session.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        services.attendance_record_set(session=session, student=ben, status="remote", actor=None, reason="was online")
    assert score_of(ben, graded_section.assessment) == Decimal("100.00")


# --- Attendance as a grade: enabling ---------------------------------------------------------------


def test_enabling_creates_a_computed_assessment_and_scores_it():
    section = SectionFactory()
    ana = EnrollmentFactory(section=section).student
    mark(closed_session(section, 0), ana, "late")  # the default set: late earns 1 of 2
    registrar = UserFactory()
    config = services.section_attendance_grade_enable(
        section=section, weight=Decimal(15), drop_lowest=1, actor=registrar
    )
    assessment = config.assessment
    assert (assessment.name, assessment.weight, assessment.max_score, assessment.computed) == (
        "Attendance",
        Decimal(15),
        Decimal(100),
        True,
    )
    assert score_of(ana, assessment) is None  # one session, one dropped
    services.section_attendance_grade_update(config=config, drop_lowest=0, actor=registrar)
    assert score_of(ana, assessment) == Decimal("50.00")
    assert AuditLogEntry.objects.filter(verb="attendance_grade.enabled", actor=registrar).exists()


@pytest.mark.parametrize(
    ("weight", "drop_lowest", "code"),
    [(Decimal(80), 0, "weights_over_100"), (Decimal(10), -1, "drop_lowest_invalid")],
)
def test_enabling_refused_writes_nothing(weight, drop_lowest, code):
    section = SectionFactory()
    AssessmentFactory(section=section, weight=Decimal(30))
    with pytest.raises(ServiceError) as error:
        services.section_attendance_grade_enable(section=section, weight=weight, drop_lowest=drop_lowest, actor=None)
    assert error.value.code == code
    assert Assessment.objects.count() == 1 and not AuditLogEntry.objects.exists()


def test_enabling_twice_is_refused(graded_section):
    with pytest.raises(ServiceError) as error:
        services.section_attendance_grade_enable(section=graded_section.section, weight=Decimal(5), actor=None)
    assert error.value.code == "attendance_grade_exists"
    assert Assessment.objects.count() == 1


def test_switching_off_keeps_the_scores_as_an_ordinary_assessment(client):
    section = SectionFactory()
    ana = EnrollmentFactory(section=section).student
    mark(closed_session(section, 0), ana, "late")
    lecturer = UserFactory(roles=["lecturer"])
    section.lecturers.add(lecturer)
    config = services.section_attendance_grade_enable(section=section, weight=Decimal(15), actor=None)
    client.force_login(lecturer)
    page = client.get(f"/attendance/sections/{section.pk}/attendance-grade/").content.decode()
    assert "Stop counting attendance as a grade" in page
    response = client.post(f"/attendance/sections/{section.pk}/attendance-grade/disable/", follow=True)
    assert "no longer counts as a grade" in response.content.decode()
    assert not SectionAttendanceGrade.objects.exists()
    assessment = Assessment.objects.get(pk=config.assessment_id)
    assert assessment.computed is False and score_of(ana, assessment) == Decimal("50.00")
    assert AuditLogEntry.objects.filter(verb="attendance_grade.disabled", actor=lecturer).exists()
    # No longer computed: a close recomputes nothing, and the lecturer may now grade it by hand.
    assert services.section_attendance_grades_compute(section_id=section.pk) == 0
    students_services.grade_record(student=ana, assessment=assessment, score=Decimal(70), actor=lecturer)
    assert score_of(ana, assessment) == Decimal("70.00")
    again = client.post(f"/attendance/sections/{section.pk}/attendance-grade/disable/", follow=True)
    assert again.status_code == 200 and Assessment.objects.filter(pk=assessment.pk).exists()


def test_another_lecturer_cannot_switch_it_off(client, graded_section):
    client.force_login(UserFactory(roles=["lecturer"]))
    response = client.post(f"/attendance/sections/{graded_section.section.pk}/attendance-grade/disable/")
    assert response.status_code == 404 and SectionAttendanceGrade.objects.exists()


def test_the_worked_example_of_the_docs(graded_section):
    """docs/ATTENDANCE.md: P, Remote, L, A, E, P with the lowest 1 dropped is 87.5."""
    section = graded_section.section
    ana = EnrollmentFactory(section=section).student
    for day, code in enumerate(["p", "remote", "l", "a", "e", "p"]):
        mark(closed_session(section, day), ana, code)
    services.section_attendance_grade_update(config=graded_section, drop_lowest=1, actor=None)
    assert score_of(ana, graded_section.assessment) == Decimal("87.50")


def test_a_close_sends_the_grades_task_only_where_the_section_counts_attendance(
    graded_section, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(services, "enqueue", lambda name, **kwargs: sent.append((name, kwargs)))
    plain = ClassSessionFactory(state=ClassSession.State.OPEN)
    graded = ClassSessionFactory(section=graded_section.section, state=ClassSession.State.OPEN)
    for session in (plain, graded):
        with time_machine.travel(session.ends_at), django_capture_on_commit_callbacks(execute=True):
            services.class_session_close(session=session, actor=None)
    assert sent == [
        ("attendance.warnings_send", {"section_id": plain.section_id}),
        ("attendance.warnings_send", {"section_id": graded.section_id}),
        ("attendance.grades_compute", {"section_id": graded.section_id}),
    ]


def test_scores_follow_the_assessments_maximum_if_it_was_changed(graded_section):
    section = graded_section.section
    ana = EnrollmentFactory(section=section).student
    mark(closed_session(section, 0), ana, "l")
    Assessment.objects.filter(pk=graded_section.assessment_id).update(max_score=Decimal(20))
    graded_section.refresh_from_db()
    services.section_attendance_grades_compute(section_id=section.pk)
    assert score_of(ana, graded_section.assessment) == Decimal("10.00")  # half of 20
