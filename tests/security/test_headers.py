"""Security headers and cookies under the production settings, on every route of the permission table
(tests/permission_table.py: every portal page and API operation, as a visitor and as someone allowed
in), errors included: CSP without inline script, HSTS, nosniff, Referrer-Policy, COOP, frame denial;
cookies Secure, HttpOnly and SameSite, the session and CSRF cookies named __Host-. CORS answers only
the origins listed, and credentials only to them."""

import re
from pathlib import Path

import pytest
from django.test import Client

from tests.core.test_settings import PROD_ENV, run_prod_settings
from tests.permission_table import ROLES, TABLE
from tests.test_permissions import _request, world  # noqa: F401  (world: the table's fixture)

pytestmark = pytest.mark.django_db

# As nginx sends requests on (production trusts its X-Forwarded-Proto: SECURE_PROXY_SSL_HEADER).
HTTPS = {"HTTP_X_FORWARDED_PROTO": "https"}
# The settings that shape headers and cookies, taken from campusiq/settings/prod.py as production loads them.
SECURITY_SETTING_PREFIXES = (
    "SECURE_",
    "SESSION_COOKIE_",
    "CSRF_COOKIE_",
    "LANGUAGE_COOKIE_",
    "CORS_",
    "SIGN_IN_DEVICE_",
)
SECURITY_SETTINGS = ("X_FRAME_OPTIONS", "CONTENT_SECURITY_POLICY", "MESSAGE_STORAGE")
# Swagger UI and ReDoc set styles inline (campusiq/urls.py says why); their scripts stay 'self' only.
INLINE_STYLE_PAGES = ("/api/docs/", "/api/redoc/")
# Prometheus's plain-text scrape, answered before the host check and the security middleware on purpose
# (campusiq/core/middleware.py, MetricsMiddleware): neither a page nor an API response.
NOT_A_PAGE = ("/metrics",)
LISTED_ORIGIN = "https://bi.campus.example"


@pytest.fixture
def production(settings, monkeypatch):
    prod = run_prod_settings(monkeypatch, PROD_ENV)
    for name, value in prod.items():
        if name.startswith(SECURITY_SETTING_PREFIXES) or name in SECURITY_SETTINGS:
            setattr(settings, name, value)
    return prod


def csp_directives(response) -> dict[str, list[str]]:
    directives = {}
    for part in response.get("Content-Security-Policy", "").split(";"):
        if part.strip():
            name, *values = part.split()
            directives[name] = values
    return directives


def header_problems(response, path: str, *, hsts: str) -> list[str]:
    problems = []
    csp = csp_directives(response)
    if not csp:
        problems.append("no Content-Security-Policy")
    else:
        scripts = csp.get("script-src", csp.get("default-src", []))
        if "'unsafe-inline'" in scripts or "'unsafe-eval'" in scripts or "*" in scripts:
            problems.append(f"script-src {scripts}")
        if csp.get("default-src") != ["'self'"] or csp.get("object-src") != ["'none'"]:
            problems.append(f"default-src {csp.get('default-src')}, object-src {csp.get('object-src')}")
        if csp.get("frame-ancestors") != ["'none'"]:
            problems.append(f"frame-ancestors {csp.get('frame-ancestors')}")
        if "'unsafe-inline'" in csp.get("style-src", []) and not path.startswith(INLINE_STYLE_PAGES):
            problems.append("style-src 'unsafe-inline'")
    expected = {
        "Strict-Transport-Security": hsts,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }
    for name, value in expected.items():
        if response.get(name) != value:
            problems.append(f"{name}: {response.get(name)!r}")
    if not response.get("X-Request-ID"):
        problems.append("no X-Request-ID")
    return problems


def cookie_problems(response, settings) -> list[str]:
    problems = []
    for name, morsel in response.cookies.items():
        if not morsel.value and morsel["max-age"] == 0:
            continue  # a deletion carries no data
        missing = [flag for flag in ("secure", "httponly") if not morsel[flag]]
        if morsel["samesite"] not in ("Lax", "Strict"):
            missing.append(f"samesite={morsel['samesite']!r}")
        if name.startswith("__Host-") and (morsel["path"] != "/" or morsel["domain"]):
            missing.append("__Host- with a Domain or a Path other than /")
        if missing:
            problems.append(f"cookie {name}: {', '.join(missing)}")
    for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
        if not name.startswith("__Host-"):
            problems.append(f"cookie {name} is not __Host-")
    return problems


def https_client(world, role: str) -> Client:  # noqa: F811  (world is the fixture's value)
    client = Client(raise_request_exception=False, **HTTPS)
    if world["users"][role] is not None:
        client.force_login(world["users"][role])
    return client


def first_allowed_role(expected: tuple[int, ...]) -> str | None:
    for role, status in zip(ROLES, expected, strict=True):
        if role != "anon" and status < 400:
            return role
    return None


def test_every_route_carries_the_security_headers_and_safe_cookies(world, production, settings):  # noqa: F811
    """Each row of the permission table, as a visitor and as the first role it lets in, over HTTPS."""
    hsts = "max-age=31536000; includeSubDomains; preload"
    problems, cookies_seen, sent = [], set(), 0
    for method, name, args, body_key, *expected in TABLE:
        for role in {"anon", first_allowed_role(tuple(expected))} - {None}:
            path, response, _ = _request(world, method, name, args, body_key, role, client=https_client(world, role))
            if path.startswith(NOT_A_PAGE):
                continue
            sent += 1
            cookies_seen |= set(response.cookies)
            found = header_problems(response, path, hsts=hsts) + cookie_problems(response, settings)
            problems += [f"{method} {path} as {role} ({response.status_code}): {p}" for p in found]
    assert not problems, "\n".join(problems)
    assert sent >= len(TABLE) - 2
    # The walk signed in with the login form (a session cookie) and rendered forms (a CSRF cookie).
    assert {settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME} <= cookies_seen


