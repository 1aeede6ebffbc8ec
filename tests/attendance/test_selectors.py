"""The one attendance-rate definition, on hand-built cases (docs/ATTENDANCE.md)."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from attendance.models import ClassSession
from attendance.selectors import (
    attendance_rates,
    attendance_rates_for_section,
    class_sessions_visible_to,
    records_visible_to,
)
from students.models import Enrollment
from tests.factories import (
    AttendanceRecordFactory,
    ClassSessionFactory,
    EnrollmentFactory,
    SectionFactory,
    StudentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
START = datetime.datetime(2026, 9, 14, 10, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


@pytest.fixture
def section():
    return SectionFactory(min_attendance_rate=Decimal("0.75"))


def sessions(section, n: int, state: str = "open") -> list[ClassSession]:
    hour = datetime.timedelta(hours=1)
    return [
        ClassSessionFactory(section=section, starts_at=START + i * DAY, ends_at=START + i * DAY + hour, state=state)
        for i in range(n)
    ]


def rate_of(enrollment, as_of):
    (row,) = attendance_rates(Enrollment.objects.filter(pk=enrollment.pk), as_of=as_of)
    return row


def test_present_and_late_count_as_attended(section):
    enrollment = EnrollmentFactory(section=section)
    held = sessions(section, 4)
    for session, status in zip(held, ["present", "late", "absent", "present"], strict=True):
        AttendanceRecordFactory(session=session, student=enrollment.student, status=status)
    row = rate_of(enrollment, as_of=START + 10 * DAY)
    assert (row.held, row.attended, row.late, row.absent, row.excused) == (4, 3, 1, 1, 0)
    assert row.rate == Decimal("0.75")


def test_excused_leave_the_denominator(section):
    enrollment = EnrollmentFactory(section=section)
    for session, status in zip(sessions(section, 4), ["present", "excused", "absent", "excused"], strict=True):
        AttendanceRecordFactory(session=session, student=enrollment.student, status=status)
    row = rate_of(enrollment, as_of=START + 10 * DAY)
    assert (row.counted, row.rate) == (2, Decimal("0.5"))


def test_cancelled_sessions_count_for_nobody(section):
    enrollment = EnrollmentFactory(section=section)
    held = sessions(section, 3)
    cancelled = sessions(section, 6, state=ClassSession.State.CANCELLED)[5]
    ClassSession.objects.filter(section=section, state=ClassSession.State.CANCELLED).exclude(pk=cancelled.pk).delete()
    AttendanceRecordFactory(session=held[0], student=enrollment.student, status="present")
    AttendanceRecordFactory(session=cancelled, student=enrollment.student, status="present")
    row = rate_of(enrollment, as_of=START + 10 * DAY)
    assert (row.held, row.attended) == (3, 1)
    assert row.rate == Decimal("0.3333")


def test_sessions_before_a_mid_term_enrolment_do_not_count(section):
    held = sessions(section, 6)
    enrollment = EnrollmentFactory(section=section, enrolled_on=(START + 3 * DAY).date())
    AttendanceRecordFactory(session=held[4], student=enrollment.student, status="present")
    row = rate_of(enrollment, as_of=START + 10 * DAY)
    assert row.held == 3 and row.attended == 1 and row.absent == 2


def test_sessions_after_leaving_do_not_count(section):
    sessions(section, 6)
    enrollment = EnrollmentFactory(
        section=section, status=Enrollment.Status.WITHDRAWN, ended_on=(START + 2 * DAY).date()
    )
    assert rate_of(enrollment, as_of=START + 10 * DAY).held == 2


def test_only_sessions_started_by_as_of_are_held(section):
    enrollment = EnrollmentFactory(section=section)
    sessions(section, 10)
    row = rate_of(enrollment, as_of=START + 2 * DAY + datetime.timedelta(minutes=1))
    assert (row.held, row.planned, row.remaining) == (3, 10, 7)


def test_no_session_yet_means_no_rate(section):
    enrollment = EnrollmentFactory(section=section)
    assert rate_of(enrollment, as_of=START).rate is None


def test_absences_left_and_unreachable_minimum(section):
    # 10 sessions, minimum 75%: 8 must be attended (ceil 7.5); after 4 held with 2 absences, 0 more allowed.
    enrollment = EnrollmentFactory(section=section)
    held = sessions(section, 10)
    for session, status in zip(held[:4], ["present", "absent", "present", "absent"], strict=True):
        AttendanceRecordFactory(session=session, student=enrollment.student, status=status)
    row = rate_of(enrollment, as_of=START + 3 * DAY + datetime.timedelta(hours=2))
    assert (row.needed, row.absences_left, row.cannot_reach_minimum) == (8, 0, False)
    AttendanceRecordFactory(session=held[4], student=enrollment.student, status="absent")
    row = rate_of(enrollment, as_of=START + 4 * DAY + datetime.timedelta(hours=2))
    assert row.cannot_reach_minimum


def test_excuses_lower_what_is_needed(section):
    enrollment = EnrollmentFactory(section=section)
    held = sessions(section, 10)
    for session in held[:2]:
        AttendanceRecordFactory(session=session, student=enrollment.student, status="excused")
    row = rate_of(enrollment, as_of=START + DAY + datetime.timedelta(hours=2))
    assert row.needed == 6  # ceil(0.75 * 8)


def test_rates_of_a_section_cost_one_query_whatever_its_size(section):
    held = sessions(section, 3)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            rows = attendance_rates_for_section(section, as_of=START + 10 * DAY)
            assert all(row.rate is not None for row in rows)
        return len(queries)

    for _ in range(5):
        AttendanceRecordFactory(session=held[0], student=EnrollmentFactory(section=section).student)
    small = count_queries()
    for _ in range(95):
        AttendanceRecordFactory(session=held[1], student=EnrollmentFactory(section=section).student)
    assert count_queries() == small == 1


def test_visibility_of_sessions_and_records(section):
    lecturer = UserFactory(roles=[Role.LECTURER])
    section.lecturers.add(lecturer)
    mine = EnrollmentFactory(section=section).student
    session = sessions(section, 1)[0]
    other_session = ClassSessionFactory(state="open")
    record = AttendanceRecordFactory(session=session, student=mine)
    other_record = AttendanceRecordFactory(session=other_session)
    assert set(class_sessions_visible_to(lecturer)) == {session}
    assert set(class_sessions_visible_to(mine.user)) == {session}
    assert set(records_visible_to(lecturer)) == {record}
    assert set(records_visible_to(mine.user)) == {record}
    assert set(records_visible_to(StudentFactory().user)) == set()
    assert set(records_visible_to(UserFactory(roles=[Role.REGISTRAR]))) == {record, other_record}
