"""The sign-in pages of campus single sign-on: "Sign in with <campus>" starts at the provider
(sso_begin), which sends the person back to sso_callback (OIDC) or sso_acs (SAML); sso_logout ends our
session and, where the provider can, theirs; a logout the provider starts reaches sso_backchannel_logout
(OIDC) or sso_sls (SAML) and ends ours. A refusal is a readable page (a JSON answer for the provider's
server), logged with the request id; it writes nothing."""

import structlog
from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.signin import REAUTH_PARAMETER, safe_next_url, sign_in_completed
from accounts.sso.config import SsoProvider, sso_providers
from accounts.sso.oidc import oidc_authorize_redirect, oidc_identity, oidc_logout_token_claims, oidc_logout_url
from accounts.sso.saml import (
    handoff_open,
    handoff_token,
    saml_authorize_url,
    saml_identity,
    saml_logout_request,
    saml_logout_response_ok,
    saml_logout_url,
    saml_metadata_xml,
)
from accounts.sso.services import (
    SIGNED_IN_SESSION_KEY,
    SsoProtocolError,
    SsoRefused,
    sso_session_register,
    sso_sessions_end,
    sso_sign_in,
)
from campusiq.core.ratelimit import RateLimit, client_network, rate_limits_enforce

log = structlog.get_logger(__name__)

NEXT_SESSION_KEY = "campusiq_sso_next"
BACKEND = "accounts.backends.EmailBackend"


def _provider_or_404(slug: str) -> SsoProvider:
    provider = sso_providers().get(slug)
    if provider is None:
        raise Http404
    return provider


def _refused(request: HttpRequest, provider: SsoProvider, *, status: int, message: str, reason: str) -> HttpResponse:
    log.warning("sso_refused", provider=provider.slug, reason=reason)
    context = {"provider": provider, "message": message, "request_id": getattr(request, "request_id", "")}
    return render(request, "accounts/sso_refused.html", context, status=status)


def _limit(request: HttpRequest) -> None:
    rate_limits_enforce([RateLimit("sso-ip", client_network(request), settings.SSO_RATE_PER_IP)])


def _unreachable(request: HttpRequest, provider: SsoProvider, error: SsoProtocolError) -> HttpResponse:
    message = _("%(provider)s cannot be reached just now. Try again in a few minutes.")
    return _refused(request, provider, status=503, message=message % {"provider": provider.name}, reason=error.reason)


def _unchecked(request: HttpRequest, provider: SsoProvider, error: SsoProtocolError) -> HttpResponse:
    message = _("Signing in with %(provider)s did not work: its answer could not be checked. Start again.")
    return _refused(request, provider, status=400, message=message % {"provider": provider.name}, reason=error.reason)


@never_cache
@require_GET
def sso_begin(request: HttpRequest, slug: str) -> HttpResponse:
    provider = _provider_or_404(slug)
    _limit(request)
    next_url = safe_next_url(request, request.GET.get("next"), reverse("home"))
    # "Sign in again" (a page needs a recent sign-in, accounts/reauth.py): the provider checks the person anew.
    reauthenticate = request.GET.get(REAUTH_PARAMETER) == "1"
    try:
        if provider.protocol == "saml":
            return HttpResponseRedirect(saml_authorize_url(request, provider, next_url, reauthenticate=reauthenticate))
        request.session[NEXT_SESSION_KEY] = next_url
        redirect_uri = request.build_absolute_uri(reverse("sso_callback", args=[provider.slug]))
        return oidc_authorize_redirect(request, provider, redirect_uri, reauthenticate=reauthenticate)
    except SsoProtocolError as error:
        return _unreachable(request, provider, error)


def _sign_in(request: HttpRequest, provider: SsoProvider, identity, next_url: str, details: dict) -> HttpResponse:
    """The checked identity signs in (services.sso_sign_in), or the refusal's page; nothing written then."""
    try:
        user = sso_sign_in(provider=provider, identity=identity)
    except SsoRefused as refusal:
        return _refused(request, provider, status=403, message=refusal.detail, reason=refusal.code)
    auth_login(request, user, backend=BACKEND)  # a new session key: nothing fixed before carries on
    request.session[SIGNED_IN_SESSION_KEY] = {"provider": provider.slug, "mfa": identity.mfa, **details}
    sso_session_register(session_key=request.session.session_key, provider=provider,
                         subject=details["subject"], provider_session=details["provider_session"])  # fmt: skip
    response = HttpResponseRedirect(safe_next_url(request, next_url, reverse("home")))
    sign_in_completed(request=request, response=response, user=user)
    return response


@never_cache
@require_GET  # the provider answers in the query (response_mode=query): no cross-site POST to accept
def sso_callback(request: HttpRequest, slug: str) -> HttpResponse:
    provider = _provider_or_404(slug)
    _limit(request)
    if provider.protocol != "oidc":
        raise Http404
    try:
        identity, details = oidc_identity(request, provider)
    except SsoProtocolError as error:
        return _unchecked(request, provider, error)
    next_url = request.session.pop(NEXT_SESSION_KEY, reverse("home"))
    return _sign_in(request, provider, identity, next_url, details)


