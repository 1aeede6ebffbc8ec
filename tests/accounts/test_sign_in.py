"""Sign-in throttling: failed attempts counted per account and address, per address, per account
(at most 100 an hour), and per known browser, which nobody elsewhere can lock out."""

import json
import re
import secrets
from unittest import mock

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.backends import ModelBackend
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"
COOKIE = "campusiq_known_browser"


@pytest.fixture
def lecturer(db):
    return UserFactory(email="lecturer@campus.example", roles=[Role.LECTURER])


def sign_in(client: Client, email: str, password: str, ip: str = "198.51.100.7", **extra):
    return client.post(reverse("login"), {"username": email, "password": password}, REMOTE_ADDR=ip, **extra)


def signed_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def events(log_output, name: str) -> list[dict]:
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == name]


def test_five_failures_from_one_address_pause_that_account_there_only(lecturer):
    attacker = Client()
    for _ in range(5):
        assert sign_in(attacker, lecturer.email, "guess").status_code == 200
    refused = sign_in(attacker, lecturer.email, PASSWORD)
    assert refused.status_code == 429 and not signed_in(attacker)
    page = refused.content.decode()
    assert re.search(r"Too many failed sign-ins\. Try again in 1[4-7] minutes\.", page), page
    assert 800 <= int(refused["Retry-After"]) <= 975
    # The lecturer, elsewhere, is not locked out.
    lecturer_browser = Client()
    assert sign_in(lecturer_browser, lecturer.email, PASSWORD, ip="203.0.113.20").status_code == 302
    assert signed_in(lecturer_browser)


def test_a_throttled_attempt_never_checks_the_password(lecturer):
    client = Client()
    for _ in range(5):
        sign_in(client, lecturer.email, "guess")
    with mock.patch.object(ModelBackend, "authenticate", side_effect=AssertionError("password checked")) as check:
        response = sign_in(client, lecturer.email, PASSWORD)
    assert response.status_code == 429 and check.call_count == 0
    # Right or wrong, the answer is the same: nothing to learn from it.
    wrong = sign_in(client, lecturer.email, "another-guess")
    assert wrong.status_code == 429
    assert wrong.content.decode().count("Too many failed") == response.content.decode().count("Too many failed")


