"""Factories for the attendance API and admin tests: one per attendance model."""

import datetime

import factory

from attendance import models as attendance
from tests.factories import SectionFactory, StudentFactory, TermFactory

UTC = datetime.UTC
# The term of tests.factories starts on Monday 2026-09-14; sessions start at 10:00 UTC by default.
SESSION_START = datetime.datetime(2026, 9, 14, 10, 0, tzinfo=UTC)


class ClassSessionFactory(factory.django.DjangoModelFactory):
    """A scheduled 90-minute session at 10:00 UTC on the term's first day (give starts_at to move it)."""

    class Meta:
        model = attendance.ClassSession

    section = factory.SubFactory(SectionFactory)
    starts_at = factory.LazyAttribute(
        lambda s: datetime.datetime.combine(s.section.term.start_date, datetime.time(10, 0), tzinfo=UTC)
    )
    ends_at = factory.LazyAttribute(lambda s: s.starts_at + datetime.timedelta(minutes=90))
    room = factory.Sequence(lambda n: f"R{n:03d}")
    state = attendance.ClassSession.State.SCHEDULED


class AttendanceRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.AttendanceRecord

    session = factory.SubFactory(ClassSessionFactory)
    student = factory.SubFactory(StudentFactory)
    status = attendance.AttendanceRecord.Status.PRESENT
    recorded_at = factory.LazyAttribute(lambda r: r.session.starts_at + datetime.timedelta(minutes=2))
    method = attendance.AttendanceRecord.Method.QR
    ip = "10.1.2.3"
    user_agent = "Mozilla/5.0 (Phone)"
    device_id = factory.Sequence(lambda n: f"device-{n}")


class ProxyFlagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.ProxyFlag

    record = factory.SubFactory(AttendanceRecordFactory)
    kind = attendance.ProxyFlag.Kind.SHARED_DEVICE
    detail = "This device already checked in another student here."


class AbsenceExcuseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.AbsenceExcuse

    record = factory.SubFactory(AttendanceRecordFactory, status=attendance.AttendanceRecord.Status.ABSENT)
    reason = "I had the flu."


class TermHolidayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.TermHoliday

    term = factory.SubFactory(TermFactory)
    date = factory.LazyAttribute(lambda h: h.term.start_date + datetime.timedelta(weeks=3))
    name = "Holiday"


class StudentCardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.StudentCard

    student = factory.SubFactory(StudentFactory)
    uid = factory.Sequence(lambda n: f"04A2{n:010X}")
    active = True


class CardReaderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.CardReader

    reader_id = factory.Sequence(lambda n: f"reader-{n}")
    room = factory.Sequence(lambda n: f"R{n:03d}")
    name = factory.LazyAttribute(lambda r: f"Door of {r.room}")


class DeviceSightingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.DeviceSighting

    student = factory.SubFactory(StudentFactory)
    device_id = factory.Sequence(lambda n: f"device-{n}")
    first_seen = SESSION_START
    last_seen = SESSION_START
    check_ins = 1


class AttendanceWarningStateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.AttendanceWarningState

    student = factory.SubFactory(StudentFactory)
    section = factory.SubFactory(SectionFactory)
    below = True
    last_warned_at = SESSION_START


def attendance_world() -> dict:
    """Student S in section X (lecturer L, advisor A), student O in section Y (lecturer L2, advisor A2),
    and an open session in each, both at SESSION_START (rooms B2.14 and C1.01)."""
    from accounts.roles import Role
    from tests.factories import EnrollmentFactory, TermFactory, UserFactory

    term = TermFactory(name="2026 Autumn")
    lecturer, other_lecturer = UserFactory(roles=[Role.LECTURER]), UserFactory(roles=[Role.LECTURER])
    advisor, other_advisor = UserFactory(roles=[Role.ADVISOR]), UserFactory(roles=[Role.ADVISOR])
    section_x = SectionFactory(term=term, lecturers=[lecturer])
    section_y = SectionFactory(term=term, lecturers=[other_lecturer])
    student = StudentFactory(advisor=advisor, student_number="S-SUBJECT-1")
    other = StudentFactory(advisor=other_advisor, student_number="S-OTHER-99")
    EnrollmentFactory(student=student, section=section_x)
    EnrollmentFactory(student=other, section=section_y)
    open_ = attendance.ClassSession.State.OPEN
    session_x = ClassSessionFactory(section=section_x, room="B2.14", state=open_, opened_at=SESSION_START)
    session_y = ClassSessionFactory(section=section_y, room="C1.01", state=open_, opened_at=SESSION_START)
    return {
        "term": term,
        "lecturer": lecturer,
        "other_lecturer": other_lecturer,
        "advisor": advisor,
        "other_advisor": other_advisor,
        "registrar": UserFactory(roles=[Role.REGISTRAR]),
        "admin": UserFactory(roles=[Role.ADMIN]),
        "section_x": section_x,
        "section_y": section_y,
        "student": student,
        "other": other,
        "session_x": session_x,
        "session_y": session_y,
    }
