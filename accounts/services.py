from django.contrib.auth.models import Group, Permission
from django.db import transaction

from accounts.models import User
from accounts.roles import STAFF_ROLES, Role, group_name, role_permissions
from campusiq.core.services import audit_log_write


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
