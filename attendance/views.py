"""The attendance pages of the portal: lecturers run class sessions and show the rotating QR code,
students check in and follow their attendance. Thin, like students/views.py: reads go through the
scoped selectors (what a viewer may not see is a 404), writes through attendance.services, and every
refusal a service raises is shown with its own message, writing nothing. List pages run a fixed
number of queries whatever the number of rows."""

import csv
import datetime
import math
import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import role_required
from accounts.models import User
from accounts.roles import STAFF_ROLES, Role
from accounts.services import user_roles
from attendance import qr
from attendance.devices import with_device_id
from attendance.errors import AttendanceErrorCode as Code
from attendance.forms import (
    CancelSessionForm,
    CheckInCodeForm,
    ClassSessionForm,
    ExcuseDecisionForm,
    ExcuseForm,
    RecordSetForm,
    SessionSeriesForm,
    VoidRecordForm,
)
from attendance.limits import check_in_limits_enforce, person_for_user
from attendance.models import AbsenceExcuse, AttendanceRecord, ClassSession, ProxyFlag
from attendance.selectors import (
    AttendanceRate,
    attendance_rates,
    attendance_rates_for_section,
    class_sessions_visible_to,
    enrolled_at_session,
    records_visible_to,
    session_checked_in_count,
    session_flags,
)
from attendance.services import (
    absence_excuse_decide,
    absence_excuse_submit,
    attendance_check_in,
    attendance_record_set,
    attendance_record_void,
    check_in_refusal,
    class_session_cancel,
    class_session_close,
    class_session_create,
    class_session_open,
    class_session_series_create,
)
from campusiq.core.admin import formula_neutralise
from campusiq.core.errors import ServiceError
from campusiq.core.ratelimit import client_network
from students.models import Enrollment, Section, Student
from students.selectors import enrollments_visible_to, section_taught_by_get, students_visible_to, term_current

Status = AttendanceRecord.Status
State = ClassSession.State
ATTENDED = (Status.PRESENT, Status.LATE)

# The scan a student made, held in their session while they sign in and confirm.
HELD_SCAN_KEY = "attendance.held_scan"
# The outcome of the last check-in, for the result page after the redirect.
CHECK_IN_DONE_KEY = "attendance.check_in_done"
# Shown to the student for each refusal: (message, HTTP status).
REFUSALS: dict[str, tuple[str, int]] = {
    Code.TOKEN_INVALID: (
        gettext_lazy("This check-in link is not valid. Scan the QR code on the screen again."),
        400,
    ),
    Code.TOKEN_EXPIRED: (
        gettext_lazy("This QR code has expired: the code on the screen changes every few seconds. Scan it again now."),
        400,
    ),
    Code.CODE_INVALID: (
        gettext_lazy(
            "That code does not match a session of your courses that is open for check-in. "
            "Check the code on the screen and try again."
        ),
        400,
    ),
    Code.SESSION_NOT_STARTED: (
        gettext_lazy("This session has not started yet. Check in when it begins."),
        400,
    ),
    Code.SESSION_ENDED: (gettext_lazy("This session has ended, so check-in is over."), 400),
    Code.SESSION_NOT_OPEN: (
        gettext_lazy("Check-in for this session is not open. Ask your lecturer to open it."),
        400,
    ),
    Code.SESSION_CLOSED: (gettext_lazy("This session is closed, so check-in is over."), 400),
    Code.SESSION_CANCELLED: (gettext_lazy("This session was cancelled: there is nothing to check in to."), 400),
    Code.NOT_ENROLLED: (
        gettext_lazy("You are not enrolled in this course, so you cannot check in to its sessions."),
        403,
    ),
    Code.STUDENT_SUSPENDED: (
        gettext_lazy("Your enrolment is suspended, so you cannot check in. Please see the registry office."),
        403,
    ),
    Code.STUDENT_NOT_ACTIVE: (
        gettext_lazy("Only active students can check in. Please see the registry office."),
        403,
    ),
    Code.PROXY_REFUSED: (
        gettext_lazy(
            "This check-in was refused because it looks like it was made for someone else "
            "(for instance, from a phone that already checked in another student). Talk to your lecturer."
        ),
        403,
    ),
    Code.SCAN_EXPIRED: (
        gettext_lazy(
            "Too much time passed since you scanned the code, so that scan has expired. "
            "Scan the QR code on the screen again."
        ),
        400,
    ),
    Code.SCAN_OTHER_DEVICE: (
        gettext_lazy(
            "This scan was made on another device. Scan the QR code on the screen with the phone you are using now."
        ),
        403,
    ),
}
# Refusals of the lecturers' actions, in their words.
ACTION_ERRORS: dict[str, str] = {
    Code.SESSION_NOT_STARTED: gettext_lazy(
        "Check-in cannot open yet: it opens %(minutes)s minutes before the session starts."
    ),
    Code.SESSION_ENDED: gettext_lazy("This session has already ended: close it instead."),
    Code.SESSION_CLOSED: gettext_lazy("This session is already closed."),
    Code.SESSION_CANCELLED: gettext_lazy("This session was cancelled."),
    Code.SESSION_TIME_INVALID: gettext_lazy("The session must fall within the term %(term)s and end after it starts."),
    Code.REASON_REQUIRED: gettext_lazy("Give a reason."),
    Code.NOT_ENROLLED: gettext_lazy("This student was not enrolled in the section on the session's day."),
    Code.EXCUSE_NOT_ALLOWED: gettext_lazy("This absence cannot be excused (or an excuse was already submitted)."),
    Code.EXCUSE_ALREADY_DECIDED: gettext_lazy("This excuse was already decided."),
}


