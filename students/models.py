"""The campus domain: catalogue (departments, programs, courses), terms and sections, students,
enrollments, assessments, grades and term outcomes.

The database enforces what a single row can check (uniqueness, ranges, date order); services.py
enforces what needs other rows or configuration (docs/DOMAIN.md lists which is which).
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from campusiq.core.models import TimeStampedModel


class Department(TimeStampedModel):
    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=200, unique=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Program(TimeStampedModel):
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="programs")
    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Course(TimeStampedModel):
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="courses")
    code = models.CharField(max_length=16, unique=True)
    title = models.CharField(max_length=200)
    credits = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(credits__gte=1, credits__lte=60),
                name="course_credits_1_to_60",
                violation_error_message="Credits must be between 1 and 60.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.title}"


class Term(TimeStampedModel):
    name = models.CharField(max_length=64, unique=True)
    start_date = models.DateField()
    end_date = models.DateField()
    add_drop_deadline = models.DateField()

    class Meta:
        ordering = ["-start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gt=F("start_date")),
                name="term_ends_after_start",
                violation_error_message="A term must end after it starts.",
            ),
            models.CheckConstraint(
                condition=Q(add_drop_deadline__gte=F("start_date"), add_drop_deadline__lte=F("end_date")),
                name="term_add_drop_within_term",
                violation_error_message="The add/drop deadline must fall within the term.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Section(TimeStampedModel):
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="sections")
    term = models.ForeignKey(Term, on_delete=models.PROTECT, related_name="sections")
    code = models.CharField(max_length=8, default="A", help_text="Distinguishes parallel sections, e.g. A, B.")
    lecturers = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="taught_sections", blank=True)
    capacity = models.PositiveIntegerField(default=60)
    min_attendance_rate = models.DecimalField(
        max_digits=3, decimal_places=2, default=Decimal("0.75"), help_text="Minimum attendance rate, 0 to 1."
    )

    class Meta:
        ordering = ["term", "course__code", "code"]
        constraints = [
            models.UniqueConstraint(fields=["course", "term", "code"], name="section_unique_per_course_term"),
            models.CheckConstraint(
                condition=Q(capacity__gte=1),
                name="section_capacity_positive",
                violation_error_message="Capacity must be at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(min_attendance_rate__gte=0, min_attendance_rate__lte=1),
                name="section_min_attendance_0_to_1",
                violation_error_message="The minimum attendance rate must be between 0 and 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.course.code}-{self.code} ({self.term.name})"


class Student(TimeStampedModel):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        GRADUATED = "graduated", "Graduated"
        WITHDRAWN = "withdrawn", "Withdrawn"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="student")
    student_number = models.CharField(max_length=20, unique=True)
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="students")
    semester = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    advisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="advisees"
    )
    # What the student brought in: the strongest signal at enrolment time, before any grade exists.
    admission_grade = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The grade of admission, on the campus's 0 to 200 scale (empty: unknown).",
    )
    prior_qualification_grade = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The grade of the previous qualification (e.g. secondary school), on a 0 to 200 scale.",
    )

    class Meta:
        ordering = ["student_number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(semester__gte=1),
                name="student_semester_positive",
                violation_error_message="Semester must be at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "suspended", "graduated", "withdrawn"]),
                name="student_status_valid",
                violation_error_message="Unknown student status.",
            ),
            models.CheckConstraint(
                condition=~Q(advisor=F("user")),
                name="student_not_own_advisor",
                violation_error_message="A student cannot be their own advisor.",
            ),
            models.CheckConstraint(
                condition=Q(admission_grade__isnull=True) | Q(admission_grade__gte=0, admission_grade__lte=200),
                name="student_admission_grade_0_to_200",
                violation_error_message="An admission grade lies between 0 and 200.",
            ),
            models.CheckConstraint(
                condition=Q(prior_qualification_grade__isnull=True)
                | Q(prior_qualification_grade__gte=0, prior_qualification_grade__lte=200),
                name="student_prior_qualification_grade_0_to_200",
                violation_error_message="A previous qualification's grade lies between 0 and 200.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student_number} {self.user.get_full_name()}".strip()


class Enrollment(TimeStampedModel):
    class Status(models.TextChoices):
        ENROLLED = "enrolled", "Enrolled"
        DROPPED = "dropped", "Dropped"
        WITHDRAWN = "withdrawn", "Withdrawn"

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="enrollments")
    section = models.ForeignKey(Section, on_delete=models.PROTECT, related_name="enrollments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ENROLLED)
    enrolled_on = models.DateField()
    ended_on = models.DateField(null=True, blank=True, help_text="When the student dropped or withdrew.")
    final_grade = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, help_text="0 to 100, set when the term closes."
    )

    class Meta:
        ordering = ["section", "student"]
        constraints = [
            models.UniqueConstraint(fields=["student", "section"], name="enrollment_unique_per_student_section"),
            models.CheckConstraint(
                condition=Q(status__in=["enrolled", "dropped", "withdrawn"]),
                name="enrollment_status_valid",
                violation_error_message="Unknown enrollment status.",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="enrolled", ended_on__isnull=True) | (~Q(status="enrolled") & Q(ended_on__isnull=False))
                ),
                name="enrollment_ended_on_iff_not_enrolled",
                violation_error_message="An enrollment has an end date exactly when it was dropped or withdrawn.",
            ),
            models.CheckConstraint(
                condition=Q(ended_on__gte=F("enrolled_on")) | Q(ended_on__isnull=True),
                name="enrollment_ends_after_start",
                violation_error_message="An enrollment cannot end before it starts.",
            ),
            models.CheckConstraint(
                condition=Q(final_grade__isnull=True) | Q(final_grade__gte=0, final_grade__lte=100),
                name="enrollment_final_grade_0_to_100",
                violation_error_message="A final grade lies between 0 and 100.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student.student_number} in {self.section}"


class Assessment(TimeStampedModel):
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="assessments")
    name = models.CharField(max_length=100)
    weight = models.DecimalField(max_digits=5, decimal_places=2, help_text="Percent of the final grade.")
    max_score = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("100"))
    due_date = models.DateField(null=True, blank=True)
    computed = models.BooleanField(
        default=False,
        editable=False,
        help_text="Scores are computed by CampusIQ (e.g. from attendance), never entered by hand.",
    )

    class Meta:
        ordering = ["section", "due_date", "name"]
        constraints = [
            models.UniqueConstraint(fields=["section", "name"], name="assessment_unique_name_per_section"),
            models.CheckConstraint(
                condition=Q(weight__gt=0, weight__lte=100),
                name="assessment_weight_0_to_100",
                violation_error_message="A weight lies above 0 and at most 100.",
            ),
            models.CheckConstraint(
                condition=Q(max_score__gt=0),
                name="assessment_max_score_positive",
                violation_error_message="The maximum score must be above 0.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.section})"


class Grade(TimeStampedModel):
    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="grades")
    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="grades")
    score = models.DecimalField(max_digits=6, decimal_places=2)
    graded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["assessment", "student"]
        constraints = [
            models.UniqueConstraint(fields=["student", "assessment"], name="grade_unique_per_student_assessment"),
            models.CheckConstraint(
                condition=Q(score__gte=0),
                name="grade_score_not_negative",
                violation_error_message="A score cannot be negative.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student.student_number} {self.assessment.name}: {self.score}"


class TermOutcome(TimeStampedModel):
    class Outcome(models.TextChoices):
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        WITHDREW = "withdrew", "Withdrew"

    class Source(models.TextChoices):
        DERIVED = "derived", "Derived from final grades"
        STAFF = "staff", "Entered by staff"
        IMPORTED = "imported", "Imported"

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="term_outcomes")
    term = models.ForeignKey(Term, on_delete=models.PROTECT, related_name="outcomes")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.DERIVED)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["term", "student"]
        constraints = [
            models.UniqueConstraint(fields=["student", "term"], name="term_outcome_unique_per_student_term"),
            models.CheckConstraint(
                condition=Q(outcome__in=["passed", "failed", "withdrew"]),
                name="term_outcome_valid",
                violation_error_message="Unknown term outcome.",
            ),
            models.CheckConstraint(
                condition=Q(source__in=["derived", "staff", "imported"]),
                name="term_outcome_source_valid",
                violation_error_message="Unknown term outcome source.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student.student_number} {self.term.name}: {self.outcome}"
