"""SAML 2.0 sign-in through pysaml2 (Debian's xmlsec1 checks the signatures): SP-initiated (HTTP-Redirect
AuthnRequest, HTTP-POST response) and IdP-initiated (unsolicited responses, allowed without an
InResponseTo). The response must be signed by the configured IdP's key (assertions signed), for our
entity id (audience) and ACS (recipient), inside its validity window; an InResponseTo must be the id of
the request this browser's relay state carries; an assertion id is accepted once (remembered until it
would expire). The ACS receives a cross-site POST, which carries none of our cookies: it checks the
answer, then hands the identity to a same-site page (sso_complete) in a short-lived encrypted token."""

import base64
import hashlib
import json
import secrets
import shutil
from urllib.parse import unquote_plus

import structlog
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.urls import reverse
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, SAMLError
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.s_utils import SamlException
from saml2.saml import NAMEID_FORMAT_PERSISTENT, name_id_from_string
from saml2.samlp import STATUS_SUCCESS
from saml2.sigver import SIGNER_ALGS, SignatureError, extract_rsa_key_from_x509_cert, pem_format

from accounts.sso.config import SsoProvider
from accounts.sso.metadata import saml_idp_metadata
from accounts.sso.services import AssertedIdentity, SsoProtocolError, url_origin
from campusiq.core.counters import counters_add

log = structlog.get_logger(__name__)

RELAY_SALT = "campusiq.accounts.sso.saml-relay"
RELAY_MAX_AGE_SECONDS = 600
HANDOFF_MAX_AGE_SECONDS = 60
ASSERTION_MEMORY_SECONDS = 24 * 3600  # longer than any assertion's validity
ACCEPTED_CLOCK_SKEW_SECONDS = 60


def _sp_urls(request: HttpRequest, provider: SsoProvider) -> dict[str, str]:
    absolute = request.build_absolute_uri
    return {
        "entity_id": absolute(reverse("sso_metadata", args=[provider.slug])),
        "acs": absolute(reverse("sso_acs", args=[provider.slug])),
        "sls": absolute(reverse("sso_sls", args=[provider.slug])),
    }


def _client(request: HttpRequest, provider: SsoProvider) -> Saml2Client:
    # A client per request: pysaml2's keeps every identity it saw in memory, which a long-lived one would
    # accumulate. Its cost is parsing the IdP's metadata: a local file or the checked copy stored in the
    # database, never a fetch (accounts/sso/metadata.py; docs/SSO.md).
    urls = _sp_urls(request, provider)
    metadata = saml_idp_metadata(provider)
    config = {
        "entityid": urls["entity_id"],
        "xmlsec_binary": shutil.which("xmlsec1") or "/usr/bin/xmlsec1",
        "metadata": metadata,
        "accepted_time_diff": ACCEPTED_CLOCK_SKEW_SECONDS,
        # Attributes by the names the IdP sends (eduPerson, SCHAC), mapped by the provider's claims.
        "allow_unknown_attributes": True,
        "http_client_timeout": provider.timeout_seconds,
        "service": {
            "sp": {
                "name": "CampusIQ",
                "endpoints": {
                    "assertion_consumer_service": [(urls["acs"], BINDING_HTTP_POST)],
                    "single_logout_service": [(urls["sls"], BINDING_HTTP_REDIRECT)],
                },
                "allow_unsolicited": True,  # IdP-initiated; InResponseTo is checked against the relay state
                "want_assertions_signed": True,
                "want_response_signed": False,
                "authn_requests_signed": bool(provider.sp_key_file),
                "logout_requests_signed": bool(provider.sp_key_file),
                "logout_responses_signed": bool(provider.sp_key_file),
                "name_id_format": NAMEID_FORMAT_PERSISTENT,
                "name_id_format_allow_create": True,
            }
        },
        **({"key_file": provider.sp_key_file, "cert_file": provider.sp_cert_file} if provider.sp_key_file else {}),
    }
    try:
        return Saml2Client(config=SPConfig().load(config))
    except (SAMLError, OSError, ValueError) as error:
        raise SsoProtocolError(f"metadata_unavailable: {type(error).__name__}") from error


