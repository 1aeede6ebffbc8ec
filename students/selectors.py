"""Reads of the campus domain. Access to people's data goes through the *_visible_to selectors, so
no view can forget the permission check: what a viewer may not see is simply not there (404)."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.access import is_registry_staff
from accounts.models import User
from accounts.roles import Role
from accounts.services import user_has_role, user_roles
from students.models import Assessment, Enrollment, Grade, Section, Student, Term, TermOutcome


def students_visible_to(user: User) -> QuerySet[Student]:
    """Students the user may see: themself, their advisees, the students of sections they teach."""
    if not user.is_authenticated:
        return Student.objects.none()
    students = Student.objects.select_related("user", "program__department", "advisor")
    if is_registry_staff(user):
        return students
    roles = user_roles(user)
    visible = Q(user=user)
    if Role.ADVISOR in roles:
        visible |= Q(advisor=user)
    if Role.LECTURER in roles:
        visible |= Exists(Enrollment.objects.filter(student=OuterRef("pk"), section__lecturers=user))
    return students.filter(visible)


def student_get_visible(*, viewer: User, student_id: int) -> Student:
    """One student, or Student.DoesNotExist when the viewer may not see them (answered as 404)."""
    return students_visible_to(viewer).get(pk=student_id)


def sections_taught_by(user: User) -> QuerySet[Section]:
    return Section.objects.filter(lecturers=user).select_related("course", "term")


def term_current(today=None) -> Term | None:
    """The term running today, else the most recent one that has started, else the next one."""
    from django.utils import timezone

    today = today or timezone.localdate()
    running = Term.objects.filter(start_date__lte=today, end_date__gte=today).order_by("-start_date").first()
    return running or Term.objects.filter(start_date__lte=today).first() or Term.objects.order_by("start_date").first()


def student_rows_visible_to(user: User, rows: QuerySet, *, section_id: str) -> QuerySet:
    """Rows about one student in one section (an enrollment, a grade, an attendance record; `section_id`
    is the path to the section's id): a student's own, a lecturer's sections', an advisor's advisees'."""
    if not user.is_authenticated:
        return rows.none()
    if is_registry_staff(user):
        return rows
    roles = user_roles(user)
    visible = Q(student__user=user)
    if Role.LECTURER in roles:
        # A subquery, not a join through the lecturers: a section taught by two would list its rows twice.
        visible |= Exists(Section.lecturers.through.objects.filter(section_id=OuterRef(section_id), user_id=user.pk))
    if Role.ADVISOR in roles:
        visible |= Q(student__advisor=user)
    return rows.filter(visible)


def enrollments_visible_to(user: User) -> QuerySet[Enrollment]:
    enrollments = Enrollment.objects.select_related("student__user", "section__course", "section__term")
    return student_rows_visible_to(user, enrollments, section_id="section_id")


def grades_visible_to(user: User) -> QuerySet[Grade]:
    grades = Grade.objects.select_related("student__user", "assessment__section__course", "assessment__section__term")
    return student_rows_visible_to(user, grades, section_id="assessment__section_id")


def term_outcomes_visible_to(user: User) -> QuerySet[TermOutcome]:
    return TermOutcome.objects.filter(student__in=students_visible_to(user).values("pk")).select_related(
        "student__user", "term"
    )


def section_taught_by_get(*, user: User, section_id: int) -> Section:
    """A section the user teaches (registrars and admins: any), else Section.DoesNotExist (404)."""
    sections = Section.objects.select_related("course", "term")
    if not is_registry_staff(user):
        sections = sections.filter(lecturers=user)
    return sections.get(pk=section_id)


def assessment_gradable_by(*, user: User, assessment: Assessment) -> bool:
    """Lecturers grade their own sections' assessments; registrars and admins any."""
    if is_registry_staff(user):
        return True
    return user_has_role(user, Role.LECTURER) and assessment.section.lecturers.filter(pk=user.pk).exists()


@dataclass(frozen=True)
class AssessmentStanding:
    assessment: Assessment
    score: Decimal | None

    @property
    def percent(self) -> Decimal | None:
        if self.score is None:
            return None
        return (self.score / self.assessment.max_score * 100).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class CourseStanding:
    enrollment: Enrollment
    assessments: list[AssessmentStanding]

    @property
    def graded_weight(self) -> Decimal:
        return sum((a.assessment.weight for a in self.assessments if a.score is not None), Decimal(0))

    @property
    def running_average(self) -> Decimal | None:
        """Weighted average, in percent, of the assessments graded so far (None before the first)."""
        weight = self.graded_weight
        if not weight:
            return None
        earned = sum(
            (a.score / a.assessment.max_score * a.assessment.weight for a in self.assessments if a.score is not None),
            Decimal(0),
        )
        return (earned / weight * 100).quantize(Decimal("0.1"))


def course_standings(*, student: Student, term: Term) -> list[CourseStanding]:
    """The student's courses in a term, each with its assessments, their scores and the running
    weighted average. Three queries whatever the number of courses."""
    enrollments = list(
        Enrollment.objects.filter(student=student, section__term=term)
        .select_related("section__course", "section__term")
        .order_by("section__course__code")
    )
    section_ids = [e.section_id for e in enrollments]
    assessments_by_section: dict[int, list[Assessment]] = {}
    for assessment in Assessment.objects.filter(section_id__in=section_ids).order_by("due_date", "name"):
        assessments_by_section.setdefault(assessment.section_id, []).append(assessment)
    scores = dict(
        Grade.objects.filter(student=student, assessment__section_id__in=section_ids).values_list(
            "assessment_id", "score"
        )
    )
    return [
        CourseStanding(
            enrollment=enrollment,
            assessments=[
                AssessmentStanding(assessment=a, score=scores.get(a.pk))
                for a in assessments_by_section.get(enrollment.section_id, [])
            ],
        )
        for enrollment in enrollments
    ]


@dataclass(frozen=True)
class PastTerm:
    term: Term
    enrollments: list[Enrollment]
    outcome: TermOutcome | None


def student_past_terms(*, viewer: User, student: Student, before: Term | None) -> list[PastTerm]:
    """The student's terms that started before `before`, newest first, with final grades and outcome,
    as `viewer` may see them. Two queries."""
    enrollments = enrollments_visible_to(viewer).filter(student=student)
    outcomes = term_outcomes_visible_to(viewer).filter(student=student)
    if before is not None:
        enrollments = enrollments.filter(section__term__start_date__lt=before.start_date)
        outcomes = outcomes.filter(term__start_date__lt=before.start_date)
    terms: dict[int, Term] = {}
    by_term: dict[int, list[Enrollment]] = {}
    for enrollment in enrollments.order_by("section__course__code", "section__code"):
        terms[enrollment.section.term_id] = enrollment.section.term
        by_term.setdefault(enrollment.section.term_id, []).append(enrollment)
    outcome_by_term: dict[int, TermOutcome] = {}
    for outcome in outcomes:
        terms[outcome.term_id] = outcome.term
        outcome_by_term[outcome.term_id] = outcome
    ordered = sorted(terms.values(), key=lambda term: term.start_date, reverse=True)
    return [PastTerm(term, by_term.get(term.pk, []), outcome_by_term.get(term.pk)) for term in ordered]


@dataclass(frozen=True)
class StudentRecord:
    """A student's record as a page shows it (their own dashboard, an advisor's view of an advisee): the
    current term's standings and the terms before it."""

    student: Student
    term: Term | None
    standings: list[CourseStanding]
    past_terms: list[PastTerm]

    def as_context(self) -> dict:
        return {"student": self.student, "term": self.term, "standings": self.standings, "past_terms": self.past_terms}


def student_record_get(*, viewer: User, student: Student) -> StudentRecord:
    """`student`'s record as `viewer` may see it (pass a student `viewer` may see). Five queries or so,
    whatever the number of terms."""
    term = term_current()
    return StudentRecord(
        student=student,
        term=term,
        standings=course_standings(student=student, term=term) if term else [],
        past_terms=student_past_terms(viewer=viewer, student=student, before=term),
    )
