"""Actions that write the campus domain. Views, forms, serializers, the admin and imports call these;
the rules that need more than one row (docs/DOMAIN.md) live here and nowhere else."""

import datetime
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from accounts.services import user_has_role, user_role_grant
from campusiq.core.errors import ConflictError, ServiceError
from campusiq.core.models import AuditLogEntry
from campusiq.core.services import audit_log_write, changes_between
from students.errors import CampusErrorCode as Code
from students.models import Assessment, Enrollment, Grade, Program, Section, Student, Term, TermOutcome

PASS_MARK = Decimal("50")
HUNDRED = Decimal("100")
TWO_PLACES = Decimal("0.01")
STUDENT_PRIOR_ACHIEVEMENT = ("admission_grade", "prior_qualification_grade")
PRIOR_GRADE_MAX = Decimal("200")


# --- Students -------------------------------------------------------------------------------


def semester_validate(semester: int) -> None:
    low, high = settings.CAMPUSIQ_SEMESTER_RANGE
    if not low <= semester <= high:
        raise ServiceError(Code.SEMESTER_OUT_OF_RANGE, f"Semester must be between {low} and {high}.", field="semester")


def advisor_validate(advisor: User | None) -> None:
    if advisor is not None and not user_has_role(advisor, Role.ADVISOR):
        raise ServiceError(Code.ADVISOR_NOT_ADVISOR, f"{advisor} does not hold the advisor role.", field="advisor")


def prior_grade_validate(name: str, grade: Decimal | None) -> None:
    """A prior-achievement grade on the 0 to 200 scale (the model's check constraint, said readably)."""
    if grade is not None and not Decimal(0) <= Decimal(grade) <= PRIOR_GRADE_MAX:
        raise ServiceError(
            Code.PRIOR_GRADE_OUT_OF_RANGE, f"A grade on the 0 to {PRIOR_GRADE_MAX} scale, not {grade}.", field=name
        )


@transaction.atomic
def student_create(
    *,
    email: str,
    first_name: str,
    last_name: str,
    student_number: str,
    program: Program,
    semester: int = 1,
    advisor: User | None = None,
    status: str = Student.Status.ACTIVE,
    admission_grade: Decimal | None = None,
    prior_qualification_grade: Decimal | None = None,
    actor: User | None = None,
) -> Student:
    semester_validate(semester)
    advisor_validate(advisor)
    prior_grade_validate("admission_grade", admission_grade)
    prior_grade_validate("prior_qualification_grade", prior_qualification_grade)
    if Student.objects.filter(student_number=student_number).exists():
        raise ConflictError(
            Code.STUDENT_NUMBER_TAKEN, f"Student number {student_number} is taken.", field="student_number"
        )
    if User.objects.filter(email__iexact=email).exists():
        raise ConflictError(Code.EMAIL_TAKEN, f"{email} already has an account.", field="email")
    user = User.objects.create_user(email, first_name=first_name, last_name=last_name)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    user_role_grant(user=user, role=Role.STUDENT, actor=actor)
    student = Student(
        user=user,
        student_number=student_number,
        program=program,
        semester=semester,
        advisor=advisor,
        status=status,
        admission_grade=admission_grade,
        prior_qualification_grade=prior_qualification_grade,
    )
    student.save()
    audit_log_write(actor=actor, verb="student.created", target=student, action=AuditLogEntry.Action.CREATE)
    return student


@transaction.atomic
def student_update(*, student: Student, actor: User | None, **fields) -> Student:
    """Changes a student's program, semester, status, advisor or prior achievement, with the change audited."""
    allowed = {"program", "semester", "status", "advisor", *STUDENT_PRIOR_ACHIEVEMENT}
    if unknown := set(fields) - allowed:
        raise ValueError(f"Cannot update {sorted(unknown)} through student_update.")
    if "semester" in fields:
        semester_validate(fields["semester"])
    if "advisor" in fields:
        advisor_validate(fields["advisor"])
    for name in STUDENT_PRIOR_ACHIEVEMENT:
        if name in fields:
            prior_grade_validate(name, fields[name])
    before = {name: audit_value(getattr(student, name)) for name in fields}
    for name, value in fields.items():
        setattr(student, name, value)
    student.full_clean()
    student.save(update_fields=[*fields, "updated_at"])
    changes = {
        name: [before[name], audit_value(value)] for name, value in fields.items() if before[name] != audit_value(value)
    }
    if changes:
        audit_log_write(actor=actor, verb="student.updated", target=student, changes=changes)
    return student


