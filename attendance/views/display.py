"""Lecturers: the display on the projector, the rotating QR code and the 6-digit code beside it."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from attendance import qr
from attendance.models import ClassSession
from attendance.selectors import session_checked_in_count
from attendance.views.access import lecturer_required, taught_session_or_404

State = ClassSession.State


def _qr_markup(url: str) -> str:
    return qr.qr_svg(url, title=str(_("QR code to check in")))


def _display_state(request: HttpRequest, session: ClassSession) -> dict:
    """Everything the screen shows at this moment: the QR code and code of the current step."""
    data = {
        "open": session.state == State.OPEN,
        "state": session.state,
        "checked_in": session_checked_in_count(session),
    }
    if not data["open"]:
        return data
    now = timezone.now()
    step = qr.step_at(now)
    url = request.build_absolute_uri(reverse("attendance:check-in", args=[qr.qr_token_make(session, step)]))
    seconds_left = (qr.step_starts_at(step + 1) - now).total_seconds()
    data.update(
        svg=_qr_markup(url),
        code=qr.numeric_code(session, step),
        step=step,
        seconds_left=round(max(seconds_left, 0), 3),
        rotation_seconds=qr.step_seconds(),
        url=url,
    )
    return data


@never_cache
@require_GET
@lecturer_required
def session_display(request: HttpRequest, session_id: int) -> HttpResponse:
    session = taught_session_or_404(request.user, session_id)
    return render(
        request,
        "attendance/display.html",
        {
            "session": session,
            "section": session.section,
            "display": _display_state(request, session),
            "code_url": request.build_absolute_uri(reverse("attendance:check-in-code")),
        },
    )


@never_cache
@require_GET
@lecturer_required
def session_display_json(request: HttpRequest, session_id: int) -> JsonResponse:
    session = taught_session_or_404(request.user, session_id)
    return JsonResponse(_display_state(request, session))