# --- Access ----------------------------------------------------------------------------------


_lecturer = role_required(Role.LECTURER, staff_too=True)
_student = role_required(Role.STUDENT)


def _own_student(user: User) -> Student:
    return get_object_or_404(students_visible_to(user), user=user)


def _taught_section_or_404(user: User, section_id: int) -> Section:
    try:
        return section_taught_by_get(user=user, section_id=section_id)
    except Section.DoesNotExist as missing:
        raise Http404 from missing


def _taught_session_or_404(user: User, session_id: int) -> ClassSession:
    """A session of a section the user teaches (registrars and admins: any), else 404."""
    session = get_object_or_404(ClassSession.objects.select_related("section__course", "section__term"), pk=session_id)
    _taught_section_or_404(user, session.section_id)
    return session


def _is_staff(user: User) -> bool:
    return user.is_superuser or bool(user_roles(user) & STAFF_ROLES)


# --- Small shared pieces ---------------------------------------------------------------------


def _action_error(error: ValidationError, *, term_name: str = "") -> str:
    code = getattr(error, "code", None)
    if code in ACTION_ERRORS:
        return ACTION_ERRORS[code] % {"minutes": settings.ATTENDANCE_OPEN_EARLY_MINUTES, "term": term_name}
    return " ".join(error.messages)


def _form_error(form, error: ValidationError, *, term_name: str = "") -> None:
    """Puts a service's refusal on the form field it concerns (or on the whole form)."""
    field = getattr(error, "field", None)
    form.add_error(field if field in form.fields else None, _action_error(error, term_name=term_name))


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _check_in_rate_limit(request: HttpRequest) -> None:
    """The person's one check-in budget (attendance.limits), shared with the API; before signing in,
    the scanning address stands for the person."""
    person = person_for_user(request.user) if request.user.is_authenticated else f"address:{client_network(request)}"
    check_in_limits_enforce(request, person)


def _qr_markup(url: str) -> str:
    return qr.qr_svg(url, title=str(_("QR code to check in")))


# --- Lecturers: sessions ----------------------------------------------------------------------