# --- Enrollments ----------------------------------------------------------------------------


def _date_within_term(day: datetime.date, term: Term, field: str) -> None:
    # Registrars enrol ahead of the term, so only the end is a hard limit; long before start is a typo.
    if not term.start_date - datetime.timedelta(days=180) <= day <= term.end_date:
        raise ServiceError(Code.DATE_OUTSIDE_TERM, f"{day} is outside term {term.name}.", field=field)


@transaction.atomic
def enrollment_create(
    *, student: Student, section: Section, enrolled_on: datetime.date | None = None, actor: User | None = None
) -> Enrollment:
    enrolled_on = enrolled_on or timezone.localdate()
    if student.status != Student.Status.ACTIVE:
        raise ServiceError(Code.STUDENT_NOT_ACTIVE, f"{student} is {student.get_status_display().lower()}.")
    _date_within_term(enrolled_on, section.term, "enrolled_on")
    # Lock the section row: two registrars filling the last seat must not both succeed.
    section = Section.objects.select_for_update().get(pk=section.pk)
    if Enrollment.objects.filter(student=student, section=section).exists():
        raise ConflictError(Code.ALREADY_ENROLLED, f"{student} is already enrolled in {section}.")
    taken = Enrollment.objects.filter(section=section, status=Enrollment.Status.ENROLLED).count()
    if taken >= section.capacity:
        raise ConflictError(Code.SECTION_FULL, f"{section} is full ({section.capacity} places).")
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(student=student, section=section, enrolled_on=enrolled_on)
    except IntegrityError as error:  # a concurrent request enrolled the same student first
        raise ConflictError(Code.ALREADY_ENROLLED, f"{student} is already enrolled in {section}.") from error
    audit_log_write(actor=actor, verb="enrollment.created", target=enrollment, action=AuditLogEntry.Action.CREATE)
    return enrollment


@transaction.atomic
def enrollment_end(*, enrollment: Enrollment, on: datetime.date | None = None, actor: User | None = None) -> Enrollment:
    """Ends an enrollment: a drop up to the add/drop deadline, a withdrawal after it."""
    on = on or timezone.localdate()
    if enrollment.status != Enrollment.Status.ENROLLED:
        raise ServiceError(Code.ENROLLMENT_NOT_ACTIVE, "This enrollment has already ended.")
    term = enrollment.section.term
    _date_within_term(on, term, "ended_on")
    before = enrollment.status
    enrollment.status = Enrollment.Status.DROPPED if on <= term.add_drop_deadline else Enrollment.Status.WITHDRAWN
    enrollment.ended_on = max(on, enrollment.enrolled_on)
    enrollment.save(update_fields=["status", "ended_on", "updated_at"])
    audit_log_write(
        actor=actor, verb="enrollment.ended", target=enrollment, changes={"status": [before, enrollment.status]}
    )
    return enrollment


# --- Assessments and grades -----------------------------------------------------------------


def assessment_weights_validate(*, section: Section, weight: Decimal, exclude_pk: int | None = None) -> None:
    others = Assessment.objects.filter(section=section).exclude(pk=exclude_pk).aggregate(total=Sum("weight"))["total"]
    total = (others or Decimal(0)) + Decimal(weight)
    if total > HUNDRED:
        raise ServiceError(
            Code.WEIGHTS_OVER_100, f"Weights of {section} would add up to {total}, more than 100.", field="weight"
        )


@transaction.atomic
def assessment_save(*, assessment: Assessment, actor: User | None = None) -> Assessment:
    """Creates or updates an assessment; the section's weights may never exceed 100 in total."""
    Section.objects.select_for_update().get(pk=assessment.section_id)
    assessment_weights_validate(section=assessment.section, weight=assessment.weight, exclude_pk=assessment.pk)
    assessment.full_clean()
    adding = assessment._state.adding
    assessment.save()
    audit_log_write(
        actor=actor,
        verb="assessment.created" if adding else "assessment.updated",
        target=assessment,
        action=AuditLogEntry.Action.CREATE if adding else AuditLogEntry.Action.UPDATE,
        changes={"weight": [None, str(assessment.weight)]},
    )
    return assessment


