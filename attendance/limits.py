"""The check-in rate limits: one budget per person across every way of checking in (the portal's scan
and code pages, the API's QR, card and by-hand modes), and a generous one per client address (a lecture
hall behind one NAT). Each path names its person the same way, so a student who alternates between the
portal and the API still has the one budget, not one per path."""

from django.conf import settings
from django.http import HttpRequest

from campusiq.core.ratelimit import RateLimit, client_network, rate_limits_enforce


def person_for_user(user) -> str:
    return f"user:{user.pk}"


def check_in_limits_enforce(request: HttpRequest, person: str) -> None:
    """Counts one check-in attempt for `person` and the caller's address; RateLimitExceeded (429 with
    Retry-After) when either budget is spent."""
    rate_limits_enforce(
        [
            RateLimit("attendance-check-in-person", person, settings.ATTENDANCE_CHECK_IN_RATE_PER_USER),
            RateLimit("attendance-check-in-ip", client_network(request), settings.ATTENDANCE_CHECK_IN_RATE_PER_IP),
        ]
    )


# A lecturer saves marks a few times a session; far more is a script or a stuck button.
MARKS_SAVE_RATE_PER_USER = "30/m"
# The marking page asks every few seconds; a few tabs open stay well within this.
MARKS_POLL_RATE_PER_USER = "120/m"


def marks_save_limits_enforce(request: HttpRequest) -> None:
    rate_limits_enforce([RateLimit("attendance-marks-save", person_for_user(request.user), MARKS_SAVE_RATE_PER_USER)])


def marks_poll_limits_enforce(request: HttpRequest) -> None:
    rate_limits_enforce([RateLimit("attendance-marks-poll", person_for_user(request.user), MARKS_POLL_RATE_PER_USER)])


# A student reports an absence a few times a term; dozens an hour is a script filling the lecturers' list.
ADVANCE_ABSENCE_SUBMIT_RATE_PER_USER = "10/h"


def advance_absence_submit_limits_enforce(request: HttpRequest) -> None:
    rate_limits_enforce(
        [RateLimit("attendance-advance-absence", person_for_user(request.user), ADVANCE_ABSENCE_SUBMIT_RATE_PER_USER)]
    )
