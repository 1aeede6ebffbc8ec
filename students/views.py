"""The portal pages for students, lecturers and advisors. Thin: each reads through the scoped selectors
(what a viewer may not see is a 404) and writes through students.services. Every list page runs a
fixed number of queries, whatever the number of rows."""

from collections.abc import Iterable
from decimal import Decimal

import structlog
from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods

from accounts.decorators import role_required
from accounts.models import User
from accounts.roles import Role
from campusiq.core.errors import ServiceError
from students.errors import CampusErrorCode as Code
from students.forms import GradeEntryForm
from students.models import Assessment, Enrollment, Section, Student, TermOutcome
from students.selectors import (
    AssessmentStanding,
    CourseStanding,
    assessment_gradable_by,
    enrollments_visible_to,
    grades_visible_to,
    section_taught_by_get,
    sections_taught_by,
    students_visible_to,
    term_current,
    term_outcomes_visible_to,
)
from students.services import PASS_MARK, GradeChange, grades_record_together

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
    """Records every changed score (students.services.grades_record_together: all or nothing). Returns
    how many were recorded, or None when anything was refused: then each error sits on its field."""
    form.is_valid()
    changes = [GradeChange(student, seen, score) for student, seen, score in form.changed_scores()]
    recorded, refusals = grades_record_together(
        assessment=assessment,
        changes=changes,
        current_scores=scores,
        actor=request.user,
        reason=form.cleaned_data.get("reason", ""),
        refused_elsewhere=bool(form.errors),
    )
    for refusal in refusals:
        name = form.field_name(refusal.student)
        if refusal.code == Code.GRADE_CHANGED_MEANWHILE:
            form.add_error(name, _conflict_message(refusal.current))
            form.seen_update(refusal.student, refusal.current)  # saving again then replaces it, knowingly
        elif refusal.code == Code.GRADE_REMOVAL_REFUSED:
            form.add_error(name, _("A recorded grade cannot be removed here. Ask the registrar's office."))
        else:
            form.add_error(name, _grade_error_message(refusal.error, assessment))
    return None if form.errors else recorded


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