def grade_score_validate(*, assessment: Assessment, score: Decimal) -> None:
    """A score one may enter: within the assessment's bounds, for an assessment not computed by CampusIQ."""
    if assessment.computed:
        raise ServiceError(
            Code.GRADE_COMPUTED,
            f"Scores of {assessment.name} are computed by CampusIQ and cannot be entered by hand.",
            field="score",
        )
    if score is None or not Decimal(0) <= Decimal(score) <= assessment.max_score:
        raise ServiceError(
            Code.SCORE_OUT_OF_RANGE, f"Score must be between 0 and {assessment.max_score}.", field="score"
        )


def grade_validate(*, student: Student, assessment: Assessment, score: Decimal) -> None:
    grade_score_validate(assessment=assessment, score=score)
    if not Enrollment.objects.filter(
        student=student, section_id=assessment.section_id, status=Enrollment.Status.ENROLLED
    ).exists():
        raise ServiceError(Code.NOT_ENROLLED, f"{student} is not enrolled in {assessment.section}.", field="student")


@transaction.atomic
def grade_record(
    *, student: Student, assessment: Assessment, score: Decimal, actor: User | None, reason: str = ""
) -> Grade:
    """Enters or changes a grade. Every change is audited with the old and the new score."""
    score = Decimal(score).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
    grade_validate(student=student, assessment=assessment, score=score)
    grade = Grade.objects.select_for_update().filter(student=student, assessment=assessment).first()
    if grade is None:
        try:
            with transaction.atomic():
                grade = Grade.objects.create(student=student, assessment=assessment, score=score, graded_by=actor)
        except IntegrityError:
            # Entered at the same moment by someone else: this becomes a change of theirs.
            grade = Grade.objects.select_for_update().get(student=student, assessment=assessment)
        else:
            audit_log_write(
                actor=actor,
                verb="grade.recorded",
                target=grade,
                action=AuditLogEntry.Action.CREATE,
                changes={"score": [None, str(score)]},
                reason=reason,
            )
            return grade
    if grade.score != score:
        before = grade.score
        grade.score = score
        grade.graded_by = actor
        grade.save(update_fields=["score", "graded_by", "updated_at"])
        audit_log_write(
            actor=actor, verb="grade.changed", target=grade, changes={"score": [str(before), str(score)]}, reason=reason
        )
    return grade


@transaction.atomic
def grades_computed_set(
    *, assessment: Assessment, scores: dict[int, Decimal | None], actor: User | None = None, reason: str = ""
) -> int:
    """Writes a computed assessment's scores, student id -> score (None: no score yet, so none is kept).
    Only the grades that change are written, so running it again writes nothing; one audit entry counts
    them. Returns how many changed."""
    if not assessment.computed:
        raise ValueError(f"{assessment} is entered by hand: use grade_record.")
    existing = {g.student_id: g for g in Grade.objects.select_for_update().filter(assessment=assessment)}
    to_create, to_update, to_delete = [], [], []
    for student_id, score in scores.items():
        grade = existing.get(student_id)
        if score is None:
            if grade is not None:
                to_delete.append(grade.pk)
            continue
        score = Decimal(score).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
        if not Decimal(0) <= score <= assessment.max_score:
            raise ValueError(f"A computed score of {score} lies outside 0 to {assessment.max_score}.")
        if grade is None:
            to_create.append(Grade(student_id=student_id, assessment=assessment, score=score, graded_by=None))
        elif grade.score != score:
            # bulk_update skips auto_now: the API's incremental sync needs updated_at to move.
            grade.score, grade.graded_by, grade.updated_at = score, None, timezone.now()
            to_update.append(grade)
    Grade.objects.bulk_create(to_create)
    Grade.objects.bulk_update(to_update, ["score", "graded_by", "updated_at"])
    Grade.objects.filter(pk__in=to_delete).delete()
    changed = len(to_create) + len(to_update) + len(to_delete)
    if changed:
        audit_log_write(
            actor=actor,
            verb="grade.computed",
            target=assessment,
            action=AuditLogEntry.Action.ACTION,
            changes={
                "created": [None, len(to_create)],
                "changed": [None, len(to_update)],
                "removed": [None, len(to_delete)],
            },
            reason=reason,
        )
    return changed


