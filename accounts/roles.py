"""Roles are Django groups. A person may hold several (a lecturer who also advises)."""

from collections.abc import Iterable

from django.db import models


class Role(models.TextChoices):
    STUDENT = "student", "Student"
    LECTURER = "lecturer", "Lecturer"
    ADVISOR = "advisor", "Advisor"
    REGISTRAR = "registrar", "Registrar"
    ADMIN = "admin", "Admin"


# Roles whose holders work in the Django admin.
STAFF_ROLES = {Role.REGISTRAR, Role.ADMIN}


def group_name(role: Role) -> str:
    return Role(role).label


# Model permissions ('app_label.codename') each role's group holds. Each app grants those on its own
# models when Django starts (AppConfig.ready()), so accounts names no app above it.
_granted: dict[Role, set[str]] = {}


def role_permissions_grant(role: Role, *, app_label: str, model_names: Iterable[str], actions: tuple[str, ...]) -> None:
    """Gives the role's group each action ("add", "change", "delete", "view") on each model. Idempotent."""
    _granted.setdefault(Role(role), set()).update(
        f"{app_label}.{action}_{model}" for model in model_names for action in actions
    )


def role_permissions(role: Role) -> list[str]:
    """The model permissions granted to the role. Object-level scoping (a lecturer's own sections, an
    advisor's own advisees) is done by the selectors, not here."""
    return sorted(_granted.get(Role(role), ()))
