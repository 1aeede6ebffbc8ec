"""Students: checking in, by the QR code (scan, sign in if need be, confirm) or by the 6-digit code."""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from attendance import qr
from attendance.devices import with_device_id
from attendance.errors import AttendanceErrorCode as Code
from attendance.forms import CheckInCodeForm
from attendance.limits import check_in_limits_enforce, person_for_user
from attendance.models import AttendanceRecord, ClassSession
from attendance.selectors import class_session_get, class_sessions_open_for, session_records, student_records
from attendance.services import attendance_check_in, check_in_refusal
from attendance.views.access import own_student, student_required
from attendance.views.messages import REFUSALS
from campusiq.core.errors import ServiceError
from campusiq.core.ratelimit import client_network
from students.models import Student

# The scan a student made, held in their session while they sign in and confirm.
HELD_SCAN_KEY = "attendance.held_scan"
# The outcome of the last check-in, for the result page after the redirect.
CHECK_IN_DONE_KEY = "attendance.check_in_done"


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _check_in_rate_limit(request: HttpRequest) -> None:
    """The person's one check-in budget (attendance.limits), shared with the API; before signing in,
    the scanning address stands for the person."""
    person = person_for_user(request.user) if request.user.is_authenticated else f"address:{client_network(request)}"
    check_in_limits_enforce(request, person)


def _refused(request: HttpRequest, code: str, *, session: ClassSession | None = None) -> HttpResponse:
    message, status = REFUSALS.get(code, (None, 400))
    return render(
        request,
        "attendance/check_in_refused.html",
        {"code": code, "message": message or _("You could not be checked in."), "session": session},
        status=status,
    )


def _hold_scan(request: HttpRequest, *, session: ClassSession, step: int, method: str) -> None:
    """Holds the scan for the sign-in detour, bound to the device that made it (its device cookie): a
    session cookie handed to another browser after the code has died carries no scan it can confirm."""
    request.session[HELD_SCAN_KEY] = {
        "session_id": session.pk,
        "step": step,
        "scanned_at": timezone.now().isoformat(),
        "method": method,
        "device_id": request.device_id,
    }


@dataclass(frozen=True)
class HeldScan:
    session: ClassSession
    scanned_at: datetime.datetime
    method: str


def _held_scan(request: HttpRequest) -> HeldScan | None:
    """The scan waiting for confirmation; ServiceError scan_expired when held too long, scan_other_device
    when this is not the device that scanned."""
    held = request.session.get(HELD_SCAN_KEY)
    if not isinstance(held, dict):
        return None
    try:
        scanned_at = datetime.datetime.fromisoformat(held["scanned_at"])
        session_id, method = int(held["session_id"]), str(held.get("method", "qr"))
        scanned_on = str(held["device_id"])
    except (KeyError, TypeError, ValueError):
        return None
    if timezone.now() - scanned_at > datetime.timedelta(seconds=settings.ATTENDANCE_SCAN_HOLD_SECONDS):
        raise ServiceError(Code.SCAN_EXPIRED, "The scan was held too long.")
    if not constant_time_compare(scanned_on, request.device_id):
        raise ServiceError(Code.SCAN_OTHER_DEVICE, "The scan was made on another device.")
    session = class_session_get(session_id=session_id)
    if session is None:
        raise ServiceError(Code.TOKEN_INVALID, "The session no longer exists.")
    return HeldScan(session=session, scanned_at=scanned_at, method=method)


@never_cache
@require_GET
@with_device_id
def check_in_scan(request: HttpRequest, token: str) -> HttpResponse:
    """Where the QR code leads. The token must be fresh now; the scan is then held (for the sign-in
    detour) and confirmed by the student. Nothing is recorded here."""
    try:
        session, step = qr.qr_token_verify(token)
    except ServiceError as error:
        return _refused(request, error.code)
    _hold_scan(request, session=session, step=step, method=AttendanceRecord.Method.QR)
    confirm = reverse("attendance:check-in-confirm")
    if not request.user.is_authenticated:
        return redirect_to_login(confirm)
    return redirect(confirm)


@never_cache
@require_http_methods(["GET", "POST"])
@student_required
@with_device_id
def check_in_confirm(request: HttpRequest) -> HttpResponse:
    """Shows the held scan with one button; only its POST records the check-in."""
    if request.method == "POST":
        _check_in_rate_limit(request)
    student = own_student(request.user)
    try:
        held = _held_scan(request)
    except ServiceError as error:
        request.session.pop(HELD_SCAN_KEY, None)
        return _refused(request, error.code)
    if held is None:
        messages.info(request, _("Scan the QR code on the screen, or enter the code shown beside it."))
        return redirect("attendance:check-in-code")
    session = held.session
    if request.method == "POST":
        try:
            check_in = attendance_check_in(
                student=student,
                session=session,
                method=held.method,
                scanned_at=held.scanned_at,
                ip=_client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
                device_id=request.device_id,
                device_expected=True,
            )
        except ServiceError as error:
            request.session.pop(HELD_SCAN_KEY, None)
            return _refused(request, error.code, session=session)
        request.session.pop(HELD_SCAN_KEY, None)
        request.session[CHECK_IN_DONE_KEY] = {"record_id": check_in.record.pk, "created": check_in.created}
        return redirect("attendance:check-in-done", record_id=check_in.record.pk)
    try:
        check_in_refusal(session=session, student=student, at=held.scanned_at)
    except ServiceError as error:
        request.session.pop(HELD_SCAN_KEY, None)
        return _refused(request, error.code, session=session)
    existing = session_records(viewer=request.user, session=session).filter(student=student).first()
    if existing is not None:
        request.session.pop(HELD_SCAN_KEY, None)
        return _done_page(request, existing, created=False)
    return render(
        request,
        "attendance/check_in_confirm.html",
        {"session": session, "section": session.section, "held": held},
    )


@never_cache
@require_http_methods(["GET", "POST"])
@student_required
@with_device_id
def check_in_code(request: HttpRequest) -> HttpResponse:
    """The 6-digit code on the screen, for a student who cannot scan: then the same confirmation."""
    form = CheckInCodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        _check_in_rate_limit(request)
        student = own_student(request.user)
        if form.is_valid():
            session = _session_with_code(student, form.cleaned_data["code"])
            if session is not None:
                _hold_scan(request, session=session, step=qr.step_at(timezone.now()), method="code")
                return redirect("attendance:check-in-confirm")
            form.add_error("code", REFUSALS[Code.CODE_INVALID][0])
        status = 400
    return render(request, "attendance/check_in_code.html", {"form": form}, status=status)


def _session_with_code(student: Student, code: str) -> ClassSession | None:
    """The open session, of a section the student is enrolled in, whose current code this is."""
    open_sessions = class_sessions_open_for(student=student)
    return next((session for session in open_sessions if qr.numeric_code_matches(session, code)), None)


def _done_page(request: HttpRequest, record: AttendanceRecord, *, created: bool | None) -> HttpResponse:
    return render(
        request,
        "attendance/check_in_done.html",
        {"record": record, "session": record.session, "section": record.session.section, "created": created},
    )


@never_cache
@require_GET
@student_required
def check_in_done(request: HttpRequest, record_id: int) -> HttpResponse:
    student = own_student(request.user)
    record = get_object_or_404(student_records(viewer=request.user, student=student), pk=record_id)
    done = request.session.pop(CHECK_IN_DONE_KEY, None)
    created = done.get("created") if isinstance(done, dict) and done.get("record_id") == record.pk else None
    return _done_page(request, record, created=created)