@dataclass(frozen=True)
class GradeChange:
    """A score a lecturer changed on the grade sheet: the one the sheet showed, and the new one (None:
    emptied)."""

    student: Student
    seen: Decimal | None
    score: Decimal | None


@dataclass(frozen=True)
class GradeRefusal:
    """Why one change was not recorded: someone else changed the grade since the sheet was opened
    (GRADE_CHANGED_MEANWHILE, with the score now), a recorded grade emptied (GRADE_REMOVAL_REFUSED), or
    a rule of grade_record (its ServiceError)."""

    student: Student
    code: str
    current: Decimal | None = None
    error: ServiceError | None = None


def grades_record_together(
    *,
    assessment: Assessment,
    changes: list[GradeChange],
    current_scores: dict[int, Decimal],
    actor: User | None,
    reason: str = "",
    refused_elsewhere: bool = False,
) -> tuple[int, list[GradeRefusal]]:
    """Records one assessment's changed scores in one transaction, all or nothing: when any change is
    refused, or the rest of the submission was (`refused_elsewhere`, e.g. a score that is not a number),
    nothing is written. `current_scores` are the scores by student id as read with the sheet. Returns
    how many were recorded (0 when refused) and every refusal."""
    recorded, refusals = 0, []
    with transaction.atomic():
        for change in changes:
            current = current_scores.get(change.student.pk)
            if current != change.seen:
                refusals.append(GradeRefusal(change.student, Code.GRADE_CHANGED_MEANWHILE, current=current))
            elif change.score is None:
                refusals.append(GradeRefusal(change.student, Code.GRADE_REMOVAL_REFUSED))
            else:
                try:
                    grade_record(
                        student=change.student, assessment=assessment, score=change.score, actor=actor, reason=reason
                    )
                except ServiceError as error:
                    refusals.append(GradeRefusal(change.student, error.code, error=error))
                else:
                    recorded += 1
        if refusals or refused_elsewhere:
            transaction.set_rollback(True)
            return 0, refusals
    return recorded, refusals


# --- Closing a term -------------------------------------------------------------------------


def section_final_grades_compute(*, section: Section) -> int:
    """Sets each enrolled student's final grade: the weighted sum of their scores, a missing score as 0."""
    assessments = list(section.assessments.all())
    total_weight = sum((a.weight for a in assessments), Decimal(0))
    if total_weight != HUNDRED:
        raise ServiceError(Code.WEIGHTS_INCOMPLETE, f"Weights of {section} add up to {total_weight}, not 100.")
    scores: dict[tuple[int, int], Decimal] = {
        (g.student_id, g.assessment_id): g.score for g in Grade.objects.filter(assessment__section=section)
    }
    enrollments = list(section.enrollments.filter(status=Enrollment.Status.ENROLLED))
    for enrollment in enrollments:
        final = sum(
            (scores.get((enrollment.student_id, a.pk), Decimal(0)) / a.max_score * a.weight for a in assessments),
            Decimal(0),
        )
        enrollment.final_grade = final.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
    Enrollment.objects.bulk_update(enrollments, ["final_grade"])
    return len(enrollments)


def term_outcome_decide(enrollments: list[Enrollment]) -> str | None:
    """A student's term outcome from their enrollments in it (docs/DOMAIN.md):
    withdrew if they ended every course and withdrew from at least one after the deadline; else passed
    when the credit-weighted mean final grade is at least 50, failed otherwise. Dropped-only: none."""
    active = [e for e in enrollments if e.status == Enrollment.Status.ENROLLED]
    if not active:
        return (
            TermOutcome.Outcome.WITHDREW if any(e.status == Enrollment.Status.WITHDRAWN for e in enrollments) else None
        )
    credits = sum(e.section.course.credits for e in active)
    mean = sum((e.final_grade or Decimal(0)) * e.section.course.credits for e in active) / credits
    return TermOutcome.Outcome.PASSED if mean >= PASS_MARK else TermOutcome.Outcome.FAILED


