"""Signing in and out, the second step, two-factor set-up, changing and resetting a password: Django's
auth views, with failed sign-ins throttled (accounts/signin.py) and password resets rate limited. And
the person's own API tokens, issued after a recent sign-in (accounts/reauth.py)."""

import datetime
import unicodedata

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django.views.generic import TemplateView
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.backends import REFUSAL_ATTRIBUTE
from accounts.forms import ApiTokenForm, SignInForm, TwoFactorCodeForm
from accounts.models import User
from accounts.reauth import SignInNeeded, recent_sign_in_missing, recent_sign_in_window
from accounts.selectors import personal_tokens_of
from accounts.services import user_session_register
from accounts.signin import (
    PENDING_SESSION_KEY,
    REAUTH_PARAMETER,
    SignInThrottled,
    known_browser_remember,
    refusal_message,
    safe_next_url,
    sign_in_code_begin,
    sign_in_code_failed,
    sign_in_code_passed,
    sign_in_completed,
    sign_in_pending,
    sign_in_pending_clear,
    sign_in_pending_start,
)
from accounts.sso.config import sso_providers
from accounts.sso.services import sso_password_provider
from accounts.tokens import api_token_issue, api_token_revoke
from accounts.two_factor import (
    two_factor_device,
    two_factor_disable,
    two_factor_eligible,
    two_factor_enrol_confirm,
    two_factor_enrol_start,
    two_factor_pending_device,
    two_factor_qr_svg,
    two_factor_secret_text,
    two_factor_verify,
    two_factor_wait_seconds,
)
from campusiq.core.errors import ServiceError
from campusiq.core.ratelimit import RateLimit, RateLimitExceeded, client_network, rate_limits_enforce

RESET_RATE_PER_IP = "10/m"
RESET_RATE_PER_EMAIL = "3/m"


def _casefold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _too_many(response: HttpResponse, retry_after: int) -> HttpResponse:
    response.status_code = 429
    response["Retry-After"] = str(retry_after)
    return response


