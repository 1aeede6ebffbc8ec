"""The identity providers a campus configures: SSO_CONFIG_FILE names a JSON file (docs/SSO.md), read
once at start-up and checked then, so a mistake stops the start, not a sign-in. Secrets are never in
the file: a provider names the environment variable (or Docker/Kubernetes secret file) holding them."""

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import environ
from cryptography import x509
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from accounts.roles import Role
from campusiq.core.secrets import read_secret

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
PROTOCOLS = {"oidc", "saml"}
MAX_REFRESH_HOURS = 7 * 24
# What a first sign-in may be linked by, where configured: stable, institution-issued identifiers
# only, never a display name.
LINK_ATTRIBUTES = {"email", "student_number"}
# The claims an identity is read from, and the provider's names for them by default (OIDC).
DEFAULT_CLAIMS = {
    "email": "email",
    "email_verified": "email_verified",
    "first_name": "given_name",
    "last_name": "family_name",
    "student_number": "student_number",
    "roles": "groups",
}
# SAML: attribute names as the research and education federations send them (eduPerson, SCHAC). The
# subject is the persistent NameID when the IdP sends one, else this attribute (subject-id, then ePPN).
SAML_DEFAULT_CLAIMS = {
    "subject": "urn:oasis:names:tc:SAML:attribute:subject-id",
    "subject_fallback": "eduPersonPrincipalName",
    "email": "mail",
    "email_verified": "",
    "first_name": "givenName",
    "last_name": "sn",
    "student_number": "schacPersonalUniqueCode",
    "roles": "eduPersonScopedAffiliation",
}


@dataclass(frozen=True)
class SsoProvider:
    slug: str
    name: str
    protocol: str
    issuer: str
    client_id: str = ""
    client_secret: str = ""
    discovery_url: str = ""
    # SAML: the IdP's metadata (a file path or an https URL) and the SP key pair CampusIQ signs with.
    idp_metadata: str = ""
    # The certificate (PEM) the metadata must be signed with: required for a URL, optional for a file.
    # A URL's checked copy is kept in the database and refreshed this often (accounts/sso/metadata.py).
    idp_metadata_cert: str = ""
    metadata_refresh_hours: int = 6
    sp_key_file: str = ""
    sp_cert_file: str = ""
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    claims: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CLAIMS))
    link_existing_by: tuple[str, ...] = ()
    provision: bool = False
    email_domains: tuple[str, ...] = ()
    # The provider's value (a group, an affiliation) -> the role it grants. The roles named here are
    # the ones this provider manages: granted when asserted, removed when not; others are left alone.
    roles: dict[str, Role] = field(default_factory=dict)
    mfa_amr: tuple[str, ...] = ()
    mfa_acr: tuple[str, ...] = ()
    password_sign_in: bool = True
    timeout_seconds: float = 5.0

    @property
    def managed_roles(self) -> set[Role]:
        return set(self.roles.values())

    @property
    def idp_metadata_remote(self) -> bool:
        return self.idp_metadata.startswith("https://")

    def email_domain_allowed(self, email: str) -> bool:
        domain = email.rpartition("@")[2].casefold()
        return bool(domain) and domain in self.email_domains


def _metadata_source(raw: dict, where: str) -> tuple[str, str, int]:
    """A SAML provider's idp_metadata, idp_metadata_cert and metadata_refresh_hours, checked."""
    source, cert = raw["idp_metadata"], raw.get("idp_metadata_cert", "")
    if "://" in source and not source.startswith("https://"):
        raise ImproperlyConfigured(f"{where}: idp_metadata must be a file path or an https:// URL.")
    if not isinstance(cert, str):
        raise ImproperlyConfigured(f"{where}: idp_metadata_cert must be a file path.")
    if source.startswith("https://") and not cert:
        raise ImproperlyConfigured(f"{where}: idp_metadata_cert is required for metadata read from a URL.")
    if cert:
        try:
            x509.load_pem_x509_certificate(Path(cert).read_bytes())
        except (OSError, ValueError) as error:
            raise ImproperlyConfigured(
                f"{where}: idp_metadata_cert {cert}: not a readable PEM certificate ({error})."
            ) from error
    hours = raw.get("metadata_refresh_hours", 6)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_REFRESH_HOURS:
        raise ImproperlyConfigured(
            f"{where}: metadata_refresh_hours must be a whole number from 1 to {MAX_REFRESH_HOURS}."
        )
    return source, cert, hours


