"""Lecturers: a section's sessions (one at a time or a weekly series), one session with its records
and proxy flags, and the actions on them (open, close, cancel, set or void a record)."""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from attendance.errors import AttendanceErrorCode as Code
from attendance.forms import (
    CancelSessionForm,
    ClassSessionForm,
    RecordSetForm,
    SeriesCancelForm,
    SessionSeriesForm,
    VoidRecordForm,
)
from attendance.models import AttendanceRecord, ClassSession, ProxyFlag
from attendance.selectors import (
    ATTENDED,
    class_session_get,
    class_session_never_taken,
    class_sessions_with_check_ins,
    records_visible_to,
    section_series,
    series_sessions_from,
    session_flags,
    session_records,
    session_roster,
    session_unmarked,
)
from attendance.services import (
    attendance_record_set,
    attendance_record_void,
    class_session_cancel,
    class_session_close,
    class_session_create,
    class_session_open,
    class_session_series_cancel,
    class_session_series_create,
)
from attendance.views.access import lecturer_required, taught_section_or_404, taught_session_or_404
from attendance.views.messages import action_error, form_error
from campusiq.core.errors import ServiceError
from students.models import Section, Student

Status = AttendanceRecord.Status
State = ClassSession.State


def _sessions_page(
    request: HttpRequest,
    section: Section,
    *,
    session_form: ClassSessionForm | None = None,
    series_form: SessionSeriesForm | None = None,
    cancel_form: SeriesCancelForm | None = None,
) -> HttpResponse:
    sessions = class_sessions_with_check_ins(viewer=request.user, section=section)
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
            or ClassSessionForm(
                prefix="session", section=section, initial={"date": first_day, "late_after_minutes": 10}
            ),
            "series_form": series_form
            or SessionSeriesForm(
                prefix="series", section=section, initial={"first_date": first_day, "duration_minutes": 90}
            ),
            "cancel_form": cancel_form or SeriesCancelForm(series_choices=_series_choices(section)),
            "now": now,
            # Sessions whose check-in may open now start before this (the service checks it again).
            "opens_before": now + datetime.timedelta(minutes=settings.ATTENDANCE_OPEN_EARLY_MINUTES),
        },
    )


def _series_choices(section: Section) -> list[tuple[str, str]]:
    return [
        (
            str(row["series"]),
            ngettext(
                "From %(when)s (%(count)d session still scheduled)",
                "From %(when)s (%(count)d sessions still scheduled)",
                row["scheduled"],
            )
            % {"when": date_format(timezone.localtime(row["first_start"]), "D j M Y, H:i"), "count": row["scheduled"]},
        )
        for row in section_series(section)
    ]


@require_GET
@lecturer_required
def section_sessions(request: HttpRequest, section_id: int) -> HttpResponse:
    return _sessions_page(request, taught_section_or_404(request.user, section_id))


@require_POST
@lecturer_required
def session_create(request: HttpRequest, section_id: int) -> HttpResponse:
    section = taught_section_or_404(request.user, section_id)
    form = ClassSessionForm(request.POST, prefix="session", section=section)
    if form.is_valid():
        try:
            session = class_session_create(
                section=section,
                starts_at=form.starts_at(),
                ends_at=form.ends_at(),
                room=form.cleaned_data["room"],
                late_after_minutes=form.cleaned_data["late_after_minutes"],
                group=form.chosen_group(),
                actor=request.user,
            )
        except ValidationError as error:
            form_error(form, error, term_name=section.term.name)
        else:
            when = date_format(timezone.localtime(session.starts_at), "D j M Y, H:i")
            messages.success(request, _("Session on %(when)s created.") % {"when": when})
            return redirect("attendance:section-sessions", section_id=section.pk)
    return _sessions_page(request, section, session_form=form)


@require_POST
@lecturer_required
def series_create(request: HttpRequest, section_id: int) -> HttpResponse:
    section = taught_section_or_404(request.user, section_id)
    form = SessionSeriesForm(request.POST, prefix="series", section=section)
    if form.is_valid():
        try:
            sessions = class_session_series_create(
                section=section,
                first_date=form.cleaned_data["first_date"],
                start_time=form.cleaned_data["start_time"],
                duration=form.duration(),
                until=form.cleaned_data["until"],
                weekdays=form.cleaned_data["weekdays"] or None,
                every_weeks=form.cleaned_data["every_weeks"],
                group=form.chosen_group(),
                room=form.cleaned_data["room"],
                late_after_minutes=form.cleaned_data["late_after_minutes"],
                actor=request.user,
            )
        except ValidationError as error:
            form_error(form, error, term_name=section.term.name)
        else:
            if sessions:
                messages.success(
                    request,
                    ngettext(
                        "Created %(count)d session in the series.",
                        "Created %(count)d sessions in the series.",
                        len(sessions),
                    )
                    % {"count": len(sessions)},
                )
                return redirect("attendance:section-sessions", section_id=section.pk)
            form.add_error(None, _("No session falls between those dates (holidays are skipped)."))
    return _sessions_page(request, section, series_form=form)


