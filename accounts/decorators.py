"""Role checks for portal views."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from accounts.access import is_registry_staff
from accounts.roles import Role
from accounts.services import user_roles


def role_required(*roles: Role, staff_too: bool = False) -> Callable:
    """Signed-in users holding one of the roles (and, with staff_too, registrars and admins); others
    403. Anonymous visitors are sent to sign in."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not user_roles(request.user) & set(roles) and not (staff_too and is_registry_staff(request.user)):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator
