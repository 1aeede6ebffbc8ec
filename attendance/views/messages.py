"""What the attendance pages say when a service refuses: to the student checking in, and to the
lecturers acting on sessions, records and excuses."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy

from attendance.errors import AttendanceErrorCode as Code
from students.errors import CampusErrorCode

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
    Code.NOT_IN_GROUP: (
        gettext_lazy(
            "This session is for one group of the course, and you are not in it. Check in to your own group's."
        ),
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
    Code.DROP_LOWEST_INVALID: gettext_lazy("Leave out between 0 and 100 sessions."),
    CampusErrorCode.WEIGHTS_OVER_100: gettext_lazy(
        "With this weight the section's assessments would weigh more than 100 %%."
    ),
}


def action_error(error: ValidationError, *, term_name: str = "") -> str:
    code = getattr(error, "code", None)
    if code in ACTION_ERRORS:
        return ACTION_ERRORS[code] % {"minutes": settings.ATTENDANCE_OPEN_EARLY_MINUTES, "term": term_name}
    return " ".join(error.messages)


def form_error(form, error: ValidationError, *, term_name: str = "") -> None:
    """Puts a service's refusal on the form field it concerns (or on the whole form)."""
    field = getattr(error, "field", None)
    form.add_error(field if field in form.fields else None, action_error(error, term_name=term_name))
