"""Recent sign-in ("sudo mode"): handing out a person's powers beyond this browser (an API token from
the portal) needs this session's sign-in to be recent, with the second factor the token endpoint would
ask for (accounts/apis.py).

The moment is written into the session by every sign-in (the user_logged_in signal: a password, the
code step, a campus provider), so only a sign-in makes it younger; the browser holds only the session's
key. SignedInSession.signed_in_at will not do: signing in again as the same person keeps the session
(Django rotates the key only when nobody was signed in), so its row keeps the first sign-in's time;
a password change rotates the key, which makes a new row without any sign-in. A session signed in
before this was recorded is stale.
"""

import datetime
from enum import StrEnum

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.utils import timezone

from accounts.sso.services import sso_mfa_asserted
from accounts.two_factor import two_factor_device

SIGNED_IN_AT_SESSION_KEY = "campusiq_signed_in_at"


class SignInNeeded(StrEnum):
    AGAIN = "sign_in_again"  # signed in too long ago (or when is not known)
    CODE = "two_factor_code"  # two-factor is on, and this session has not shown a code
    TWO_FACTOR_SETUP = "two_factor_setup"  # staff, where two-factor is required, without it


def session_sign_in_record(session: SessionBase) -> None:
    """This session's person has just signed in (accounts.signals.record_sign_in_time)."""
    session[SIGNED_IN_AT_SESSION_KEY] = timezone.now().timestamp()


def session_signed_in_at(request: HttpRequest) -> datetime.datetime | None:
    """When the person signed in to this session, or None if nobody did (or it was not recorded)."""
    moment = request.session.get(SIGNED_IN_AT_SESSION_KEY)
    if not request.user.is_authenticated or not isinstance(moment, int | float):
        return None
    return datetime.datetime.fromtimestamp(moment, tz=datetime.UTC)


def recent_sign_in_window() -> datetime.timedelta:
    return datetime.timedelta(minutes=settings.SIGN_IN_RECENT_MINUTES)


def recent_sign_in_missing(request: HttpRequest) -> SignInNeeded | None:
    """What this session lacks before it may hand out a token, or None when it lacks nothing."""
    signed_in_at = session_signed_in_at(request)
    if signed_in_at is None or timezone.now() - signed_in_at > recent_sign_in_window():
        return SignInNeeded.AGAIN
    user = request.user
    if getattr(user, "is_verified", lambda: False)() or sso_mfa_asserted(request.session):
        return None
    if two_factor_device(user) is not None:
        return SignInNeeded.CODE
    if settings.ADMIN_REQUIRE_TWO_FACTOR and (user.is_staff or user.is_superuser):
        return SignInNeeded.TWO_FACTOR_SETUP
    return None