def saml_metadata_xml(request: HttpRequest, provider: SsoProvider) -> str:
    """Our SP metadata for the IdP's administrators (entity id, ACS, the NameID we ask for)."""
    return str(entity_descriptor(_client(request, provider).config))


def _message_id() -> str:
    return f"id-{secrets.token_hex(16)}"  # an xsd:ID: starts with a letter


def _location(info: dict) -> str:
    return dict(info["headers"])["Location"]


def saml_authorize_url(
    request: HttpRequest, provider: SsoProvider, next_url: str, *, reauthenticate: bool = False
) -> str:
    """The IdP's sign-in; with `reauthenticate` (a page needs a recent sign-in) the AuthnRequest says
    ForceAuthn, so the IdP checks the person again rather than answering from its own session."""
    client = _client(request, provider)
    request_id = _message_id()
    relay = signing.dumps({"request": request_id, "next": next_url}, salt=RELAY_SALT)
    extra = {"force_authn": "true"} if reauthenticate else {}
    try:
        _, info = client.prepare_for_authenticate(
            entityid=provider.issuer, relay_state=relay, binding=BINDING_HTTP_REDIRECT, message_id=request_id, **extra
        )
    except (SAMLError, ValueError, KeyError) as error:
        raise SsoProtocolError(f"idp_unknown: {type(error).__name__}") from error
    return _location(info)


