"""The sign-in pages of campus single sign-on: "Sign in with <campus>" starts at the provider
(sso_begin), which sends the person back to sso_callback; sso_logout ends our session and, where the
provider can, theirs. A refusal is a readable page, logged with the request id; it writes nothing."""

import structlog
from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.signin import safe_next_url, sign_in_completed
from accounts.sso.config import SsoProvider, sso_providers
from accounts.sso.oidc import SsoProtocolError, oidc_authorize_redirect, oidc_identity, oidc_logout_url
from accounts.sso.saml import handoff_open, handoff_token, saml_authorize_url, saml_identity, saml_metadata_xml
from accounts.sso.services import SIGNED_IN_SESSION_KEY, SsoRefused, sso_sign_in
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
    try:
        if provider.protocol == "saml":
            return HttpResponseRedirect(saml_authorize_url(request, provider, next_url))
        request.session[NEXT_SESSION_KEY] = next_url
        redirect_uri = request.build_absolute_uri(reverse("sso_callback", args=[provider.slug]))
        return oidc_authorize_redirect(request, provider, redirect_uri)
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
        identity, id_token = oidc_identity(request, provider)
    except SsoProtocolError as error:
        return _unchecked(request, provider, error)
    next_url = request.session.pop(NEXT_SESSION_KEY, reverse("home"))
    return _sign_in(request, provider, identity, next_url, {"id_token": id_token})


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


@require_POST
def sso_logout(request: HttpRequest) -> HttpResponse:
    """Every sign-out (the site's logout): ends our session, then sends someone who came through a
    provider to its logout where it has one, which ends theirs and sends them back home."""
    signed_in = request.session.get(SIGNED_IN_SESSION_KEY) or {}
    provider = sso_providers().get(signed_in.get("provider", ""))
    auth_logout(request)
    if provider is not None and signed_in.get("id_token"):
        url = oidc_logout_url(
            provider,
            id_token=signed_in["id_token"],
            post_logout_redirect_uri=request.build_absolute_uri(reverse("home")),
        )
        if url:
            return HttpResponseRedirect(url)
    return redirect(settings.LOGOUT_REDIRECT_URL)
