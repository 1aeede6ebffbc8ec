import django_filters

from campusiq.core.filters import IdFilter, InstantFilter
from students.models import (
    Assessment,
    Course,
    Department,
    Enrollment,
    Grade,
    Program,
    Section,
    Student,
    Term,
    TermOutcome,
)


class UpdatedSinceFilterSet(django_filters.FilterSet):
    """`?updated_since=2026-11-01T00:00:00Z`: rows changed at or after that instant (incremental sync)."""

    updated_since = InstantFilter(field_name="updated_at", lookup_expr="gte")


class DepartmentFilter(UpdatedSinceFilterSet):
    class Meta:
        model = Department
        fields = []


class ProgramFilter(UpdatedSinceFilterSet):
    class Meta:
        model = Program
        fields = ["department"]


class CourseFilter(UpdatedSinceFilterSet):
    class Meta:
        model = Course
        fields = ["department", "credits"]


class TermFilter(UpdatedSinceFilterSet):
    class Meta:
        model = Term
        fields = []


class SectionFilter(UpdatedSinceFilterSet):
    department = IdFilter(field_name="course__department")
    lecturer = IdFilter(field_name="lecturers")

    class Meta:
        model = Section
        fields = ["term", "course"]


class AssessmentFilter(UpdatedSinceFilterSet):
    term = IdFilter(field_name="section__term")

    class Meta:
        model = Assessment
        fields = ["section"]


# On people's data, ids are plain numbers: a choice filter would answer "no such id" and so tell a
# caller which ids exist outside their scope.
class StudentFilter(UpdatedSinceFilterSet):
    program = IdFilter(field_name="program")
    advisor = IdFilter(field_name="advisor")
    department = IdFilter(field_name="program__department")
    section = IdFilter(field_name="enrollments__section", distinct=True)

    class Meta:
        model = Student
        fields = ["program", "status", "semester", "advisor"]


class EnrollmentFilter(UpdatedSinceFilterSet):
    student = IdFilter(field_name="student")
    section = IdFilter(field_name="section")
    term = IdFilter(field_name="section__term")

    class Meta:
        model = Enrollment
        fields = ["student", "section", "status"]


class GradeFilter(UpdatedSinceFilterSet):
    student = IdFilter(field_name="student")
    assessment = IdFilter(field_name="assessment")
    section = IdFilter(field_name="assessment__section")
    term = IdFilter(field_name="assessment__section__term")

    class Meta:
        model = Grade
        fields = ["student", "assessment"]


class TermOutcomeFilter(UpdatedSinceFilterSet):
    student = IdFilter(field_name="student")
    term = IdFilter(field_name="term")

    class Meta:
        model = TermOutcome
        fields = ["student", "term", "outcome", "source"]