class GetAndPostOnly:
    """Django's form views take PUT as POST, and the reset view answers any method; these pages are
    forms: anything else is 405, checked before the view's own dispatch."""

    http_method_names = ["get", "post", "head", "options"]

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method.lower() not in self.http_method_names:
            return self.http_method_not_allowed(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Also reaches people who never had a password: registrars create students without one, and a
    reset is how they set their first. Service accounts never sign in, so they get no email."""

    def get_users(self, email: str):
        candidates = User.objects.filter(email__iexact=email, is_active=True, is_service_account=False)
        # As Django does: the database's case-insensitive match is looser than Unicode's, so check again.
        return (user for user in candidates if _casefold(user.email) == _casefold(email))


class LoginView(GetAndPostOnly, auth_views.LoginView):
    """The password step. Failed attempts are counted by the backend; a spent budget answers 429 with
    how long to wait. Someone with two-factor on goes on to the code step, not yet signed in."""

    form_class = SignInForm
    redirect_authenticated_user = True

    def setup(self, request: HttpRequest, *args, **kwargs) -> None:
        super().setup(request, *args, **kwargs)
        # "Sign in again" (?reauth=1, from a page that needs a recent sign-in: accounts/reauth.py): a
        # signed-in person gets the form, not a redirect. The form posts to this same address.
        self.reauth = request.GET.get(REAUTH_PARAMETER) == "1" and request.user.is_authenticated
        self.redirect_authenticated_user = not self.reauth

    def get_context_data(self, **kwargs):
        # One "Sign in with <campus>" button per configured identity provider (docs/SSO.md).
        context = super().get_context_data(**kwargs)
        return {**context, "sso_providers": list(sso_providers().values()), "reauth": self.reauth}

    def form_valid(self, form) -> HttpResponse:
        user = form.get_user()
        if two_factor_device(user) is not None:
            if self.request.user.is_authenticated:
                # Signing in again: only the code step completes the new sign-in; nobody is signed in meanwhile.
                auth_logout(self.request)
            sign_in_pending_start(request=self.request, user=user, next_url=self.get_success_url())
            return redirect("login_code")
        response = super().form_valid(form)
        sign_in_completed(request=self.request, response=response, user=user)
        return response

    def form_invalid(self, form) -> HttpResponse:
        response = super().form_invalid(form)
        refusal = getattr(self.request, REFUSAL_ATTRIBUTE, None)
        return _too_many(response, refusal.retry_after) if refusal is not None else response


@method_decorator(never_cache, name="dispatch")
class SignInCodeView(TemplateView):
    """The second step: the code from the authenticator app. Also asks a signed-in person whose
    session was not verified by a code (the admin sends staff here when it requires two-factor)."""

    template_name = "accounts/sign_in_code.html"

    def _who(self) -> tuple[User, TOTPDevice, dict | None] | None:
        request = self.request
        if request.user.is_authenticated:
            device = two_factor_device(request.user)
            if device is None or request.user.is_verified():
                return None
            return request.user, device, None
        found = sign_in_pending(request)
        if found is None:
            return None
        user, pending = found
        device = two_factor_device(user)
        return (user, device, pending) if device is not None else None

    def _next(self, pending: dict | None) -> str:
        if pending is not None:
            return pending["next"]
        return safe_next_url(self.request, self.request.GET.get("next"), reverse("home"))

    def get(self, request: HttpRequest) -> HttpResponse:
        who = self._who()
        if who is None:
            return redirect("home" if request.user.is_authenticated else "login")
        return self.render_to_response({"form": TwoFactorCodeForm(), "step_up": who[2] is None})

    def post(self, request: HttpRequest) -> HttpResponse:
        was_pending = PENDING_SESSION_KEY in request.session
        who = self._who()
        if who is None:
            if was_pending and not request.user.is_authenticated:
                messages.error(request, _("That took too long, or your password changed. Sign in again."))
            return redirect("home" if request.user.is_authenticated else "login")
        user, device, pending = who
        form = TwoFactorCodeForm(request.POST)
        context = {"form": form, "step_up": pending is None}
        if not form.is_valid():
            return self.render_to_response(context)
        if wait := two_factor_wait_seconds(device):
            # django-otp's own throttle: each wrong code doubles the wait before the next is checked.
            form.add_error(
                None,
                ngettext(
                    "Too many wrong codes. Wait %(n)d second before the next.",
                    "Too many wrong codes. Wait %(n)d seconds before the next.",
                    wait,
                )
                % {"n": wait},
            )
            return _too_many(self.render_to_response(context), wait)
        try:
            reservation = sign_in_code_begin(request=request, user=user)
        except SignInThrottled as throttled:
            form.add_error(None, refusal_message(throttled.refusal))
            return _too_many(self.render_to_response(context), throttled.refusal.retry_after)
        if not two_factor_verify(device=device, code=form.cleaned_data["code"]):
            sign_in_code_failed(request=request, user=user)
            form.add_error("code", _("That code is not right. Codes change every 30 seconds; try the current one."))
            return self.render_to_response(context)
        sign_in_code_passed(reservation=reservation, user=user)
        next_url = self._next(pending)
        if pending is not None:
            sign_in_pending_clear(request)
            auth_login(request, user, backend=pending["backend"])
        otp_login(request, device)
        response = HttpResponseRedirect(next_url)
        if pending is not None:
            sign_in_completed(request=request, response=response, user=user)
        return response


class PasswordChangeView(GetAndPostOnly, auth_views.PasswordChangeView):
    """Django keeps this browser signed in; every other session of the person ends (accounts.signals),
    and this one is indexed again under its new key."""

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "two_factor_available": two_factor_eligible(self.request.user)}

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        user_session_register(user=form.user, session=self.request.session)
        # The person proved their password here: this browser stays known under the new one.
        known_browser_remember(request=self.request, response=response, user=form.user)
        return response


class PasswordResetConfirmView(GetAndPostOnly, auth_views.PasswordResetConfirmView):
    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        # Every session of the person was ended; this browser too, if it was signed in as them.
        if self.request.user.is_authenticated and self.request.user.pk == form.user.pk:
            auth_logout(self.request)
        return response


class PasswordResetView(GetAndPostOnly, auth_views.PasswordResetView):
    form_class = PasswordResetForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # Per address and per email asked for (exact under concurrency; 429 with Retry-After).
        email = request.POST.get("email", "").strip().lower()
        rate_limits_enforce(
            [
                RateLimit("password-reset-ip", client_network(request), RESET_RATE_PER_IP),
                RateLimit("password-reset-email", email, RESET_RATE_PER_EMAIL),
            ]
        )
        return super().post(request, *args, **kwargs)


# --- Two-factor set-up (staff only; a 404 for everyone else) --------------------------------------


def _eligible_or_404(request: HttpRequest) -> None:
    if not two_factor_eligible(request.user):
        raise Http404


def _required() -> bool:
    return settings.ADMIN_REQUIRE_TWO_FACTOR


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
def two_factor(request: HttpRequest) -> HttpResponse:
    """Whether two-factor is on; POST starts setting it up (a new secret, shown on the next page)."""
    _eligible_or_404(request)
    next_url = safe_next_url(request, request.GET.get("next") or request.POST.get("next"), "")
    if request.method == "POST":
        try:
            two_factor_enrol_start(user=request.user)
        except ServiceError as error:
            messages.error(request, error.detail)
            return redirect("two_factor")
        setup = reverse("two_factor_setup")
        return redirect(f"{setup}?{urlencode({'next': next_url})}" if next_url else setup)
    context = {
        "device": two_factor_device(request.user),
        "required": _required() and (request.user.is_staff or request.user.is_superuser),
        "form": TwoFactorCodeForm(),
        "next": next_url,
    }
    return render(request, "accounts/two_factor.html", context)


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """The QR code and the secret of the new device; a code from the app confirms it."""
    _eligible_or_404(request)
    device = two_factor_pending_device(request.user)
    if device is None or two_factor_device(request.user) is not None:
        return redirect("two_factor")
    next_url = safe_next_url(request, request.GET.get("next") or request.POST.get("next"), "")
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            confirmed = two_factor_enrol_confirm(user=request.user, code=form.cleaned_data["code"])
        except ServiceError as error:
            form.add_error("code", error.detail)
        else:
            otp_login(request, confirmed)  # this session has just shown a code
            messages.success(request, _("Two-factor sign-in is on. Signing in will ask for a code from your app."))
            return redirect(next_url or "two_factor")
    context = {
        "form": form,
        "qr_svg": two_factor_qr_svg(device),
        "secret": two_factor_secret_text(device),
        "next": next_url,
    }
    return render(request, "accounts/two_factor_setup.html", context)


@require_POST
@login_required
@never_cache
def two_factor_disable_view(request: HttpRequest) -> HttpResponse:
    _eligible_or_404(request)
    form = TwoFactorCodeForm(request.POST)
    if two_factor_device(request.user) is None:
        return redirect("two_factor")
    if form.is_valid():
        try:
            two_factor_disable(user=request.user, code=form.cleaned_data["code"], required=_required())
        except ServiceError as error:
            form.add_error("code" if error.field else None, error.detail)
        else:
            messages.success(request, _("Two-factor sign-in is off."))
            return redirect("two_factor")
    context = {
        "device": two_factor_device(request.user),
        "required": _required() and (request.user.is_staff or request.user.is_superuser),
        "form": form,
        "next": "",
    }
    return render(request, "accounts/two_factor.html", context)


# --- The person's own API tokens (docs/API.md, "Personal tokens") ----------------------------------


def _sign_in_again_url(request: HttpRequest, needed: SignInNeeded) -> str:
    """Where this session gets what it lacks, and comes back to this page."""
    here = {"next": request.get_full_path()}
    if needed == SignInNeeded.CODE:
        return f"{reverse('login_code')}?{urlencode(here)}"
    if needed == SignInNeeded.TWO_FACTOR_SETUP:
        return f"{reverse('two_factor')}?{urlencode(here)}"
    return f"{reverse('login')}?{urlencode({**here, REAUTH_PARAMETER: '1'})}"


def _api_tokens_page(request: HttpRequest, form: ApiTokenForm, needed: SignInNeeded | None, *, status: int = 200):
    user = request.user
    context = {
        "tokens": list(personal_tokens_of(user)),
        "form": form,
        "needed": needed,
        "sign_in_again_url": _sign_in_again_url(request, needed) if needed is not None else "",
        "recent_minutes": int(recent_sign_in_window().total_seconds() // 60),
        # Campus sign-on instead of a password: the API's token endpoint is not for them, this page is.
        "no_password": sso_password_provider(user) is not None or not user.has_usable_password(),
    }
    return render(request, "accounts/api_tokens.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@never_cache  # the key is on the page that answers the POST: no cache keeps it (Cache-Control: no-store)
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The person's personal tokens, and a new one (api_token_issue) when they signed in recently. The
    key is on the answer to the POST only: never in a redirect, a message, the session or a log."""
    needed = recent_sign_in_missing(request)
    if request.method != "POST":
        return _api_tokens_page(request, ApiTokenForm(user=request.user), needed)
    if needed is not None:
        return _api_tokens_page(request, ApiTokenForm(user=request.user), needed, status=403)
    form = ApiTokenForm(request.POST, user=request.user)
    if not form.is_valid():
        return _api_tokens_page(request, form, needed)
    try:
        limit = RateLimit("api-token-issue-user", str(request.user.pk), settings.API_TOKEN_ISSUE_RATE_PER_USER)
        rate_limits_enforce([limit])
    except RateLimitExceeded as exceeded:
        minutes = max(1, -(-exceeded.retry_after // 60))
        form.add_error(
            None,
            ngettext(
                "You have made many tokens lately. Try again in %(n)d minute.",
                "You have made many tokens lately. Try again in %(n)d minutes.",
                minutes,
            )
            % {"n": minutes},
        )
        return _too_many(_api_tokens_page(request, form, needed), exceeded.retry_after)
    try:
        token, key = api_token_issue(
            user=request.user,
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            lifetime=datetime.timedelta(days=form.cleaned_data["lifetime_days"]),
            actor=request.user,
        )
    except ServiceError as error:
        form.add_error(error.field if error.field in form.fields else None, error.detail)
        return _api_tokens_page(request, form, needed)
    return render(request, "accounts/api_token_issued.html", {"token": token, "key": key}, status=201)


@require_POST
@login_required
@never_cache
def api_token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revokes one of the person's own tokens (another's is a 404). No recent sign-in needed: it only takes away."""
    with transaction.atomic():  # two clicks at once revoke (and audit) once
        token = get_object_or_404(personal_tokens_of(request.user).select_for_update(), pk=token_id)
        if token.revoked_at is not None:
            return redirect("api_tokens")
        api_token_revoke(token=token, actor=request.user, reason="revoked by its owner on the API tokens page")
    messages.success(request, _("The token “%(name)s” is revoked: it no longer works.") % {"name": token.name})
    return redirect("api_tokens")
