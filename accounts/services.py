import structlog
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.models import Session
from django.db import transaction

from accounts.models import ApiToken, SignedInSession, User
from accounts.roles import STAFF_ROLES, Role, group_name, role_permissions
from accounts.tokens import api_token_revoke
from campusiq.core.models import AuditLogEntry
from campusiq.core.services import audit_log_write

log = structlog.get_logger(__name__)


def roles_sync_groups() -> None:
    """Creates each role's group and sets its permissions. Idempotent; runs after every migrate."""
    for role in Role:
        group, _ = Group.objects.get_or_create(name=group_name(role))
        wanted = role_permissions(role)
        permissions = []
        for dotted in wanted:
            app_label, codename = dotted.split(".")
            permissions += list(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
        group.permissions.set(permissions)


def user_roles(user: User) -> set[Role]:
    """The user's roles, read once per user object (a request asks several times)."""
    cached = getattr(user, "_campusiq_roles", None)
    if cached is None:
        names = {group.name for group in user.groups.all()}
        cached = {role for role in Role if group_name(role) in names}
        user._campusiq_roles = cached
    return cached


def user_has_role(user: User, role: Role) -> bool:
    return user.is_authenticated and role in user_roles(user)


@transaction.atomic
def user_role_grant(*, user: User, role: Role, actor: User | None) -> None:
    if role in user_roles(user):
        return
    user.groups.add(Group.objects.get(name=group_name(role)))
    _staff_flags_sync(user)
    audit_log_write(actor=actor, verb="role.granted", target=user, changes={"role": [None, str(role)]})


@transaction.atomic
def user_role_revoke(*, user: User, role: Role, actor: User | None) -> None:
    if role not in user_roles(user):
        return
    user.groups.remove(Group.objects.get(name=group_name(role)))
    _staff_flags_sync(user)
    audit_log_write(actor=actor, verb="role.revoked", target=user, changes={"role": [str(role), None]})


def _staff_flags_sync(user: User) -> None:
    # Registrars and admins work in the Django admin; admins hold every permission.
    user.__dict__.pop("_campusiq_roles", None)
    roles = user_roles(user)
    user.is_staff = bool(roles & STAFF_ROLES)
    user.is_superuser = Role.ADMIN in roles
    user.save(update_fields=["is_staff", "is_superuser"])


# --- Sessions and personal tokens end with a password change or a deactivation -------------------


def user_session_register(*, user: User, session: SessionBase) -> None:
    """Indexes the request's session under its user (at sign-in, and after a key rotation)."""
    if session.session_key is None:
        session.save()  # a flushed session has no row yet; it needs one to be indexed
    SignedInSession.objects.update_or_create(session_id=session.session_key, defaults={"user": user})


class SignOutReason:
    NEW_CREDENTIALS = "password changed"
    DEACTIVATED = "account deactivated"


@transaction.atomic
def user_sign_out_everywhere(*, user: User, reason: str, actor: User | None = None) -> tuple[int, int]:
    """Ends every session of the person, server-side, and revokes their personal API tokens (audited,
    dropped from the token cache). Service-account tokens are left alone: they belong to an
    integration, not to a person's password. Returns (sessions ended, tokens revoked)."""
    keys = list(SignedInSession.objects.filter(user=user).values_list("session_id", flat=True))
    Session.objects.filter(session_key__in=keys).delete()  # their index rows go with them
    tokens = list(
        ApiToken.objects.filter(user=user, kind=ApiToken.Kind.PERSONAL, revoked_at__isnull=True).select_for_update()
    )
    for token in tokens:
        api_token_revoke(token=token, actor=actor, reason=reason)
    audit_log_write(
        actor=actor,
        verb="user.signed_out_everywhere",
        target=user,
        action=AuditLogEntry.Action.ACTION,
        changes={"signed_in_count": [len(keys), 0], "personal_tokens_revoked": [None, len(tokens)]},
        reason=reason,
    )
    log.info("user_signed_out_everywhere", user_id=user.pk, reason=reason, ended_count=len(keys),
             revoked_count=len(tokens))  # fmt: skip
    return len(keys), len(tokens)
