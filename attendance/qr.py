"""Rotating check-in tokens and numeric codes.

A token names a session and a time step: `<session id>.<step>.<mac>`, the MAC a salted HMAC-SHA256
over both and the session's own salt (so rotating the salt kills every token of that session). A
token is accepted in its own step and the one before, then it is dead. The 6-digit code shown with
it is derived the same way, so a code is only good for that session and those two steps.
"""

import base64
import datetime
import hmac
import time

import segno
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.crypto import salted_hmac

from attendance.errors import AttendanceErrorCode as Code
from attendance.metrics import check_ins_counted
from attendance.models import ClassSession
from campusiq.core.errors import ServiceError

# Bandit B105: not a secret: a name, code or example.
TOKEN_SALT = "campusiq.attendance.qr-token"  # noqa: S105  (an HMAC domain separator, not a secret)  # nosec B105
CODE_SALT = "campusiq.attendance.numeric-code"
MAC_BYTES = 12
CODE_DIGITS = 6


def step_seconds() -> int:
    return settings.ATTENDANCE_QR_ROTATION_SECONDS


def step_at(moment: datetime.datetime) -> int:
    return int(moment.timestamp()) // step_seconds()


def step_starts_at(step: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(step * step_seconds(), tz=datetime.UTC)


def _mac(session_id: int, token_salt: str, step: int) -> str:
    digest = salted_hmac(TOKEN_SALT, f"{session_id}.{step}.{token_salt}", algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest[:MAC_BYTES]).decode().rstrip("=")


def qr_token_make(session: ClassSession, step: int | None = None) -> str:
    step = step_at(timezone.now()) if step is None else step
    return f"{session.pk}.{step}.{_mac(session.pk, session.token_salt, step)}"


@check_ins_counted(successes=False)
def qr_token_verify(token: str, *, at: datetime.datetime | None = None) -> tuple[ClassSession, int]:
    """The session a token names, if its signature holds and it is fresh at `at` (default now)."""
    parts = token.split(".") if isinstance(token, str) and len(token) <= 100 else []
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ServiceError(Code.TOKEN_INVALID, "This check-in code is not valid.")
    session_id, step = int(parts[0]), int(parts[1])
    session = class_session_cached(session_id)
    if session is None or not hmac.compare_digest(parts[2], _mac(session.pk, session.token_salt, step)):
        raise ServiceError(Code.TOKEN_INVALID, "This check-in code is not valid.")
    current = step_at(at or timezone.now())
    if step > current:
        raise ServiceError(Code.TOKEN_INVALID, "This check-in code is not valid.")
    if step < current - 1:
        raise ServiceError(Code.TOKEN_EXPIRED, "This QR code has expired: scan the one on the screen now.")
    return session, step


SESSION_CACHE_SECONDS = 30
# Sessions this process read in the last ATTENDANCE_SESSION_LOCAL_CACHE_SECONDS: {id: (until, session)}.
_recent_sessions: dict[int, tuple[float, ClassSession]] = {}
RECENT_SESSIONS_MAX = 1000


def _session_cache_key(session_id: int) -> str:
    return f"campusiq:class-session:{session_id}"


def class_session_cached(session_id: int) -> ClassSession | None:
    """The session with its section, course and term: every scan of a lecture hall asks for the same
    row. From this process's memory for a second (a hall's scans in that second need no round trip),
    else from the shared cache, else the database. Any save of the session drops both entries here
    at once (attendance/apps.py); other processes see it when their second is up. The returned
    object is shared: read it, never change it."""
    now = time.monotonic()
    recent = _recent_sessions.get(session_id)
    if recent is not None and recent[0] > now:
        return recent[1]
    key = _session_cache_key(session_id)
    session = cache.get(key)
    if session is None:
        session = ClassSession.objects.select_related("section__course", "section__term").filter(pk=session_id).first()
        if session is not None:
            cache.set(key, session, SESSION_CACHE_SECONDS)
    if session is not None and settings.ATTENDANCE_SESSION_LOCAL_CACHE_SECONDS > 0:
        if len(_recent_sessions) >= RECENT_SESSIONS_MAX:
            _recent_sessions.clear()
        _recent_sessions[session_id] = (now + settings.ATTENDANCE_SESSION_LOCAL_CACHE_SECONDS, session)
    return session


def class_session_cache_forget(session_id: int) -> None:
    _recent_sessions.pop(session_id, None)
    cache.delete(_session_cache_key(session_id))


def class_session_local_cache_clear() -> None:
    """Forgets what this process remembers (the tests: ids repeat across tests on SQLite)."""
    _recent_sessions.clear()


def numeric_code(session: ClassSession, step: int) -> str:
    digest = salted_hmac(CODE_SALT, f"{session.pk}.{step}.{session.token_salt}", algorithm="sha256").digest()
    return str(int.from_bytes(digest[:5], "big") % 10**CODE_DIGITS).zfill(CODE_DIGITS)


def numeric_code_matches(session: ClassSession, code: str, *, at: datetime.datetime | None = None) -> bool:
    current = step_at(at or timezone.now())
    return any(hmac.compare_digest(numeric_code(session, step), code) for step in (current, current - 1))


def qr_svg(url: str, *, title: str = "QR code") -> str:
    """The QR code of a URL as inline SVG markup, drawn on the server: a viewBox (no fixed size, so it
    fills a projector or a phone), the standard 4-module quiet zone, and a title for screen readers."""
    return segno.make(url, error="m").svg_inline(
        scale=8, border=4, omitsize=True, title=title, dark="#000", light="#fff"
    )
