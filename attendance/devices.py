"""The device id: a long-lived signed cookie naming the browser a student checks in from, so the
anti-proxy checks can notice one phone checking in a whole row. Signed, so it cannot be chosen; a
forged or unreadable one is simply replaced by a fresh id."""

import secrets
from collections.abc import Callable
from functools import wraps

from django.core import signing
from django.http import HttpRequest, HttpResponse

COOKIE_NAME = "campusiq_device"
SALT = "campusiq.attendance.device-id"
MAX_AGE_SECONDS = 2 * 365 * 24 * 60 * 60  # about two years: a device outlives a term
ID_BYTES = 24  # 32 characters, within AttendanceRecord.device_id's 64


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def device_id_read(request: HttpRequest) -> str | None:
    """The device id the browser carries, if its signature holds; None when missing or forged."""
    value = request.COOKIES.get(COOKIE_NAME)
    if not value:
        return None
    try:
        device_id = _signer().unsign(value, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    return device_id if 0 < len(device_id) <= 64 else None


def device_id_new() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def device_cookie_set(response: HttpResponse, *, request: HttpRequest, device_id: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        _signer().sign(device_id),
        max_age=MAX_AGE_SECONDS,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


def with_device_id(view: Callable) -> Callable:
    """Gives the view request.device_id, and sets (or renews) the cookie on its response: a browser
    without a valid one gets a fresh id, one with a valid id keeps it for another two years."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        request.device_id = device_id_read(request) or device_id_new()
        response = view(request, *args, **kwargs)
        device_cookie_set(response, request=request, device_id=request.device_id)
        return response

    return wrapped
