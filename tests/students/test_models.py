"""What the database itself refuses: each constraint, with a valid and an invalid case."""

import datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from students.models import Course, Enrollment, Student, Term, TermOutcome
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    EnrollmentFactory,
    GradeFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    TermOutcomeFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def refused(factory, **kwargs) -> bool:
    try:
        with transaction.atomic():
            factory(**kwargs)
    except IntegrityError:
        return True
    return False


@pytest.mark.parametrize(("credits", "ok"), [(1, True), (60, True), (0, False), (61, False)])
def test_course_credits_range(credits, ok):
    assert refused(CourseFactory, credits=credits) is not ok


def test_course_code_unique():
    CourseFactory(code="CS101")
    assert refused(CourseFactory, code="CS101")


@pytest.mark.parametrize(
    ("start", "end", "deadline", "ok"),
    [
        ("2026-09-01", "2026-12-20", "2026-09-15", True),
        ("2026-09-01", "2026-09-01", "2026-09-01", False),
        ("2026-09-01", "2026-08-01", "2026-08-15", False),
        ("2026-09-01", "2026-12-20", "2026-08-31", False),
        ("2026-09-01", "2026-12-20", "2026-12-21", False),
    ],
)
def test_term_dates(start, end, deadline, ok):
    as_date = datetime.date.fromisoformat
    assert (
        refused(TermFactory, start_date=as_date(start), end_date=as_date(end), add_drop_deadline=as_date(deadline))
        is not ok
    )


def test_section_unique_per_course_term_code():
    section = SectionFactory(code="A")
    assert refused(SectionFactory, course=section.course, term=section.term, code="A")
    assert not refused(SectionFactory, course=section.course, term=section.term, code="B")


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"capacity": 1}, True),
        ({"capacity": 0}, False),
        ({"min_attendance_rate": Decimal("1.00")}, True),
        ({"min_attendance_rate": Decimal("1.01")}, False),
    ],
)
def test_section_ranges(fields, ok):
    assert refused(SectionFactory, **fields) is not ok


def test_student_number_unique_and_one_profile_per_user():
    student = StudentFactory(student_number="S0000001")
    assert refused(StudentFactory, student_number="S0000001")
    assert refused(StudentFactory, user=student.user)


def test_student_semester_and_status():
    assert refused(StudentFactory, semester=0)
    assert refused(StudentFactory, status="expelled")
    assert not refused(StudentFactory, status=Student.Status.SUSPENDED)


def test_student_cannot_advise_themself():
    user = UserFactory()
    assert refused(StudentFactory, user=user, advisor=user)


def test_enrollment_unique_per_student_and_section():
    enrollment = EnrollmentFactory()
    assert refused(EnrollmentFactory, student=enrollment.student, section=enrollment.section)


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"status": Enrollment.Status.ENROLLED}, True),
        ({"status": Enrollment.Status.ENROLLED, "ended_on": datetime.date(2026, 10, 1)}, False),
        ({"status": Enrollment.Status.DROPPED}, False),
        ({"status": Enrollment.Status.DROPPED, "ended_on": datetime.date(2026, 9, 20)}, True),
        ({"status": Enrollment.Status.WITHDRAWN, "ended_on": datetime.date(2026, 9, 1)}, False),
        ({"final_grade": Decimal("100")}, True),
        ({"final_grade": Decimal("100.01")}, False),
        ({"final_grade": Decimal("-1")}, False),
    ],
)
def test_enrollment_status_dates_and_final_grade(fields, ok):
    assert refused(EnrollmentFactory, **fields) is not ok


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"weight": Decimal("100")}, True),
        ({"weight": Decimal("0")}, False),
        ({"weight": Decimal("100.5")}, False),
        ({"max_score": Decimal("0")}, False),
    ],
)
def test_assessment_ranges(fields, ok):
    assert refused(AssessmentFactory, **fields) is not ok


def test_assessment_name_unique_per_section():
    assessment = AssessmentFactory(name="Midterm")
    assert refused(AssessmentFactory, section=assessment.section, name="Midterm")


def test_grade_not_negative_and_unique():
    grade = GradeFactory()
    assert refused(GradeFactory, score=Decimal("-0.5"))
    assert refused(GradeFactory, student=grade.student, assessment=grade.assessment)


def test_term_outcome_unique_and_valid():
    outcome = TermOutcomeFactory()
    assert refused(TermOutcomeFactory, student=outcome.student, term=outcome.term)
    assert refused(TermOutcomeFactory, outcome="dropped_out")
    assert refused(TermOutcomeFactory, source="guessed")
    assert not refused(TermOutcomeFactory, outcome=TermOutcome.Outcome.WITHDREW)


def test_str_representations():
    section = SectionFactory(course=CourseFactory(code="MA101", title="Calculus"), term=TermFactory(name="2026 Autumn"))
    assert str(section) == "MA101-A (2026 Autumn)"
    assert str(Course.objects.get(code="MA101")) == "MA101 Calculus"
    assert str(Term.objects.get(name="2026 Autumn")) == "2026 Autumn"
