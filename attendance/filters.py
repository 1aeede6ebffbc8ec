"""Filters of the attendance API. Ids are plain numbers (students/filters.py says why): naming a session,
section or student outside your scope returns an empty page, never "no such id"."""

import django_filters

from attendance.models import AttendanceRecord, ClassSession
from campusiq.core.filters import IdFilter, InstantFilter
from students.filters import UpdatedSinceFilterSet
from students.models import Enrollment


class ClassSessionFilter(UpdatedSinceFilterSet):
    section = IdFilter(field_name="section")
    term = IdFilter(field_name="section__term")
    series = django_filters.UUIDFilter(field_name="series")
    starts_after = InstantFilter(
        field_name="starts_at", lookup_expr="gte", label="Sessions starting at or after this instant."
    )
    starts_before = InstantFilter(
        field_name="starts_at", lookup_expr="lt", label="Sessions starting before this instant."
    )

    class Meta:
        model = ClassSession
        fields = ["section", "term", "state", "series"]


class AttendanceRecordFilter(UpdatedSinceFilterSet):
    session = IdFilter(field_name="session")
    section = IdFilter(field_name="session__section")
    term = IdFilter(field_name="session__section__term")
    student = IdFilter(field_name="student")
    starts_after = InstantFilter(
        field_name="session__starts_at", lookup_expr="gte", label="Records of sessions starting at or after this."
    )
    starts_before = InstantFilter(
        field_name="session__starts_at", lookup_expr="lt", label="Records of sessions starting before this."
    )

    class Meta:
        model = AttendanceRecord
        fields = ["session", "section", "student", "status", "method", "voided"]


class AttendanceRateFilter(django_filters.FilterSet):
    section = IdFilter(field_name="section", label="Enrollments in this section.")
    student = IdFilter(field_name="student", label="Enrollments of this student.")
    term = IdFilter(field_name="section__term", label="Enrollments in sections of this term.")

    class Meta:
        model = Enrollment
        fields = ["section", "student", "term"]
