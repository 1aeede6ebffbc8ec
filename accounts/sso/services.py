"""Who an identity asserted by a campus provider is in CampusIQ, and what roles the provider gives them.

Found by the provider's stable identifier (a LinkedIdentity). A first sign-in is linked to an existing
account only by an attribute the provider is configured to be trusted for (its email domains, a
student number), never by a display name, and never for an account holding a staff role: an identity
provider that asserts an admin's email does not get the admin. Provisioning, where configured, makes
an account for a new person of the provider's domains. Roles the provider manages (those its mapping
names) are granted when asserted and removed when not, at every sign-in. Each step is audited; a
refusal writes nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

import structlog
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from accounts.access import is_registry_staff
from accounts.models import LinkedIdentity, SignedInSession, User
from accounts.services import user_role_grant, user_role_revoke, user_roles
from accounts.signin import email_normalise
from accounts.sso.config import SsoProvider, sso_providers
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from campusiq.core.services import audit_log_write

log = structlog.get_logger(__name__)


# What the session remembers of an SSO sign-in: the provider, the id token (for its logout) and
# whether the provider asserted multi-factor authentication (the admin's two-factor requirement).
SIGNED_IN_SESSION_KEY = "campusiq_sso"


def sso_mfa_asserted(session) -> bool:
    """The provider asserted multi-factor authentication for this session's sign-in."""
    return bool((session.get(SIGNED_IN_SESSION_KEY) or {}).get("mfa"))


def url_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def sso_logout_origin(session) -> str | None:
    """The origin of the logout of the provider this session signed in through (its end-session or
    Single Logout service, as its metadata said at sign-in; else its issuer's), if any."""
    signed_in = session.get(SIGNED_IN_SESSION_KEY) if session is not None else None
    provider = sso_providers().get(signed_in.get("provider", "")) if isinstance(signed_in, dict) else None
    if provider is None:
        return None
    return signed_in.get("logout_origin") or url_origin(provider.issuer) or None


class SsoRefusal(StrEnum):
    NOT_ALLOWED = "sso_not_allowed"  # no account, none may be linked or made
    ACCOUNT_INACTIVE = "sso_account_inactive"
    STAFF_LINK_REFUSED = "sso_staff_link_refused"
    AMBIGUOUS_LINK = "sso_ambiguous_link"
    IDENTITY_INCOMPLETE = "sso_identity_incomplete"


class SsoRefused(ServiceError):
    status = 403


