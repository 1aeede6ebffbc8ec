"""Bulk history imports of past enrollments and grades (students/history_bulk.py), through the job engine."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campusiq.core.models import AuditLogEntry, ImportJob
from students.models import Enrollment, Grade
from tests.factories import AssessmentFactory, EnrollmentFactory, SectionFactory, StudentFactory, UserFactory
from tests.support.imports import job_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def registrar():
    return UserFactory(is_staff=True)


@pytest.fixture
def section(past_term):
    return SectionFactory(term=past_term, course__code="MAT101", code="A")


def enrollment_row(student, section, **values) -> dict:
    row = {
        "student_number": student.student_number,
        "term": section.term.name,
        "course": section.course.code,
        "section": section.code,
        "status": "completed",
        "enrolled_on": section.term.start_date.isoformat(),
        "ended_on": "",
    }
    return {**row, **values}


def grade_row(student, exam, score, **values) -> dict:
    section = exam.section
    row = {
        "student_number": student.student_number,
        "term": section.term.name,
        "course": section.course.code,
        "section": section.code,
        "assessment": exam.name,
        "score": str(score),
        "recorded_on": section.term.end_date.isoformat(),
    }
    return {**row, **values}


def test_enrollments_of_the_past_are_imported_withdrawn_and_completed_alike(registrar, section):
    graduated = StudentFactory(status="graduated")  # enrollment_create would refuse: not active
    left = StudentFactory(status="withdrawn")
    withdrawn_on = section.term.start_date + datetime.timedelta(weeks=6)
    job = job_run(
        "enrollments",
        [
            enrollment_row(graduated, section),
            enrollment_row(left, section, status="withdrawn", ended_on=withdrawn_on.isoformat()),
        ],
        actor=registrar,
    )
    assert job.status == ImportJob.Status.SUCCEEDED, job.errors
    assert (job.rows_done, job.rows_written, job.error_count) == (2, 2, 0)
    assert Enrollment.objects.get(student=graduated).status == "enrolled"
    ended = Enrollment.objects.get(student=left)
    assert (ended.status, ended.ended_on) == ("withdrawn", withdrawn_on)
    entries = AuditLogEntry.objects.filter(verb="import.enrollments")
    assert entries.count() == 1  # one entry for the job, none per row
    assert entries.get().changes["rows"] == [None, 2]


def test_a_rerun_changes_nothing_and_an_updated_file_updates(registrar, section):
    student = StudentFactory()
    rows = [enrollment_row(student, section)]
    job_run("enrollments", rows, actor=registrar)
    before = Enrollment.objects.get(student=student).updated_at
    again = job_run("enrollments", rows, actor=registrar)
    assert (again.status, again.rows_written) == (ImportJob.Status.SUCCEEDED, 0)
    assert Enrollment.objects.get(student=student).updated_at == before
    dropped_on = section.term.start_date + datetime.timedelta(days=3)
    updated = job_run(
        "enrollments",
        [enrollment_row(student, section, status="dropped", ended_on=dropped_on.isoformat())],
        actor=registrar,
    )
    assert updated.rows_written == 1
    assert Enrollment.objects.get(student=student).status == "dropped"
    assert Enrollment.objects.count() == 1


@pytest.mark.parametrize(
    "values, message",
    [
        ({"enrolled_on": "2020-01-01"}, "outside the term"),
        ({"status": "withdrawn"}, "needs ended_on"),
        ({"status": "graduated"}, "Unknown status"),
        ({"course": "NOPE1"}, "No section"),
        ({"student_number": "S-UNKNOWN"}, "No student"),
        ({"enrolled_on": "next week"}, "not a date"),
    ],
)
def test_a_bad_row_fails_the_job_with_its_line_and_writes_nothing(registrar, section, values, message):
    good, bad = StudentFactory(), StudentFactory()
    job = job_run(
        "enrollments", [enrollment_row(good, section), enrollment_row(bad, section, **values)], actor=registrar
    )
    assert job.status == ImportJob.Status.FAILED
    assert job.error_count == 1
    assert job.errors[0]["line"] == 3  # the header is line 1
    assert message in job.errors[0]["message"]
    assert not Enrollment.objects.exists()
    assert not AuditLogEntry.objects.filter(verb="import.enrollments").exists()
    assert AuditLogEntry.objects.filter(verb="import.failed").count() == 1


def test_a_withdrawn_students_grades_are_imported_after_the_withdrawal(registrar, section):
    student = StudentFactory()
    EnrollmentFactory(student=student, section=section, status="withdrawn", ended_on=section.term.start_date)
    exam = AssessmentFactory(section=section, name="Exam", max_score=Decimal("20"))
    job = job_run("grades", [grade_row(student, exam, "12.5")], actor=registrar)
    assert job.status == ImportJob.Status.SUCCEEDED, job.errors
    assert Grade.objects.get(student=student, assessment=exam).score == Decimal("12.50")
    again = job_run("grades", [grade_row(student, exam, "12.5")], actor=registrar)
    assert again.rows_written == 0
    changed = job_run("grades", [grade_row(student, exam, "14")], actor=registrar)
    assert changed.rows_written == 1
    assert Grade.objects.get(student=student, assessment=exam).score == Decimal("14.00")


@pytest.mark.parametrize(
    "score, values, message",
    [
        ("21", {}, "outside 0 to 20"),
        ("-1", {}, "outside 0 to 20"),
        ("ten", {}, "not a number"),
        ("10", {"assessment": "Quiz 9"}, "No assessment"),
        ("10", {"recorded_on": "2019-05-01"}, "outside the term"),
    ],
)
def test_a_grade_outside_its_bounds_fails_the_job(registrar, section, score, values, message):
    student = StudentFactory()
    EnrollmentFactory(student=student, section=section)
    exam = AssessmentFactory(section=section, name="Exam", max_score=Decimal("20"))
    job = job_run(
        "grades", [grade_row(student, exam, "10"), grade_row(student, exam, score, **values)], actor=registrar
    )
    assert job.status == ImportJob.Status.FAILED
    assert message in job.errors[0]["message"]
    assert job.errors[0]["line"] == 3
    assert not Grade.objects.exists()


def test_a_grade_needs_an_enrollment_in_the_section(registrar, section):
    exam = AssessmentFactory(section=section, name="Exam")
    job = job_run("grades", [grade_row(StudentFactory(), exam, "10")], actor=registrar)
    assert job.status == ImportJob.Status.FAILED
    assert "no enrollment" in job.errors[0]["message"]


def test_grade_queries_do_not_grow_with_rows(registrar, section, settings):
    settings.IMPORT_JOB_CHUNK_ROWS = 1000
    exam = AssessmentFactory(section=section, name="Exam")
    students = StudentFactory.create_batch(40)
    for student in students:
        EnrollmentFactory(student=student, section=section)

    def queries(count: int) -> int:
        Grade.objects.all().delete()
        with CaptureQueriesContext(connection) as captured:
            job = job_run("grades", [grade_row(s, exam, "10") for s in students[:count]], actor=registrar)
        assert (job.status, job.rows_written) == (ImportJob.Status.SUCCEEDED, count)
        return len(captured)

    assert queries(40) == queries(4)


@pytest.mark.postgres
def test_postgresql_upserts_change_the_rows_in_place(registrar, section):
    students = StudentFactory.create_batch(3)
    for student in students:
        EnrollmentFactory(student=student, section=section)
    exam = AssessmentFactory(section=section, name="Exam")
    job_run("grades", [grade_row(s, exam, "10") for s in students], actor=registrar)
    ids = dict(Grade.objects.values_list("student_id", "pk"))
    job = job_run("grades", [grade_row(s, exam, "15") for s in students], actor=registrar)
    assert (job.status, job.rows_written) == (ImportJob.Status.SUCCEEDED, 3)
    assert dict(Grade.objects.values_list("student_id", "pk")) == ids  # ON CONFLICT DO UPDATE, not new rows
    assert set(Grade.objects.values_list("score", flat=True)) == {Decimal("15.00")}