@pytest.mark.urls("tests.core.error_urls")
@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/api/test/crash/", None, 500),
        ("get", "/test/crash/", None, 500),
        ("get", "/api/v1/no-such-thing/", None, 404),
        ("get", "/no-such-page/", None, 404),
        ("delete", "/api/v1/", None, 405),
        ("post", "/api/test/echo/", "{not json", 400),
        ("post", "/api/test/echo/", "x" * 4096, 413),
        ("get", "/api/v1/me/", None, 401),
    ],
)
def test_error_answers_carry_the_headers_too(production, settings, method, path, body, status):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client = Client(raise_request_exception=False, **HTTPS)
    kwargs = {"data": body, "content_type": "application/json"} if body else {}
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    assert header_problems(response, path, hsts="max-age=31536000; includeSubDomains; preload") == []


def test_the_header_check_fails_without_the_middleware(production, settings):
    """The checks above can fail: without CSP and frame denial a page is reported."""
    removed = {"csp.middleware.CSPMiddleware", "django.middleware.clickjacking.XFrameOptionsMiddleware"}
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name not in removed]
    response = Client(**HTTPS).get("/")
    problems = header_problems(response, "/", hsts="max-age=31536000; includeSubDomains; preload")
    assert "no Content-Security-Policy" in problems and "X-Frame-Options: None" in problems


def test_plain_http_is_redirected_to_https_in_production(production):
    response = Client().get("/accounts/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/accounts/login/"


def test_cookie_check_catches_an_insecure_cookie(production, settings):
    response = Client(**HTTPS).get("/accounts/login/")
    assert cookie_problems(response, settings) == []
    response.set_cookie("tracker", "1")
    assert cookie_problems(response, settings) == ["cookie tracker: secure, httponly, samesite=''"]


# --- CORS ------------------------------------------------------------------------------------------


def cors_headers(response) -> dict[str, str]:
    headers = {name.lower(): value for name, value in response.headers.items()}
    return {name: value for name, value in headers.items() if name.startswith("access-control-")}


@pytest.mark.parametrize("credentials", [False, True])
def test_an_unlisted_origin_gets_no_cors_headers(production, settings, credentials):
    settings.CORS_ALLOWED_ORIGINS = [LISTED_ORIGIN]
    settings.CORS_ALLOW_CREDENTIALS = credentials
    client = Client(**HTTPS)
    for origin in (
        "https://evil.example",
        "null",
        "https://bi.campus.example.evil.example",
        "http://bi.campus.example",
    ):
        assert cors_headers(client.get("/api/v1/", headers={"Origin": origin})) == {}
        asks = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        preflight = client.options("/api/v1/departments/", headers={"Origin": origin, **asks})
        assert cors_headers(preflight) == {}


@pytest.mark.parametrize("credentials", [False, True])
def test_a_listed_origin_gets_cors_and_credentials_only_when_allowed(production, settings, credentials):
    settings.CORS_ALLOWED_ORIGINS = [LISTED_ORIGIN]
    settings.CORS_ALLOW_CREDENTIALS = credentials
    response = Client(**HTTPS).get("/api/v1/", headers={"Origin": LISTED_ORIGIN})
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == LISTED_ORIGIN  # never "*"
    assert "X-Request-ID" in headers["access-control-expose-headers"]
    assert headers.get("access-control-allow-credentials") == ("true" if credentials else None)
    assert "origin" in response["Vary"].lower()


def test_portal_pages_never_answer_cors_even_to_a_listed_origin(production, settings):
    settings.CORS_ALLOWED_ORIGINS = [LISTED_ORIGIN]
    assert cors_headers(Client(**HTTPS).get("/accounts/login/", headers={"Origin": LISTED_ORIGIN})) == {}


def test_production_lists_no_origin_and_no_credentials_by_default(production):
    assert production["CORS_ALLOWED_ORIGINS"] == []
    assert production["CORS_ALLOW_CREDENTIALS"] is False
    assert not production.get("CORS_ALLOW_ALL_ORIGINS") and not production.get("CORS_ALLOWED_ORIGIN_REGEXES")


# --- Templates: nothing inline for the CSP to block -------------------------------------------------------

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
INLINE_CODE = {
    "an inline <script>": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I),
    "an inline event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "a javascript: URL": re.compile(r"javascript:", re.I),
    "an inline style": re.compile(r"<style\b|\sstyle\s*=", re.I),
}


def inline_code(text: str) -> list[str]:
    return [what for what, pattern in INLINE_CODE.items() if pattern.search(text)]


def test_no_template_has_inline_script_or_style():
    templates = sorted(TEMPLATES_DIR.rglob("*.html"))
    assert len(templates) > 20
    found = {str(path.relative_to(TEMPLATES_DIR)): inline_code(path.read_text()) for path in templates}
    assert {path: what for path, what in found.items() if what} == {}


def test_the_template_check_finds_inline_code():
    assert inline_code('<script>alert(1)</script><a href="javascript:x()" onclick="y()" style="color:red">') == list(
        INLINE_CODE
    )
    assert inline_code('<script src="/static/js/campusiq.js" defer></script>') == []
