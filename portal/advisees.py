"""The advisor's page of one advisee: their record (students) with each course's attendance beside its
grades (attendance), so it lives here, above both. Thin: reads go through the scoped selectors; another
advisor's advisee is a 404."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.decorators import role_required
from accounts.roles import Role
from attendance.selectors import attendance_rates, student_enrollments_in_term
from students.selectors import student_record_get, students_visible_to
from students.services import PASS_MARK


@require_GET
@role_required(Role.ADVISOR)
def advisee_detail(request: HttpRequest, student_id: int) -> HttpResponse:
    student = get_object_or_404(students_visible_to(request.user).filter(advisor=request.user), pk=student_id)
    record = student_record_get(viewer=request.user, student=student)
    rates = []
    if record.term is not None:
        rates = attendance_rates(student_enrollments_in_term(viewer=request.user, student=student, term=record.term))
    return render(
        request,
        "portal/advisee_detail.html",
        {**record.as_context(), "pass_mark": PASS_MARK, "attendance_rates": rates},
    )