class SsoProtocolError(Exception):
    """The provider's answer cannot be trusted or was not given (tampered, expired, replayed, down)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AssertedIdentity:
    """What the provider said about the person, already checked (signature, audience, expiry, nonce)."""

    issuer: str
    subject: str
    email: str = ""
    email_verified: bool | None = None
    first_name: str = ""
    last_name: str = ""
    student_number: str = ""
    role_values: frozenset[str] = field(default_factory=frozenset)
    mfa: bool = False


# How a first sign-in finds an existing account by a linking attribute (link_existing_by). accounts
# finds by email; students registers the student number (it knows the student record).
AccountFinder = Callable[[AssertedIdentity], User | None]
_finders: dict[str, AccountFinder] = {}


def sso_account_finder_register(attribute: str, finder: AccountFinder) -> None:
    _finders[attribute] = finder


def _by_email(identity: AssertedIdentity) -> User | None:
    matches = list(User.objects.filter(email__iexact=identity.email)[:2]) if identity.email else []
    if len(matches) > 1:
        raise SsoRefused(SsoRefusal.AMBIGUOUS_LINK, "More than one account has this email address.")
    return matches[0] if matches else None


sso_account_finder_register("email", _by_email)


def _email_trusted(provider: SsoProvider, identity: AssertedIdentity) -> bool:
    """The provider speaks for the address: it is in one of its domains and not said to be unverified."""
    return (
        bool(identity.email) and identity.email_verified is not False and provider.email_domain_allowed(identity.email)
    )


def _linkable(provider: SsoProvider, identity: AssertedIdentity) -> User | None:
    for attribute in provider.link_existing_by:
        if attribute == "email" and not _email_trusted(provider, identity):
            continue
        finder = _finders.get(attribute)
        user = finder(identity) if finder is not None else None
        if user is None:
            continue
        if is_registry_staff(user) or user.is_staff or user.is_superuser:
            raise SsoRefused(
                SsoRefusal.STAFF_LINK_REFUSED,
                "This account holds a staff role: an administrator links it to the campus sign-on.",
            )
        return user
    return None


def _provision(provider: SsoProvider, identity: AssertedIdentity) -> User | None:
    if not provider.provision or not _email_trusted(provider, identity):
        return None
    if User.objects.filter(email__iexact=identity.email).exists():
        return None  # an account exists: only linking may reach it, and it was not allowed
    user = User(
        email=email_normalise(identity.email),
        first_name=identity.first_name[:150],
        last_name=identity.last_name[:150],
    )
    user.set_unusable_password()
    user.save()
    audit_log_write(actor=None, verb="sso.provisioned", target=user, action=AuditLogEntry.Action.CREATE,
                    changes={"provider": [None, provider.slug]})  # fmt: skip
    return user


def _roles_apply(provider: SsoProvider, user: User, identity: AssertedIdentity) -> None:
    asserted = {role for value, role in provider.roles.items() if value in identity.role_values}
    held = user_roles(user)
    for role in sorted(asserted - held):
        user_role_grant(user=user, role=role, actor=None)
    for role in sorted((provider.managed_roles & held) - asserted):
        user_role_revoke(user=user, role=role, actor=None)


@transaction.atomic
def sso_sign_in(*, provider: SsoProvider, identity: AssertedIdentity) -> User:
    """The account `identity` signs in to (linked, found or made as configured), its managed roles
    brought in line with what the provider asserted. SsoRefused, with nothing written, otherwise."""
    if not identity.issuer or not identity.subject:
        raise SsoRefused(SsoRefusal.IDENTITY_INCOMPLETE, "The campus sign-on did not say who you are.")
    link = (
        LinkedIdentity.objects.select_for_update()
        .select_related("user")
        .filter(issuer=identity.issuer, subject=identity.subject)
        .first()
    )
    if link is None:
        user = _linkable(provider, identity) or _provision(provider, identity)
        if user is None:
            raise SsoRefused(SsoRefusal.NOT_ALLOWED, "There is no CampusIQ account for you yet.")
        link = LinkedIdentity.objects.create(
            user=user, provider=provider.slug, issuer=identity.issuer, subject=identity.subject
        )
        audit_log_write(actor=None, verb="sso.linked", target=user, changes={"provider": [None, provider.slug]})
    user = link.user
    if not user.is_active or user.is_service_account:
        raise SsoRefused(SsoRefusal.ACCOUNT_INACTIVE, "This account is not active.")
    _roles_apply(provider, user, identity)
    link.last_sign_in_at = timezone.now()
    link.save(update_fields=["last_sign_in_at"])
    audit_log_write(actor=None, verb="sso.signed_in", target=user, action=AuditLogEntry.Action.ACTION,
                    changes={"provider": [None, provider.slug], "mfa": [None, identity.mfa]})  # fmt: skip
    log.info("sso_signed_in", provider=provider.slug, user_id=user.pk, mfa=identity.mfa)
    return user


def sso_password_provider(user: User) -> SsoProvider | None:
    """The provider whose sign-on replaces this account's password (one linked to it with
    password_sign_in off), or None: the password still works (and a local break-glass account, linked
    to none, always keeps its password)."""
    providers = sso_providers()
    if not providers:
        return None
    for slug in user.linked_identities.values_list("provider", flat=True):
        provider = providers.get(slug)
        if provider is not None and not provider.password_sign_in:
            return provider
    return None


# --- Logout a provider starts (OIDC back-channel, SAML Single Logout) ------------------------------------


def sso_session_register(*, session_key: str, provider: SsoProvider, subject: str, provider_session: str) -> None:
    """Remembers which provider sign-in this session is (its name for the person and its session id),
    so a logout the provider starts can find it. The session was indexed at sign-in."""
    SignedInSession.objects.filter(session_id=session_key).update(
        provider=provider.slug, provider_subject=subject[:500], provider_session=provider_session[:200]
    )


@transaction.atomic
def sso_sessions_end(*, provider: SsoProvider, subject: str = "", provider_session: str = "") -> int:
    """Ends the sessions of this provider's sign-ins that its logout names: the one of its session id
    where it gives one (with the subject too, if given), else every session of the subject. Returns how
    many ended. A logout naming neither ends nothing."""
    if not subject and not provider_session:
        return 0
    rows = SignedInSession.objects.filter(provider=provider.slug)
    if subject:
        rows = rows.filter(provider_subject=subject)
    if provider_session:
        rows = rows.filter(provider_session=provider_session)
    signed_in = list(rows.values_list("session_id", "user_id"))
    Session.objects.filter(session_key__in=[key for key, _ in signed_in]).delete()  # their index rows go too
    for user in User.objects.filter(pk__in={user_id for _, user_id in signed_in}).order_by("pk"):
        audit_log_write(actor=None, verb="sso.logged_out", target=user, action=AuditLogEntry.Action.ACTION,
                        changes={"provider": [provider.slug, None]})  # fmt: skip
    log.info("sso_provider_logout", provider=provider.slug, ended_count=len(signed_in))
    return len(signed_in)