def test_unknown_accounts_are_throttled_like_real_ones():
    client = Client()
    statuses = [sign_in(client, "nobody@campus.example", "guess").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


def test_a_successful_sign_in_clears_the_account_and_address_counter(lecturer):
    client = Client()
    for _ in range(4):
        sign_in(client, lecturer.email, "typo")
    assert sign_in(client, lecturer.email, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    del client.cookies[COOKIE]  # counted per account and address again, not as a known browser
    for _ in range(4):
        assert sign_in(client, lecturer.email, "typo").status_code == 200
    assert sign_in(client, lecturer.email, "typo").status_code == 200  # the fifth since success: still heard
    assert sign_in(client, lecturer.email, PASSWORD).status_code == 429


def test_an_address_spraying_many_accounts_is_stopped_after_30_failures():
    people = [UserFactory() for _ in range(11)]
    sprayer = Client()
    for person in people[:10]:
        for _ in range(3):  # under the per-account-and-address limit
            assert sign_in(sprayer, person.email, "Summer2026!").status_code == 200
    refused = sign_in(sprayer, people[10].email, PASSWORD)
    assert refused.status_code == 429 and "too many failed sign-ins from your network" in refused.content.decode()
    # Someone at another address signs in to that account as usual.
    assert sign_in(Client(), people[10].email, PASSWORD, ip="203.0.113.9").status_code == 302


def test_the_daily_cap_of_an_address_outlasts_its_short_window(settings):
    settings.SIGN_IN_FAILURE_LIMITS = {**settings.SIGN_IN_FAILURE_LIMITS, "ip": "4/15m", "ip_day": "8/d"}
    people = [UserFactory() for _ in range(5)]
    client = Client()
    with time_machine.travel("2026-11-25 08:00Z", tick=False) as clock:
        for index in range(8):
            sign_in(client, people[index % 4].email, "guess")
            clock.shift(6 * 60)  # slow enough for the 15-minute limit
        clock.shift(60 * 60)
        refused = sign_in(client, people[4].email, PASSWORD)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 3600


def test_an_account_takes_at_most_100_failures_an_hour_from_everywhere(lecturer, log_output):
    for attempt in range(100):
        address = f"192.0.2.{attempt // 4 + 1}"  # 4 per address: under every other limit
        assert sign_in(Client(), lecturer.email, f"guess-{attempt}", ip=address).status_code == 200
    refused = sign_in(Client(), lecturer.email, PASSWORD, ip="198.18.0.1")
    assert refused.status_code == 429
    assert "paused except in browsers that have signed in to it before" in refused.content.decode()
    throttled = events(log_output, "sign_in_throttled")
    assert throttled[-1]["scope"] == "account" and throttled[-1]["user_id"] == lecturer.pk
    assert len(events(log_output, "sign_in_failed")) == 100


def test_the_lecturers_own_browser_still_signs_in_when_the_account_is_under_attack(lecturer, settings):
    settings.SIGN_IN_FAILURE_LIMITS = {**settings.SIGN_IN_FAILURE_LIMITS, "account": "10/h"}
    office = Client()
    assert sign_in(office, lecturer.email, PASSWORD, ip="10.1.1.1").status_code == 302
    assert office.cookies[COOKIE]["httponly"] and office.cookies[COOKIE]["samesite"] == "Lax"
    office.post(reverse("logout"))
    # Someone guesses from many addresses, and from the campus address the lecturer uses too.
    for attempt in range(12):
        sign_in(Client(), lecturer.email, "guess", ip=f"192.0.2.{attempt}")
    for _ in range(5):
        sign_in(Client(), lecturer.email, "guess", ip="10.1.1.1")
    assert sign_in(Client(), lecturer.email, PASSWORD, ip="10.1.1.2").status_code == 429  # a new browser
    response = sign_in(office, lecturer.email, PASSWORD, ip="10.1.1.1")
    assert response.status_code == 302 and signed_in(office)


def test_a_known_browser_has_its_own_budget_of_failures(lecturer, log_output):
    browser = Client()
    sign_in(browser, lecturer.email, PASSWORD)
    browser.post(reverse("logout"))
    for _ in range(10):
        assert sign_in(browser, lecturer.email, "typo").status_code == 200
    refused = sign_in(browser, lecturer.email, PASSWORD)
    assert refused.status_code == 429
    assert events(log_output, "sign_in_throttled")[-1]["scope"] == "device"
    assert events(log_output, "sign_in_failed")[-1]["known_browser"] is True


def test_a_forged_or_foreign_known_browser_cookie_counts_for_nothing(lecturer, settings):
    settings.SIGN_IN_FAILURE_LIMITS = {**settings.SIGN_IN_FAILURE_LIMITS, "account": "5/h"}
    other = UserFactory(email="other@campus.example")
    theirs = Client()
    sign_in(theirs, other.email, PASSWORD)
    theirs.post(reverse("logout"))
    for attempt in range(5):
        sign_in(Client(), lecturer.email, "guess", ip=f"192.0.2.{attempt}")
    forged = Client()
    forged.cookies[COOKIE] = theirs.cookies[COOKIE].value[:-2] + "xx"
    assert sign_in(forged, lecturer.email, PASSWORD, ip="192.0.2.99").status_code == 429
    # A real cookie, but for another account: the lecturer's budget still applies.
    assert sign_in(theirs, lecturer.email, PASSWORD, ip="192.0.2.99").status_code == 429


def test_a_password_change_forgets_the_known_browsers(lecturer, settings):
    settings.SIGN_IN_FAILURE_LIMITS = {**settings.SIGN_IN_FAILURE_LIMITS, "account": "5/h"}
    browser = Client()
    sign_in(browser, lecturer.email, PASSWORD)
    browser.post(reverse("logout"))
    lecturer.set_password("a-brand-new-passphrase-77")
    lecturer.save()
    for attempt in range(5):
        sign_in(Client(), lecturer.email, "guess", ip=f"192.0.2.{attempt}")
    assert sign_in(browser, lecturer.email, "a-brand-new-passphrase-77").status_code == 429


def test_log_lines_name_the_user_never_the_email_or_password(lecturer, log_output):
    sign_in(Client(), lecturer.email, "wrong-secret-guess")
    sign_in(Client(), "stranger@elsewhere.example", "another-secret-guess")
    failed = events(log_output, "sign_in_failed")
    assert failed[0]["user_id"] == lecturer.pk and "account_digest" not in failed[0]
    assert "user_id" not in failed[1] and len(failed[1]["account_digest"]) == 16
    text = log_output.getvalue()
    for secret in ("wrong-secret-guess", "another-secret-guess", "stranger@elsewhere.example", lecturer.email):
        assert secret not in text


def test_the_api_token_endpoint_shares_the_budget(lecturer, settings):
    settings.SIGN_IN_FAILURE_LIMITS = {**settings.SIGN_IN_FAILURE_LIMITS, "account_ip": "3/15m"}
    client = Client()

    def token(password: str):
        body = json.dumps({"email": lecturer.email, "password": password})
        return client.post("/api/v1/auth/token/", body, content_type="application/json", REMOTE_ADDR="198.51.100.7")

    assert [token("guess").status_code for _ in range(3)] == [401, 401, 401]
    refused = token(PASSWORD)
    assert refused.status_code == 429 and refused["Content-Type"] == "application/problem+json"
    body = refused.json()
    assert body["code"] == "rate_limited" and "Try again in" in body["detail"] and body["request_id"]
    assert int(refused["Retry-After"]) > 60
    # The portal's sign-in from that address counts the same failures.
    assert sign_in(Client(), lecturer.email, PASSWORD).status_code == 429


def test_the_admin_sign_in_page_sends_people_to_the_portals(lecturer):
    client = Client()
    response = client.get("/admin/login/?next=/admin/students/")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/admin/students/"
    # Posting a password to it signs nobody in: there is no password check there to go around.
    posted = client.post("/admin/login/", {"username": lecturer.email, "password": PASSWORD})
    assert posted.status_code == 302 and not signed_in(client)
    assert client.get("/admin/").status_code == 302


def test_the_admin_sign_in_page_for_the_signed_in(lecturer):
    admin = UserFactory(roles=[Role.ADMIN])
    client = Client()
    client.force_login(admin)
    assert client.get("/admin/login/?next=https://evil.example/").headers["Location"] == "/admin/"
    client.force_login(lecturer)
    assert client.get("/admin/login/").status_code == 403


@pytest.mark.redis
def test_throttling_on_the_real_redis(settings):
    from tests.conftest import redis_url

    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis_url()},
    }
    # The database may be shared: a fresh account and address, and no flush (keys expire on their own).
    person = UserFactory(email=f"redis-{secrets.token_hex(4)}@campus.example")
    address = f"198.18.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    attacker = Client()
    assert [sign_in(attacker, person.email, "guess", ip=address).status_code for _ in range(6)] == [200] * 5 + [429]
    home = Client()
    assert sign_in(home, person.email, PASSWORD, ip="203.0.113.77").status_code == 302
    home.post(reverse("logout"))
    assert sign_in(home, person.email, PASSWORD, ip=address).status_code == 302  # a known browser
