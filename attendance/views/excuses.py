"""Absence excuses: students send them from their attendance page, or report an absence to come in
advance; lecturers decide both."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import is_registry_staff
from accounts.models import User
from attendance.forms import AdvanceAbsenceForm, ExcuseDecisionForm, ExcuseForm
from attendance.limits import advance_absence_submit_limits_enforce
from attendance.models import AbsenceExcuse, AdvanceAbsence
from attendance.selectors import (
    absence_excuses_of_sections_taught_by,
    advance_absence_attachment_viewable,
    advance_absence_sections,
    advance_absences_decidable_by,
    advance_absences_of_student,
    student_records,
)
from attendance.services import (
    absence_excuse_decide,
    absence_excuse_submit,
    advance_absence_decide,
    advance_absence_submit,
    advance_absence_withdraw,
)
from attendance.views.access import lecturer_required, own_student, student_required
from attendance.views.messages import action_error, form_error
from campusiq.core.errors import ServiceError
from students.selectors import term_current


@require_POST
@student_required
def excuse_submit(request: HttpRequest, record_id: int) -> HttpResponse:
    student = own_student(request.user)
    record = get_object_or_404(student_records(viewer=request.user, student=student), pk=record_id)
    form = ExcuseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why you were absent. Nothing was sent."))
    else:
        try:
            absence_excuse_submit(record=record, student=student, reason=form.cleaned_data["reason"])
        except ServiceError as error:
            messages.error(request, action_error(error))
        else:
            messages.success(request, _("Your excuse was sent to your lecturer."))
    return redirect(reverse("attendance:my-attendance") + f"#absence-{record.pk}")


# --- Lecturers: absence excuses -------------------------------------------------------------------


def _excuses_decidable_by(user: User) -> QuerySet[AbsenceExcuse]:
    """Excuses for absences in sections the user teaches (registrars and admins: all)."""
    return absence_excuses_of_sections_taught_by(lecturer=None if is_registry_staff(user) else user)


@require_GET
@lecturer_required
def excuses(request: HttpRequest) -> HttpResponse:
    pending = _excuses_decidable_by(request.user).filter(state=AbsenceExcuse.State.SUBMITTED)
    advance = advance_absences_decidable_by(request.user).filter(state=AdvanceAbsence.State.SUBMITTED)
    return render(
        request,
        "attendance/excuses.html",
        {
            "pending": pending.order_by("record__session__starts_at", "pk"),
            "advance_pending": advance.order_by("first_day", "pk"),
        },
    )


@require_POST
@lecturer_required
def excuse_decide(request: HttpRequest, excuse_id: int) -> HttpResponse:
    excuse = get_object_or_404(_excuses_decidable_by(request.user), pk=excuse_id)
    form = ExcuseDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose to approve or reject the excuse."))
    else:
        try:
            absence_excuse_decide(
                excuse=excuse, approve=form.approve, actor=request.user, note=form.cleaned_data["note"]
            )
        except ServiceError as error:
            messages.error(request, action_error(error))
        else:
            student = excuse.record.student
            name = student.user.get_full_name() or student.student_number
            if form.approve:
                messages.success(
                    request, _("Excuse of %(student)s approved: the absence is excused.") % {"student": name}
                )
            else:
                messages.success(request, _("Excuse of %(student)s rejected.") % {"student": name})
    return redirect("attendance:excuses")


# --- Absences reported in advance -----------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@student_required
def advance_absences(request: HttpRequest) -> HttpResponse:
    """The student's "Report an absence" page: the form, and their reports with their state."""
    student = own_student(request.user)
    term = term_current()
    form = AdvanceAbsenceForm(sections=advance_absence_sections(student=student, term=term))
    status = 200
    if request.method == "POST":
        advance_absence_submit_limits_enforce(request)
        form = AdvanceAbsenceForm(request.POST, request.FILES, sections=form.fields["section"].queryset)
        if term is None:
            form.add_error(None, _("There is no term in progress to report an absence for."))
        elif form.is_valid():
            data = form.cleaned_data
            try:
                advance_absence_submit(
                    student=student,
                    term=term,
                    section=data["section"],
                    first_day=data["first_day"],
                    last_day=data["last_day"],
                    reason=data["reason"],
                    attachment=data["attachment"],
                )
            except ServiceError as error:
                form_error(form, error)
            else:
                messages.success(request, _("Your absence was reported to your lecturers."))
                return redirect("attendance:advance-absences")
        status = 400
    return render(
        request,
        "attendance/advance_absences.html",
        {"form": form, "term": term, "reports": advance_absences_of_student(student)},
        status=status,
    )


@require_POST
@student_required
def advance_absence_withdraw_view(request: HttpRequest, absence_id: int) -> HttpResponse:
    student = own_student(request.user)
    absence = get_object_or_404(advance_absences_of_student(student), pk=absence_id)
    try:
        advance_absence_withdraw(absence=absence, student=student)
    except ServiceError as error:
        messages.error(request, action_error(error))
    else:
        messages.success(request, _("Your report was withdrawn."))
    return redirect("attendance:advance-absences")


@require_GET
@login_required
def advance_absence_attachment(request: HttpRequest, absence_id: int) -> HttpResponse:
    """The report's document, to the student, those who may decide the report and registry staff only."""
    absence = advance_absence_attachment_viewable(viewer=request.user, absence_id=absence_id)
    if absence is None or not absence.attachment:
        raise Http404
    extension = absence.attachment.name[absence.attachment.name.rfind(".") :]
    with absence.attachment.open("rb") as document:  # at most ATTACHMENT_MAX_BYTES
        response = HttpResponse(document.read(), content_type=absence.attachment_content_type)
    response["Content-Disposition"] = f'attachment; filename="absence-{absence.pk}{extension}"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@lecturer_required
def advance_absence_decide_view(request: HttpRequest, absence_id: int) -> HttpResponse:
    absence = get_object_or_404(advance_absences_decidable_by(request.user), pk=absence_id)
    form = ExcuseDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose to approve or reject the report."))
    else:
        try:
            advance_absence_decide(
                absence=absence, approve=form.approve, actor=request.user, note=form.cleaned_data["note"]
            )
        except ServiceError as error:
            messages.error(request, action_error(error))
        else:
            name = absence.student.user.get_full_name() or absence.student.student_number
            if form.approve:
                messages.success(
                    request, _("Absence of %(student)s approved: they will be excused.") % {"student": name}
                )
            else:
                messages.success(request, _("Absence report of %(student)s rejected.") % {"student": name})
    return redirect("attendance:excuses")
