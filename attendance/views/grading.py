"""A section's attendance counted as a grade: its lecturers (and registry staff) enable it, choose its
weight and how many of the lowest sessions are left out; the scores are computed, never typed."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from attendance.forms import AttendanceGradeForm
from attendance.selectors import section_attendance_grade_get
from attendance.services import (
    section_attendance_grade_disable,
    section_attendance_grade_enable,
    section_attendance_grade_update,
)
from attendance.views.access import lecturer_required, taught_section_or_404
from attendance.views.messages import form_error
from campusiq.core.errors import ServiceError


@require_http_methods(["GET", "POST"])
@lecturer_required
def attendance_grade(request: HttpRequest, section_id: int) -> HttpResponse:
    section = taught_section_or_404(request.user, section_id)
    config = section_attendance_grade_get(section)
    initial = {"weight": config.assessment.weight, "drop_lowest": config.drop_lowest} if config else None
    form = AttendanceGradeForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        values = form.cleaned_data
        try:
            if config is None:
                section_attendance_grade_enable(section=section, actor=request.user, **values)
            else:
                section_attendance_grade_update(config=config, actor=request.user, **values)
        except ServiceError as error:
            form_error(form, error)
        else:
            messages.success(request, _("Attendance counts as a grade; the scores are up to date."))
            return redirect("attendance:attendance-grade", section_id=section.pk)
    return render(request, "attendance/attendance_grade.html", {"section": section, "config": config, "form": form})


@require_POST
@lecturer_required
def attendance_grade_disable(request: HttpRequest, section_id: int) -> HttpResponse:
    section = taught_section_or_404(request.user, section_id)
    config = section_attendance_grade_get(section)
    if config is None:
        # Switched off already (twice clicked, or by someone else): nothing to do.
        messages.info(request, _("Attendance does not count as a grade."))
        return redirect("attendance:attendance-grade", section_id=section.pk)
    assessment = section_attendance_grade_disable(config=config, actor=request.user)
    messages.success(
        request,
        _("Attendance no longer counts as a grade. “%(name)s” and its scores stay, as an ordinary assessment.")
        % {"name": assessment.name},
    )
    return redirect("attendance:attendance-grade", section_id=section.pk)