def _sessions_page(
    request: HttpRequest,
    section: Section,
    *,
    session_form: ClassSessionForm | None = None,
    series_form: SessionSeriesForm | None = None,
) -> HttpResponse:
    sessions = (
        class_sessions_visible_to(request.user)
        .filter(section=section)
        .annotate(checked_in=Count("records", filter=Q(records__status__in=ATTENDED)))
        .order_by("starts_at")
    )
    now = timezone.now()
    today = timezone.localdate()
    term = section.term
    first_day = min(max(today, term.start_date), term.end_date)
    return render(
        request,
        "attendance/section_sessions.html",
        {
            "section": section,
            "sessions": sessions,
            "session_form": session_form
            or ClassSessionForm(prefix="session", initial={"date": first_day, "late_after_minutes": 10}),
            "series_form": series_form
            or SessionSeriesForm(prefix="series", initial={"first_date": first_day, "duration_minutes": 90}),
            "now": now,
            # Sessions whose check-in may open now start before this (the service checks it again).
            "opens_before": now + datetime.timedelta(minutes=settings.ATTENDANCE_OPEN_EARLY_MINUTES),
        },
    )


@require_GET
@_lecturer
def section_sessions(request: HttpRequest, section_id: int) -> HttpResponse:
    return _sessions_page(request, _taught_section_or_404(request.user, section_id))


@require_POST
@_lecturer
def session_create(request: HttpRequest, section_id: int) -> HttpResponse:
    section = _taught_section_or_404(request.user, section_id)
    form = ClassSessionForm(request.POST, prefix="session")
    if form.is_valid():
        try:
            session = class_session_create(
                section=section,
                starts_at=form.starts_at(),
                ends_at=form.ends_at(),
                room=form.cleaned_data["room"],
                late_after_minutes=form.cleaned_data["late_after_minutes"],
                actor=request.user,
            )
        except ValidationError as error:
            _form_error(form, error, term_name=section.term.name)
        else:
            when = date_format(timezone.localtime(session.starts_at), "D j M Y, H:i")
            messages.success(request, _("Session on %(when)s created.") % {"when": when})
            return redirect("attendance:section-sessions", section_id=section.pk)
    return _sessions_page(request, section, session_form=form)


@require_POST
@_lecturer
def series_create(request: HttpRequest, section_id: int) -> HttpResponse:
    section = _taught_section_or_404(request.user, section_id)
    form = SessionSeriesForm(request.POST, prefix="series")
    if form.is_valid():
        try:
            sessions = class_session_series_create(
                section=section,
                first_date=form.cleaned_data["first_date"],
                start_time=form.cleaned_data["start_time"],
                duration=form.duration(),
                until=form.cleaned_data["until"],
                room=form.cleaned_data["room"],
                late_after_minutes=form.cleaned_data["late_after_minutes"],
                actor=request.user,
            )
        except ValidationError as error:
            _form_error(form, error, term_name=section.term.name)
        else:
            if sessions:
                messages.success(
                    request,
                    ngettext("Created %(count)d weekly session.", "Created %(count)d weekly sessions.", len(sessions))
                    % {"count": len(sessions)},
                )
                return redirect("attendance:section-sessions", section_id=section.pk)
            form.add_error(None, _("No session falls between those dates (holidays are skipped)."))
    return _sessions_page(request, section, series_form=form)


@dataclass(frozen=True)
class SessionRow:
    student: Student
    record: AttendanceRecord | None


@dataclass(frozen=True)
class FlaggedRecord:
    record: AttendanceRecord
    flags: list[ProxyFlag]


def _session_page(
    request: HttpRequest, session: ClassSession, *, set_form: RecordSetForm | None = None, roster=None
) -> HttpResponse:
    roster = roster if roster is not None else _session_roster(session)
    records = {record.student_id: record for record in records_visible_to(request.user).filter(session=session)}
    flagged: dict[int, FlaggedRecord] = {}
    for flag in session_flags(session).order_by("record__student__student_number", "created_at"):
        flagged.setdefault(flag.record_id, FlaggedRecord(record=flag.record, flags=[])).flags.append(flag)
    return render(
        request,
        "attendance/session_detail.html",
        {
            "session": session,
            "section": session.section,
            "rows": [SessionRow(student=student, record=records.get(student.pk)) for student in roster],
            "flagged": list(flagged.values()),
            "checked_in": sum(1 for record in records.values() if record.status in ATTENDED),
            "set_form": set_form or RecordSetForm(roster=roster),
            "show_set_form": set_form is not None or (session.state != State.CANCELLED and bool(roster)),
            "cancel_form": CancelSessionForm(),
            "can_open": session.state == State.SCHEDULED,
            "opens_at": session.starts_at - datetime.timedelta(minutes=settings.ATTENDANCE_OPEN_EARLY_MINUTES),
            # Closing marks everyone without a record absent: never offered before the session starts.
            "can_close": session.state in (State.SCHEDULED, State.OPEN) and session.starts_at <= timezone.now(),
            "can_cancel": session.state != State.CANCELLED,
        },
    )


