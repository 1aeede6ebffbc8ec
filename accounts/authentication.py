from django.conf import settings
from rest_framework import authentication, exceptions

from accounts.tokens import api_token_authenticate


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer ciq_…`: personal and service-account tokens."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
        try:
            key = header[1].decode()
        except UnicodeDecodeError as error:
            raise exceptions.AuthenticationFailed("Invalid token.") from error
        token = api_token_authenticate(key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """The browser session (with DRF's CSRF check). Where ADMIN_REQUIRE_TWO_FACTOR is on, staff, who can
    do through the API what the admin does, are let in only once a code has verified the session,
    as in the admin."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None and settings.ADMIN_REQUIRE_TWO_FACTOR:
            user = result[0]
            if (user.is_staff or user.is_superuser) and not getattr(user, "is_verified", lambda: False)():
                raise exceptions.PermissionDenied(
                    "Staff use the API from the browser only after signing in with a two-factor code.",
                    code="two_factor_required",
                )
        return result