@csrf_exempt  # the IdP's HTTP-POST binding: a signed SAMLResponse is the proof, not a CSRF token
@never_cache
@require_POST
def sso_acs(request: HttpRequest, slug: str) -> HttpResponse:
    """The SAML assertion consumer service. The cross-site POST carries none of our cookies, so once
    the answer is checked the browser goes on (a GET, which carries them) to sso_complete."""
    provider = _provider_or_404(slug)
    _limit(request)
    if provider.protocol != "saml":
        raise Http404
    try:
        identity, next_url, details = saml_identity(request, provider)
    except SsoProtocolError as error:
        return _unchecked(request, provider, error)
    complete = reverse("sso_complete", args=[provider.slug])
    return HttpResponseRedirect(
        f"{complete}?{urlencode({'t': handoff_token(identity, next_url, details)})}", status=303
    )


@never_cache
@require_GET
def sso_complete(request: HttpRequest, slug: str) -> HttpResponse:
    provider = _provider_or_404(slug)
    _limit(request)
    try:
        identity, next_url, details = handoff_open(request.GET.get("t", ""))
    except SsoProtocolError as error:
        return _unchecked(request, provider, error)
    if identity.issuer != provider.issuer:
        raise Http404
    return _sign_in(request, provider, identity, next_url, details)


@never_cache
@require_GET
def sso_metadata(request: HttpRequest, slug: str) -> HttpResponse:
    """CampusIQ's SAML service-provider metadata, for the IdP's administrators to register."""
    provider = _provider_or_404(slug)
    if provider.protocol != "saml":
        raise Http404
    try:
        return HttpResponse(saml_metadata_xml(request, provider), content_type="application/samlmetadata+xml")
    except SsoProtocolError as error:
        return _unreachable(request, provider, error)


def _provider_logout_url(request: HttpRequest, provider: SsoProvider, signed_in: dict) -> str | None:
    if provider.protocol == "saml":
        return saml_logout_url(request, provider, name_id=signed_in.get("name_id", ""),
                               session_index=signed_in.get("provider_session", ""))  # fmt: skip
    if not signed_in.get("id_token"):
        return None
    home = request.build_absolute_uri(reverse("home"))
    return oidc_logout_url(provider, id_token=signed_in["id_token"], post_logout_redirect_uri=home)


@require_POST
def sso_logout(request: HttpRequest) -> HttpResponse:
    """Every sign-out (the site's logout): ends our session, then sends someone who came through a
    provider to its logout where it has one (OIDC RP-initiated logout, SAML Single Logout), which ends
    theirs and sends them back to CampusIQ."""
    signed_in = request.session.get(SIGNED_IN_SESSION_KEY) or {}
    provider = sso_providers().get(signed_in.get("provider", ""))
    auth_logout(request)
    url = _provider_logout_url(request, provider, signed_in) if provider is not None else None
    return HttpResponseRedirect(url) if url else redirect(settings.LOGOUT_REDIRECT_URL)


@csrf_exempt  # the provider's server posts it, with none of our cookies: the signed logout token is the proof
@never_cache
@require_POST
def sso_backchannel_logout(request: HttpRequest, slug: str) -> HttpResponse:
    """OpenID Connect Back-Channel Logout: the provider's server says a session of its ended; the
    CampusIQ sessions signed in through it end too. 200 once done, 400 for a token that cannot be
    trusted (nothing ended)."""
    provider = _provider_or_404(slug)
    if provider.protocol != "oidc":
        raise Http404
    rate_limits_enforce([RateLimit("sso-backchannel", client_network(request), settings.SSO_BACKCHANNEL_RATE_PER_IP)])
    try:
        claims = oidc_logout_token_claims(provider, request.POST.get("logout_token", ""))
    except SsoProtocolError as error:
        log.warning("sso_refused", provider=provider.slug, reason=error.reason)
        answer = {"error": "invalid_request", "error_description": "The logout token cannot be trusted.",
                  "request_id": getattr(request, "request_id", "")}  # fmt: skip
        return JsonResponse(answer, status=400)
    sso_sessions_end(provider=provider, subject=str(claims.get("sub") or ""),
                     provider_session=str(claims.get("sid") or ""))  # fmt: skip
    return HttpResponse(status=200)


@never_cache
@require_GET
def sso_sls(request: HttpRequest, slug: str) -> HttpResponse:
    """SAML Single Logout (HTTP-Redirect). A LogoutRequest from the IdP (the person signed out there, or
    at another of its services) ends the CampusIQ sessions it names and answers the IdP; a
    LogoutResponse answers ours, which ended our session already."""
    provider = _provider_or_404(slug)
    _limit(request)
    if provider.protocol != "saml":
        raise Http404
    if "SAMLRequest" in request.GET:
        try:
            subject, session_index, answer_url = saml_logout_request(request, provider)
        except SsoProtocolError as error:
            return _unchecked(request, provider, error)
        sso_sessions_end(provider=provider, subject=subject, provider_session=session_index)
        return HttpResponseRedirect(answer_url)
    if saml_logout_response_ok(request, provider):
        return redirect(settings.LOGOUT_REDIRECT_URL)
    message = _("You are signed out of CampusIQ, but %(provider)s did not confirm that it signed you out too. "
                "Close your browser to end that sign-in.")  # fmt: skip
    return _refused(request, provider, status=400, message=message % {"provider": provider.name},
                    reason="logout_response_unconfirmed")  # fmt: skip
