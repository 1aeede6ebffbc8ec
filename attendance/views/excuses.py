"""Absence excuses: students send them from their attendance page, lecturers decide them."""

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.access import is_registry_staff
from accounts.models import User
from attendance.forms import ExcuseDecisionForm, ExcuseForm
from attendance.models import AbsenceExcuse
from attendance.selectors import absence_excuses_of_sections_taught_by, student_records
from attendance.services import absence_excuse_decide, absence_excuse_submit
from attendance.views.access import lecturer_required, own_student, student_required
from attendance.views.messages import action_error
from campusiq.core.errors import ServiceError


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
    return render(
        request,
        "attendance/excuses.html",
        {"pending": pending.order_by("record__session__starts_at", "pk")},
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
