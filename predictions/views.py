"""The at-risk pages of the portal: the advisors' dashboard (and its CSV), one student's risk with the
interventions and feedback recorded, and the per-term intervention report. Thin, like students/views.py:
reads go through the scoped selectors of predictions.selectors (another advisor's advisee is a 404),
writes through predictions.services. List pages run a fixed number of queries whatever the rows."""

import csv
import re
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import role_required
from accounts.models import User
from accounts.roles import Role
from campusiq.core.admin import formula_neutralise
from campusiq.core.errors import ServiceError
from predictions.forms import AtRiskFilterForm, FlagFeedbackForm, InterventionCloseForm, InterventionForm
from predictions.models import Intervention, RiskScore, ScoringRun
from predictions.selectors import (
    feedback_visible_to,
    intervention_outcome_report,
    interventions_visible_to,
    latest_run,
    risk_dashboard_scores,
    risk_scores_visible_to,
    risk_student_get,
    student_latest_score,
    student_score_history,
    terms_with_runs,
)
from predictions.services import flag_feedback_record, intervention_close, intervention_record
from students.models import Student, Term
from students.selectors import term_current

log = structlog.get_logger(__name__)

PAGE_SIZE = 50
# Advisors (their advisees), registrars and admins (everyone); students, lecturers: 403.
_risk_staff = role_required(Role.ADVISOR, staff_too=True)


# --- Access and shared pieces ---------------------------------------------------------------------


def _risk_student_or_404(user: User, student_id: int) -> Student:
    try:
        return risk_student_get(viewer=user, student_id=student_id)
    except Student.DoesNotExist as missing:
        raise Http404 from missing


def _chosen_term(request: HttpRequest) -> tuple[Term | None, Term | None]:
    """(the term asked for with ?term= among those with runs, else the current one; the current term)."""
    current = term_current()
    wanted = request.GET.get("term", "")
    if wanted.isdigit() and (current is None or int(wanted) != current.pk):
        chosen = terms_with_runs().filter(pk=int(wanted)).first()
        if chosen is not None:
            return chosen, current
    return current, current


def _term_query(term: Term | None, current: Term | None) -> str:
    """The ?term= that keeps a non-current term across links and form posts."""
    return f"?term={term.pk}" if term is not None and term != current else ""


@dataclass(frozen=True)
class Dashboard:
    form: AtRiskFilterForm
    run: ScoringRun | None
    scores: QuerySet[RiskScore]
    term_query: str


def _dashboard(request: HttpRequest) -> Dashboard:
    term, current = _chosen_term(request)
    form = AtRiskFilterForm(request.GET, term=term, terms=terms_with_runs(also=current))
    run = latest_run(term) if term is not None else None
    if run is None:
        return Dashboard(form, None, RiskScore.objects.none(), "")
    scores = risk_dashboard_scores(
        viewer=request.user,
        run=run,
        department=form.value("department"),
        program=form.value("program"),
        section=form.value("section"),
        band=form.value("band"),
        search=form.value("q"),
        sort=form.value("sort") or "probability",
    )
    return Dashboard(form, run, scores, _term_query(term, current))


def _points(change: float | None) -> str:
    """A change of probability in percentage points: +12, -3, 0."""
    if change is None:
        return "new"
    points = round(change * 100)
    return f"{points:+d}" if points else "0"


# --- The dashboard and its CSV ----------------------------------------------------------------------


@require_GET
@_risk_staff
def at_risk_dashboard(request: HttpRequest) -> HttpResponse:
    dashboard = _dashboard(request)
    page = None
    if dashboard.run is not None:
        page = Paginator(dashboard.scores, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(score, _points(score.change)) for score in page or []]
    # Whose scores this page shows (ids only), like every other read of a score by staff.
    run_id = dashboard.run.pk if dashboard.run else None
    log.info("risk_scores_listed", viewer=request.user.pk, run=run_id, students=[score.student_id for score, _ in rows])
    return render(
        request,
        "predictions/at_risk.html",
        {
            "form": dashboard.form,
            "term": dashboard.form.term,
            "run": dashboard.run,
            "page": page,
            "rows": rows,
            "term_query": dashboard.term_query,
        },
    )


