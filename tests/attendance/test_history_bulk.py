"""Bulk import of past attendance marks (attendance/history_bulk.py), through the job engine."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attendance import history_bulk
from attendance.models import AttendanceRecord, ClassSession
from campusiq.core.models import ImportJob
from tests.factories import (
    AttendanceRecordFactory,
    ClassSessionFactory,
    EnrollmentFactory,
    SectionAttendanceGradeFactory,
    SectionFactory,
    StudentFactory,
    UserFactory,
)
from tests.support.imports import job_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def registrar():
    return UserFactory(is_staff=True)


@pytest.fixture
def section(past_term):
    return SectionFactory(term=past_term, course__code="PHY101", code="A")


def enrolled(section, count: int = 1):
    students = StudentFactory.create_batch(count)
    for student in students:
        EnrollmentFactory(student=student, section=section, status="withdrawn", ended_on=section.term.end_date)
    return students


def mark_row(student, of, starts: str, status: str = "present", **values) -> dict:
    row = {
        "student_number": student.student_number,
        "term": of.term.name,
        "course": of.course.code,
        "section": of.code,
        "session_start": starts,
        "session_end": "",
        "status": status,
    }
    return {**row, **values}


def test_marks_create_their_past_sessions_once_and_a_rerun_changes_nothing(registrar, section):
    ann, bob = enrolled(section, 2)  # withdrawn since: history keeps their marks
    rows = [
        mark_row(ann, section, "2026-03-02T09:00:00+00:00"),
        mark_row(bob, section, "2026-03-02T09:00:00+00:00", "late"),
        mark_row(ann, section, "2026-03-09T09:00:00+00:00", "absent", session_end="2026-03-09T10:30:00+00:00"),
    ]
    job = job_run("attendance_marks", rows, actor=registrar)
    assert job.status == ImportJob.Status.SUCCEEDED, job.errors
    sessions = ClassSession.objects.filter(section=section).order_by("starts_at")
    assert [(s.state, s.ends_at - s.starts_at) for s in sessions] == [
        ("closed", datetime.timedelta(minutes=60)),
        ("closed", datetime.timedelta(minutes=90)),
    ]
    assert sorted(AttendanceRecord.objects.values_list("student__student_number", "status")) == sorted(
        [(ann.student_number, "present"), (bob.student_number, "late"), (ann.student_number, "absent")]
    )
    stamps = list(AttendanceRecord.objects.order_by("pk").values_list("updated_at", flat=True))
    again = job_run("attendance_marks", rows, actor=registrar)
    assert (again.status, again.rows_written) == (ImportJob.Status.SUCCEEDED, 0)
    assert ClassSession.objects.filter(section=section).count() == 2
    assert list(AttendanceRecord.objects.order_by("pk").values_list("updated_at", flat=True)) == stamps


def test_an_updated_mark_updates_the_existing_record(registrar, section):
    (ann,) = enrolled(section)
    session = ClassSessionFactory(section=section, state="closed")
    record = AttendanceRecordFactory(session=session, student=ann, status="absent")
    job = job_run(
        "attendance_marks", [mark_row(ann, section, session.starts_at.isoformat(), "excused")], actor=registrar
    )
    assert (job.status, job.rows_written) == (ImportJob.Status.SUCCEEDED, 1)
    record.refresh_from_db()
    assert record.status == "excused"
    assert ClassSession.objects.count() == 1


@pytest.mark.parametrize(
    "starts, values, message",
    [
        ("2025-01-05T09:00:00+00:00", {}, "outside the term"),
        ("2026-03-02 09:00", {"status": "asleep"}, "Unknown status"),
        ("yesterday", {}, "not a date and time"),
        ("2026-03-02T09:00:00+00:00", {"session_end": "2026-03-02T08:00:00+00:00"}, "not after"),
        ("2026-03-02T09:00:00+00:00", {"section": "Z"}, "No section"),
    ],
)
def test_a_bad_mark_fails_the_job_and_writes_nothing(registrar, section, starts, values, message):
    ann, bob = enrolled(section, 2)
    rows = [mark_row(ann, section, "2026-03-02T09:00:00+00:00"), mark_row(bob, section, starts, **values)]
    job = job_run("attendance_marks", rows, actor=registrar)
    assert job.status == ImportJob.Status.FAILED
    assert (job.errors[0]["line"], job.error_count) == (3, 1)
    assert message in job.errors[0]["message"]
    assert not ClassSession.objects.exists()
    assert not AttendanceRecord.objects.exists()


def test_a_mark_needs_an_enrollment_in_the_section(registrar, section):
    job = job_run(
        "attendance_marks", [mark_row(StudentFactory(), section, "2026-03-02T09:00:00+00:00")], actor=registrar
    )
    assert job.status == ImportJob.Status.FAILED
    assert "no enrollment" in job.errors[0]["message"]


def test_a_session_that_two_groups_share_is_refused_as_ambiguous(registrar, section):
    (ann,) = enrolled(section)
    first = ClassSessionFactory(section=section, state="closed")
    ClassSessionFactory(section=section, state="closed", starts_at=first.starts_at)
    job = job_run("attendance_marks", [mark_row(ann, section, first.starts_at.isoformat())], actor=registrar)
    assert job.status == ImportJob.Status.FAILED
    assert "more than one session" in job.errors[0]["message"]


def test_a_section_graded_on_attendance_recomputes_its_grade_once(
    registrar, section, past_term, monkeypatch, django_capture_on_commit_callbacks
):
    graded = section
    plain = SectionFactory(term=past_term, course__code="PHY102")
    SectionAttendanceGradeFactory(section=graded)
    ann = enrolled(graded)[0]
    EnrollmentFactory(student=ann, section=plain)
    sent = []
    monkeypatch.setattr(history_bulk, "enqueue", lambda name, **kwargs: sent.append((name, kwargs)))
    rows = [
        mark_row(ann, graded, "2026-03-02T09:00:00+00:00"),
        mark_row(ann, graded, "2026-03-09T09:00:00+00:00"),
        mark_row(ann, plain, "2026-03-02T11:00:00+00:00"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        job = job_run("attendance_marks", rows, actor=registrar)
    assert job.status == ImportJob.Status.SUCCEEDED, job.errors
    assert [name for name, _ in sent if name == "attendance.grades_compute"] == ["attendance.grades_compute"]
    assert ("attendance.grades_compute", {"section_id": graded.pk}) in sent


def test_mark_queries_do_not_grow_with_rows(registrar, section, settings):
    settings.IMPORT_JOB_CHUNK_ROWS = 1000
    students = enrolled(section, 30)
    starts = [f"2026-03-{day:02d}T09:00:00+00:00" for day in (2, 9)]

    def queries(count: int) -> int:
        AttendanceRecord.objects.all().delete()
        ClassSession.objects.all().delete()
        rows = [mark_row(s, section, when) for s in students[:count] for when in starts]
        with CaptureQueriesContext(connection) as captured:
            job = job_run("attendance_marks", rows, actor=registrar)
        assert job.status == ImportJob.Status.SUCCEEDED, job.errors
        return len(captured)

    assert queries(30) == queries(3)


def test_a_session_not_yet_over_is_not_history(registrar, term):
    live = SectionFactory(term=term, course__code="PHY201")
    (ann,) = enrolled(live)
    later_today = (timezone.now() + datetime.timedelta(minutes=30)).isoformat()
    job = job_run("attendance_marks", [mark_row(ann, live, later_today)], actor=registrar)
    assert job.status == ImportJob.Status.FAILED
    assert "has not ended yet" in job.errors[0]["message"]
