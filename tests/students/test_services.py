"""The rules services enforce: valid and invalid cases, and nothing written on invalid input."""

import datetime
from decimal import Decimal

import pytest

from accounts.roles import Role
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from students import services
from students.errors import CampusErrorCode as Code
from students.models import Assessment, Enrollment, Grade, Student, TermOutcome
from students.selectors import course_standings
from tests.factories import (
    TERM_START,
    AssessmentFactory,
    CourseFactory,
    EnrollmentFactory,
    GradeFactory,
    ProgramFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    TermOutcomeFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def audit_verbs() -> list[str]:
    return list(AuditLogEntry.objects.order_by("id").values_list("verb", flat=True))


# --- students -------------------------------------------------------------------------------


def test_student_create_makes_user_role_and_profile(registrar):
    advisor = UserFactory(roles=[Role.ADVISOR])
    student = services.student_create(
        email="Nova@Campus.Example",
        first_name="Nova",
        last_name="Reis",
        student_number="S2026001",
        program=ProgramFactory(),
        semester=3,
        advisor=advisor,
        actor=registrar,
    )
    assert student.user.email == "nova@campus.example"
    assert not student.user.has_usable_password()
    assert student.user.groups.filter(name="Student").exists()
    assert student.advisor == advisor and student.semester == 3
    assert audit_verbs() == ["role.granted", "student.created"]


@pytest.mark.parametrize("semester", [0, 9, 20])
def test_semester_outside_configured_range_is_refused(semester, registrar):
    with pytest.raises(ServiceError) as error:
        services.student_create(
            email="x@campus.example",
            first_name="X",
            last_name="Y",
            student_number="S1",
            program=ProgramFactory(),
            semester=semester,
            actor=registrar,
        )
    assert error.value.code == Code.SEMESTER_OUT_OF_RANGE and error.value.field == "semester"
    assert not Student.objects.exists() and not AuditLogEntry.objects.exists()


def test_semester_range_is_configurable(settings, registrar):
    settings.CAMPUSIQ_SEMESTER_RANGE = (1, 12)
    student = services.student_create(
        email="x@campus.example",
        first_name="X",
        last_name="Y",
        student_number="S1",
        program=ProgramFactory(),
        semester=12,
        actor=registrar,
    )
    assert student.semester == 12


def test_duplicate_student_number_and_email_are_conflicts(registrar):
    existing = StudentFactory(student_number="S1")
    common = {"first_name": "A", "last_name": "B", "program": existing.program, "actor": registrar}
    with pytest.raises(ServiceError) as error:
        services.student_create(email="new@campus.example", student_number="S1", **common)
    assert error.value.code == Code.STUDENT_NUMBER_TAKEN and error.value.status == 409
    with pytest.raises(ServiceError) as error:
        services.student_create(email=existing.user.email.upper(), student_number="S2", **common)
    assert error.value.code == Code.EMAIL_TAKEN
    assert Student.objects.count() == 1


def test_advisor_must_hold_the_advisor_role(registrar):
    student = StudentFactory()
    with pytest.raises(ServiceError) as error:
        services.student_update(student=student, advisor=UserFactory(), actor=registrar)
    assert error.value.code == Code.ADVISOR_NOT_ADVISOR
    student.refresh_from_db()
    assert student.advisor is None


def test_student_update_audits_changes(registrar):
    student = StudentFactory(semester=2)
    services.student_update(student=student, semester=3, status=Student.Status.SUSPENDED, actor=registrar)
    entry = AuditLogEntry.objects.get(verb="student.updated")
    assert entry.changes == {"semester": [2, 3], "status": ["active", "suspended"]}


def test_student_update_refuses_other_fields(registrar):
    with pytest.raises(ValueError):
        services.student_update(student=StudentFactory(), student_number="S9", actor=registrar)


# --- enrollments ----------------------------------------------------------------------------


def test_enroll_and_duplicate_is_conflict(registrar):
    student, section = StudentFactory(), SectionFactory()
    enrollment = services.enrollment_create(
        student=student, section=section, enrolled_on=section.term.start_date, actor=registrar
    )
    assert enrollment.status == Enrollment.Status.ENROLLED
    with pytest.raises(ServiceError) as error:
        services.enrollment_create(
            student=student, section=section, enrolled_on=section.term.start_date, actor=registrar
        )
    assert error.value.code == Code.ALREADY_ENROLLED and error.value.status == 409
    assert Enrollment.objects.count() == 1


def test_full_section_refuses(registrar):
    section = SectionFactory(capacity=1)
    EnrollmentFactory(section=section)
    with pytest.raises(ServiceError) as error:
        services.enrollment_create(
            student=StudentFactory(), section=section, enrolled_on=section.term.start_date, actor=registrar
        )
    assert error.value.code == Code.SECTION_FULL
    assert Enrollment.objects.count() == 1


def test_dropped_seat_is_free_again(registrar):
    section = SectionFactory(capacity=1)
    taken = EnrollmentFactory(section=section)
    services.enrollment_end(enrollment=taken, on=section.term.start_date, actor=registrar)
    services.enrollment_create(
        student=StudentFactory(), section=section, enrolled_on=section.term.start_date, actor=registrar
    )
    assert section.enrollments.filter(status=Enrollment.Status.ENROLLED).count() == 1


@pytest.mark.parametrize("status", [Student.Status.SUSPENDED, Student.Status.GRADUATED, Student.Status.WITHDRAWN])
def test_only_active_students_enrol(status, registrar):
    section = SectionFactory()
    with pytest.raises(ServiceError) as error:
        services.enrollment_create(
            student=StudentFactory(status=status), section=section, enrolled_on=section.term.start_date
        )
    assert error.value.code == Code.STUDENT_NOT_ACTIVE
    assert not Enrollment.objects.exists()


def test_enrolment_date_after_term_is_refused():
    section = SectionFactory()
    with pytest.raises(ServiceError) as error:
        services.enrollment_create(
            student=StudentFactory(), section=section, enrolled_on=section.term.end_date + datetime.timedelta(days=1)
        )
    assert error.value.code == Code.DATE_OUTSIDE_TERM


def test_ending_before_deadline_is_drop_after_is_withdrawal(registrar):
    term = TermFactory()
    early, late = (
        EnrollmentFactory(section=SectionFactory(term=term)),
        EnrollmentFactory(section=SectionFactory(term=term)),
    )
    services.enrollment_end(enrollment=early, on=term.add_drop_deadline, actor=registrar)
    services.enrollment_end(enrollment=late, on=term.add_drop_deadline + datetime.timedelta(days=1), actor=registrar)
    assert (early.status, early.ended_on) == (Enrollment.Status.DROPPED, term.add_drop_deadline)
    assert late.status == Enrollment.Status.WITHDRAWN
    with pytest.raises(ServiceError) as error:
        services.enrollment_end(enrollment=late, actor=registrar)
    assert error.value.code == Code.ENROLLMENT_NOT_ACTIVE


# --- assessments and grades -----------------------------------------------------------------


def test_weights_may_not_exceed_100():
    section = SectionFactory()
    services.assessment_save(assessment=Assessment(section=section, name="Midterm", weight=Decimal("60"), max_score=20))
    services.assessment_save(assessment=Assessment(section=section, name="Final", weight=Decimal("40"), max_score=20))
    with pytest.raises(ServiceError) as error:
        services.assessment_save(assessment=Assessment(section=section, name="Quiz", weight=Decimal("1"), max_score=20))
    assert error.value.code == Code.WEIGHTS_OVER_100
    assert section.assessments.count() == 2


def test_changing_a_weight_counts_the_others_only():
    section = SectionFactory()
    midterm = services.assessment_save(
        assessment=Assessment(section=section, name="Midterm", weight=Decimal("60"), max_score=20)
    )
    services.assessment_save(assessment=Assessment(section=section, name="Final", weight=Decimal("40"), max_score=20))
    midterm.weight = Decimal("60")
    services.assessment_save(assessment=midterm)
    midterm.weight = Decimal("61")
    with pytest.raises(ServiceError):
        services.assessment_save(assessment=midterm)
    assert Assessment.objects.get(pk=midterm.pk).weight == Decimal("60")


@pytest.fixture
def enrolled():
    enrollment = EnrollmentFactory()
    assessment = AssessmentFactory(section=enrollment.section, max_score=Decimal("20"))
    return enrollment.student, assessment


@pytest.mark.parametrize("score", [Decimal("0"), Decimal("20"), Decimal("13.5")])
def test_score_within_range_is_recorded(enrolled, score):
    student, assessment = enrolled
    grade = services.grade_record(student=student, assessment=assessment, score=score, actor=None)
    assert grade.score == score


@pytest.mark.parametrize("score", [Decimal("-0.01"), Decimal("20.01"), Decimal("100")])
def test_score_outside_range_writes_nothing(enrolled, score):
    student, assessment = enrolled
    with pytest.raises(ServiceError) as error:
        services.grade_record(student=student, assessment=assessment, score=score, actor=None)
    assert error.value.code == Code.SCORE_OUT_OF_RANGE and error.value.field == "score"
    assert not Grade.objects.exists() and not AuditLogEntry.objects.exists()


def test_grade_needs_an_active_enrollment():
    assessment = AssessmentFactory()
    with pytest.raises(ServiceError) as error:
        services.grade_record(student=StudentFactory(), assessment=assessment, score=Decimal("10"), actor=None)
    assert error.value.code == Code.NOT_ENROLLED
    dropped = EnrollmentFactory(
        section=assessment.section, status=Enrollment.Status.DROPPED, ended_on=assessment.section.term.start_date
    )
    with pytest.raises(ServiceError):
        services.grade_record(student=dropped.student, assessment=assessment, score=Decimal("10"), actor=None)
    assert not Grade.objects.exists()


def test_grade_changes_are_audited_with_before_and_after(enrolled):
    student, assessment = enrolled
    lecturer = UserFactory(roles=[Role.LECTURER])
    services.grade_record(student=student, assessment=assessment, score=Decimal("12"), actor=lecturer)
    services.grade_record(student=student, assessment=assessment, score=Decimal("12"), actor=lecturer)  # no change
    services.grade_record(
        student=student, assessment=assessment, score=Decimal("15.5"), actor=lecturer, reason="re-marked"
    )
    entries = list(AuditLogEntry.objects.filter(verb__startswith="grade.").order_by("id"))
    assert [(e.verb, e.changes, e.actor_id) for e in entries] == [
        ("grade.recorded", {"score": [None, "12.00"]}, lecturer.pk),
        ("grade.changed", {"score": ["12.00", "15.50"]}, lecturer.pk),
    ]
    assert entries[1].reason == "re-marked"
    assert Grade.objects.get().score == Decimal("15.5")


# --- closing a term -------------------------------------------------------------------------


@pytest.fixture
def closed_term_setup():
    """Two sections of one term; weights 40/60; hand-computed final grades below."""
    term = TermFactory()
    algebra = SectionFactory(term=term, course=CourseFactory(credits=6))
    essay = SectionFactory(term=term, course=CourseFactory(credits=3))
    parts = {}
    for section in (algebra, essay):
        parts[section.pk] = (
            AssessmentFactory(section=section, name="Test", weight=Decimal("40"), max_score=Decimal("20")),
            AssessmentFactory(section=section, name="Exam", weight=Decimal("60"), max_score=Decimal("100")),
        )
    return term, algebra, essay, parts


def grade_all(student, section, parts, test_score, exam_score):
    test, exam = parts[section.pk]
    if test_score is not None:
        GradeFactory(student=student, assessment=test, score=Decimal(test_score))
    if exam_score is not None:
        GradeFactory(student=student, assessment=exam, score=Decimal(exam_score))


def test_term_close_computes_finals_and_outcomes(closed_term_setup, registrar):
    term, algebra, essay, parts = closed_term_setup
    good, weak, quitter, kept = StudentFactory(), StudentFactory(), StudentFactory(), StudentFactory()
    for student in (good, weak, kept):
        for section in (algebra, essay):
            EnrollmentFactory(student=student, section=section)
    grade_all(good, algebra, parts, "15", "70")  # 0.75*40 + 0.70*60 = 72
    grade_all(good, essay, parts, "10", None)  # 20 + 0 = 20  -> credit-weighted (72*6 + 20*3)/9 = 54.67
    grade_all(weak, algebra, parts, "10", "40")  # 20 + 24 = 44
    grade_all(weak, essay, parts, "20", "60")  # 40 + 36 = 76  -> (44*6 + 76*3)/9 = 54.67
    EnrollmentFactory(student=quitter, section=algebra, status=Enrollment.Status.WITHDRAWN, ended_on=term.end_date)
    TermOutcomeFactory(student=kept, term=term, outcome=TermOutcome.Outcome.FAILED, source=TermOutcome.Source.STAFF)

    result = services.term_close(term=term, actor=registrar)

    finals = {
        (e.student_id, e.section_id): e.final_grade
        for e in Enrollment.objects.filter(status=Enrollment.Status.ENROLLED)
    }
    assert finals[(good.pk, algebra.pk)] == Decimal("72.00")
    assert finals[(good.pk, essay.pk)] == Decimal("20.00")
    assert finals[(weak.pk, algebra.pk)] == Decimal("44.00")
    assert finals[(kept.pk, algebra.pk)] == Decimal("0.00")
    outcomes = dict(TermOutcome.objects.filter(term=term).values_list("student_id", "outcome"))
    assert outcomes == {good.pk: "passed", weak.pk: "passed", quitter.pk: "withdrew", kept.pk: "failed"}
    assert TermOutcome.objects.get(student=kept).source == TermOutcome.Source.STAFF
    assert result == {"sections": 2, "outcomes": 3, "kept": 1}
    assert AuditLogEntry.objects.filter(verb="term.closed", object_id=str(term.pk)).exists()


def test_credit_weighting_decides_a_borderline_term(closed_term_setup):
    term, algebra, essay, parts = closed_term_setup
    student = StudentFactory()
    for section in (algebra, essay):
        EnrollmentFactory(student=student, section=section)
    grade_all(student, algebra, parts, "8", "40")  # 16 + 24 = 40 (6 credits)
    grade_all(student, essay, parts, "20", "100")  # 100 (3 credits) -> (240 + 300)/9 = 60 -> passed
    services.term_close(term=term, actor=None)
    assert TermOutcome.objects.get(student=student).outcome == "passed"


def test_term_close_is_idempotent_and_follows_corrections(closed_term_setup):
    term, algebra, _, parts = closed_term_setup
    student = StudentFactory()
    EnrollmentFactory(student=student, section=algebra)
    grade_all(student, algebra, parts, "5", "30")  # 10 + 18 = 28 -> failed
    services.term_close(term=term, actor=None)
    assert TermOutcome.objects.get(student=student).outcome == "failed"
    services.grade_record(student=student, assessment=parts[algebra.pk][1], score=Decimal("90"), actor=None)
    services.term_close(term=term, actor=None)  # 10 + 54 = 64 -> passed
    assert TermOutcome.objects.filter(student=student).count() == 1
    assert TermOutcome.objects.get(student=student).outcome == "passed"


def test_term_close_refuses_incomplete_weights(registrar):
    section = SectionFactory()
    AssessmentFactory(section=section, weight=Decimal("70"))
    EnrollmentFactory(section=section)
    with pytest.raises(ServiceError) as error:
        services.term_close(term=section.term, actor=registrar)
    assert error.value.code == Code.WEIGHTS_INCOMPLETE
    assert not TermOutcome.objects.exists()
    assert not AuditLogEntry.objects.filter(verb="term.closed").exists()


def test_dropped_only_student_gets_no_outcome():
    enrollment = EnrollmentFactory(status=Enrollment.Status.DROPPED, ended_on=TERM_START)
    assert services.term_outcome_decide([enrollment]) is None


def test_staff_outcome_is_audited(registrar):
    student, term = StudentFactory(), TermFactory()
    services.term_outcome_set(student=student, term=term, outcome="failed", actor=registrar, note="exam board")
    services.term_outcome_set(student=student, term=term, outcome="passed", actor=registrar, note="appeal upheld")
    record = TermOutcome.objects.get()
    assert (record.outcome, record.source, record.note) == ("passed", "staff", "appeal upheld")
    changes = [e.changes for e in AuditLogEntry.objects.filter(verb="term_outcome.set").order_by("id")]
    assert changes == [{"outcome": [None, "failed"]}, {"outcome": ["failed", "passed"]}]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_entries_of_one_grade_make_one_row():
    import threading

    from django.db import connection

    enrollment = EnrollmentFactory()
    assessment = AssessmentFactory(section=enrollment.section, max_score=Decimal("20"))
    barrier, errors = threading.Barrier(4), []

    def enter(score: str) -> None:
        try:
            barrier.wait()
            services.grade_record(student=enrollment.student, assessment=assessment, score=Decimal(score), actor=None)
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=enter, args=(str(10 + i),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Grade.objects.filter(student=enrollment.student, assessment=assessment).count() == 1
    assert AuditLogEntry.objects.filter(verb="grade.recorded").count() == 1


# --- computed assessments (attendance as a grade) ------------------------------------------------


@pytest.fixture
def computed():
    enrollment = EnrollmentFactory()
    assessment = AssessmentFactory(section=enrollment.section, name="Attendance", max_score=Decimal(100), computed=True)
    return enrollment.student, assessment


def test_a_computed_assessment_refuses_hand_entered_grades(computed):
    student, assessment = computed
    with pytest.raises(ServiceError) as error:
        services.grade_record(student=student, assessment=assessment, score=Decimal("80"), actor=None)
    assert (error.value.code, error.value.field) == (Code.GRADE_COMPUTED, "score")
    assert "computed by CampusIQ" in error.value.detail
    assert not Grade.objects.exists() and not AuditLogEntry.objects.exists()


def test_computed_grades_are_written_changed_and_removed_only_when_they_change(computed):
    student, assessment = computed
    other = EnrollmentFactory(section=assessment.section).student
    third = EnrollmentFactory(section=assessment.section).student
    assert (
        services.grades_computed_set(assessment=assessment, scores={student.pk: Decimal("66.666"), other.pk: 50}) == 2
    )
    assert services.grades_computed_set(assessment=assessment, scores={student.pk: Decimal("66.67"), other.pk: 50}) == 0
    changed = services.grades_computed_set(
        assessment=assessment, scores={student.pk: Decimal(70), other.pk: None, third.pk: None}
    )
    assert changed == 2
    assert dict(Grade.objects.values_list("student_id", "score")) == {student.pk: Decimal("70.00")}
    entries = AuditLogEntry.objects.filter(verb="grade.computed").order_by("id")
    assert [e.changes for e in entries] == [
        {"created": [None, 2], "changed": [None, 0], "removed": [None, 0]},
        {"created": [None, 0], "changed": [None, 1], "removed": [None, 1]},
    ]


def test_computed_grades_are_only_for_computed_assessments(enrolled):
    student, assessment = enrolled
    with pytest.raises(ValueError, match="entered by hand"):
        services.grades_computed_set(assessment=assessment, scores={student.pk: Decimal(10)})
    assert not Grade.objects.exists()


def test_a_computed_grade_counts_in_the_running_average_like_any_other(computed):
    student, attendance = computed
    attendance.weight = Decimal(10)
    attendance.save(update_fields=["weight"])
    quiz = AssessmentFactory(section=attendance.section, weight=Decimal(30), max_score=Decimal(20))
    services.grade_record(student=student, assessment=quiz, score=Decimal(10), actor=None)  # 50 % of 30
    services.grades_computed_set(assessment=attendance, scores={student.pk: Decimal(90)})  # 90 % of 10
    [standing] = course_standings(student=student, term=attendance.section.term)
    assert standing.running_average == Decimal("60.0")  # (15 + 9) / 40
