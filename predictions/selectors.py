"""Who sees which risk scores, and the queries behind the dashboard, the API and the reports."""

from django.conf import settings
from django.db.models import Count, Exists, F, FloatField, OuterRef, Q, QuerySet, Subquery, Value

from accounts.access import is_registry_staff
from accounts.models import User
from accounts.roles import Role
from accounts.services import user_roles
from predictions.models import FlagFeedback, Intervention, RiskScore, ScoringRun
from students.models import Department, Enrollment, Program, Section, Student, Term, TermOutcome


def may_view_risk(user: User) -> bool:
    """Advisors (their advisees), registry staff (everyone), students (themselves, if the institution allows)."""
    if not user.is_authenticated:
        return False
    roles = user_roles(user)
    return is_registry_staff(user) or Role.ADVISOR in roles or student_sees_own_risk(user)


def student_sees_own_risk(user: User) -> bool:
    return settings.PREDICTIONS_STUDENTS_SEE_OWN_RISK and Role.STUDENT in user_roles(user)


def risk_scores_visible_to(user: User) -> QuerySet[RiskScore]:
    scores = RiskScore.objects.select_related("student__user", "student__program__department", "run", "model_version")
    if not user.is_authenticated:
        return scores.none()
    if is_registry_staff(user):
        return scores
    roles = user_roles(user)
    visible = Q(pk__in=[])
    if Role.ADVISOR in roles:
        visible |= Q(student__advisor=user)
    if student_sees_own_risk(user):
        visible |= Q(student__user=user)
    return scores.filter(visible)


def latest_run(term: Term) -> ScoringRun | None:
    return (
        ScoringRun.objects.filter(term=term, status=ScoringRun.Status.SUCCEEDED)
        .select_related("model_version")
        .order_by("-as_of", "-pk")
        .first()
    )


def previous_run(run: ScoringRun) -> ScoringRun | None:
    return (
        ScoringRun.objects.filter(term=run.term, status=ScoringRun.Status.SUCCEEDED, as_of__lt=run.as_of)
        .order_by("-as_of", "-pk")
        .first()
    )


def run_scores_with_change(scores: QuerySet[RiskScore], run: ScoringRun) -> QuerySet[RiskScore]:
    """The run's scores, each with `previous_probability` from the run before (None if not scored then)
    and whether an intervention was recorded for the student this term. One query for any number of rows."""
    before = previous_run(run)
    annotated = scores.filter(run=run)
    if before is None:
        annotated = annotated.annotate(previous_probability=Value(None, output_field=FloatField()))
    else:
        annotated = annotated.annotate(
            previous_probability=Subquery(
                RiskScore.objects.filter(run=before, student=OuterRef("student")).values("probability")[:1],
                output_field=FloatField(),
            )
        )
    return annotated.annotate(
        has_intervention=Exists(Intervention.objects.filter(student=OuterRef("student"), term=run.term_id)),
        change=F("probability") - F("previous_probability"),
    )


def interventions_visible_to(user: User) -> QuerySet[Intervention]:
    interventions = Intervention.objects.select_related("student__user", "advisor", "term")
    if is_registry_staff(user):
        return interventions
    if user.is_authenticated and Role.ADVISOR in user_roles(user):
        return interventions.filter(student__advisor=user)
    return interventions.none()


def intervention_outcome_report(term: Term, scores: QuerySet[RiskScore]) -> list[dict]:
    """For the students flagged (medium or high) in the term's latest run: how those with and without an
    intervention fared. An observation, not a causal claim (docs/PREDICTIONS.md)."""
    run = latest_run(term)
    if run is None:
        return []
    flagged = scores.filter(run=run, band__in=[RiskScore.Band.MEDIUM, RiskScore.Band.HIGH]).annotate(
        intervened=Exists(Intervention.objects.filter(student=OuterRef("student"), term=term)),
        outcome=Subquery(TermOutcome.objects.filter(student=OuterRef("student"), term=term).values("outcome")[:1]),
    )
    rows = flagged.values("intervened", "outcome").annotate(n=Count("pk")).order_by()
    report = {True: {"students": 0, "known": 0, "at_risk": 0}, False: {"students": 0, "known": 0, "at_risk": 0}}
    for row in rows:
        group = report[bool(row["intervened"])]
        group["students"] += row["n"]
        if row["outcome"]:
            group["known"] += row["n"]
            group["at_risk"] += row["n"] if row["outcome"] in ("failed", "withdrew") else 0
    return [
        {
            "intervened": intervened,
            **counts,
            "at_risk_rate": counts["at_risk"] / counts["known"] if counts["known"] else None,
        }
        for intervened, counts in report.items()
    ]