@require_POST
@lecturer_required
def series_cancel(request: HttpRequest, section_id: int) -> HttpResponse:
    """First shows how many sessions would be cancelled; cancels them once that page is confirmed."""
    section = taught_section_or_404(request.user, section_id)
    form = SeriesCancelForm(request.POST, series_choices=_series_choices(section))
    if not form.is_valid():
        return _sessions_page(request, section, cancel_form=form)
    values = form.cleaned_data
    if not values["confirmed"]:
        sessions = list(series_sessions_from(section=section, series=values["series"], from_date=values["from_date"]))
        return render(
            request,
            "attendance/series_cancel_confirm.html",
            {
                "section": section,
                "form": form,
                "to_cancel": [s for s in sessions if s.state == State.SCHEDULED],
                "kept": [s for s in sessions if s.state not in (State.SCHEDULED, State.CANCELLED)],
            },
        )
    try:
        result = class_session_series_cancel(
            series=values["series"],
            section=section,
            actor=request.user,
            reason=values["reason"],
            from_date=values["from_date"],
        )
    except ValidationError as error:
        form_error(form, error, term_name=section.term.name)
        return _sessions_page(request, section, cancel_form=form)
    cancelled, kept = len(result.cancelled), len(result.kept)
    message = ngettext("Cancelled %(count)d session.", "Cancelled %(count)d sessions.", cancelled) % {
        "count": cancelled
    }
    if kept:
        message += " " + ngettext(
            "%(count)d session already held or under way was left as it is.",
            "%(count)d sessions already held or under way were left as they are.",
            kept,
        ) % {"count": kept}
    messages.success(request, message)
    return redirect("attendance:section-sessions", section_id=section.pk)


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
    roster = roster if roster is not None else session_roster(session=session)
    records = {record.student_id: record for record in session_records(viewer=request.user, session=session)}
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
            "can_close": _can_close(session),
            "can_cancel": session.state != State.CANCELLED,
        },
    )


@require_GET
@lecturer_required
def session_detail(request: HttpRequest, session_id: int) -> HttpResponse:
    return _session_page(request, taught_session_or_404(request.user, session_id))


def _session_action(request: HttpRequest, session, act, *, refusals: dict | None = None) -> HttpResponse:
    """One lifecycle step of a session: `act()` returns the success message; a refusal becomes the
    page's error (`refusals` words some codes for this step). Back to the session page either way."""
    try:
        done = act()
    except ServiceError as error:
        messages.error(request, (refusals or {}).get(error.code) or action_error(error))
    else:
        messages.success(request, done)
    return redirect("attendance:session-detail", session_id=session.pk)


@require_POST
@lecturer_required
def session_open(request: HttpRequest, session_id: int) -> HttpResponse:
    session = taught_session_or_404(request.user, session_id)

    def act() -> str:
        class_session_open(session=session, actor=request.user)
        return _("Check-in is open. Show the QR code on the screen.")

    return _session_action(request, session, act)


@require_http_methods(["GET", "POST"])
@lecturer_required
def session_close(request: HttpRequest, session_id: int) -> HttpResponse:
    """GET: what closing will do (how many get marked absent, or that it becomes not taken); POST: close."""
    session = taught_session_or_404(request.user, session_id)
    if request.method == "GET":
        return render(
            request,
            "attendance/session_close_confirm.html",
            {
                "session": session,
                "section": session.section,
                "unmarked": session_unmarked(session).count(),
                "never_taken": class_session_never_taken(session),
                "can_close": _can_close(session),
            },
        )

    def act() -> str:
        marked = class_session_close(session=session, actor=request.user)
        if class_session_get(session_id=session.pk).state == State.NOT_TAKEN:
            return _("Nothing was recorded in this session: it is marked not taken and counts for no one.")
        return ngettext(
            "Session closed. %(count)d student without a check-in was marked absent.",
            "Session closed. %(count)d students without a check-in were marked absent.",
            marked,
        ) % {"count": marked}

    refusals = {Code.SESSION_NOT_STARTED: _("A session cannot be closed before it starts.")}
    return _session_action(request, session, act, refusals=refusals)


def _can_close(session: ClassSession) -> bool:
    # Closing marks everyone without a record absent: never offered before the session starts.
    return session.state in (State.SCHEDULED, State.OPEN) and session.starts_at <= timezone.now()


@require_POST
@lecturer_required
def session_cancel(request: HttpRequest, session_id: int) -> HttpResponse:
    session = taught_session_or_404(request.user, session_id)
    form = CancelSessionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the session is cancelled. Nothing was changed."))
        return redirect(reverse("attendance:session-detail", args=[session.pk]) + "#cancel")

    def act() -> str:
        class_session_cancel(session=session, actor=request.user, reason=form.cleaned_data["reason"])
        return _("Session cancelled. It counts for nobody's attendance.")

    return _session_action(request, session, act)


@require_POST
@lecturer_required
def record_set(request: HttpRequest, session_id: int) -> HttpResponse:
    session = taught_session_or_404(request.user, session_id)
    roster = session_roster(session=session)
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
            form_error(form, error)
        else:
            messages.success(
                request,
                _("%(student)s is now marked %(status)s.")
                % {"student": student.user.get_full_name() or student.student_number, "status": _status_word(record)},
            )
            return redirect("attendance:session-detail", session_id=session.pk)
    return _session_page(request, session, set_form=form, roster=roster)


@require_POST
@lecturer_required
def record_void(request: HttpRequest, record_id: int) -> HttpResponse:
    record = get_object_or_404(records_visible_to(request.user), pk=record_id)
    session = taught_session_or_404(request.user, record.session_id)
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
