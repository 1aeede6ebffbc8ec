"""The one rule of who sees and manages everything. Everyone else is scoped by the selectors."""

from accounts.roles import STAFF_ROLES
from accounts.services import user_roles


def is_registry_staff(user) -> bool:
    """Registrars, admins and superusers: every student's data is theirs to see, the catalogue theirs to manage."""
    return user.is_authenticated and (user.is_superuser or bool(user_roles(user) & STAFF_ROLES))
