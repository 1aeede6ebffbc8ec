"""OpenID Connect sign-in through Authlib's Django client: the authorization code flow with PKCE
(S256), state and nonce kept in the session, the id token's signature checked against the provider's
published keys (JWKS) with the algorithms its discovery document lists (never `none`), its issuer,
audience, expiry and nonce checked. Every request to the provider has a bounded timeout."""

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.django_client import OAuth
from django.http import HttpRequest, HttpResponse
from joserfc.errors import JoseError

from accounts.sso.config import SsoProvider
from accounts.sso.services import AssertedIdentity

# One Authlib client per provider configuration (a changed configuration gets a new one).
_clients: dict[tuple[str, str, str], object] = {}


class SsoProtocolError(Exception):
    """The provider's answer cannot be trusted or was not given (tampered, expired, replayed, down)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# What the library raises for a refused or failed exchange: its own errors, the token library's, the
# network's, and malformed answers.
_FAILURES = (AuthlibBaseError, JoseError, requests.RequestException, ValueError, KeyError, TypeError)


def _client(provider: SsoProvider):
    key = (provider.slug, provider.discovery_url, provider.client_id)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = OAuth().register(
            provider.slug,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            server_metadata_url=provider.discovery_url,
            client_kwargs={
                "scope": " ".join(provider.scopes),
                "code_challenge_method": "S256",
                "timeout": provider.timeout_seconds,
            },
        )
    return client


def _metadata(provider: SsoProvider) -> dict:
    metadata = _client(provider).load_server_metadata()
    if metadata.get("issuer", "").rstrip("/") != provider.issuer:
        raise SsoProtocolError("issuer_mismatch")  # a discovery document for someone else
    return metadata


def oidc_authorize_redirect(request: HttpRequest, provider: SsoProvider, redirect_uri: str) -> HttpResponse:
    try:
        _metadata(provider)
        return _client(provider).authorize_redirect(request, redirect_uri)
    except _FAILURES as error:
        raise SsoProtocolError(f"provider_unreachable: {type(error).__name__}") from error


def oidc_identity(request: HttpRequest, provider: SsoProvider) -> tuple[AssertedIdentity, str]:
    """The checked identity from the provider's answer on the callback, and the id token (for logout)."""
    try:
        _metadata(provider)
        token = _client(provider).authorize_access_token(request)
    except SsoProtocolError:
        raise
    except _FAILURES as error:
        raise SsoProtocolError(type(error).__name__) from error
    claims = token.get("userinfo")
    if not claims or "id_token" not in token:
        raise SsoProtocolError("no_id_token")
    names = provider.claims
    roles = claims.get(names["roles"], [])
    if isinstance(roles, str):
        roles = [roles]
    amr = claims.get("amr") or []
    identity = AssertedIdentity(
        issuer=str(claims["iss"]).rstrip("/"),
        subject=str(claims["sub"]),
        email=str(claims.get(names["email"]) or ""),
        email_verified=claims.get(names["email_verified"]),
        first_name=str(claims.get(names["first_name"]) or ""),
        last_name=str(claims.get(names["last_name"]) or ""),
        student_number=str(claims.get(names["student_number"]) or ""),
        role_values=frozenset(str(value) for value in roles),
        mfa=bool(set(amr) & set(provider.mfa_amr)) or (claims.get("acr") in provider.mfa_acr),
    )
    return identity, token["id_token"]


def oidc_logout_url(provider: SsoProvider, *, id_token: str, post_logout_redirect_uri: str) -> str | None:
    """The provider's end-session URL for RP-initiated logout, or None if it has none (or is down)."""
    try:
        if not _metadata(provider).get("end_session_endpoint"):
            return None
        return _client(provider).create_logout_url(
            post_logout_redirect_uri=post_logout_redirect_uri, id_token_hint=id_token
        )["url"]
    except (*_FAILURES, SsoProtocolError):
        return None
