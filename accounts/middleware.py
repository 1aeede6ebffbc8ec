"""Two small middlewares, installed after django-otp's OTPMiddleware and the messages middleware."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from accounts.signals import current_request
from accounts.sso.services import sso_logout_origin, sso_mfa_asserted
from accounts.two_factor import two_factor_device


class CurrentRequestMiddleware:
    """Lets the password-change and deactivation hook (accounts.signals) name who made the change in
    the audit log. Nothing is read unless such a change happens."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)


class AdminTwoFactorMiddleware:
    """With ADMIN_REQUIRE_TWO_FACTOR on, the Django admin admits only staff whose session was verified
    by a code, or who signed in through a campus provider that asserted multi-factor authentication
    (docs/SSO.md): those with a device are asked for a code, those without are sent to set one up."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.ADMIN_REQUIRE_TWO_FACTOR and self._guarded(request.path):
            user = request.user
            verified = user.is_authenticated and (user.is_verified() or sso_mfa_asserted(request.session))
            if user.is_authenticated and (user.is_staff or user.is_superuser) and not verified:
                query = urlencode({"next": request.get_full_path()})
                if two_factor_device(user) is not None:
                    return redirect(f"{reverse('login_code')}?{query}")
                messages.info(request, _("The administration requires two-factor sign-in. Set it up to go on."))
                return redirect(f"{reverse('two_factor')}?{query}")
        return self.get_response(request)

    @staticmethod
    def _guarded(path: str) -> bool:
        prefix = reverse("admin:index")
        return path.startswith(prefix) and path not in {reverse("admin:logout"), reverse("admin:login")}


class SsoLogoutFormActionMiddleware:
    """Signing out of a session begun at a campus provider sends the browser on to the provider's
    logout, and a form's redirect is held to the Content Security Policy's form-action of the page it
    was on: such a session's pages also allow the provider's origin there (only theirs, only then)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        # Only a page, only a session the request already read: never a query of its own (an error page
        # while the database is down must stay the 503 it is).
        if session is None or not session.accessed or response.status_code >= 500:
            return response
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        if origin := sso_logout_origin(session):
            update = dict(getattr(response, "_csp_update", None) or {})
            update["form-action"] = [*update.get("form-action", ["'self'"]), origin]
            response._csp_update = update
        return response
