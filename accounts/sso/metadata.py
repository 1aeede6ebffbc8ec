"""A SAML provider's metadata read from a URL: fetched with a bounded time and size, its XML signature
checked (xmlsec1, through pysaml2's backend) against the certificate the campus configured
(idp_metadata_cert), refused when its validUntil has passed or when it does not describe the configured
entity as an IdP, and kept in the database (SamlMetadata). Sign-ins read that copy and never fetch, but
for the very first one of a provider with none yet. A refresh (the accounts.sso_metadata_refresh task,
hourly, or `manage.py sso_metadata_refresh`) replaces it once it is older than metadata_refresh_hours;
a failed one keeps the last good copy, logs `saml_metadata_refresh_failed` and counts it.

A metadata file the operator placed is read by pysaml2 as it is; given idp_metadata_cert, it is checked
the same way (once per change of the file, per process)."""

import datetime
import enum
import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import structlog
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from defusedxml import ElementTree
from django.core.cache import cache
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from saml2 import SAMLError, md, xmldsig
from saml2.attribute_converter import ac_factory
from saml2.mdstore import InMemoryMetaData
from saml2.sigver import CryptoBackendXmlSec1, SignatureError, XmlsecError

from accounts.metrics import SAML_METADATA_REFRESHES
from accounts.models import SamlMetadata
from accounts.sso.config import SsoProvider, sso_providers
from accounts.sso.services import SsoProtocolError

log = structlog.get_logger(__name__)

MAX_BYTES = 10 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
# After a failed fetch, sign-ins wait this long before one tries again (they answer 503 meanwhile), so
# a provider that is down does not hold every sign-in for its timeout.
RETRY_AFTER_FAILURE_SECONDS = 60
# SAML's profile of XML Signature (saml-core 5.4): the enveloped signature, exclusive canonicalisation.
ALLOWED_TRANSFORMS = {xmldsig.TRANSFORM_ENVELOPED, xmldsig.TRANSFORM_C14N, xmldsig.TRANSFORM_C14N_WITH_COMMENTS}
MD = md.NAMESPACE
DS = xmldsig.NAMESPACE


class MetadataFailure(enum.StrEnum):
    UNREACHABLE = "unreachable"
    HTTP_STATUS = "http_status"
    TOO_LARGE = "too_large"
    TOO_SLOW = "too_slow"
    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    SIGNATURE_NOT_OVER_DOCUMENT = "signature_not_over_document"
    SIGNATURE_INVALID = "signature_invalid"
    EXPIRED = "expired"
    ENTITY_MISSING = "entity_missing"
    NOT_AN_IDP = "not_an_idp"
    CERT_UNREADABLE = "cert_unreadable"


class MetadataRefused(Exception):
    def __init__(self, code: MetadataFailure, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else str(code))
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class CheckedMetadata:
    xml: str
    sha256: str
    valid_until: datetime.datetime | None
    signing_cert_sha256: str


@dataclass(frozen=True)
class MetadataRefresh:
    """What a refresh did: "stored" (a new document), "unchanged" (the same one, checked again), "fresh"
    (skipped: the copy is younger than metadata_refresh_hours) or "failed" (`reason`; the copy kept)."""

    provider: str
    outcome: str
    reason: str = ""
    metadata: SamlMetadata | None = None


# --- Fetch and check -------------------------------------------------------------------------------


