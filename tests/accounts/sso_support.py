"""A campus for the single sign-on tests: a real OpenID Connect provider (tests/support/oidc) with its
people, CampusIQ configured for it (SSO_CONFIG_FILE), and a signed-in flow driven over HTTP."""

import html
import json
import re
from urllib.parse import urljoin

import requests

CLIENT_ID = "campusiq"
CLIENT_SECRET = "test-client-secret-0123456789abcdef"
SLUG = "campus"
# The provider's people: their login on its sign-in page is the subject (sub) it asserts.
PEOPLE = {
    "ana": {"email": "ana@uni.example", "email_verified": True, "given_name": "Ana", "family_name": "Almeida",
            "groups": ["students"], "student_number": "S1001"},
    "lena": {"email": "lena@uni.example", "email_verified": True, "given_name": "Lena", "family_name": "Lee",
             "groups": ["lecturers"]},
    "newcomer": {"email": "newcomer@uni.example", "email_verified": True, "given_name": "Nia", "family_name": "New",
                 "groups": ["students"]},
    "outsider": {"email": "someone@elsewhere.example", "email_verified": True, "groups": []},
    "admin": {"email": "admin@uni.example", "email_verified": True, "groups": ["it-admins"]},
    # The same administrator having passed the provider's own second factor (REFEDS/RFC 8176 "mfa").
    "admin-mfa": {"email": "admin@uni.example", "email_verified": True, "groups": ["it-admins"], "amr": ["pwd", "mfa"]},
}  # fmt: skip


def provider_config(issuer: str, **overrides) -> dict:
    return {
        "slug": SLUG,
        "name": "Universidade Exemplo",
        "protocol": "oidc",
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret_env": "SSO_TEST_CLIENT_SECRET",
        "scopes": ["openid", "email", "profile", "campus"],
        "link_existing_by": ["email", "student_number"],
        "provision": True,
        "email_domains": ["uni.example"],
        "roles": {"students": "student", "lecturers": "lecturer"},
        "mfa": {"amr": ["mfa"]},
        "timeout_seconds": 3,
        **overrides,
    }


def sso_configure(settings, monkeypatch, tmp_path, providers: list[dict]) -> None:
    path = tmp_path / "sso.json"
    path.write_text(json.dumps({"providers": providers}))
    monkeypatch.setenv("SSO_TEST_CLIENT_SECRET", CLIENT_SECRET)
    settings.SSO_CONFIG_FILE = str(path)  # the provider cache follows the setting (accounts.sso.config)


def provider_sign_in(session: requests.Session, start_url: str, login: str) -> requests.Response:
    """Starts at CampusIQ's "Sign in with" link and signs in on the provider's own page as `login`;
    returns the answer at the end of the redirects (CampusIQ's page after sign-in, or its refusal)."""
    page = session.get(start_url, timeout=10)
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    assert action, f"no sign-in form at the provider: {page.status_code} {page.url}\n{page.text[:500]}"
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    form = {**hidden, "login": login, "password": "any"}
    return session.post(urljoin(page.url, action.group(1)), data=form, timeout=10)


SAML_SLUG = "campus-saml"
# SimpleSAMLphp's people (any password is "password"), with the attributes a federation IdP releases.
SAML_PEOPLE = {
    "ana": {"eduPersonPrincipalName": ["ana@uni.example"], "mail": ["ana@uni.example"], "givenName": ["Ana"],
            "sn": ["Almeida"], "eduPersonScopedAffiliation": ["student@uni.example"]},
    "nia": {"eduPersonPrincipalName": ["nia@uni.example"], "mail": ["nia@uni.example"], "givenName": ["Nia"],
            "sn": ["New"], "eduPersonScopedAffiliation": ["student@uni.example"]},
}  # fmt: skip


def sp_key_pair(folder) -> tuple[str, str]:
    """CampusIQ's own SAML signing key and certificate (PEM files in `folder`)."""
    import subprocess

    key, cert = folder / "sp.key", folder / "sp.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=campusiq.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(key), str(cert)


def saml_provider_config(idp, **overrides) -> dict:
    return {
        "slug": SAML_SLUG,
        "name": "Universidade Exemplo (SAML)",
        "protocol": "saml",
        "issuer": idp.metadata_url,
        "idp_metadata": str(idp.metadata_file()),
        "link_existing_by": ["email"],
        "provision": True,
        "email_domains": ["uni.example"],
        "roles": {"student@uni.example": "student", "staff@uni.example": "lecturer"},
        "timeout_seconds": 3,
        **overrides,
    }


def _form(page: requests.Response) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    assert action, f"no form at {page.url}: {page.status_code}\n{page.text[:500]}"
    fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    return urljoin(page.url, html.unescape(action.group(1))), {k: html.unescape(v) for k, v in fields.items()}


def saml_sign_in(session: requests.Session, start_url: str, login: str) -> requests.Response:
    """Through SimpleSAMLphp's login page, then its self-posting form to our ACS (a browser runs it)."""
    action, fields = _form(session.get(start_url, timeout=15))
    answer = session.post(action, data={**fields, "username": login, "password": "password"}, timeout=15)
    action, fields = _form(answer)
    return session.post(action, data=fields, timeout=15)
