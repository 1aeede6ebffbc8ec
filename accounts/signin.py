"""Who may try a password now: failed sign-ins counted per account and address, per address, per
account, and per known browser (docs/ACCOUNTS.md, "Throttling").

A browser that signed in to an account before holds a signed "known browser" cookie for it (OWASP's
device-cookie pattern). Its attempts are counted per browser only, so someone guessing a lecturer's
password from elsewhere, or from behind the same campus address, can exhaust the account's budget
without locking the lecturer out of their own browser. Every other attempt is counted per account
and address, per address, and per account; the account's budget (at most 100 failures an hour,
OWASP ASVS 2.2.1) refuses every browser that has not signed in to it before.
"""

import secrets
import time
import unicodedata
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import User
from accounts.throttle import (
    Counter,
    FailureLimit,
    Refusal,
    Reservation,
    failures_clear,
    failures_release,
    failures_reserve,
    subject_digest,
)
from campusiq.core.ratelimit import client_network

log = structlog.get_logger(__name__)

ACCOUNT_AND_ADDRESS = "account_ip"
ADDRESS = "ip"
ADDRESS_DAY = "ip_day"
ACCOUNT = "account"
KNOWN_BROWSER = "device"
CODE = "code"

DEVICE_COOKIE_SALT = "campusiq.accounts.known-browser"
# One browser remembers this many accounts at most (a shared office computer), newest first.
DEVICE_COOKIE_ACCOUNTS = 5


class SignInThrottled(Exception):
    def __init__(self, refusal: Refusal):
        super().__init__(refusal.scope)
        self.refusal = refusal


# The sign-in page's and the campus buttons' query parameter for "sign in again": a page needs a recent
# sign-in (accounts/reauth.py), so a signed-in person gets the form, and a provider checks them anew.
REAUTH_PARAMETER = "reauth"


def safe_next_url(request: HttpRequest, candidate: str | None, default: str) -> str:
    """Where to go after signing in: `candidate` if it stays on this site, else `default`."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def email_normalise(email: str) -> str:
    return unicodedata.normalize("NFKC", email or "").strip().casefold()


def limits() -> dict[str, FailureLimit]:
    return {scope: FailureLimit.parse(scope, rate) for scope, rate in settings.SIGN_IN_FAILURE_LIMITS.items()}


@dataclass
class SignInAttempt:
    """One password check in progress: the places it reserved and what the logs may say about it."""

    account: str  # keyed digest of the normalised email; never the email itself
    network: str
    user_id: int | None
    known_browser: str | None
    reservation: Reservation

    def log_fields(self) -> dict:
        # The user's id when the account exists, else a short digest: a failed attempt's email is not logged.
        who = {"user_id": self.user_id} if self.user_id is not None else {"account_digest": self.account[:16]}
        return {**who, "client_network": self.network, "known_browser": self.known_browser is not None}


def _counters(*, account: str, network: str, known_browser: str | None) -> list[Counter]:
    limit = limits()
    if known_browser is not None:
        # The browser's own budget; still counted on the account (never refused by it), so the
        # account's figures show every failure.
        return [
            Counter(limit[KNOWN_BROWSER], subject_digest(KNOWN_BROWSER, account, known_browser)),
            Counter(limit[ACCOUNT], subject_digest(ACCOUNT, account), enforced=False),
        ]
    return [
        Counter(limit[ACCOUNT_AND_ADDRESS], subject_digest(ACCOUNT_AND_ADDRESS, account, network)),
        Counter(limit[ADDRESS], subject_digest(ADDRESS, network)),
        Counter(limit[ADDRESS_DAY], subject_digest(ADDRESS, network)),
        Counter(limit[ACCOUNT], subject_digest(ACCOUNT, account)),
    ]


def sign_in_attempt_begin(*, request: HttpRequest, email: str) -> SignInAttempt:
    """Reserves this attempt on its counters before the password is checked; raises SignInThrottled
    (and logs sign_in_throttled) when one is spent. The password is then never looked at."""
    account = subject_digest(ACCOUNT, email_normalise(email))
    network = client_network(request)
    user = User.objects.filter(email__iexact=email_normalise(email)).only("pk", "password").first()
    known_browser = known_browser_for(request, user) if user is not None else None
    counters = _counters(account=account, network=network, known_browser=known_browser)
    reservation = failures_reserve(counters)
    attempt = SignInAttempt(account, network, user.pk if user else None, known_browser, reservation)
    if reservation.refusal is not None:
        log.warning(
            "sign_in_throttled",
            scope=reservation.refusal.scope,
            retry_after=reservation.refusal.retry_after,
            **attempt.log_fields(),
        )
        raise SignInThrottled(reservation.refusal)
    return attempt


def sign_in_attempt_failed(attempt: SignInAttempt) -> None:
    """A wrong password (or an account that may not sign in): the reservation stands as a failure."""
    log.info("sign_in_failed", **attempt.log_fields())


def sign_in_attempt_passed(attempt: SignInAttempt) -> None:
    """The password was right: this attempt is not a failure. (Counters clear on full sign-in.)"""
    failures_release(attempt.reservation)


def sign_in_completed(*, request: HttpRequest, response: HttpResponse, user: User) -> None:
    """The person is signed in (after the second step, if they have one): their failures from this
    address and this browser are forgotten, and the browser is remembered for the account."""
    account = subject_digest(ACCOUNT, email_normalise(user.email))
    limit = limits()
    network = client_network(request)
    failures_clear(Counter(limit[ACCOUNT_AND_ADDRESS], subject_digest(ACCOUNT_AND_ADDRESS, account, network)))
    known = known_browser_for(request, user)
    if known is not None:
        failures_clear(Counter(limit[KNOWN_BROWSER], subject_digest(KNOWN_BROWSER, account, known)))
    known_browser_remember(request=request, response=response, user=user)
    log.info("sign_in_succeeded", user_id=user.pk, client_network=network, known_browser=known is not None)


def refusal_message(refusal: Refusal) -> str:
    minutes = max(1, -(-refusal.retry_after // 60))
    wait = ngettext("Try again in %(n)d minute.", "Try again in %(n)d minutes.", minutes) % {"n": minutes}
    if refusal.scope == ACCOUNT:
        reason = _(
            "This account has had too many failed sign-ins, so it is paused except in browsers that "
            "have signed in to it before."
        )
    elif refusal.scope in {ADDRESS, ADDRESS_DAY}:
        reason = _("There have been too many failed sign-ins from your network.")
    elif refusal.scope == CODE:
        reason = _("Too many wrong codes.")
    else:
        reason = _("Too many failed sign-ins.")
    return f"{reason} {wait}"


# --- Known browsers ------------------------------------------------------------------------------


def _fingerprint(user: User) -> str:
    # Tied to the password hash: a password change (or reset) forgets every browser.
    return salted_hmac(DEVICE_COOKIE_SALT, user.password).hexdigest()[:20]


def _cookie_entries(request: HttpRequest) -> list[list]:
    value = request.COOKIES.get(settings.SIGN_IN_DEVICE_COOKIE_NAME)
    if not value:
        return []
    try:
        entries = signing.loads(value, salt=DEVICE_COOKIE_SALT, max_age=settings.SIGN_IN_DEVICE_COOKIE_DAYS * 86400)
    except signing.BadSignature:
        return []
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, list) and len(entry) == 4]


def known_browser_for(request: HttpRequest, user: User) -> str | None:
    """The browser's id if its cookie says it signed in to this account, since its last password change."""
    oldest = time.time() - settings.SIGN_IN_DEVICE_COOKIE_DAYS * 86400
    for user_id, browser, fingerprint, signed_at in _cookie_entries(request):
        if (
            user_id == user.pk
            and isinstance(signed_at, int | float)
            and signed_at >= oldest
            and constant_time_compare(str(fingerprint), _fingerprint(user))
        ):
            return str(browser)
    return None


