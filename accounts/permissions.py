from rest_framework import exceptions, permissions

from accounts.access import is_registry_staff
from accounts.models import ApiToken


class TokenScopeAllows(permissions.BasePermission):
    """A read-only token reads; only a read-write token (or a browser session) may write."""

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if (
            isinstance(token, ApiToken)
            and token.scope == ApiToken.Scope.READ
            and request.method not in permissions.SAFE_METHODS
        ):
            raise exceptions.PermissionDenied("This token is read-only.", code="token_read_only")
        return True


class IsRegistrarOrReadOnly(permissions.BasePermission):
    """Everyone signed in reads; registrars and admins write."""

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return request.user.is_authenticated
        return is_registry_staff(request.user)
