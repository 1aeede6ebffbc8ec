"""The Content Security Policy and security headers are on portal pages and API responses alike."""

import pytest

pytestmark = pytest.mark.django_db


def csp_directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    directives = {}
    for part in policy.split(";"):
        name, *values = part.strip().split()
        directives[name] = values
    return directives


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/api/v1/", "/api/v1/me/", "/no-such-page/"])
def test_csp_and_security_headers(client, path):
    response = client.get(path)
    csp = csp_directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert "'unsafe-inline'" not in csp["style-src"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_portal_page_has_no_inline_script_or_style(client):
    html = client.get("/").content.decode()
    assert "<script>" not in html and "onclick=" not in html and "style=" not in html
    assert 'src="/static/js/campusiq.js"' in html


def test_production_headers_over_https(client, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    response = client.get("/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_cors_only_for_listed_origins(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://bi.campus.example"]
    allowed = client.get("/api/v1/", HTTP_ORIGIN="https://bi.campus.example")
    assert allowed["Access-Control-Allow-Origin"] == "https://bi.campus.example"
    refused = client.get("/api/v1/", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in refused


def test_passwords_are_hashed_with_argon2_in_production():
    from campusiq.settings import base

    assert base.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