def terms_with_runs(*, also: Term | None = None) -> QuerySet[Term]:
    """Terms that have a succeeded scoring run (and `also`, the current term, even before its first), newest first."""
    has_run = Exists(ScoringRun.objects.filter(term=OuterRef("pk"), status=ScoringRun.Status.SUCCEEDED))
    chosen = has_run | Q(pk=also.pk) if also is not None else has_run
    return Term.objects.filter(chosen).order_by("-start_date", "-pk")


def risk_student_get(*, viewer: User, student_id: int) -> Student:
    """A student whose risk a member of staff may look into: an advisor's advisee, anyone for registry
    staff. Else Student.DoesNotExist (answered as 404: another advisor's advisee is not confirmed to exist)."""
    students = Student.objects.select_related("user", "program__department", "advisor")
    if is_registry_staff(viewer):
        return students.get(pk=student_id)
    if viewer.is_authenticated and Role.ADVISOR in user_roles(viewer):
        return students.get(pk=student_id, advisor=viewer)
    raise Student.DoesNotExist


# The dashboard's sort orders; ties broken by student number so pages never shuffle.
RISK_SORTS = {
    "probability": (F("probability").desc(), "student__student_number"),
    "change": (F("change").desc(nulls_last=True), F("probability").desc(), "student__student_number"),
    "student_number": ("student__student_number",),
}


def risk_dashboard_scores(
    *,
    viewer: User,
    run: ScoringRun,
    department: Department | None = None,
    program: Program | None = None,
    section: Section | None = None,
    band: str = "",
    search: str = "",
    sort: str = "probability",
) -> QuerySet[RiskScore]:
    """The run's scores the viewer may see, with their change and whether an intervention exists
    (run_scores_with_change), filtered, searched (risk_scores_search) and sorted. One query for any
    number of rows."""
    scores = risk_scores_search(run_scores_with_change(risk_scores_visible_to(viewer), run), search)
    if department is not None:
        scores = scores.filter(student__program__department=department)
    if program is not None:
        scores = scores.filter(student__program=program)
    if section is not None:
        enrolled = Enrollment.objects.filter(
            student=OuterRef("student"), section=section, status=Enrollment.Status.ENROLLED
        )
        scores = scores.filter(Exists(enrolled))
    if band:
        scores = scores.filter(band=band)
    return scores.order_by(*RISK_SORTS.get(sort, RISK_SORTS["probability"]))


def risk_scores_search(scores: QuerySet[RiskScore], search: str) -> QuerySet[RiskScore]:
    """Scores of students whose number starts with `search`, or whose first or last name starts with
    each of its words ("ana ex" finds Ana Example). Prefix matches, so an index on the column can serve
    them; a blank search keeps every score."""
    words = search.split()
    if not words:
        return scores
    by_name = Q()
    for word in words:
        by_name &= Q(student__user__first_name__istartswith=word) | Q(student__user__last_name__istartswith=word)
    return scores.filter(Q(student__student_number__istartswith=search.strip()) | by_name)


def student_score_history(*, viewer: User, student: Student, term: Term) -> QuerySet[RiskScore]:
    """The student's scores in the term's succeeded runs, newest first."""
    return (
        risk_scores_visible_to(viewer)
        .filter(student=student, term=term, run__status=ScoringRun.Status.SUCCEEDED)
        .order_by("-run__as_of", "-run_id")
    )


def student_latest_score(*, viewer: User, student: Student, term: Term) -> RiskScore | None:
    return student_score_history(viewer=viewer, student=student, term=term).first()


def feedback_visible_to(user: User) -> QuerySet[FlagFeedback]:
    feedback = FlagFeedback.objects.select_related("advisor", "risk_score__run")
    if is_registry_staff(user):
        return feedback
    if user.is_authenticated and Role.ADVISOR in user_roles(user):
        return feedback.filter(student__advisor=user)
    return feedback.none()


def risk_scores_newly_high(scores: QuerySet[RiskScore], run: ScoringRun) -> QuerySet[RiskScore]:
    """Of `scores`, the run's high-band ones whose student was not high in the run before (not scored
    then counts as not high; the term's first run: every high one is new), each with `has_intervention`
    this term. One query for any number of rows."""
    before = previous_run(run)
    newly = scores.filter(run=run, band=RiskScore.Band.HIGH)
    if before is not None:
        was_high = RiskScore.objects.filter(run=before, student=OuterRef("student"), band=RiskScore.Band.HIGH)
        newly = newly.exclude(Exists(was_high))
    return newly.annotate(
        has_intervention=Exists(Intervention.objects.filter(student=OuterRef("student"), term=run.term_id))
    ).order_by("-probability", "student__student_number")


def scoring_runs_latest(*, limit: int = 5) -> QuerySet[ScoringRun]:
    """The most recent scoring runs of every term, failed and running ones too, newest first."""
    return ScoringRun.objects.select_related("term", "model_version").order_by("-created_at", "-pk")[:limit]
