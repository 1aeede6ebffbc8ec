"""Lecturers: taking attendance by hand (one radio group per student, "set all unmarked to"), the
marks as JSON for the page's live update, and the shared reading of posted marks (the roster grid's
columns post the same fields)."""

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from attendance.errors import AttendanceErrorCode as Code
from attendance.limits import marks_poll_limits_enforce, marks_save_limits_enforce
from attendance.models import AttendanceRecord, ClassSession
from attendance.selectors import (
    ATTENDED,
    record_code_reader,
    session_marking_roster,
    session_marks,
    session_statuses,
)
from attendance.services import MarksSaved, attendance_marks_save, marks_reason_may_be_needed
from attendance.views.access import lecturer_required, taught_session_or_404
from attendance.views.messages import action_error
from campusiq.core.errors import ServiceError
from students.models import Student

State = ClassSession.State
MARK_FIELD = "mark-"
REASON_MAX = 500


class MarksInvalid(ValueError):
    """Posted marks that do not parse: shown as the page's error, nothing saved."""


def posted_marks(data: QueryDict) -> dict[int, str]:
    """{student id: mark} from the `mark-<student id>` fields; an empty choice is no mark."""
    marks = {}
    for name, value in data.items():
        if not name.startswith(MARK_FIELD) or not value:
            continue
        student_id = name.removeprefix(MARK_FIELD)
        if not student_id.isascii() or not student_id.isdigit() or len(student_id) > 18:
            raise MarksInvalid(_("The form named a student that does not exist. Reload the page and try again."))
        marks[int(student_id)] = value
    return marks


def posted_reason(data: QueryDict) -> str:
    return data.get("reason", "").strip()[:REASON_MAX]


def saved_message(saved: MarksSaved) -> str:
    parts = [
        ngettext("%(count)d mark saved.", "%(count)d marks saved.", len(saved.changed)) % {"count": len(saved.changed)}
    ]
    if saved.checked_in_meanwhile:
        count = len(saved.checked_in_meanwhile)
        parts.append(
            ngettext(
                "%(count)d student checked in while you were saving: their check-in stands.",
                "%(count)d students checked in while you were saving: their check-ins stand.",
                count,
            )
            % {"count": count}
        )
    if saved.session.state == State.CLOSED and saved.marked_absent:
        parts.append(
            ngettext(
                "The session is now closed; %(count)d student without a mark was marked absent.",
                "The session is now closed; %(count)d students without a mark were marked absent.",
                saved.marked_absent,
            )
            % {"count": saved.marked_absent}
        )
    return " ".join(parts)


@dataclass(frozen=True)
class MarkRow:
    student: Student
    record: AttendanceRecord | None
    chosen: str  # the mark shown selected: what was posted, else the record's


def _take_page(
    request: HttpRequest, session: ClassSession, *, posted: QueryDict | None = None, error: str = ""
) -> HttpResponse:
    roster = session_marking_roster(session)
    records = session_marks(session)
    posted_choice = {} if posted is None else {k: v for k, v in posted.items() if k.startswith(MARK_FIELD)}

    statuses = session_statuses(session)
    code_of = record_code_reader(statuses)

    def chosen(student: Student) -> str:
        record = records.get(student.pk)
        return posted_choice.get(f"{MARK_FIELD}{student.pk}") or (code_of(record) if record else "")

    return render(
        request,
        "attendance/session_take.html",
        {
            "session": session,
            "section": session.section,
            "statuses": statuses,
            "rows": [MarkRow(student=s, record=records.get(s.pk), chosen=chosen(s)) for s in roster],
            "unmarked": sum(1 for s in roster if s.pk not in records),
            "checked_in": sum(1 for record in records.values() if record.status in ATTENDED),
            "reason_shown": marks_reason_may_be_needed(session),
            "reason": "" if posted is None else posted_reason(posted),
            "unmarked_to": "" if posted is None else posted.get("unmarked_to", ""),
            "error": error,
            "can_take": session.state != State.CANCELLED,
        },
        status=400 if error else 200,
    )


@never_cache
@require_http_methods(["GET", "POST"])
@lecturer_required
def session_take(request: HttpRequest, session_id: int) -> HttpResponse:
    session = taught_session_or_404(request.user, session_id)
    if request.method == "GET":
        return _take_page(request, session)
    marks_save_limits_enforce(request)
    try:
        marks = posted_marks(request.POST)
        unmarked_to = request.POST.get("unmarked_to", "")
        if not marks and not unmarked_to:
            raise MarksInvalid(_("Choose a mark for at least one student, or a mark for all unmarked students."))
        saved = attendance_marks_save(
            session=session,
            marks=marks,
            actor=request.user,
            reason=posted_reason(request.POST),
            unmarked_to=unmarked_to,
        )
    except MarksInvalid as invalid:
        return _take_page(request, session, posted=request.POST, error=str(invalid))
    except ServiceError as error:
        return _take_page(request, session, posted=request.POST, error=marks_refusal(error))
    messages.success(request, saved_message(saved))
    return redirect("attendance:session-take", session_id=session.pk)


def marks_refusal(error: ServiceError) -> str:
    """A refused save, in the lecturer's words."""
    words = {
        Code.REASON_REQUIRED: _("Say why these marks change: the session has ended or is closed. Nothing was saved."),
        Code.STATUS_INVALID: _("One of the marks is not offered in this session. Nothing was saved."),
        Code.NOT_ENROLLED: _(
            "One of the students was not enrolled in the section on the session's day. Nothing was saved."
        ),
    }
    return words.get(error.code) or action_error(error)


@never_cache
@require_GET
@lecturer_required
def session_marks_json(request: HttpRequest, session_id: int) -> JsonResponse:
    """The session's marks now, for the marking page to show check-ins as they arrive."""
    session = taught_session_or_404(request.user, session_id)
    marks_poll_limits_enforce(request)
    records = session_marks(session)
    return JsonResponse(
        {
            "state": session.state,
            "checked_in": sum(1 for record in records.values() if record.status in ATTENDED),
            "marks": {
                str(student_id): {"status": record.status, "voided": record.voided, "method": record.method}
                for student_id, record in records.items()
            },
        }
    )
