import django_filters

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

    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")


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
    department = django_filters.NumberFilter(field_name="course__department")
    lecturer = django_filters.NumberFilter(field_name="lecturers")

    class Meta:
        model = Section
        fields = ["term", "course"]


class AssessmentFilter(UpdatedSinceFilterSet):
    term = django_filters.NumberFilter(field_name="section__term")

    class Meta:
        model = Assessment
        fields = ["section"]


# On people's data, ids are plain numbers: a choice filter would answer "no such id" and so tell a
# caller which ids exist outside their scope.
class StudentFilter(UpdatedSinceFilterSet):
    program = django_filters.NumberFilter(field_name="program")
    advisor = django_filters.NumberFilter(field_name="advisor")
    department = django_filters.NumberFilter(field_name="program__department")
    section = django_filters.NumberFilter(field_name="enrollments__section", distinct=True)

    class Meta:
        model = Student
        fields = ["program", "status", "semester", "advisor"]


class EnrollmentFilter(UpdatedSinceFilterSet):
    student = django_filters.NumberFilter(field_name="student")
    section = django_filters.NumberFilter(field_name="section")
    term = django_filters.NumberFilter(field_name="section__term")

    class Meta:
        model = Enrollment
        fields = ["student", "section", "status"]


class GradeFilter(UpdatedSinceFilterSet):
    student = django_filters.NumberFilter(field_name="student")
    assessment = django_filters.NumberFilter(field_name="assessment")
    section = django_filters.NumberFilter(field_name="assessment__section")
    term = django_filters.NumberFilter(field_name="assessment__section__term")

    class Meta:
        model = Grade
        fields = ["student", "assessment"]


class TermOutcomeFilter(UpdatedSinceFilterSet):
    student = django_filters.NumberFilter(field_name="student")
    term = django_filters.NumberFilter(field_name="term")

    class Meta:
        model = TermOutcome
        fields = ["student", "term", "outcome", "source"]
