from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.services import user_roles


def portal_roles(request: HttpRequest) -> dict:
    """The signed-in person's roles, for the navigation every page shows. Read only if a template asks."""
    user = getattr(request, "user", None)
    return {
        "portal_roles": SimpleLazyObject(
            lambda: user_roles(user) if user is not None and user.is_authenticated else set()
        )
    }
