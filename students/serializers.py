"""Shapes of the API's resources. No rules here: writes go to students/services.py."""

from rest_framework import serializers

from accounts.models import User
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
from students.selectors import students_visible_to


class DepartmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "code", "name", "updated_at"]


class ProgramSerializer(serializers.ModelSerializer):
    class Meta:
        model = Program
        fields = ["id", "code", "name", "department", "updated_at"]


class CourseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Course
        fields = ["id", "code", "title", "credits", "department", "updated_at"]


class TermSerializer(serializers.ModelSerializer):
    class Meta:
        model = Term
        fields = ["id", "name", "start_date", "end_date", "add_drop_deadline", "updated_at"]


class SectionSerializer(serializers.ModelSerializer):
    lecturers = serializers.PrimaryKeyRelatedField(many=True, queryset=User.objects.all(), required=False)

    class Meta:
        model = Section
        fields = ["id", "course", "term", "code", "lecturers", "capacity", "min_attendance_rate", "updated_at"]


class AssessmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Assessment
        fields = ["id", "section", "name", "weight", "max_score", "due_date", "updated_at"]


class StudentSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    first_name = serializers.CharField(source="user.first_name", read_only=True)
    last_name = serializers.CharField(source="user.last_name", read_only=True)

    class Meta:
        model = Student
        fields = [
            "id", "student_number", "email", "first_name", "last_name", "program", "semester", "status", "advisor",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = ["student_number"]


class StudentCreateSerializer(serializers.Serializer):
    student_number = serializers.RegexField(r"^[A-Za-z0-9-]{1,20}$")
    email = serializers.EmailField()
    first_name = serializers.CharField(max_length=150)
    last_name = serializers.CharField(max_length=150)
    program = serializers.PrimaryKeyRelatedField(queryset=Program.objects.all())
    semester = serializers.IntegerField(min_value=1, max_value=99, default=1)
    advisor = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False, allow_null=True)


class StudentUpdateSerializer(serializers.Serializer):
    program = serializers.PrimaryKeyRelatedField(queryset=Program.objects.all(), required=False)
    semester = serializers.IntegerField(min_value=1, max_value=99, required=False)
    status = serializers.ChoiceField(choices=Student.Status.choices, required=False)
    advisor = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False, allow_null=True)


class EnrollmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Enrollment
        fields = ["id", "student", "section", "status", "enrolled_on", "ended_on", "final_grade", "updated_at"]


class EnrollmentCreateSerializer(serializers.Serializer):
    student = serializers.PrimaryKeyRelatedField(queryset=Student.objects.all())
    section = serializers.PrimaryKeyRelatedField(queryset=Section.objects.select_related("term"))
    enrolled_on = serializers.DateField(required=False)


class EnrollmentEndSerializer(serializers.Serializer):
    on = serializers.DateField(required=False, help_text="Defaults to today. Up to the add/drop deadline: dropped.")


class GradeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Grade
        fields = ["id", "student", "assessment", "score", "graded_by", "updated_at"]


class GradeWriteSerializer(serializers.Serializer):
    student = serializers.PrimaryKeyRelatedField(queryset=Student.objects.none())
    assessment = serializers.PrimaryKeyRelatedField(queryset=Assessment.objects.select_related("section"))
    score = serializers.DecimalField(max_digits=6, decimal_places=2)
    reason = serializers.CharField(max_length=500, required=False, default="")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only students the caller may see can be named; others are "does not exist".
        request = self.context.get("request")
        if request is not None:
            self.fields["student"].queryset = students_visible_to(request.user)


class GradeChangeSerializer(serializers.Serializer):
    score = serializers.DecimalField(max_digits=6, decimal_places=2)
    reason = serializers.CharField(max_length=500, required=False, default="")


class TermOutcomeSerializer(serializers.ModelSerializer):
    class Meta:
        model = TermOutcome
        fields = ["id", "student", "term", "outcome", "source", "note", "updated_at"]
        read_only_fields = ["source"]