# Probability as a number of percent (73.4), not "73.4%": a spreadsheet sorts, filters and averages the
# column as numbers in every locale, and its name says the unit. Each factor has its own column, since a
# factor's text holds "; " itself.
CSV_COLUMNS_BEFORE_FACTORS = [
    "student_number",
    "name",
    "program",
    "department",
    "probability_percent",
    "band",
    "change_points",
    "intervention",
]
CSV_COLUMNS_AFTER_FACTORS = ["term", "scored_at", "model_version"]


FILTERS_LOGGED = ("department", "program", "section", "band")


def _csv_factor_columns(scores: list[RiskScore]) -> int:
    """As many factor columns as the scoring keeps (so every export has the same header), more if an
    older run kept more."""
    return max([settings.PREDICTIONS_TOP_FACTORS, *(len(score.factors) for score in scores)])


@require_GET
@_risk_staff
def at_risk_csv(request: HttpRequest) -> HttpResponse:
    dashboard = _dashboard(request)
    form, run, scores = dashboard.form, dashboard.run, list(dashboard.scores)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"at-risk-{form.term.name if form.term else 'no-term'}"
    response["Content-Disposition"] = f'attachment; filename="{re.sub(r"[^A-Za-z0-9._-]+", "-", filename)}.csv"'
    factor_columns = _csv_factor_columns(scores)
    writer = csv.writer(response)
    writer.writerow(
        [
            *CSV_COLUMNS_BEFORE_FACTORS,
            *(f"factor_{number}" for number in range(1, factor_columns + 1)),
            *CSV_COLUMNS_AFTER_FACTORS,
        ]
    )
    for score in scores:
        student = score.student
        factors = [factor.get("text", "") for factor in score.factors]
        cells = [
            student.student_number,
            student.user.get_full_name(),
            student.program.code,
            student.program.department.code,
            f"{score.probability * 100:.1f}",
            score.band,
            "new" if score.change is None else str(round(score.change * 100)),  # a number: no "+" to neutralise
            "yes" if score.has_intervention else "no",
            *factors,
            *[""] * (factor_columns - len(factors)),
            form.term.name,
            timezone.localtime(score.scored_at).isoformat(timespec="minutes"),
            score.model_version.name,
        ]
        writer.writerow([formula_neutralise(cell) for cell in cells])
    # The filters name which scores went out (a whole run's ids would make an enormous line); a search's
    # words are not logged, as they may be a name.
    filters = {name: str(getattr(form.value(name), "pk", form.value(name)) or "") for name in FILTERS_LOGGED}
    log.info(
        "risk_scores_exported",
        viewer=request.user.pk,
        run=run.pk if run else None,
        rows=len(scores),
        filters=filters,
        searched=bool(form.value("q")),
    )
    return response


# --- One student ------------------------------------------------------------------------------------


def _student_page(
    request: HttpRequest,
    student: Student,
    *,
    intervention_form: InterventionForm | None = None,
    feedback_form: FlagFeedbackForm | None = None,
    close_form: InterventionCloseForm | None = None,
    closing: int | None = None,
    status: int = 200,
) -> HttpResponse:
    term, current = _chosen_term(request)
    history = list(student_score_history(viewer=request.user, student=student, term=term)) if term else []
    # Each score with its change since the student's score in the run before (newest first).
    scored = [
        (score, _points(score.probability - history[index + 1].probability) if index + 1 < len(history) else "new")
        for index, score in enumerate(history)
    ]
    latest = history[0] if history else None
    interventions = interventions_visible_to(request.user).filter(student=student)
    feedback = feedback_visible_to(request.user).filter(student=student)
    if term is not None:
        interventions, feedback = interventions.filter(term=term), feedback.filter(term=term)
    log.info("risk_score_viewed", viewer=request.user.pk, student=student.pk)
    return render(
        request,
        "predictions/student_risk.html",
        {
            "student": student,
            "term": term,
            "terms": terms_with_runs(also=current),
            "term_query": _term_query(term, current),
            "latest": latest,
            "history": scored,
            "interventions": [
                (intervention, _close_form_for(intervention, close_form if intervention.pk == closing else None))
                for intervention in interventions.order_by("-created_at", "-pk")
            ],
            "feedback": list(feedback.order_by("-created_at", "-pk")),
            "intervention_form": intervention_form or InterventionForm(),
            "feedback_form": feedback_form
            or FlagFeedbackForm(initial={"risk_score": latest.pk if latest is not None else None}),
        },
        status=status,
    )