def _provider(raw: dict, env: environ.Env) -> SsoProvider:
    slug = raw.get("slug", "")
    where = f"SSO provider {slug or '(no slug)'}"
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise ImproperlyConfigured(f"{where}: slug must be 1-40 lower-case letters, digits or dashes.")
    if raw.get("protocol") not in PROTOCOLS:
        raise ImproperlyConfigured(f"{where}: protocol must be one of {sorted(PROTOCOLS)}.")
    saml = raw["protocol"] == "saml"
    for required in ("name", "issuer", *(("idp_metadata",) if saml else ("client_id", "client_secret_env"))):
        if not isinstance(raw.get(required), str) or not raw[required]:
            raise ImproperlyConfigured(f"{where}: {required} is required.")
    idp_metadata, idp_metadata_cert, refresh_hours = _metadata_source(raw, where) if saml else ("", "", 6)
    secret = "" if saml else read_secret(env, raw["client_secret_env"], default="")
    if not saml and not secret:
        raise ImproperlyConfigured(f"{where}: the client secret in {raw['client_secret_env']} is not set.")
    link = tuple(raw.get("link_existing_by", ()))
    if unknown := set(link) - LINK_ATTRIBUTES:
        raise ImproperlyConfigured(
            f"{where}: link_existing_by may name {sorted(LINK_ATTRIBUTES)}, not {sorted(unknown)}."
        )
    roles = {}
    for value, role in dict(raw.get("roles", {})).items():
        try:
            roles[str(value)] = Role(role)
        except ValueError as error:
            raise ImproperlyConfigured(
                f"{where}: role {role!r} for {value!r} is not one of {[r.value for r in Role]}."
            ) from error
    domains = tuple(d.casefold() for d in raw.get("email_domains", ()))
    if (raw.get("provision") or "email" in link) and not domains:
        raise ImproperlyConfigured(f"{where}: linking or provisioning by email needs the email_domains it speaks for.")
    mfa = dict(raw.get("mfa", {}))
    issuer = raw["issuer"] if saml else raw["issuer"].rstrip("/")  # a SAML entity id is compared as it is
    return SsoProvider(
        slug=slug,
        name=raw["name"],
        protocol=raw["protocol"],
        issuer=issuer,
        client_id=raw.get("client_id", ""),
        client_secret=secret,
        discovery_url="" if saml else raw.get("discovery_url") or f"{issuer}/.well-known/openid-configuration",
        idp_metadata=idp_metadata,
        idp_metadata_cert=idp_metadata_cert,
        metadata_refresh_hours=refresh_hours,
        sp_key_file=raw.get("sp_key_file", ""),
        sp_cert_file=raw.get("sp_cert_file", ""),
        scopes=tuple(raw.get("scopes", ("openid", "email", "profile"))),
        claims={**(SAML_DEFAULT_CLAIMS if saml else DEFAULT_CLAIMS), **dict(raw.get("claims", {}))},
        link_existing_by=link,
        provision=bool(raw.get("provision", False)),
        email_domains=domains,
        roles=roles,
        mfa_amr=tuple(mfa.get("amr", ())),
        mfa_acr=tuple(mfa.get("acr", ())),
        password_sign_in=bool(raw.get("password_sign_in", True)),
        timeout_seconds=float(raw.get("timeout_seconds", 5.0)),
    )


def sso_providers_load(path: str, env: environ.Env) -> dict[str, SsoProvider]:
    """The providers of the file at `path` by slug ({} without a file); ImproperlyConfigured if wrong."""
    if not path:
        return {}
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ImproperlyConfigured(f"SSO_CONFIG_FILE {path}: {error}") from error
    providers = [_provider(entry, env) for entry in raw.get("providers", [])]
    by_slug = {provider.slug: provider for provider in providers}
    if len(by_slug) != len(providers):
        raise ImproperlyConfigured(f"SSO_CONFIG_FILE {path}: two providers have the same slug.")
    return by_slug


@functools.cache
def sso_providers() -> dict[str, SsoProvider]:
    """The configured providers (SSO_CONFIG_FILE), read once per process (AccountsConfig.ready())."""
    return sso_providers_load(settings.SSO_CONFIG_FILE, environ.Env())


@receiver(setting_changed)
def _forget_providers(*, setting: str, **kwargs) -> None:
    # A changed SSO_CONFIG_FILE (tests, override_settings) is read again on its next use.
    if setting == "SSO_CONFIG_FILE":
        sso_providers.cache_clear()