def saml_identity(request: HttpRequest, provider: SsoProvider) -> tuple[AssertedIdentity, str, dict]:
    """The checked identity of the POSTed SAMLResponse, where to go next, and the session details (for
    logout). SsoProtocolError for anything that cannot be trusted."""
    raw = request.POST.get("SAMLResponse", "")
    relay = request.POST.get("RelayState", "")
    expected_request, next_url = None, reverse("home")
    if relay:
        try:
            state = signing.loads(relay, salt=RELAY_SALT, max_age=RELAY_MAX_AGE_SECONDS)
        except signing.BadSignature as error:
            raise SsoProtocolError("relay_state_forged") from error
        expected_request, next_url = state["request"], state["next"]
    client = _client(request, provider)
    try:
        response = client.parse_authn_request_response(raw, BINDING_HTTP_POST)
    except (SAMLError, SignatureError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise SsoProtocolError(type(error).__name__) from error
    if response is None:
        raise SsoProtocolError("no_response")
    if response.issuer() != provider.issuer:
        raise SsoProtocolError("issuer_mismatch")
    if response.in_response_to and response.in_response_to != expected_request:
        raise SsoProtocolError("in_response_to_unknown")  # answers a request this browser never made
    assertion_id = response.assertion.id
    digest = hashlib.sha256(f"{provider.issuer}|{assertion_id}".encode()).hexdigest()[:40]
    if counters_add([(f"saml-assertion:{digest}", 1, ASSERTION_MEMORY_SECONDS)])[0] > 1:
        raise SsoProtocolError("assertion_replayed")
    statements = getattr(response.assertion, "authn_statement", None) or []
    details = {
        "name_id": str(response.name_id) if response.name_id is not None else "",  # its XML, for the LogoutRequest
        "subject": response.name_id.text if response.name_id is not None else "",
        "provider_session": (statements[0].session_index or "") if statements else "",
        "logout_origin": url_origin(_idp_logout_location(client, provider) or ""),
    }
    return _identity(provider, response), next_url, details


def _first(attributes: dict, name: str) -> str:
    values = attributes.get(name) or [] if name else []
    return str(values[0]) if values else ""


def _identity(provider: SsoProvider, response) -> AssertedIdentity:
    attributes = response.ava or {}
    names = provider.claims
    name_id = response.name_id
    if name_id is not None and name_id.format == NAMEID_FORMAT_PERSISTENT and name_id.text:
        subject = name_id.text
    else:
        subject = _first(attributes, names["subject"]) or _first(attributes, names.get("subject_fallback", ""))
    contexts = {ref for ref, *_ in response.authn_info()}
    return AssertedIdentity(
        issuer=provider.issuer,
        subject=subject,
        email=_first(attributes, names["email"]),
        email_verified=None,
        first_name=_first(attributes, names["first_name"]),
        last_name=_first(attributes, names["last_name"]),
        student_number=_first(attributes, names["student_number"]),
        role_values=frozenset(str(value) for value in attributes.get(names["roles"], [])),
        mfa=bool(contexts & set(provider.mfa_acr)),
    )


# --- Single Logout (HTTP-Redirect binding) ----------------------------------------------------------------

LOGOUT_RELAY_SALT = "campusiq.accounts.sso.saml-logout-relay"


def _idp_logout_location(client: Saml2Client, provider: SsoProvider) -> str | None:
    try:
        services = client.metadata.single_logout_service(provider.issuer, BINDING_HTTP_REDIRECT, "idpsso")
    except (SAMLError, SamlException):  # the IdP has no Single Logout by this binding
        return None
    return next((service["location"] for service in services or []), None)


def saml_logout_url(request: HttpRequest, provider: SsoProvider, *, name_id: str, session_index: str) -> str | None:
    """The IdP's Single Logout URL with our LogoutRequest for this sign-in (signed where CampusIQ has a
    key), or None where the IdP has no Single Logout service or cannot be read."""
    name = name_id_from_string(name_id) if name_id else None
    try:
        client = _client(request, provider)
        location = _idp_logout_location(client, provider)
        if location is None or name is None:
            return None
        request_id = _message_id()
        _, logout_request = client.create_logout_request(
            location, provider.issuer, name_id=name, session_indexes=[session_index] if session_index else None,
            message_id=request_id,
        )  # fmt: skip
        relay = signing.dumps({"request": request_id}, salt=LOGOUT_RELAY_SALT)
        info = client.apply_binding(BINDING_HTTP_REDIRECT, str(logout_request), location, relay_state=relay)
    except (SsoProtocolError, SAMLError, SamlException, ValueError, KeyError) as error:
        log.warning("saml_logout_unavailable", provider=provider.slug, reason=type(error).__name__)
        return None
    return _location(info)


def _redirect_signature_valid(client: Saml2Client, provider: SsoProvider, query_string: str, kind: str) -> bool:
    """The HTTP-Redirect binding's signature (SAML bindings 3.4.4.1) over the query exactly as it was
    sent, by a signing key of the IdP's metadata. SHA-1 is refused."""
    parts = dict(part.split("=", 1) for part in query_string.split("&") if "=" in part)
    algorithm = unquote_plus(parts.get("SigAlg", ""))
    if "Signature" not in parts or algorithm not in SIGNER_ALGS or "sha1" in algorithm:
        return False
    signed = "&".join(f"{name}={parts[name]}" for name in (kind, "RelayState", "SigAlg") if name in parts).encode()
    try:
        signature = base64.b64decode(unquote_plus(parts["Signature"]), validate=True)
    except ValueError:
        return False
    signer = client.sec.sec_backend.get_signer(algorithm)
    certs = client.metadata.certs(provider.issuer, "idpsso", "signing")
    return any(signer.verify(signed, signature, extract_rsa_key_from_x509_cert(pem_format(cert))) for _, cert in certs)


def saml_logout_request(request: HttpRequest, provider: SsoProvider) -> tuple[str, str, str]:
    """The IdP's own LogoutRequest (IdP-initiated, or another service's logout at it), checked: signed
    by the IdP (HTTP-Redirect), issued by it, recent. Returns the NameID's value, the session index it
    names (or ""), and the URL of our LogoutResponse to send the browser back with."""
    client = _client(request, provider)
    if not _redirect_signature_valid(client, provider, request.META.get("QUERY_STRING", ""), "SAMLRequest"):
        raise SsoProtocolError("logout_request_unsigned")
    try:
        parsed = client.parse_logout_request(request.GET.get("SAMLRequest", ""), BINDING_HTTP_REDIRECT)
    except (SAMLError, SamlException, SignatureError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise SsoProtocolError(f"logout_request_{type(error).__name__}") from error
    message = parsed.message if parsed is not None else None
    if message is None or message.issuer is None or message.issuer.text != provider.issuer:
        raise SsoProtocolError("issuer_mismatch")
    if not parsed.issue_instant_ok():
        raise SsoProtocolError("logout_request_expired")
    location = _idp_logout_location(client, provider)
    if location is None or message.name_id is None:
        raise SsoProtocolError("logout_request_incomplete")
    response = client.create_logout_response(message, [BINDING_HTTP_REDIRECT])
    info = client.apply_binding(BINDING_HTTP_REDIRECT, str(response), location,
                                relay_state=request.GET.get("RelayState", ""), response=True)  # fmt: skip
    indexes = [index.text for index in message.session_index or [] if index.text]
    return message.name_id.text or "", indexes[0] if indexes else "", _location(info)


def saml_logout_response_ok(request: HttpRequest, provider: SsoProvider) -> bool:
    """The IdP's answer to our LogoutRequest: signed by it, to a request this browser made, saying the
    IdP's session ended. False otherwise (ours ended already: this only says whether theirs did)."""
    try:
        state = signing.loads(request.GET.get("RelayState", ""), salt=LOGOUT_RELAY_SALT, max_age=RELAY_MAX_AGE_SECONDS)
        client = _client(request, provider)
        if not _redirect_signature_valid(client, provider, request.META.get("QUERY_STRING", ""), "SAMLResponse"):
            return False
        response = client.parse_logout_request_response(request.GET.get("SAMLResponse", ""), BINDING_HTTP_REDIRECT)
    except (signing.BadSignature, SsoProtocolError, SAMLError, SamlException, SignatureError, ValueError, KeyError,
            TypeError, AttributeError):  # fmt: skip
        return False
    message = response.response if response is not None else None
    return (
        message is not None
        and message.in_response_to == state["request"]
        and message.issuer is not None
        and message.issuer.text == provider.issuer
        and message.status.status_code.value == STATUS_SUCCESS
    )


# --- The hand-off from the cross-site ACS to a same-site page -------------------------------------------


def _fernet() -> Fernet:
    key = hashlib.sha256(f"campusiq.accounts.sso.handoff:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def handoff_token(identity: AssertedIdentity, next_url: str, details: dict) -> str:
    payload = {"identity": {**identity.__dict__, "role_values": sorted(identity.role_values)}, "next": next_url,
               "details": details}  # fmt: skip
    return _fernet().encrypt(json.dumps(payload).encode()).decode()


def handoff_open(token: str) -> tuple[AssertedIdentity, str, dict]:
    """The identity a recent ACS handed over, once: a token seen before, or too old, is refused."""
    try:
        payload = json.loads(_fernet().decrypt(token.encode(), ttl=HANDOFF_MAX_AGE_SECONDS))
    except (InvalidToken, ValueError) as error:
        raise SsoProtocolError("handoff_invalid") from error
    digest = hashlib.sha256(token.encode()).hexdigest()[:40]
    if counters_add([(f"saml-handoff:{digest}", 1, HANDOFF_MAX_AGE_SECONDS * 2)])[0] > 1:
        raise SsoProtocolError("handoff_replayed")
    identity = payload["identity"]
    identity["role_values"] = frozenset(identity["role_values"])
    return AssertedIdentity(**identity), payload["next"], payload["details"]
