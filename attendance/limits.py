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
