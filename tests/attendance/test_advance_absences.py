"""Absences reported in advance: submitting (dates, enrolment, overlaps, attachments), deciding,
withdrawing, and sessions closing or taken by hand marking the student excused."""

import datetime

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.roles import Role
from attendance import services
from attendance.errors import AttendanceErrorCode as Code
from attendance.models import AdvanceAbsence, AttendanceRecord
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from tests.factories import (
    AdvanceAbsenceFactory,
    ClassSessionFactory,
    EnrollmentFactory,
    SectionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
START = datetime.datetime(2026, 9, 14, 10, 0, tzinfo=datetime.UTC)  # the term's first day, a Monday
TODAY = datetime.date(2026, 9, 14)
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n"


@pytest.fixture(autouse=True)
def monday_morning():
    with time_machine.travel(START - datetime.timedelta(hours=2), tick=False) as traveller:
        yield traveller


def submit(student, section, first=TODAY, last=TODAY + datetime.timedelta(days=2), **kwargs):
    kwargs.setdefault("reason", "Hospital appointment")
    return services.advance_absence_submit(
        student=student, term=section.term, section=section, first_day=first, last_day=last, **kwargs
    )


def refused(code, student, section, **kwargs):
    with pytest.raises(ServiceError) as error:
        submit(student, section, **kwargs)
    assert error.value.code == code
    assert not AdvanceAbsence.objects.exists()


def test_a_student_reports_an_absence_from_today_on(student, section):
    absence = submit(student, section)
    assert (absence.state, absence.first_day, absence.section) == ("submitted", TODAY, section)
    assert AuditLogEntry.objects.filter(verb="advance_absence.submitted", object_id=str(absence.pk)).exists()


def test_past_days_reversed_ranges_and_long_ranges_are_refused(student, section):
    refused(Code.ABSENCE_DATES_INVALID, student, section, first=TODAY - datetime.timedelta(days=1))
    refused(Code.ABSENCE_DATES_INVALID, student, section, last=TODAY - datetime.timedelta(days=1))
    refused(Code.ABSENCE_DATES_INVALID, student, section, last=TODAY + datetime.timedelta(days=60))
    refused(Code.REASON_REQUIRED, student, section, reason="  ")


def test_a_section_the_student_is_not_enrolled_in_is_refused(student, section):
    refused(Code.NOT_ENROLLED, student, SectionFactory(term=section.term))


def test_an_overlapping_pending_report_is_refused(student, section):
    submit(student, section)
    with pytest.raises(ServiceError) as error:
        submit(student, section, first=TODAY + datetime.timedelta(days=2), last=TODAY + datetime.timedelta(days=5))
    assert error.value.code == Code.ABSENCE_OVERLAPS
    assert AdvanceAbsence.objects.count() == 1
    later = submit(student, section, first=TODAY + datetime.timedelta(days=3), last=TODAY + datetime.timedelta(days=5))
    assert later.state == "submitted"  # the days after are another report


def test_a_pdf_attachment_is_kept_privately_with_its_sniffed_type(student, section, settings):
    absence = submit(student, section, attachment=SimpleUploadedFile("note.exe", PDF, content_type="text/html"))
    assert absence.attachment_content_type == "application/pdf"
    assert absence.attachment.name.startswith(f"advance-absences/{student.pk}/")
    assert "note" not in absence.attachment.name
    assert absence.attachment.read() == PDF
    assert (settings.PRIVATE_FILE_ROOT / absence.attachment.name).read_bytes() == PDF
    assert not str(settings.PRIVATE_FILE_ROOT).startswith(str(settings.MEDIA_ROOT))


@pytest.mark.parametrize(
    "upload",
    [
        SimpleUploadedFile("note.pdf", b"<html><script>alert(1)</script>", content_type="application/pdf"),
        SimpleUploadedFile("big.pdf", PDF + b"0" * (5 * 1024 * 1024), content_type="application/pdf"),
    ],
    ids=["not-a-pdf", "over-5-MB"],
)
def test_an_attachment_of_another_type_or_too_large_writes_nothing(student, section, upload, settings):
    before = set(settings.PRIVATE_FILE_ROOT.rglob("*"))
    refused(Code.ATTACHMENT_INVALID, student, section, attachment=upload)
    assert set(settings.PRIVATE_FILE_ROOT.rglob("*")) == before


def test_the_lecturer_decides_and_the_student_withdraws_only_before(student, section, lecturer):
    absence = submit(student, section)
    with pytest.raises(ServiceError) as error:
        services.advance_absence_decide(absence=absence, approve=True, actor=UserFactory(roles=[Role.LECTURER]))
    assert error.value.code == Code.NOT_ALLOWED
    services.advance_absence_decide(absence=absence, approve=True, actor=lecturer, note="Fine")
    absence.refresh_from_db()
    assert (absence.state, absence.decided_by, absence.decision_note) == ("approved", lecturer, "Fine")
    assert AuditLogEntry.objects.filter(verb="advance_absence.decided", actor=lecturer).exists()
    with pytest.raises(ServiceError) as error:
        services.advance_absence_withdraw(absence=absence, student=student)
    assert error.value.code == Code.ABSENCE_ALREADY_DECIDED
    second = submit(student, section, first=TODAY + datetime.timedelta(days=7), last=TODAY + datetime.timedelta(days=7))
    assert services.advance_absence_withdraw(absence=second, student=student).state == "withdrawn"


def test_a_report_for_all_sections_is_decided_by_any_of_their_lecturers(student, section, lecturer):
    absence = services.advance_absence_submit(
        student=student, term=section.term, section=None, first_day=TODAY, last_day=TODAY, reason="Funeral"
    )
    assert services.advance_absence_decide(absence=absence, approve=False, actor=lecturer).state == "rejected"


def session_on(section, day_offset=0, **kwargs):
    starts = START + datetime.timedelta(days=day_offset)
    ends = starts + datetime.timedelta(hours=1)
    return ClassSessionFactory(section=section, starts_at=starts, ends_at=ends, **kwargs)


def test_closing_marks_an_approved_absence_excused_and_never_overrides_a_check_in(student, section, lecturer,
                                                                                    monday_morning):  # fmt: skip
    came_anyway = EnrollmentFactory(section=section).student
    absent = EnrollmentFactory(section=section).student
    for who in (student, came_anyway):
        services.advance_absence_decide(absence=submit(who, section), approve=True, actor=lecturer)
    rejected = submit(absent, section)
    services.advance_absence_decide(absence=rejected, approve=False, actor=lecturer)
    session = session_on(section, state="open")
    outside = session_on(section, day_offset=3, state="open")  # after the reported days
    monday_morning.move_to(START + datetime.timedelta(minutes=5))
    services.attendance_check_in(student=came_anyway, session=session, method="qr")
    monday_morning.move_to(START + datetime.timedelta(days=4))
    services.class_session_close(session=session, actor=lecturer)
    services.class_session_close(session=outside, actor=lecturer)
    marks = dict(AttendanceRecord.objects.filter(session=session).values_list("student", "status"))
    assert marks == {student.pk: "excused", came_anyway.pk: "present", absent.pk: "absent"}
    assert AttendanceRecord.objects.get(session=outside, student=student).status == "absent"


def test_an_absence_for_all_sections_excuses_every_section_of_the_term(student, section, lecturer, monday_morning):
    other = EnrollmentFactory(student=student, section=SectionFactory(term=section.term)).section
    absence = services.advance_absence_submit(
        student=student, term=section.term, section=None, first_day=TODAY, last_day=TODAY, reason="Funeral"
    )
    services.advance_absence_decide(absence=absence, approve=True, actor=lecturer)
    sessions = [session_on(s, state="open") for s in (section, other)]
    monday_morning.move_to(START + datetime.timedelta(hours=2))
    for session in sessions:
        services.class_session_close(session=session, actor=None)
    assert set(AttendanceRecord.objects.filter(student=student).values_list("status", flat=True)) == {"excused"}


def test_a_pending_or_withdrawn_report_excuses_nothing(student, section, monday_morning):
    submit(student, section)
    session = session_on(section, state="open")
    monday_morning.move_to(START + datetime.timedelta(hours=2))
    services.class_session_close(session=session, actor=None)
    assert AttendanceRecord.objects.get(session=session, student=student).status == "absent"


def test_taking_attendance_by_hand_marks_the_unmarked_excused_not_absent(student, section, lecturer, monday_morning):
    services.advance_absence_decide(absence=submit(student, section), approve=True, actor=lecturer)
    classmate = EnrollmentFactory(section=section).student
    present = EnrollmentFactory(section=section).student
    session = session_on(section, state="open")
    monday_morning.move_to(START + datetime.timedelta(minutes=20))
    services.attendance_marks_save(session=session, marks={present.pk: "present"}, actor=lecturer, unmarked_to="absent")
    marks = dict(AttendanceRecord.objects.filter(session=session).values_list("student", "status"))
    assert marks == {student.pk: "excused", classmate.pk: "absent", present.pk: "present"}


def test_a_mark_the_lecturer_gives_stands(student, section, lecturer, monday_morning):
    services.advance_absence_decide(absence=submit(student, section), approve=True, actor=lecturer)
    session = session_on(section, state="open")
    monday_morning.move_to(START + datetime.timedelta(minutes=20))
    services.attendance_marks_save(session=session, marks={student.pk: "present"}, actor=lecturer, unmarked_to="absent")
    assert AttendanceRecord.objects.get(session=session, student=student).status == "present"


def test_the_database_refuses_a_reversed_or_too_long_range(student, section):
    from django.db import IntegrityError, transaction

    for last in (TODAY - datetime.timedelta(days=1), TODAY + datetime.timedelta(days=60)):
        with pytest.raises(IntegrityError), transaction.atomic():
            AdvanceAbsenceFactory(student=student, section=section, first_day=TODAY, last_day=last)
    AdvanceAbsenceFactory(student=student, section=section, first_day=TODAY, last_day=TODAY + datetime.timedelta(59))
