"""OpenID Connect sign-in through Authlib's Django client: the authorization code flow with PKCE
(S256), state and nonce kept in the session, the id token's signature checked against the provider's
published keys (JWKS) with the algorithms its discovery document lists (never `none`), its issuer,
audience, expiry and nonce checked. Every request to the provider has a bounded timeout."""

import hashlib
import time

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.django_client import OAuth
from django.http import HttpRequest, HttpResponse
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from accounts.sso.config import SsoProvider
from accounts.sso.services import AssertedIdentity, SsoProtocolError, url_origin
from campusiq.core.counters import counters_add

# One Authlib client per provider configuration (a changed configuration gets a new one).
_clients: dict[tuple[str, str, str], object] = {}


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


def oidc_authorize_redirect(
    request: HttpRequest, provider: SsoProvider, redirect_uri: str, *, reauthenticate: bool = False
) -> HttpResponse:
    """To the provider's sign-in; with `reauthenticate` (a page needs a recent sign-in) it is asked to
    check the person again, not answer from its own session (prompt=login, OpenID Connect Core 3.1.2.1)."""
    try:
        _metadata(provider)
        extra = {"prompt": "login"} if reauthenticate else {}
        return _client(provider).authorize_redirect(request, redirect_uri, **extra)
    except _FAILURES as error:
        raise SsoProtocolError(f"provider_unreachable: {type(error).__name__}") from error


def oidc_identity(request: HttpRequest, provider: SsoProvider) -> tuple[AssertedIdentity, dict]:
    """The checked identity from the provider's answer on the callback, and what the session keeps for
    logout: the id token (RP-initiated logout), the subject and the provider's session id (`sid`, which
    a back-channel logout names)."""
    try:
        metadata = _metadata(provider)
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
    details = {
        "id_token": token["id_token"],
        "subject": identity.subject,
        "provider_session": str(claims.get("sid") or ""),
        "logout_origin": url_origin(metadata.get("end_session_endpoint") or ""),
    }
    return identity, details


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


# --- Back-channel logout (OpenID Connect Back-Channel Logout 1.0) -----------------------------------------

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_MAX_AGE_SECONDS = 300
LOGOUT_TOKEN_LEEWAY_SECONDS = 60


def _signed_claims(provider: SsoProvider, token: str, metadata: dict) -> tuple[dict, dict]:
    """The header and claims of a JWT signed by one of the provider's published keys, by an algorithm
    its discovery lists (never `none`); the keys are fetched again once for a key id not seen yet."""
    algorithms = [alg for alg in metadata.get("id_token_signing_alg_values_supported", ["RS256"]) if alg != "none"]
    registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
    client = _client(provider)
    try:
        decoded = jwt.decode(token, KeySet.import_key_set(client.fetch_jwk_set()), registry=registry)
    except InvalidKeyIdError:
        decoded = jwt.decode(token, KeySet.import_key_set(client.fetch_jwk_set(force=True)), registry=registry)
    return decoded.header, decoded.claims


def oidc_logout_token_claims(provider: SsoProvider, logout_token: str) -> dict:
    """The claims of a back-channel logout token the provider's server sent, checked as the
    specification says (2.6): signed by the provider, for our client, recent, a logout event, no nonce,
    naming a session (`sid`) or a person (`sub`), and its `jti` accepted once. SsoProtocolError if not."""
    if not logout_token:
        raise SsoProtocolError("no_logout_token")
    try:
        header, claims = _signed_claims(provider, logout_token, _metadata(provider))
        jwt.JWTClaimsRegistry(leeway=LOGOUT_TOKEN_LEEWAY_SECONDS, iat={"essential": True},
                              jti={"essential": True}).validate(claims)  # fmt: skip
    except SsoProtocolError:
        raise
    except (*_FAILURES, RuntimeError) as error:
        raise SsoProtocolError(f"logout_token_{type(error).__name__}") from error
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    events = claims.get("events")
    checks = (
        (str(claims.get("iss", "")).rstrip("/") == provider.issuer, "issuer_mismatch"),
        (provider.client_id in audiences, "audience_mismatch"),
        (header.get("typ", "logout+jwt").lower() in {"logout+jwt", "jwt"}, "not_a_logout_token"),
        (isinstance(events, dict) and BACKCHANNEL_LOGOUT_EVENT in events, "not_a_logout_token"),
        ("nonce" not in claims, "nonce_in_logout_token"),  # an id token passed off as a logout token
        (bool(claims.get("sid") or claims.get("sub")), "logout_token_names_no_one"),
        (isinstance(claims.get("iat"), int | float) and time.time() - claims["iat"] <= LOGOUT_TOKEN_MAX_AGE_SECONDS,
         "logout_token_stale"),
    )  # fmt: skip
    for passed, reason in checks:
        if not passed:
            raise SsoProtocolError(reason)
    digest = hashlib.sha256(f"{provider.issuer}|{claims['jti']}".encode()).hexdigest()[:40]
    if counters_add([(f"oidc-logout-token:{digest}", 1, LOGOUT_TOKEN_MAX_AGE_SECONDS * 2)])[0] > 1:
        raise SsoProtocolError("logout_token_replayed")
    return claims
