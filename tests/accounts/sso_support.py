"""A campus for the single sign-on tests: a real OpenID Connect provider (tests/support/oidc) with its
people, CampusIQ configured for it (SSO_CONFIG_FILE), and a signed-in flow driven over HTTP."""

import json
import re
from urllib.parse import urljoin

import requests

from accounts.sso.config import sso_providers

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
    settings.SSO_CONFIG_FILE = str(path)
    sso_providers.cache_clear()


def provider_sign_in(session: requests.Session, start_url: str, login: str) -> requests.Response:
    """Starts at CampusIQ's "Sign in with" link and signs in on the provider's own page as `login`;
    returns the answer at the end of the redirects (CampusIQ's page after sign-in, or its refusal)."""
    page = session.get(start_url, timeout=10)
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    assert action, f"no sign-in form at the provider: {page.status_code} {page.url}\n{page.text[:500]}"
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    form = {**hidden, "login": login, "password": "any"}
    return session.post(urljoin(page.url, action.group(1)), data=form, timeout=10)