def saml_metadata_fetch(provider: SsoProvider) -> bytes:
    """The document at the provider's URL: at most MAX_BYTES, within about timeout_seconds in all (each
    connect and read is bounded by it, and so is the whole download). No redirects are followed."""
    deadline = time.monotonic() + provider.timeout_seconds
    body = bytearray()
    try:
        with requests.get(
            provider.idp_metadata,
            timeout=provider.timeout_seconds,
            stream=True,
            allow_redirects=False,
            headers={"Accept": "application/samlmetadata+xml, application/xml;q=0.9, */*;q=0.1"},
        ) as answer:
            if answer.status_code != 200:
                raise MetadataRefused(MetadataFailure.HTTP_STATUS, f"HTTP {answer.status_code}")
            length = answer.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > MAX_BYTES:
                raise MetadataRefused(MetadataFailure.TOO_LARGE, f"{length} bytes")
            # read1: what has arrived (up to a chunk), so a sender dribbling bytes meets the deadline too.
            while chunk := answer.raw.read1(CHUNK_BYTES, decode_content=True):
                body += chunk
                if len(body) > MAX_BYTES:
                    raise MetadataRefused(MetadataFailure.TOO_LARGE, f"over {MAX_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise MetadataRefused(MetadataFailure.TOO_SLOW, f"over {provider.timeout_seconds:g} s")
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:  # read1: urllib3's own
        raise MetadataRefused(MetadataFailure.UNREACHABLE, type(error).__name__) from error
    return bytes(body)


def signing_cert_sha256(cert_file: str) -> str:
    """The SHA-256 fingerprint of the certificate (as federations publish theirs)."""
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    except (OSError, ValueError) as error:
        raise MetadataRefused(MetadataFailure.CERT_UNREADABLE, f"{cert_file}: {type(error).__name__}") from error
    return cert.fingerprint(hashes.SHA256()).hex()


def saml_metadata_check(document: bytes, *, provider: SsoProvider) -> CheckedMetadata:
    """The document, if it is signed as a whole by the key of provider.idp_metadata_cert, still valid, and
    describes provider.issuer as a SAML 2.0 IdP; MetadataRefused otherwise."""
    try:
        root = ElementTree.fromstring(document)
        text = document.decode("utf-8")
    except (ElementTree.ParseError, ValueError) as error:  # defusedxml's refusals are ValueErrors
        raise MetadataRefused(MetadataFailure.MALFORMED, type(error).__name__) from error
    node_name = _signed_root(root)
    cert_sha256 = signing_cert_sha256(provider.idp_metadata_cert)
    try:
        CryptoBackendXmlSec1(_xmlsec1()).validate_signature(
            document, cert_file=provider.idp_metadata_cert, cert_type="pem", node_name=node_name,
            node_id=root.get("ID") or None,
        )  # fmt: skip
    except (SignatureError, XmlsecError) as error:
        raise MetadataRefused(MetadataFailure.SIGNATURE_INVALID) from error
    except OSError as error:  # no xmlsec1 to check it with
        raise MetadataRefused(MetadataFailure.SIGNATURE_INVALID, f"xmlsec1: {type(error).__name__}") from error
    entity = _idp_entity(root, text, provider.issuer)
    valid_until = _earliest(root.get("validUntil"), entity.get("validUntil"))
    if valid_until is not None and valid_until <= timezone.now():
        raise MetadataRefused(MetadataFailure.EXPIRED, f"validUntil {valid_until.isoformat()}")
    return CheckedMetadata(
        xml=text, sha256=hashlib.sha256(document).hexdigest(), valid_until=valid_until, signing_cert_sha256=cert_sha256
    )


def _signed_root(root) -> str:
    """The root's name for xmlsec1, if its signature is its own (the first child, as the schema puts it,
    which xmlsec1 then checks) and covers the whole document: not a signed fragment wrapped in another."""
    if root.tag not in (f"{{{MD}}}EntitiesDescriptor", f"{{{MD}}}EntityDescriptor"):
        raise MetadataRefused(MetadataFailure.MALFORMED, "not SAML metadata")
    if next(root.iter(f"{{{DS}}}Signature"), None) is None:
        raise MetadataRefused(MetadataFailure.UNSIGNED)
    signatures = root.findall(f"{{{DS}}}Signature")
    children = list(root)
    if len(signatures) != 1 or children[0] is not signatures[0]:
        raise MetadataRefused(MetadataFailure.SIGNATURE_NOT_OVER_DOCUMENT, "the root's first child is not it")
    references = signatures[0].findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    if len(references) != 1 or references[0].get("URI") not in ("", f"#{root.get('ID')}"):
        raise MetadataRefused(MetadataFailure.SIGNATURE_NOT_OVER_DOCUMENT, "its reference is not the root")
    transforms = {t.get("Algorithm") for t in references[0].iter(f"{{{DS}}}Transform")}
    if xmldsig.TRANSFORM_ENVELOPED not in transforms or not transforms <= ALLOWED_TRANSFORMS:
        raise MetadataRefused(MetadataFailure.SIGNATURE_NOT_OVER_DOCUMENT, f"transforms {sorted(transforms)}")
    return root.tag.replace("{", "").replace("}", ":")


def _idp_entity(root, text: str, entity_id: str):
    """The entity's element, if pysaml2 reads it as a SAML 2.0 IdP."""
    entities = [root] if root.tag == f"{{{MD}}}EntityDescriptor" else list(root.iter(f"{{{MD}}}EntityDescriptor"))
    entity = next((e for e in entities if e.get("entityID") == entity_id), None)
    if entity is None:
        raise MetadataRefused(MetadataFailure.ENTITY_MISSING, entity_id)
    store = InMemoryMetaData(ac_factory(), metadata=text, check_validity=False)
    try:
        store.load()
    except (SAMLError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise MetadataRefused(MetadataFailure.MALFORMED, type(error).__name__) from error
    if "idpsso_descriptor" not in store.entity.get(entity_id, {}):
        raise MetadataRefused(MetadataFailure.NOT_AN_IDP, entity_id)
    return entity


def _earliest(*stamps: str | None) -> datetime.datetime | None:
    moments = []
    for stamp in filter(None, stamps):
        moment = parse_datetime(stamp.strip())
        if moment is None:
            raise MetadataRefused(MetadataFailure.MALFORMED, f"validUntil {stamp[:40]!r}")
        moments.append(moment if timezone.is_aware(moment) else moment.replace(tzinfo=datetime.UTC))
    return min(moments, default=None)


def _xmlsec1() -> str:
    return shutil.which("xmlsec1") or "/usr/bin/xmlsec1"


# --- The stored copy -------------------------------------------------------------------------------


def _usable_copy(provider: SsoProvider) -> SamlMetadata | None:
    """The stored copy, if it came from the provider's URL, was checked against its current certificate
    and has not expired."""
    stored = SamlMetadata.objects.filter(provider=provider.slug).first()
    if stored is None or stored.source != provider.idp_metadata:
        return None
    if stored.signing_cert_sha256 != signing_cert_sha256(provider.idp_metadata_cert):
        return None
    if stored.valid_until is not None and stored.valid_until <= timezone.now():
        return None
    return stored


def saml_metadata_refresh(*, provider: SsoProvider, force: bool = False) -> MetadataRefresh:
    """Fetches, checks and stores the provider's metadata, unless (without `force`) its copy is younger
    than metadata_refresh_hours. A failure keeps the copy, logs and counts it, and notes it on the copy."""
    if not provider.idp_metadata_remote:
        raise ValueError(f"SSO provider {provider.slug} does not read its metadata from a URL.")
    try:
        current = _usable_copy(provider)
        due = timezone.now() - datetime.timedelta(hours=provider.metadata_refresh_hours)
        if not force and current is not None and current.fetched_at > due:
            return MetadataRefresh(provider=provider.slug, outcome="fresh", metadata=current)
        checked = saml_metadata_check(saml_metadata_fetch(provider), provider=provider)
    except MetadataRefused as refusal:
        return _refresh_failed(provider, refusal)
    previous = SamlMetadata.objects.filter(provider=provider.slug).values_list("sha256", flat=True).first()
    stored, _ = SamlMetadata.objects.update_or_create(
        provider=provider.slug,
        defaults={
            "source": provider.idp_metadata,
            "signing_cert_sha256": checked.signing_cert_sha256,
            "xml": checked.xml,
            "sha256": checked.sha256,
            "fetched_at": timezone.now(),
            "valid_until": checked.valid_until,
            "failed_at": None,
            "failure": "",
        },
    )
    cache.delete(_retry_key(provider))
    outcome = "unchanged" if previous == checked.sha256 else "stored"
    SAML_METADATA_REFRESHES.labels(provider.slug, outcome).inc()
    log.info("saml_metadata_refreshed", provider=provider.slug, outcome=outcome, sha256=checked.sha256,
             valid_until=checked.valid_until.isoformat() if checked.valid_until else None)  # fmt: skip
    return MetadataRefresh(provider=provider.slug, outcome=outcome, metadata=stored)


def _refresh_failed(provider: SsoProvider, refusal: MetadataRefused) -> MetadataRefresh:
    kept = SamlMetadata.objects.filter(provider=provider.slug).first()
    log.warning("saml_metadata_refresh_failed", provider=provider.slug, reason=str(refusal.code),
                detail=refusal.detail, kept=kept.fetched_at.isoformat() if kept else None)  # fmt: skip
    SAML_METADATA_REFRESHES.labels(provider.slug, str(refusal.code)).inc()
    cache.set(_retry_key(provider), str(refusal.code), RETRY_AFTER_FAILURE_SECONDS)
    if kept is not None:
        kept.failed_at, kept.failure = timezone.now(), str(refusal)[:300]
        kept.save(update_fields=["failed_at", "failure"])
    return MetadataRefresh(provider=provider.slug, outcome="failed", reason=str(refusal), metadata=kept)


def saml_metadata_refresh_due(*, slug: str | None = None, force: bool = False) -> list[MetadataRefresh]:
    """Refreshes each SAML provider that reads its metadata from a URL (or only `slug`'s) whose copy is
    due; safe to run any number of times."""
    providers = [p for p in sso_providers().values() if p.protocol == "saml" and p.idp_metadata_remote]
    if slug is not None:
        providers = [p for p in providers if p.slug == slug]
    return [saml_metadata_refresh(provider=provider, force=force) for provider in providers]


def _retry_key(provider: SsoProvider) -> str:
    return f"saml-metadata-failed:{provider.slug}"


# --- What sign-ins read ----------------------------------------------------------------------------

# A checked metadata file, per path: (its size and time, the certificate's fingerprint) -> what was checked.
_checked_files: dict[str, tuple[tuple, CheckedMetadata]] = {}


def saml_idp_metadata(provider: SsoProvider) -> dict:
    """pysaml2's `metadata` setting for a sign-in: the stored copy of a URL's metadata (fetched and
    checked now only if there is none usable: the first sign-in, a new URL or certificate, an expired
    copy), or the file. SsoProtocolError("metadata_unavailable: …") when there is none to trust."""
    try:
        if not provider.idp_metadata_remote:
            if not provider.idp_metadata_cert:
                return {"local": [provider.idp_metadata]}
            return {"inline": [_checked_file(provider)]}
        stored = _usable_copy(provider)
        if stored is None:
            if failure := cache.get(_retry_key(provider)):
                raise SsoProtocolError(f"metadata_unavailable: {failure} (failed less than a minute ago)")
            refresh = saml_metadata_refresh(provider=provider, force=True)
            if refresh.outcome == "failed":
                raise SsoProtocolError(f"metadata_unavailable: {refresh.reason}")
            stored = refresh.metadata
    except MetadataRefused as refusal:
        raise SsoProtocolError(f"metadata_unavailable: {refusal}") from refusal
    return {"inline": [stored.xml]}


def _checked_file(provider: SsoProvider) -> str:
    path = provider.idp_metadata
    try:
        status = Path(path).stat()
        stamp = (status.st_size, status.st_mtime_ns, signing_cert_sha256(provider.idp_metadata_cert))
        known = _checked_files.get(path)
        if known is not None and known[0] == stamp:
            checked = known[1]
        elif status.st_size > MAX_BYTES:
            raise MetadataRefused(MetadataFailure.TOO_LARGE, f"{status.st_size} bytes")
        else:
            checked = saml_metadata_check(Path(path).read_bytes(), provider=provider)
            _checked_files[path] = (stamp, checked)
    except OSError as error:
        raise MetadataRefused(MetadataFailure.UNREACHABLE, f"{path}: {type(error).__name__}") from error
    if checked.valid_until is not None and checked.valid_until <= timezone.now():
        raise MetadataRefused(MetadataFailure.EXPIRED, f"validUntil {checked.valid_until.isoformat()}")
    return checked.xml
