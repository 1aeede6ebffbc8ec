"""The portal pages that read several apps: the home page ("Today" once signed in), the student's
dashboard (with their own risk estimate where the institution shows it), their profile (with
attendance's evidence retention) and their data download. Thin: reads go through each app's scoped
selectors (what a viewer may not see is a 404)."""

import json
import re

import structlog
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import role_required
from accounts.models import User
from accounts.roles import Role
from attendance.selectors import class_sessions_taught_by
from attendance.services import class_session_open
from attendance.views.messages import action_error
from campusiq.core.errors import ServiceError
from portal.today import today_for
from predictions.selectors import student_latest_score, student_sees_own_risk
from students.exports import student_personal_data
from students.models import Student
from students.selectors import student_record_get, students_visible_to
from students.services import PASS_MARK

log = structlog.get_logger(__name__)


def _own_student(user: User) -> Student:
    return get_object_or_404(students_visible_to(user), user=user)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Visitors get the public welcome; signed-in people "Today", a part for each role they hold (portal/today.py)."""
    if not request.user.is_authenticated:
        return render(request, "home.html")
    return render(request, "portal/today.html", {"today": today_for(request.user)})


@require_POST
@role_required(Role.LECTURER)
def today_session_open(request: HttpRequest, session_id: int) -> HttpResponse:
    """One click from "Today" while the class waits: opens check-in and puts the code on the screen."""
    session = get_object_or_404(class_sessions_taught_by(request.user), pk=session_id)
    try:
        class_session_open(session=session, actor=request.user)
    except ServiceError as error:
        messages.error(request, action_error(error))
        return redirect("home")
    return redirect("attendance:session-display", session_id=session.pk)


@require_GET
@login_required
def index(request: HttpRequest) -> HttpResponse:
    # The home page lists the dashboards each person's roles open.
    return redirect("home")


@require_GET
@role_required(Role.STUDENT)
def student_dashboard(request: HttpRequest) -> HttpResponse:
    record = student_record_get(viewer=request.user, student=_own_student(request.user))
    # Their own risk estimate only where the institution decided students see it.
    show_own_risk = record.term is not None and student_sees_own_risk(request.user)
    own_risk = (
        student_latest_score(viewer=request.user, student=record.student, term=record.term) if show_own_risk else None
    )
    return render(
        request,
        "portal/student_dashboard.html",
        {**record.as_context(), "pass_mark": PASS_MARK, "show_own_risk": show_own_risk, "own_risk": own_risk},
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
