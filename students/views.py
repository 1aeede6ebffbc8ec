"""The portal pages for students, lecturers and advisors. Thin: each reads through the scoped selectors
(what a viewer may not see is a 404) and writes through students.services. Every list page runs a
fixed number of queries, whatever the number of rows."""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import structlog
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.decorators import role_required
from accounts.models import User
from accounts.roles import Role
from campusiq.core.errors import ServiceError
from predictions.selectors import student_latest_score, student_sees_own_risk
from students.errors import CampusErrorCode as Code
from students.exports import student_personal_data
from students.forms import GradeEntryForm
from students.models import Assessment, Enrollment, Section, Student, Term, TermOutcome
from students.selectors import (
    AssessmentStanding,
    CourseStanding,
    assessment_gradable_by,
    course_standings,
    enrollments_visible_to,
    grades_visible_to,
    section_taught_by_get,
    sections_taught_by,
    students_visible_to,
    term_current,
    term_outcomes_visible_to,
)
from students.services import PASS_MARK, grade_record

log = structlog.get_logger(__name__)

# --- Access ----------------------------------------------------------------------------------


def _own_student(user: User) -> Student:
    return get_object_or_404(students_visible_to(user), user=user)


def _advisees(user: User):
    return students_visible_to(user).filter(advisor=user)


def _taught_section_or_404(user: User, section_id: int) -> Section:
    try:
        return section_taught_by_get(user=user, section_id=section_id)
    except Section.DoesNotExist as missing:
        raise Http404 from missing


# --- Shared reads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PastTerm:
    term: Term
    enrollments: list[Enrollment]
    outcome: TermOutcome | None


def _past_terms(*, viewer: User, student: Student, before: Term | None) -> list[PastTerm]:
    """The student's terms that started before `before`, newest first, with final grades and outcome.
    Two queries."""
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


def _standings(
    enrollments: Iterable[Enrollment], assessments: Iterable[Assessment], scores: dict[tuple[int, int], Decimal]
) -> list[CourseStanding]:
    """CourseStanding for each enrollment from rows already read: no queries of its own."""
    by_section: dict[int, list[Assessment]] = {}
    for assessment in assessments:
        by_section.setdefault(assessment.section_id, []).append(assessment)
    return [
        CourseStanding(
            enrollment=enrollment,
            assessments=[
                AssessmentStanding(assessment=a, score=scores.get((enrollment.student_id, a.pk)))
                for a in by_section.get(enrollment.section_id, [])
            ],
        )
        for enrollment in enrollments
    ]


def _roster(user: User, section: Section) -> list[Enrollment]:
    """The students enrolled (not dropped or withdrawn) in the section, by name."""
    return list(
        enrollments_visible_to(user)
        .filter(section=section, status=Enrollment.Status.ENROLLED)
        .select_related("student__program")
        .order_by("student__user__last_name", "student__user__first_name", "student__student_number")
    )


# --- Pages -------------------------------------------------------------------------------------


@require_GET
@login_required
def index(request: HttpRequest) -> HttpResponse:
    # The home page lists the dashboards each person's roles open.
    return redirect("home")


@require_GET
@role_required(Role.STUDENT)
def student_dashboard(request: HttpRequest) -> HttpResponse:
    student = _own_student(request.user)
    term = term_current()
    # Their own risk estimate only where the institution decided students see it.
    show_own_risk = term is not None and student_sees_own_risk(request.user)
    own_risk = student_latest_score(viewer=request.user, student=student, term=term) if show_own_risk else None
    return render(
        request,
        "portal/student_dashboard.html",
        {
            "student": student,
            "term": term,
            "standings": course_standings(student=student, term=term) if term else [],
            "past_terms": _past_terms(viewer=request.user, student=student, before=term),
            "pass_mark": PASS_MARK,
            "show_own_risk": show_own_risk,
            "own_risk": own_risk,
        },
    )


@require_GET
@role_required(Role.STUDENT)
def student_profile(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/student_profile.html",
        {"student": _own_student(request.user), "evidence_days": settings.ATTENDANCE_EVIDENCE_RETENTION_DAYS},
    )


@never_cache  # personal data: no shared or browser cache keeps a copy
@require_GET
@role_required(Role.STUDENT)
def student_data_export(request: HttpRequest) -> HttpResponse:
    """The student's own data as a JSON file (students/exports.py; docs/PRIVACY.md). Ids only in the log."""
    student = _own_student(request.user)
    data = student_personal_data(student=student)
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"campusiq-my-data-{student.student_number}-{timezone.localdate()}")
    response["Content-Disposition"] = f'attachment; filename="{name}.json"'
    log.info(
        "personal_data_exported",
        viewer=request.user.pk,
        student=student.pk,
        rows={
            "enrollments": len(data["enrollments"]),
            "grades": len(data["grades"]),
            "attendance_records": len(data["attendance"]["records"]),
            "risk_scores": len(data["risk_scores"]),
            "interventions": len(data["interventions"]),
        },
    )
    return response


@require_GET
@role_required(Role.LECTURER)
def lecturer_sections(request: HttpRequest) -> HttpResponse:
    current = term_current()
    sections = list(
        sections_taught_by(request.user)
        .annotate(enrolled_count=Count("enrollments", filter=Q(enrollments__status=Enrollment.Status.ENROLLED)))
        .order_by("-term__start_date", "course__code", "code")
    )
    this_term = [s for s in sections if current is not None and s.term_id == current.pk]
    other_terms = [s for s in sections if current is None or s.term_id != current.pk]
    return render(
        request,
        "portal/lecturer_sections.html",
        {"term": current, "this_term": this_term, "other_terms": other_terms},
    )


