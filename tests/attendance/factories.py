"""Factories for the attendance models, used by the portal and browser tests."""

import datetime

import factory

from attendance import models as attendance
from tests.factories import SectionFactory, StudentFactory


class ClassSessionFactory(factory.django.DjangoModelFactory):
    """A scheduled session of 90 minutes at 10:00 UTC on the term's first day (give starts_at to move it)."""

    class Meta:
        model = attendance.ClassSession

    section = factory.SubFactory(SectionFactory)
    starts_at = factory.LazyAttribute(
        lambda s: datetime.datetime.combine(s.section.term.start_date, datetime.time(10, 0), tzinfo=datetime.UTC)
    )
    ends_at = factory.LazyAttribute(lambda s: s.starts_at + datetime.timedelta(minutes=90))
    room = "B-101"
    state = attendance.ClassSession.State.SCHEDULED


class AttendanceRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.AttendanceRecord

    session = factory.SubFactory(ClassSessionFactory)
    student = factory.SubFactory(StudentFactory)
    status = attendance.AttendanceRecord.Status.PRESENT
    recorded_at = factory.LazyAttribute(lambda r: r.session.starts_at)
    method = attendance.AttendanceRecord.Method.QR


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

    term = factory.SubFactory("tests.factories.TermFactory")
    date = factory.LazyAttribute(lambda h: h.term.start_date + datetime.timedelta(weeks=3))
    name = "Holiday"
