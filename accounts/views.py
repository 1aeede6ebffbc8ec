"""Signing in and out, changing and resetting a password: Django's auth views, rate limited where
someone could guess passwords or flood a mailbox."""

import unicodedata

from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django_ratelimit.decorators import ratelimit

from accounts.models import User

# Attempts per minute. Shared by every process through the "ratelimit" cache.
SIGN_IN_RATE_PER_IP = "30/m"
SIGN_IN_RATE_PER_ACCOUNT = "10/m"
RESET_RATE_PER_IP = "10/m"
RESET_RATE_PER_EMAIL = "3/m"


def _posted(field: str):
    def key(group: str, request: HttpRequest) -> str:
        return request.POST.get(field, "").strip().lower()

    return key


def _casefold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Also reaches people who never had a password: registrars create students without one, and a
    reset is how they set their first. Service accounts never sign in, so they get no email."""

    def get_users(self, email: str):
        candidates = User.objects.filter(email__iexact=email, is_active=True, is_service_account=False)
        # As Django does: the database's case-insensitive match is looser than Unicode's, so check again.
        return (user for user in candidates if _casefold(user.email) == _casefold(email))


@method_decorator(ratelimit(group="sign-in-ip", key="ip", rate=SIGN_IN_RATE_PER_IP, method="POST"), name="post")
@method_decorator(
    ratelimit(group="sign-in-account", key=_posted("username"), rate=SIGN_IN_RATE_PER_ACCOUNT, method="POST"),
    name="post",
)
class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True


@method_decorator(ratelimit(group="password-reset-ip", key="ip", rate=RESET_RATE_PER_IP, method="POST"), name="post")
@method_decorator(
    ratelimit(group="password-reset-email", key=_posted("email"), rate=RESET_RATE_PER_EMAIL, method="POST"),
    name="post",
)
class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
