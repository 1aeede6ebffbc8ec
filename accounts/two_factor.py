"""Two-factor sign-in with a TOTP app (django-otp), for staff: lecturers, advisors, registrars and
admins. Optional for them, required for the Django admin where ADMIN_REQUIRE_TWO_FACTOR is on.

A person has at most one confirmed device. Enrolment makes an unconfirmed one (replacing any
earlier unconfirmed one); a code from the app confirms it. Turning it off needs a current code.
"""

import base64

import segno
import structlog
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.roles import Role
from accounts.services import user_roles
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from campusiq.core.services import audit_log_write

log = structlog.get_logger(__name__)

TWO_FACTOR_ROLES = {Role.LECTURER, Role.ADVISOR, Role.REGISTRAR, Role.ADMIN}
DEVICE_NAME = "Authenticator app"


def two_factor_eligible(user: User) -> bool:
    """Staff may use it; students (and people with no role) never see it."""
    if not user.is_authenticated or user.is_service_account:
        return False
    return user.is_staff or user.is_superuser or bool(user_roles(user) & TWO_FACTOR_ROLES)


def two_factor_device(user: User) -> TOTPDevice | None:
    """The person's confirmed device: signing in asks for its code."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def two_factor_pending_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


@transaction.atomic
def two_factor_enrol_start(*, user: User) -> TOTPDevice:
    """A fresh unconfirmed device with a new secret. Refused while one is confirmed (turn it off first)."""
    if not two_factor_eligible(user):
        raise ServiceError("two_factor_not_available", "Two-factor sign-in is for staff accounts.")
    if two_factor_device(user) is not None:
        raise ServiceError("two_factor_already_on", "Two-factor sign-in is already on.")
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def two_factor_enrol_confirm(*, user: User, code: str) -> TOTPDevice:
    device = two_factor_pending_device(user)
    if device is None:
        raise ServiceError("two_factor_not_started", "Start the set-up again: there is no code to confirm.")
    # The failed check must be kept (django-otp's throttle), so the refusal is raised after the commit.
    with transaction.atomic():
        verified = two_factor_verify(device=device, code=code)
        if verified:
            device.refresh_from_db()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            audit_log_write(actor=user, verb="two_factor.enabled", target=user, action=AuditLogEntry.Action.ACTION)
    if not verified:
        raise ServiceError(
            "two_factor_code_wrong",
            "That code is not right. Check your phone's clock and try the next code.",
            field="code",
        )
    log.info("two_factor_enabled", user_id=user.pk)
    return device


def two_factor_disable(*, user: User, code: str, required: bool) -> None:
    """Removes the person's devices, given a current code. `required`: the admin asks for two-factor of
    staff, who may then not turn it off here (an admin removes a lost device in the admin)."""
    device = two_factor_device(user)
    if device is None:
        raise ServiceError("two_factor_not_on", "Two-factor sign-in is not on.")
    if required and (user.is_staff or user.is_superuser):
        raise ServiceError(
            "two_factor_required", "The administration requires two-factor sign-in: it cannot be turned off."
        )
    with transaction.atomic():
        verified = two_factor_verify(device=device, code=code)
        if verified:
            TOTPDevice.objects.filter(user=user).delete()
            audit_log_write(actor=user, verb="two_factor.disabled", target=user, action=AuditLogEntry.Action.ACTION)
    if not verified:
        raise ServiceError("two_factor_code_wrong", "That code is not right.", field="code")
    log.info("two_factor_disabled", user_id=user.pk)


def code_normalise(code: str) -> str:
    # Apps show "123 456"; people paste with spaces.
    return "".join((code or "").split())


def two_factor_verify(*, device: TOTPDevice, code: str) -> bool:
    """django-otp's check: a code is used once, and each failure doubles the wait before the next.
    The device row is locked, so two requests cannot both spend one code or skip the wait."""
    code = code_normalise(code)
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if not code.isdigit() or len(code) != locked.digits:
            locked.throttle_increment()
            return False
        return locked.verify_token(code)


def two_factor_wait_seconds(device: TOTPDevice) -> int:
    """How long django-otp's throttle makes the person wait before the next code, 0 if none."""
    from django.utils import timezone

    allowed, details = device.verify_is_allowed()
    if allowed or not details or "locked_until" not in details:
        return 0
    return max(1, int((details["locked_until"] - timezone.now()).total_seconds() + 0.999))


def two_factor_qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// link as an inline SVG, drawn here: no script, no third-party service sees the secret."""
    return segno.make(device.config_url, error="m").svg_inline(
        scale=5, border=2, title="QR code for your authenticator app", svgclass="qr", omitsize=False
    )


def two_factor_secret_text(device: TOTPDevice) -> str:
    """The secret in base32 groups of four, for apps that cannot scan."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
