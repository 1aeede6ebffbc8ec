"""Shared fixtures, and the rule for tests that need a real service: skip locally, fail on CI."""

import datetime
import io
import logging
import os
import shutil

import pytest
import redis as redis_client
from django.db import connection

from campusiq.core.logging import build_logging_config
from tests.factories import TermFactory, UserFactory

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def service_missing(what: str) -> None:
    """A test that needs PostgreSQL, Redis or Chromium: skipped on a laptop without it, failed on CI."""
    message = f"{what} is not available (scripts/services.sh starts it; .ci/run installs it)"
    if ON_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def redis_url() -> str | None:
    return os.environ.get("REDIS_URL")


def redis_available() -> bool:
    url = redis_url()
    if not url:
        return False
    try:
        return bool(redis_client.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis_client.RedisError:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        service_missing("PostgreSQL (DATABASE_URL)")
    if item.get_closest_marker("redis") and not redis_available():
        service_missing("Redis (REDIS_URL)")
    if item.get_closest_marker("browser") and not shutil.which(CHROMIUM_PATH):
        service_missing(f"Chromium at {CHROMIUM_PATH}")
    if item.get_closest_marker("saml"):
        from tests.support.identity_providers import saml_idp_missing

        if missing := saml_idp_missing():
            service_missing(missing)
    if item.get_closest_marker("oidc"):
        from tests.support.identity_providers import oidc_provider_missing

        if missing := oidc_provider_missing():
            service_missing(missing)


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def log_output():
    """Everything logged while the test runs, rendered by the production JSON formatter."""
    stream = io.StringIO()
    config = build_logging_config(log_format="json", level="DEBUG")
    formatter_config = dict(config["formatters"]["json"])
    formatter = formatter_config.pop("()")(**formatter_config)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous_level)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Cached rows (API tokens, class sessions) never outlive the test that made them: ids repeat
    across tests on SQLite."""
    yield
    from django.core.cache import cache

    from attendance.qr import class_session_local_cache_clear

    cache.clear()
    class_session_local_cache_clear()


@pytest.fixture(autouse=True)
def _rate_windows_hold_still(monkeypatch):
    """Fixed-window rate limits count a hit in the window of its moment: a test spending a budget over a
    few requests saw it refilled when a minute ended in between (a check-in test failed so in CI). In
    process the windows' clock stands still for a test; tests over real HTTP wait for a window with
    room instead (tests/security/test_limits_under_concurrency.py)."""
    import time

    from campusiq.core import ratelimit

    moment = time.time()
    monkeypatch.setattr(ratelimit, "window_clock", lambda: moment)


@pytest.fixture
def term(db):
    return TermFactory(name="Autumn 2026")  # the factory's default dates contain today (2026-11-25)


@pytest.fixture
def past_term(db):
    return TermFactory(
        name="Spring 2026",
        start_date=datetime.date(2026, 2, 9),
        end_date=datetime.date(2026, 6, 26),
        add_drop_deadline=datetime.date(2026, 2, 23),
    )


@pytest.fixture(scope="session")
def oidc_provider(live_server, tmp_path_factory):
    """A real OpenID Connect provider (tests/support/oidc) with the sign-on tests' people, whose client
    is this live server (tests/accounts/sso_support.py)."""
    from tests.accounts.sso_support import CLIENT_ID, CLIENT_SECRET, PEOPLE, SLUG
    from tests.support.identity_providers import OidcProvider

    callback = f"{live_server.url}/accounts/sso/{SLUG}/callback/"
    clients = [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [callback],
                "post_logout_redirect_uris": [f"{live_server.url}/"],
                # Node resolves localhost to ::1 first; the live server listens on 127.0.0.1.
                "backchannel_logout_uri": f"{live_server.url.replace('localhost', '127.0.0.1')}"
                                          f"/accounts/sso/{SLUG}/backchannel-logout/",
                "backchannel_logout_session_required": True}]  # fmt: skip
    provider = OidcProvider(clients=clients, accounts=PEOPLE, log_path=tmp_path_factory.mktemp("oidc") / "log")
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def sso_campus(settings, monkeypatch, tmp_path, oidc_provider, live_server):
    """CampusIQ configured for the test provider (the live server runs in this process); its URL."""
    from accounts.services import roles_sync_groups
    from tests.accounts.sso_support import provider_config, sso_configure

    roles_sync_groups()
    sso_configure(settings, monkeypatch, tmp_path, [provider_config(oidc_provider.issuer)])
    return live_server.url


@pytest.fixture(scope="session")
def sp_keys(tmp_path_factory) -> tuple[str, str]:
    """CampusIQ's SAML signing key and certificate files."""
    from tests.accounts.sso_support import sp_key_pair

    return sp_key_pair(tmp_path_factory.mktemp("saml-sp"))


@pytest.fixture(scope="session")
def saml_idp(live_server, tmp_path_factory, sp_keys):
    """A real SAML 2.0 IdP (SimpleSAMLphp) with the sign-on tests' people, whose SP is this live server."""
    from pathlib import Path

    from tests.accounts.sso_support import SAML_PEOPLE, SAML_SLUG
    from tests.support.identity_providers import SamlIdp

    base = f"{live_server.url}/accounts/sso/{SAML_SLUG}"
    idp = SamlIdp(root=tmp_path_factory.mktemp("saml-idp"), users=SAML_PEOPLE, sp_entity_id=f"{base}/metadata/",
                  acs_url=f"{base}/acs/", sls_url=f"{base}/sls/", sp_cert=Path(sp_keys[1]))  # fmt: skip
    idp.start()
    yield idp
    idp.stop()


@pytest.fixture
def saml_campus(settings, monkeypatch, tmp_path, saml_idp, live_server, sp_keys):
    """CampusIQ configured for the test IdP, signing its own requests; its URL."""
    from accounts.services import roles_sync_groups
    from tests.accounts.sso_support import saml_provider_config, sso_configure

    roles_sync_groups()
    config = saml_provider_config(saml_idp, sp_key_file=sp_keys[0], sp_cert_file=sp_keys[1])
    sso_configure(settings, monkeypatch, tmp_path, [config])
    return live_server.url