def known_browser_remember(*, request: HttpRequest, response: HttpResponse, user: User) -> None:
    browser = known_browser_for(request, user) or secrets.token_urlsafe(12)
    others = [entry for entry in _cookie_entries(request) if entry[0] != user.pk]
    entries = [[user.pk, browser, _fingerprint(user), int(time.time())], *others][:DEVICE_COOKIE_ACCOUNTS]
    response.set_cookie(
        settings.SIGN_IN_DEVICE_COOKIE_NAME,
        signing.dumps(entries, salt=DEVICE_COOKIE_SALT, compress=True),
        max_age=settings.SIGN_IN_DEVICE_COOKIE_DAYS * 86400,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


# --- The second step: a code from the authenticator app ------------------------------------------

PENDING_SESSION_KEY = "campusiq_sign_in_pending"


def sign_in_pending_start(*, request: HttpRequest, user: User, next_url: str) -> None:
    """The password was right and the person has two-factor on: nobody is signed in yet. The session
    remembers who, until the code is given (SIGN_IN_CODE_TIMEOUT_SECONDS)."""
    request.session.cycle_key()  # a session fixed before the password step is not the one that goes on
    request.session[PENDING_SESSION_KEY] = {
        "user_id": user.pk,
        "backend": user.backend,
        "hash": user.get_session_auth_hash(),
        "at": int(time.time()),
        "next": next_url,
    }


def sign_in_pending(request: HttpRequest) -> tuple[User, dict] | None:
    """The person who passed the password step in this session, while that still holds."""
    pending = request.session.get(PENDING_SESSION_KEY)
    if not isinstance(pending, dict):
        return None
    user = User.objects.filter(pk=pending.get("user_id"), is_active=True).first()
    fresh = time.time() - pending.get("at", 0) <= settings.SIGN_IN_CODE_TIMEOUT_SECONDS
    if user is None or not fresh or not constant_time_compare(pending.get("hash", ""), user.get_session_auth_hash()):
        request.session.pop(PENDING_SESSION_KEY, None)
        return None
    return user, pending


def sign_in_pending_clear(request: HttpRequest) -> None:
    request.session.pop(PENDING_SESSION_KEY, None)


def _code_counter(user: User) -> Counter:
    return Counter(limits()[CODE], subject_digest(CODE, str(user.pk)))


def sign_in_code_begin(*, request: HttpRequest, user: User) -> Reservation:
    """Reserves a code attempt for this person (on top of django-otp's doubling wait per device)."""
    reservation = failures_reserve([_code_counter(user)])
    if reservation.refusal is not None:
        log.warning(
            "sign_in_throttled",
            scope=CODE,
            retry_after=reservation.refusal.retry_after,
            user_id=user.pk,
            client_network=client_network(request),
        )
        raise SignInThrottled(reservation.refusal)
    return reservation


def sign_in_code_failed(*, request: HttpRequest, user: User) -> None:
    log.info("sign_in_code_failed", user_id=user.pk, client_network=client_network(request))


def sign_in_code_passed(*, reservation: Reservation, user: User) -> None:
    failures_release(reservation)
    failures_clear(_code_counter(user))