def _session_roster(session: ClassSession) -> list[Student]:
    return list(
        enrolled_at_session(session)
        .select_related("user")
        .order_by("user__last_name", "user__first_name", "student_number")
        .distinct()
    )


@require_GET
@_lecturer
def session_detail(request: HttpRequest, session_id: int) -> HttpResponse:
    return _session_page(request, _taught_session_or_404(request.user, session_id))


@require_POST
@_lecturer
def session_open(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _taught_session_or_404(request.user, session_id)
    try:
        class_session_open(session=session, actor=request.user)
    except ServiceError as error:
        messages.error(request, _action_error(error))
    else:
        messages.success(request, _("Check-in is open. Show the QR code on the screen."))
    return redirect("attendance:session-detail", session_id=session.pk)


@require_POST
@_lecturer
def session_close(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _taught_session_or_404(request.user, session_id)
    try:
        marked = class_session_close(session=session, actor=request.user)
    except ServiceError as error:
        if error.code == Code.SESSION_NOT_STARTED:
            messages.error(request, _("A session cannot be closed before it starts."))
        else:
            messages.error(request, _action_error(error))
    else:
        messages.success(
            request,
            ngettext(
                "Session closed. %(count)d student without a check-in was marked absent.",
                "Session closed. %(count)d students without a check-in were marked absent.",
                marked,
            )
            % {"count": marked},
        )
    return redirect("attendance:session-detail", session_id=session.pk)


@require_POST
@_lecturer
def session_cancel(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _taught_session_or_404(request.user, session_id)
    form = CancelSessionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the session is cancelled. Nothing was changed."))
        return redirect(reverse("attendance:session-detail", args=[session.pk]) + "#cancel")
    try:
        class_session_cancel(session=session, actor=request.user, reason=form.cleaned_data["reason"])
    except ServiceError as error:
        messages.error(request, _action_error(error))
    else:
        messages.success(request, _("Session cancelled. It counts for nobody's attendance."))
    return redirect("attendance:session-detail", session_id=session.pk)


@require_POST
@_lecturer
def record_set(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _taught_session_or_404(request.user, session_id)
    roster = _session_roster(session)
    form = RecordSetForm(request.POST, roster=roster)
    if form.is_valid():
        student = form.chosen_student()
        try:
            record = attendance_record_set(
                session=session,
                student=student,
                status=form.cleaned_data["status"],
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
        except ServiceError as error:
            _form_error(form, error)
        else:
            messages.success(
                request,
                _("%(student)s is now marked %(status)s.")
                % {"student": student.user.get_full_name() or student.student_number, "status": _status_word(record)},
            )
            return redirect("attendance:session-detail", session_id=session.pk)
    return _session_page(request, session, set_form=form, roster=roster)


@require_POST
@_lecturer
def record_void(request: HttpRequest, record_id: int) -> HttpResponse:
    record = get_object_or_404(records_visible_to(request.user), pk=record_id)
    session = _taught_session_or_404(request.user, record.session_id)
    form = VoidRecordForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the check-in is voided. Nothing was changed."))
    else:
        attendance_record_void(record=record, actor=request.user, reason=form.cleaned_data["reason"])
        messages.success(
            request,
            _("The check-in of %(student)s was voided: it counts as an absence.")
            % {"student": record.student.user.get_full_name() or record.student.student_number},
        )
    return redirect(reverse("attendance:session-detail", args=[session.pk]) + "#flags")


def _status_word(record: AttendanceRecord) -> str:
    return {
        Status.PRESENT: _("present"),
        Status.LATE: _("late"),
        Status.ABSENT: _("absent"),
        Status.EXCUSED: _("excused"),
    }[record.status]


# --- Lecturers: the display on the projector ---------------------------------------------------


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
@_lecturer
def session_display(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _taught_session_or_404(request.user, session_id)
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
@_lecturer
def session_display_json(request: HttpRequest, session_id: int) -> JsonResponse:
    session = _taught_session_or_404(request.user, session_id)
    return JsonResponse(_display_state(request, session))


# --- Students: checking in --------------------------------------------------------------------


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
    session = ClassSession.objects.select_related("section__course", "section__term").filter(pk=session_id).first()
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
@_student
@with_device_id
def check_in_confirm(request: HttpRequest) -> HttpResponse:
    """Shows the held scan with one button; only its POST records the check-in."""
    if request.method == "POST":
        _check_in_rate_limit(request)
    student = _own_student(request.user)
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
    existing = records_visible_to(request.user).filter(session=session, student=student).first()
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
@_student
@with_device_id
def check_in_code(request: HttpRequest) -> HttpResponse:
    """The 6-digit code on the screen, for a student who cannot scan: then the same confirmation."""
    form = CheckInCodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        _check_in_rate_limit(request)
        student = _own_student(request.user)
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
    open_sessions = ClassSession.objects.filter(
        state=State.OPEN,
        section__enrollments__student=student,
        section__enrollments__status=Enrollment.Status.ENROLLED,
    ).select_related("section__course", "section__term")
    return next((session for session in open_sessions if qr.numeric_code_matches(session, code)), None)


def _done_page(request: HttpRequest, record: AttendanceRecord, *, created: bool | None) -> HttpResponse:
    return render(
        request,
        "attendance/check_in_done.html",
        {"record": record, "session": record.session, "section": record.session.section, "created": created},
    )


@never_cache
@require_GET
@_student
def check_in_done(request: HttpRequest, record_id: int) -> HttpResponse:
    student = _own_student(request.user)
    record = get_object_or_404(records_visible_to(request.user).filter(student=student), pk=record_id)
    done = request.session.pop(CHECK_IN_DONE_KEY, None)
    created = done.get("created") if isinstance(done, dict) and done.get("record_id") == record.pk else None
    return _done_page(request, record, created=created)


# --- Students: their attendance -----------------------------------------------------------------


@dataclass(frozen=True)
class StripCell:
    session: ClassSession
    kind: str  # present, late, excused, absent, missing (held, no record yet), upcoming, cancelled
    label: str
    letter: str
    x: int
    y: int


@dataclass(frozen=True)
class CourseAttendance:
    rate: AttendanceRate
    cells: list[StripCell]
    width: int
    height: int

    @property
    def enrollment(self) -> Enrollment:
        return self.rate.enrollment

    @property
    def present(self) -> int:
        return self.rate.attended - self.rate.late

    @property
    def rate_percent(self) -> str | None:
        return None if self.rate.rate is None else f"{self.rate.rate * 100:.0f}"

    @property
    def minimum_percent(self) -> str:
        return f"{self.rate.minimum * 100:.0f}"

    @property
    def below_minimum(self) -> bool:
        return self.rate.rate is not None and self.rate.rate < self.rate.minimum


STRIP_PER_ROW = 15
STRIP_CELL = 20
STRIP_GAP = 4


def _strip_kinds() -> dict[str, tuple[str, str]]:
    return {
        "present": (_("present"), pgettext("attendance status letter", "P")),
        "late": (_("late"), pgettext("attendance status letter", "L")),
        "excused": (_("excused"), pgettext("attendance status letter", "E")),
        "absent": (_("absent"), pgettext("attendance status letter", "A")),
        "missing": (_("no check-in"), "\u2013"),
        "upcoming": (_("upcoming"), ""),
        "cancelled": (_("cancelled"), "\u00d7"),
    }


def _strip(
    enrollment: Enrollment, sessions: list[ClassSession], records: dict[int, AttendanceRecord], now
) -> list[StripCell]:
    """One square per session of the section that concerns the student, in order: no queries."""
    kinds = _strip_kinds()
    cells = []
    for session in sessions:
        day = timezone.localtime(session.starts_at).date()
        if day < enrollment.enrolled_on or (enrollment.ended_on and day >= enrollment.ended_on):
            continue
        record = records.get(session.pk)
        if session.state == State.CANCELLED:
            kind = "cancelled"
        elif record is not None:
            kind = "absent" if record.voided else record.status
        elif session.starts_at <= now:
            kind = "missing"
        else:
            kind = "upcoming"
        label, letter = kinds[kind]
        index = len(cells)
        cells.append(
            StripCell(
                session=session,
                kind=kind,
                label=label,
                letter=letter,
                x=(index % STRIP_PER_ROW) * (STRIP_CELL + STRIP_GAP),
                y=(index // STRIP_PER_ROW) * (STRIP_CELL + STRIP_GAP),
            )
        )
    return cells


@require_GET
@_student
def my_attendance(request: HttpRequest) -> HttpResponse:
    student = _own_student(request.user)
    term = term_current()
    enrollments = (
        enrollments_visible_to(request.user)
        .filter(student=student, section__term=term)
        .exclude(status=Enrollment.Status.DROPPED)
        .order_by("section__course__code", "section__code")
    )
    rates = attendance_rates(enrollments) if term is not None else []
    section_ids = [row.enrollment.section_id for row in rates]
    sessions_by_section: dict[int, list[ClassSession]] = {}
    for session in class_sessions_visible_to(request.user).filter(section_id__in=section_ids).order_by("starts_at"):
        sessions_by_section.setdefault(session.section_id, []).append(session)
    records = {
        record.session_id: record
        for record in records_visible_to(request.user)
        .filter(student=student, session__section_id__in=section_ids)
        .select_related("excuse")
    }
    now = timezone.now()
    courses = []
    for row in rates:
        cells = _strip(row.enrollment, sessions_by_section.get(row.enrollment.section_id, []), records, now)
        rows = max(math.ceil(len(cells) / STRIP_PER_ROW), 1)
        courses.append(
            CourseAttendance(
                rate=row,
                cells=cells,
                width=min(len(cells), STRIP_PER_ROW) * (STRIP_CELL + STRIP_GAP) or STRIP_CELL,
                height=rows * (STRIP_CELL + STRIP_GAP),
            )
        )
    absences = sorted(
        (
            record
            for record in records.values()
            if (record.status == Status.ABSENT or getattr(record, "excuse", None) is not None)
            and record.session.state != State.CANCELLED
        ),
        key=lambda record: record.session.starts_at,
        reverse=True,
    )
    return render(
        request,
        "attendance/my_attendance.html",
        {"student": student, "term": term, "courses": courses, "absences": absences, "excuse_form": ExcuseForm()},
    )


@require_POST
@_student
def excuse_submit(request: HttpRequest, record_id: int) -> HttpResponse:
    student = _own_student(request.user)
    record = get_object_or_404(records_visible_to(request.user).filter(student=student), pk=record_id)
    form = ExcuseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why you were absent. Nothing was sent."))
    else:
        try:
            absence_excuse_submit(record=record, student=student, reason=form.cleaned_data["reason"])
        except ServiceError as error:
            messages.error(request, _action_error(error))
        else:
            messages.success(request, _("Your excuse was sent to your lecturer."))
    return redirect(reverse("attendance:my-attendance") + f"#absence-{record.pk}")


# --- Lecturers: the roster grid and its CSV -----------------------------------------------------


@dataclass(frozen=True)
class GridCell:
    session: ClassSession
    status: str  # present, late, absent, excused, voided, or "" without a record
    letter: str
    label: str


@dataclass(frozen=True)
class GridRow:
    rate: AttendanceRate
    cells: list[GridCell]
    flags: int

    @property
    def student(self) -> Student:
        return self.rate.enrollment.student

    @property
    def rate_percent(self) -> str | None:
        return None if self.rate.rate is None else f"{self.rate.rate * 100:.0f}"

    @property
    def below_minimum(self) -> bool:
        return self.rate.rate is not None and self.rate.rate < self.rate.minimum


def _grid_cells() -> dict[str, tuple[str, str]]:
    words = {
        "present": (pgettext("attendance status letter", "P"), _("present")),
        "late": (pgettext("attendance status letter", "L"), _("late")),
        "absent": (pgettext("attendance status letter", "A"), _("absent")),
        "excused": (pgettext("attendance status letter", "E"), _("excused")),
        "voided": (pgettext("attendance status letter", "V"), _("check-in voided")),
        "": ("\u2013", _("no record")),
    }
    return {status: (letter, label) for status, (letter, label) in words.items()}


def _grid(user: User, section: Section) -> tuple[list[ClassSession], list[GridRow]]:
    """Sessions (columns) and one row per student with their rate: four queries for any size."""
    sessions = list(class_sessions_visible_to(user).filter(section=section).order_by("starts_at"))
    rates = attendance_rates_for_section(section)
    statuses = {
        (session_id, student_id): "voided" if voided else status
        for session_id, student_id, status, voided in records_visible_to(user)
        .filter(session__section=section)
        .values_list("session_id", "student_id", "status", "voided")
    }
    flags = dict(
        ProxyFlag.objects.filter(record__session__section=section, record__voided=False)
        .values("record__student_id")
        .annotate(n=Count("pk"))
        .values_list("record__student_id", "n")
    )
    words = _grid_cells()

    def cell(session: ClassSession, student_id: int) -> GridCell:
        status = statuses.get((session.pk, student_id), "")
        return GridCell(session, status, *words[status])

    rows = [
        GridRow(
            rate=rate,
            cells=[cell(session, rate.enrollment.student_id) for session in sessions],
            flags=flags.get(rate.enrollment.student_id, 0),
        )
        for rate in rates
    ]
    return sessions, rows


@require_GET
@_lecturer
def section_roster(request: HttpRequest, section_id: int) -> HttpResponse:
    section = _taught_section_or_404(request.user, section_id)
    sessions, rows = _grid(request.user, section)
    return render(
        request,
        "attendance/roster.html",
        {"section": section, "sessions": sessions, "rows": rows},
    )


@require_GET
@_lecturer
def section_roster_csv(request: HttpRequest, section_id: int) -> HttpResponse:
    section = _taught_section_or_404(request.user, section_id)
    sessions, rows = _grid(request.user, section)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"attendance-{section.course.code}-{section.code}-{section.term.name}"
    response["Content-Disposition"] = f'attachment; filename="{re.sub(r"[^A-Za-z0-9._-]+", "-", filename)}.csv"'
    writer = csv.writer(response)
    session_headers = [
        f"{timezone.localtime(s.starts_at):%Y-%m-%d %H:%M}" + (" (cancelled)" if s.state == State.CANCELLED else "")
        for s in sessions
    ]
    writer.writerow(
        [
            "student_number",
            "name",
            "email",
            "rate",
            "minimum",
            "present",
            "late",
            "absent",
            "excused",
            "cannot_reach_minimum",
            "proxy_flags",
            *session_headers,
        ]
    )
    for row in rows:
        rate, student = row.rate, row.student
        cells = [
            student.student_number,
            student.user.get_full_name(),
            student.user.email,
            "" if rate.rate is None else str(rate.rate),
            str(rate.minimum),
            rate.attended - rate.late,
            rate.late,
            rate.absent,
            rate.excused,
            "yes" if rate.cannot_reach_minimum else "no",
            row.flags,
            *(cell.status for cell in row.cells),
        ]
        writer.writerow([formula_neutralise(cell) for cell in cells])
    return response


# --- Lecturers: absence excuses -------------------------------------------------------------------


def _excuses_decidable_by(user: User) -> QuerySet[AbsenceExcuse]:
    """Excuses for absences in sections the user teaches (registrars and admins: all)."""
    excuses = AbsenceExcuse.objects.select_related(
        "record__session__section__course", "record__session__section__term", "record__student__user"
    )
    if _is_staff(user):
        return excuses
    return excuses.filter(record__session__section__lecturers=user)


@require_GET
@_lecturer
def excuses(request: HttpRequest) -> HttpResponse:
    pending = _excuses_decidable_by(request.user).filter(state=AbsenceExcuse.State.SUBMITTED)
    return render(
        request,
        "attendance/excuses.html",
        {"pending": pending.order_by("record__session__starts_at", "pk")},
    )


@require_POST
@_lecturer
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
            messages.error(request, _action_error(error))
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