def _close_form_for(intervention: Intervention, refused: InterventionCloseForm | None) -> InterventionCloseForm | None:
    """The form closing this intervention: the one just refused keeps its errors; a closed one has none.
    Each form's ids are its intervention's, as the page holds one per open intervention."""
    if refused is not None:
        return refused
    return InterventionCloseForm(auto_id=f"close-{intervention.pk}-%s") if intervention.is_open else None


def _student_risk_url(student: Student, request: HttpRequest) -> str:
    term, current = _chosen_term(request)
    return reverse("predictions:student-risk", args=[student.pk]) + _term_query(term, current)


def _service_error_on(form, error: ServiceError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.detail)


@require_GET
@_risk_staff
def student_risk(request: HttpRequest, student_id: int) -> HttpResponse:
    return _student_page(request, _risk_student_or_404(request.user, student_id))


@require_POST
@_risk_staff
def intervention_create(request: HttpRequest, student_id: int) -> HttpResponse:
    student = _risk_student_or_404(request.user, student_id)
    term, _current = _chosen_term(request)
    form = InterventionForm(request.POST)
    if form.is_valid() and term is None:
        form.add_error(None, _("There is no term to record the intervention in."))
    elif form.is_valid():
        try:
            with transaction.atomic():
                intervention = intervention_record(
                    advisor=request.user,
                    student=student,
                    term=term,
                    kind=form.cleaned_data["kind"],
                    note=form.cleaned_data["note"],
                    risk_score=student_latest_score(viewer=request.user, student=student, term=term),
                )
        except ServiceError as error:
            _service_error_on(form, error)
        else:
            messages.success(
                request, _("Intervention recorded: %(kind)s.") % {"kind": intervention.get_kind_display().lower()}
            )
            return redirect(_student_risk_url(student, request) + "#interventions")
    return _student_page(request, student, intervention_form=form, status=400)


@require_POST
@_risk_staff
def intervention_close_view(request: HttpRequest, intervention_id: int) -> HttpResponse:
    try:
        intervention = interventions_visible_to(request.user).get(pk=intervention_id)
    except Intervention.DoesNotExist as missing:
        raise Http404 from missing
    form = InterventionCloseForm(request.POST, auto_id=f"close-{intervention.pk}-%s")
    status = 400
    if form.is_valid():
        try:
            intervention_close(intervention=intervention, actor=request.user, outcome=form.cleaned_data["outcome"])
        except ServiceError as error:
            _service_error_on(form, error)
            status = error.status
        else:
            messages.success(request, _("Intervention closed."))
            return redirect(_student_risk_url(intervention.student, request) + "#interventions")
    return _student_page(request, intervention.student, close_form=form, closing=intervention.pk, status=status)


@require_POST
@_risk_staff
def feedback_create(request: HttpRequest, student_id: int) -> HttpResponse:
    student = _risk_student_or_404(request.user, student_id)
    form = FlagFeedbackForm(request.POST)
    if form.is_valid():
        # Feedback goes on the score the advisor saw, which must be one of this student's.
        score = risk_scores_visible_to(request.user).filter(student=student, pk=form.cleaned_data["risk_score"]).first()
        if score is None:
            form.add_error(None, _("That score is not one of this student's. Reload the page and try again."))
        else:
            try:
                with transaction.atomic():
                    flag_feedback_record(
                        advisor=request.user,
                        risk_score=score,
                        verdict=form.cleaned_data["verdict"],
                        note=form.cleaned_data["note"],
                    )
            except ServiceError as error:
                _service_error_on(form, error)
            else:
                messages.success(request, _("Thank you: your feedback on the flag was recorded."))
                return redirect(_student_risk_url(student, request) + "#feedback")
    return _student_page(request, student, feedback_form=form, status=400)


# --- The intervention report ----------------------------------------------------------------------


@require_GET
@_risk_staff
def intervention_report(request: HttpRequest) -> HttpResponse:
    term, current = _chosen_term(request)
    run = latest_run(term) if term is not None else None
    rows = intervention_outcome_report(term, risk_scores_visible_to(request.user)) if run is not None else []
    return render(
        request,
        "predictions/report.html",
        {"term": term, "terms": terms_with_runs(also=current), "run": run, "rows": rows},
    )
