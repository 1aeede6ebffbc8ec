"""OpenAPI: how the API's callers authenticate (registered when accounts starts)."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "`Authorization: Bearer ciq_…`: a personal or service-account token (POST /api/v1/auth/token/)."
            ),
        }


class StaffVerifiedSessionScheme(SessionScheme):
    """The browser session (accounts.authentication.SessionAuthentication), described as DRF's."""

    target_class = "accounts.authentication.SessionAuthentication"