@require_GET
@role_required(Role.LECTURER, staff_too=True)
def section_detail(request: HttpRequest, section_id: int) -> HttpResponse:
    section = _taught_section_or_404(request.user, section_id)
    assessments = list(section.assessments.order_by("due_date", "name"))
    roster = _roster(request.user, section)
    scores = {
        (student_id, assessment_id): score
        for student_id, assessment_id, score in grades_visible_to(request.user)
        .filter(assessment__section=section)
        .values_list("student_id", "assessment_id", "score")
    }
    return render(
        request,
        "portal/section_detail.html",
        {
            "section": section,
            "assessments": assessments,
            "total_weight": sum((a.weight for a in assessments), Decimal(0)),
            "rows": _standings(roster, assessments, scores),
            "pass_mark": PASS_MARK,
        },
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.LECTURER, staff_too=True)
def grade_entry(request: HttpRequest, section_id: int, assessment_id: int) -> HttpResponse:
    section = _taught_section_or_404(request.user, section_id)
    assessment = get_object_or_404(section.assessments.all(), pk=assessment_id)
    if not assessment_gradable_by(user=request.user, assessment=assessment):
        raise Http404
    roster = [enrollment.student for enrollment in _roster(request.user, section)]
    scores = dict(grades_visible_to(request.user).filter(assessment=assessment).values_list("student_id", "score"))
    form = GradeEntryForm(request.POST if request.method == "POST" else None, roster=roster, scores=scores)
    if request.method == "POST":
        recorded = _grades_record(request, form=form, assessment=assessment, scores=scores)
        if recorded is not None:
            if recorded:
                message = ngettext(
                    "Saved %(count)d grade for %(assessment)s.",
                    "Saved %(count)d grades for %(assessment)s.",
                    recorded,
                ) % {"count": recorded, "assessment": assessment.name}
            else:
                message = _("No score was changed, so nothing was saved.")
            messages.success(request, message)
            return redirect("portal:section-detail", section_id=section.pk)
    return render(request, "portal/grade_entry.html", {"section": section, "assessment": assessment, "form": form})


def _grades_record(
    request: HttpRequest, *, form: GradeEntryForm, assessment: Assessment, scores: dict[int, Decimal]
) -> int | None:
    """Records every changed score in one transaction. Returns how many were recorded, or None when
    anything was refused: then nothing is written and each error sits on the field it concerns."""
    form.is_valid()
    reason = form.cleaned_data.get("reason", "")
    recorded = 0
    with transaction.atomic():
        for student, seen, score in form.changed_scores():
            name = form.field_name(student)
            current = scores.get(student.pk)
            if current != seen:
                form.add_error(name, _conflict_message(current))
                form.seen_update(student, current)  # saving again then replaces it, knowingly
                continue
            if score is None:
                form.add_error(name, _("A recorded grade cannot be removed here. Ask the registrar's office."))
                continue
            try:
                grade_record(student=student, assessment=assessment, score=score, actor=request.user, reason=reason)
            except ServiceError as error:
                form.add_error(name, _grade_error_message(error, assessment))
                continue
            recorded += 1
        if form.errors:
            transaction.set_rollback(True)
            return None
    return recorded


def _conflict_message(current: Decimal | None) -> str:
    if current is None:
        return _("Someone else changed this grade since you opened the page. Check your score and save again.")
    return _(
        "Someone else changed this grade to %(score)s since you opened the page. "
        "Your score is still in the box: save again to replace it."
    ) % {"score": current}


def _grade_error_message(error: ServiceError, assessment: Assessment) -> str:
    if error.code == Code.SCORE_OUT_OF_RANGE:
        return _("Enter a score between 0 and %(max)s.") % {"max": assessment.max_score}
    if error.code == Code.NOT_ENROLLED:
        return _("This student is not enrolled in the section any more.")
    return error.detail


@require_GET
@role_required(Role.ADVISOR)
def advisor_dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    term = term_current()
    advisees = list(_advisees(user).order_by("user__last_name", "user__first_name", "student_number"))
    standings: dict[int, list[CourseStanding]] = {}
    if term is not None:
        enrollments = (
            enrollments_visible_to(user)
            .filter(student__advisor=user, section__term=term, status=Enrollment.Status.ENROLLED)
            .order_by("section__course__code", "section__code")
        )
        section_ids = {e.section_id for e in enrollments}
        assessments = Assessment.objects.filter(section_id__in=section_ids).order_by("due_date", "name")
        scores = {
            (student_id, assessment_id): score
            for student_id, assessment_id, score in grades_visible_to(user)
            .filter(student__advisor=user, assessment__section__term=term)
            .values_list("student_id", "assessment_id", "score")
        }
        for standing in _standings(enrollments, assessments, scores):
            standings.setdefault(standing.enrollment.student_id, []).append(standing)
    last_outcome: dict[int, TermOutcome] = {}
    for outcome in term_outcomes_visible_to(user).filter(student__advisor=user).order_by("term__start_date"):
        last_outcome[outcome.student_id] = outcome  # the newest term wins
    rows = [
        {"student": s, "standings": standings.get(s.pk, []), "last_outcome": last_outcome.get(s.pk)} for s in advisees
    ]
    return render(request, "portal/advisor_dashboard.html", {"term": term, "rows": rows, "pass_mark": PASS_MARK})


@require_GET
@role_required(Role.ADVISOR)
def advisee_detail(request: HttpRequest, student_id: int) -> HttpResponse:
    student = get_object_or_404(_advisees(request.user), pk=student_id)
    term = term_current()
    return render(
        request,
        "portal/advisee_detail.html",
        {
            "student": student,
            "term": term,
            "standings": course_standings(student=student, term=term) if term else [],
            "past_terms": _past_terms(viewer=request.user, student=student, before=term),
            "pass_mark": PASS_MARK,
        },
    )
