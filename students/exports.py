"""A student's copy of their personal data ("Download my data" on the portal; docs/PRIVACY.md).

One read of everything CampusIQ holds about one student, as plain JSON-ready values, section by
section. This module writes the campus's sections (the account, the student record, enrollments,
grades, term outcomes); the apps above register theirs in their AppConfig.ready() (attendance: records
with their own check-in evidence, flags and excuses, devices, cards, warnings; predictions: risk scores
with their factors, interventions and flag feedback), with the models they cover and their retention
entries. tests/students/test_data_export.py fails when a model holding rows about a student or their
account is covered by no section, so new personal data can't be left out silently.

Each section costs a fixed number of queries, however long the history.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Model
from django.utils import timezone

from accounts.models import ApiToken, LinkedIdentity, User
from accounts.services import user_roles
from students.models import Enrollment, Grade, Section, Student, TermOutcome

EXPORT_FORMAT = "campusiq-personal-data"
EXPORT_VERSION = 1


def export_when(value: datetime.datetime | datetime.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).isoformat()
    return value.isoformat()


def export_number(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def export_person(user) -> str | None:
    return None if user is None else (user.get_full_name() or user.email)


def export_section(section: Section) -> dict[str, Any]:
    return {
        "course_code": section.course.code,
        "course_title": section.course.title,
        "section": section.code,
        "term": section.term.name,
    }


@dataclass(frozen=True)
class PersonalDataSection:
    """One key of the download: `build(student)` gives its JSON-ready value; `models` are the models whose
    rows about the student it carries; `retention()`, if any, adds entries to the download's retention
    note (keys of their own)."""

    key: str
    build: Callable[[Student], Any]
    models: tuple[type[Model], ...]
    retention: Callable[[], dict[str, Any]] | None = None


_sections: dict[str, PersonalDataSection] = {}


def personal_data_section_register(
    key: str,
    build: Callable[[Student], Any],
    *,
    models: tuple[type[Model], ...],
    retention: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Adds a section to every download, after those registered before it (apps register in their
    AppConfig.ready(), so the download follows INSTALLED_APPS). Registering a key again replaces it."""
    _sections[key] = PersonalDataSection(key, build, tuple(models), retention)


def personal_data_sections() -> list[PersonalDataSection]:
    return list(_sections.values())


def student_personal_data(*, student: Student) -> dict[str, Any]:
    """Everything stored about `student`, for them. Pass a student loaded with user, program, department
    and advisor (students_visible_to does): then a fixed number of queries, whatever the number of rows."""
    sections = personal_data_sections()
    retention: dict[str, Any] = {}
    for section in sections:
        if section.retention is not None:
            retention.update(section.retention())
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": export_when(timezone.now()),
        "retention": retention,
        **{section.key: section.build(student) for section in sections},
    }


# --- The campus's sections --------------------------------------------------------------------------


def _account(student: Student) -> dict[str, Any]:
    user = student.user
    tokens = ApiToken.objects.filter(user=user).order_by("created_at", "pk")
    return {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "date_joined": export_when(user.date_joined),
        "last_login": export_when(user.last_login),
        "roles": sorted(str(role) for role in user_roles(user)),
        "api_tokens": [
            {
                "name": token.name,
                "kind": token.kind,
                "scope": token.scope,
                "prefix": token.prefix,
                "created_at": export_when(token.created_at),
                "expires_at": export_when(token.expires_at),
                "revoked_at": export_when(token.revoked_at),
                "last_used_at": export_when(token.last_used_at),
            }
            for token in tokens
        ],
        "linked_identities": [
            {
                "provider": link.provider,
                "issuer": link.issuer,
                "subject": link.subject,
                "linked_at": export_when(link.created_at),
                "last_sign_in_at": export_when(link.last_sign_in_at),
            }
            for link in LinkedIdentity.objects.filter(user=user).order_by("created_at", "pk")
        ],
    }


def _profile(student: Student) -> dict[str, Any]:
    return {
        "student_number": student.student_number,
        "program": {"code": student.program.code, "name": student.program.name},
        "department": {"code": student.program.department.code, "name": student.program.department.name},
        "semester": student.semester,
        "status": student.status,
        "admission_grade": export_number(student.admission_grade),
        "prior_qualification_grade": export_number(student.prior_qualification_grade),
        "advisor": None
        if student.advisor is None
        else {"name": export_person(student.advisor), "email": student.advisor.email},
        "created_at": export_when(student.created_at),
        "updated_at": export_when(student.updated_at),
    }


def _enrollments(student: Student) -> list[dict[str, Any]]:
    enrollments = Enrollment.objects.filter(student=student).select_related("section__course", "section__term")
    return [
        {
            **export_section(enrollment.section),
            "status": enrollment.status,
            "enrolled_on": export_when(enrollment.enrolled_on),
            "ended_on": export_when(enrollment.ended_on),
            "final_grade": export_number(enrollment.final_grade),
        }
        for enrollment in enrollments.order_by("section__term__start_date", "section__course__code", "pk")
    ]


def _grades(student: Student) -> list[dict[str, Any]]:
    grades = Grade.objects.filter(student=student).select_related(
        "assessment__section__course", "assessment__section__term"
    )
    return [
        {
            **export_section(grade.assessment.section),
            "assessment": grade.assessment.name,
            "weight_percent": export_number(grade.assessment.weight),
            "max_score": export_number(grade.assessment.max_score),
            "score": export_number(grade.score),
            "recorded_at": export_when(grade.updated_at),
        }
        for grade in grades.order_by("assessment__section__term__start_date", "assessment__section__course__code", "pk")
    ]


def _term_outcomes(student: Student) -> list[dict[str, Any]]:
    outcomes = TermOutcome.objects.filter(student=student).select_related("term")
    return [
        {"term": outcome.term.name, "outcome": outcome.outcome, "source": outcome.source, "note": outcome.note}
        for outcome in outcomes.order_by("term__start_date", "pk")
    ]


def campus_sections_register() -> None:
    """The campus's own sections, first in every download (StudentsConfig.ready())."""
    personal_data_section_register("account", _account, models=(User, ApiToken, LinkedIdentity))
    personal_data_section_register("profile", _profile, models=(Student,))
    personal_data_section_register("enrollments", _enrollments, models=(Enrollment,))
    personal_data_section_register("grades", _grades, models=(Grade,))
    personal_data_section_register("term_outcomes", _term_outcomes, models=(TermOutcome,))
