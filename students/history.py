"""Writing a campus's past: enrollments, grades and term outcomes of terms that already happened, as
an onboarding import loads them.

The live services guard the present (enrollment_create wants an active student and a free seat,
grade_record an enrollment still running); a student who withdrew last year was active when they
enrolled and was graded before leaving, so those rules cannot hold for history. These functions
check what does hold for the past instead (docs/DOMAIN.md, "History"): dates inside the term, scores
within bounds, one row per natural key (a second write updates it), and an outcome only for a term
that has ended. Each write is audited; a write that changes nothing writes nothing, audit included.
"""

import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from campusiq.core.services import audit_log_write
from students.errors import CampusErrorCode as Code
from students.models import Assessment, Enrollment, Grade, Section, Student, Term, TermOutcome
from students.services import HUNDRED, TWO_PLACES, assessment_save, audit_value, grade_score_validate

# Registrars enrol ahead of the term (enrollment_create allows as much).
ENROLLED_AHEAD_MAX = datetime.timedelta(days=180)


def _day_in_term(day: datetime.date, term: Term, field: str, *, earliest: datetime.date) -> None:
    if not earliest <= day <= term.end_date:
        raise ServiceError(
            Code.DATE_OUTSIDE_TERM, f"{day} is outside term {term.name} ({earliest} to {term.end_date}).", field=field
        )


@transaction.atomic
def history_assessment_save(*, assessment: Assessment, actor: User | None) -> Assessment:
    """An assessment of any term, past or present: due inside its term, weights as assessment_save has them."""
    term = assessment.section.term
    if assessment.due_date is not None:
        _day_in_term(assessment.due_date, term, "due_date", earliest=term.start_date)
    return assessment_save(assessment=assessment, actor=actor)


def history_term_ended_require(term: Term, *, today: datetime.date | None = None) -> None:
    today = today or timezone.localdate()
    if term.end_date >= today:
        raise ServiceError(
            Code.TERM_NOT_ENDED,
            f"Term {term.name} ends on {term.end_date}: its outcomes come once it has ended.",
            field="term",
        )


def _changes(record, values: dict) -> dict[str, list]:
    return {
        name: [audit_value(getattr(record, name)), audit_value(value)]
        for name, value in values.items()
        if getattr(record, name) != value
    }


def _write(model, *, key: dict, values: dict, actor: User | None, reason: str, on_create: dict | None = None):
    """Creates the row of `key` with `values` (and `on_create`), or updates the one there; audited, and
    only if it changes."""
    record = model.objects.select_for_update().filter(**key).first()
    label = model._meta.model_name
    if record is None:
        record = model(**key, **values, **(on_create or {}))
        # The key's rows are the caller's and its uniqueness the lookup's: no query per row to re-check them.
        record.full_clean(exclude=list(key))
        record.save()
        changes = {name: [None, audit_value(value)] for name, value in values.items()}
        audit_log_write(
            actor=actor,
            verb=f"{label}.imported",
            target=record,
            action=AuditLogEntry.Action.CREATE,
            changes=changes,
            reason=reason,
        )
        return record
    changes = _changes(record, values)
    if changes:
        for name, value in values.items():
            setattr(record, name, value)
        record.full_clean(exclude=list(key))
        record.save(update_fields=[*changes, "updated_at"])
        audit_log_write(actor=actor, verb=f"{label}.imported", target=record, changes=changes, reason=reason)
    return record


def history_enrollment_validate(
    *, section: Section, enrolled_on: datetime.date, status: str, ended_on: datetime.date | None, final_grade
) -> None:
    term = section.term
    _day_in_term(enrolled_on, term, "enrolled_on", earliest=term.start_date - ENROLLED_AHEAD_MAX)
    if (status == Enrollment.Status.ENROLLED) != (ended_on is None):
        raise ServiceError(
            Code.DATE_OUTSIDE_TERM,
            "A dropped or withdrawn enrollment has an end date; one that ran to the end has none.",
            field="ended_on",
        )
    if ended_on is not None:
        _day_in_term(ended_on, term, "ended_on", earliest=enrolled_on)
    if final_grade is not None and not Decimal(0) <= Decimal(final_grade) <= HUNDRED:
        raise ServiceError(Code.SCORE_OUT_OF_RANGE, "A final grade lies between 0 and 100.", field="final_grade")


@transaction.atomic
def history_enrollment_save(
    *,
    student: Student,
    section: Section,
    enrolled_on: datetime.date,
    status: str = Enrollment.Status.ENROLLED,
    ended_on: datetime.date | None = None,
    final_grade: Decimal | None = None,
    actor: User | None,
    reason: str = "",
) -> Enrollment:
    """A past enrollment, whatever the student's status now and the section's capacity then."""
    if final_grade is not None:
        final_grade = Decimal(final_grade).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
    history_enrollment_validate(
        section=section, enrolled_on=enrolled_on, status=status, ended_on=ended_on, final_grade=final_grade
    )
    values = {"enrolled_on": enrolled_on, "status": status, "ended_on": ended_on, "final_grade": final_grade}
    return _write(Enrollment, key={"student": student, "section": section}, values=values, actor=actor, reason=reason)


def history_grade_validate(*, student: Student, assessment: Assessment, score: Decimal) -> None:
    grade_score_validate(assessment=assessment, score=score)
    # Enrolled at some point: a student graded and then withdrawn keeps the grade.
    if not Enrollment.objects.filter(student=student, section_id=assessment.section_id).exists():
        raise ServiceError(Code.NOT_ENROLLED, f"{student} was never enrolled in {assessment.section}.", field="student")


@transaction.atomic
def history_grade_save(
    *, student: Student, assessment: Assessment, score: Decimal, actor: User | None, reason: str = ""
) -> Grade:
    """A past score, for a student enrolled in the section then, even if they have left it since."""
    score = Decimal(score).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
    history_grade_validate(student=student, assessment=assessment, score=score)
    key = {"student": student, "assessment": assessment}
    # Who graded stays the first importer's: re-importing the same file by someone else changes nothing.
    values = {"score": score}
    return _write(Grade, key=key, values=values, actor=actor, reason=reason, on_create={"graded_by": actor})


@transaction.atomic
def history_term_outcome_save(
    *, student: Student, term: Term, outcome: str, note: str = "", actor: User | None, reason: str = ""
) -> TermOutcome:
    """A past term's outcome as the campus recorded it (source "imported": closing the term keeps it)."""
    history_term_ended_require(term)
    values = {"outcome": outcome, "source": TermOutcome.Source.IMPORTED, "note": note}
    return _write(TermOutcome, key={"student": student, "term": term}, values=values, actor=actor, reason=reason)