@transaction.atomic
def term_close(*, term: Term, actor: User | None) -> dict[str, int]:
    """Computes final grades of every section and derives outcomes. Outcomes entered by staff or
    imported are kept. Safe to run again: it recomputes and updates the derived outcomes."""
    sections = list(term.sections.all())
    for section in sections:
        section_final_grades_compute(section=section)
    enrollments = Enrollment.objects.filter(section__term=term).select_related("section__course")
    by_student: dict[int, list[Enrollment]] = {}
    for enrollment in enrollments:
        by_student.setdefault(enrollment.student_id, []).append(enrollment)
    kept = set(
        TermOutcome.objects.filter(term=term)
        .exclude(source=TermOutcome.Source.DERIVED)
        .values_list("student_id", flat=True)
    )
    derived = {sid: term_outcome_decide(items) for sid, items in by_student.items() if sid not in kept}
    derived = {sid: outcome for sid, outcome in derived.items() if outcome}
    existing = {o.student_id: o for o in TermOutcome.objects.filter(term=term, student_id__in=derived)}
    to_create, to_update = [], []
    for student_id, outcome in derived.items():
        if student_id in existing:
            existing[student_id].outcome = outcome
            to_update.append(existing[student_id])
        else:
            to_create.append(TermOutcome(student_id=student_id, term=term, outcome=outcome))
    TermOutcome.objects.bulk_create(to_create)
    TermOutcome.objects.bulk_update(to_update, ["outcome", "updated_at"])
    audit_log_write(
        actor=actor,
        verb="term.closed",
        target=term,
        action=AuditLogEntry.Action.ACTION,
        changes={"outcomes_derived": [None, len(derived)], "sections": [None, len(sections)]},
    )
    return {"sections": len(sections), "outcomes": len(derived), "kept": len(kept)}


@transaction.atomic
def term_outcome_set(
    *,
    student: Student,
    term: Term,
    outcome: str,
    actor: User | None,
    source: str = TermOutcome.Source.STAFF,
    note: str = "",
) -> TermOutcome:
    record, created = TermOutcome.objects.select_for_update().get_or_create(
        student=student, term=term, defaults={"outcome": outcome, "source": source, "note": note}
    )
    before = None if created else record.outcome
    if not created:
        record.outcome, record.source, record.note = outcome, source, note
        record.full_clean()
        record.save(update_fields=["outcome", "source", "note", "updated_at"])
    if before != outcome:
        audit_log_write(
            actor=actor, verb="term_outcome.set", target=record, changes={"outcome": [before, outcome]}, reason=note
        )
    return record


def audit_value(value):
    """A JSON-safe form of a field value for the audit log."""
    if hasattr(value, "pk"):
        return value.pk
    if isinstance(value, Decimal | datetime.date):
        return str(value)
    return value


# --- Catalogue (departments, programs, courses, terms, sections) ----------------------------


@transaction.atomic
def catalogue_record_save(*, record, actor: User | None, lecturers: list[User] | None = None):
    """Creates or updates a catalogue row after checking every constraint (full_clean), audited."""
    adding = record._state.adding
    before = {} if adding else _field_values(type(record).objects.get(pk=record.pk))
    record.full_clean()
    record.save()
    changes = changes_between(before, _field_values(record))
    if lecturers is not None:
        # Who teaches a section is part of its record: a change of lecturers is audited like a field's.
        had = [] if adding else sorted(record.lecturers.values_list("email", flat=True))
        record.lecturers.set(lecturers)
        has = sorted(lecturer.email for lecturer in lecturers)
        if had != has:
            changes["lecturers"] = [had, has]
    label = record._meta.model_name
    audit_log_write(
        actor=actor,
        verb=f"{label}.created" if adding else f"{label}.updated",
        target=record,
        action=AuditLogEntry.Action.CREATE if adding else AuditLogEntry.Action.UPDATE,
        changes=changes,
    )
    return record


@transaction.atomic
def catalogue_record_delete(*, record, actor: User | None) -> None:
    """Deletes an unused catalogue row; one still referred to raises ProtectedError (409 in the API)."""
    label = record._meta.model_name
    audit_log_write(actor=actor, verb=f"{label}.deleted", target=record, action=AuditLogEntry.Action.DELETE)
    record.delete()


def _field_values(record) -> dict:
    return {
        field.attname: audit_value(getattr(record, field.attname))
        for field in record._meta.concrete_fields
        if field.attname not in {"id", "created_at", "updated_at"}
    }
