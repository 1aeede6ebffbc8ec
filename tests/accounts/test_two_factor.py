"""Two-factor sign-in for staff (TOTP, django-otp): set-up with a server-drawn QR code, the code
step at sign-in, turning it off, and the admin that requires it where ADMIN_REQUIRE_TWO_FACTOR is on."""

import datetime
import json
import re

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.roles import Role
from accounts.two_factor import two_factor_enrol_confirm, two_factor_enrol_start
from campusiq.core.models import AuditLogEntry
from tests.factories import StudentFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"


def code_for(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time += steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    right = {code_for(device, steps_ahead=step) for step in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in right)


def with_two_factor(user) -> TOTPDevice:
    device = two_factor_enrol_start(user=user)
    return two_factor_enrol_confirm(user=user, code=code_for(device))


def events(log_output, name: str) -> list[dict]:
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == name]


@pytest.fixture
def lecturer(db):
    return UserFactory(email="lecturer@campus.example", roles=[Role.LECTURER])


# --- Set-up -----------------------------------------------------------------------------------------


def test_a_lecturer_sets_up_two_factor_with_a_qr_code_drawn_by_the_server(lecturer):
    client = Client()
    client.force_login(lecturer)
    page = client.get(reverse("two_factor"))
    assert page.status_code == 200 and "Set up two-factor sign-in" in page.content.decode()
    started = client.post(reverse("two_factor"))
    assert started.status_code == 302 and started["Location"] == reverse("two_factor_setup")
    setup = client.get(reverse("two_factor_setup"))
    html = setup.content.decode()
    device = TOTPDevice.objects.get(user=lecturer)
    assert not device.confirmed
    assert re.search(r"<svg[^>]*class=\"qr\"", html) and "<path" in html
    assert "<script>" not in html and "style=" not in html.split('<main id="main"')[1]
    assert "no-store" in setup["Cache-Control"]  # the page holds the secret
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', html).group(1)
    assert len(secret.replace(" ", "")) == 32
    # A wrong code confirms nothing.
    wrong = client.post(reverse("two_factor_setup"), {"code": wrong_code(device)})
    assert wrong.status_code == 200 and "That code is not right" in wrong.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    device.throttling_failure_count = 0  # django-otp's wait after a wrong code, for the test's sake
    device.save()
    done = client.post(reverse("two_factor_setup"), {"code": code_for(device, steps_ahead=1)}, follow=True)
    assert "Two-factor sign-in is on" in done.content.decode()
    device.refresh_from_db()
    assert device.confirmed
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id  # this session is verified
    assert AuditLogEntry.objects.filter(verb="two_factor.enabled", object_id=str(lecturer.pk)).exists()


def test_starting_again_replaces_an_unconfirmed_secret(lecturer):
    client = Client()
    client.force_login(lecturer)
    client.post(reverse("two_factor"))
    first = TOTPDevice.objects.get(user=lecturer).key
    client.post(reverse("two_factor"))
    assert list(TOTPDevice.objects.filter(user=lecturer).values_list("key", flat=True)) != [first]
    assert TOTPDevice.objects.filter(user=lecturer).count() == 1


@pytest.mark.parametrize("role", [Role.ADVISOR, Role.REGISTRAR, Role.ADMIN])
def test_every_staff_role_may_use_it(role):
    client = Client()
    client.force_login(UserFactory(roles=[role]))
    assert client.get(reverse("two_factor")).status_code == 200


def test_students_never_see_it():
    student = StudentFactory()
    client = Client()
    client.force_login(student.user)
    for name in ("two_factor", "two_factor_setup"):
        assert client.get(reverse(name)).status_code == 404
    assert client.post(reverse("two_factor")).status_code == 404
    assert client.post(reverse("two_factor_disable"), {"code": "123456"}).status_code == 404
    assert not TOTPDevice.objects.exists()
    assert "Two-factor" not in client.get(reverse("password_change")).content.decode()


def test_staff_find_it_from_the_password_page(lecturer):
    client = Client()
    client.force_login(lecturer)
    assert reverse("two_factor") in client.get(reverse("password_change")).content.decode()


def test_turning_it_off_needs_a_current_code(lecturer):
    device = with_two_factor(lecturer)
    client = Client()
    client.force_login(lecturer)
    refused = client.post(reverse("two_factor_disable"), {"code": wrong_code(device)})
    assert refused.status_code == 200 and "That code is not right" in refused.content.decode()
    assert TOTPDevice.objects.filter(user=lecturer, confirmed=True).exists()
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # the failure was kept: django-otp's wait applies
    device.throttling_failure_count = 0
    device.save()
    response = client.post(reverse("two_factor_disable"), {"code": code_for(device, steps_ahead=1)})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=lecturer).exists()
    assert AuditLogEntry.objects.filter(verb="two_factor.disabled", object_id=str(lecturer.pk)).exists()


def test_staff_cannot_turn_it_off_where_the_admin_requires_it(settings):
    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    registrar = UserFactory(roles=[Role.REGISTRAR])
    device = with_two_factor(registrar)
    client = Client()
    client.force_login(registrar)
    assert "it stays on" in client.get(reverse("two_factor")).content.decode()
    response = client.post(reverse("two_factor_disable"), {"code": code_for(device, steps_ahead=1)})
    assert "cannot be turned off" in response.content.decode()
    assert TOTPDevice.objects.filter(user=registrar, confirmed=True).exists()


# --- The code step at sign-in -------------------------------------------------------------------


def test_sign_in_asks_for_the_code_before_anyone_is_signed_in(lecturer, log_output):
    device = with_two_factor(lecturer)
    client = Client()
    step_one = client.post(
        reverse("login"), {"username": lecturer.email, "password": PASSWORD, "next": "/portal/lecturer/"}
    )
    assert step_one.status_code == 302 and step_one["Location"] == reverse("login_code")
    assert SESSION_KEY not in client.session  # the password alone signs nobody in
    assert client.get(reverse("portal:lecturer-sections")).status_code == 302
    page = client.get(reverse("login_code"))
    assert page.status_code == 200 and 'autocomplete="one-time-code"' in page.content.decode()
    wrong = client.post(reverse("login_code"), {"code": wrong_code(device)})
    assert wrong.status_code == 200 and SESSION_KEY not in client.session
    assert events(log_output, "sign_in_code_failed")[0]["user_id"] == lecturer.pk
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.save()
    done = client.post(reverse("login_code"), {"code": code_for(device, steps_ahead=1)})
    assert done.status_code == 302 and done["Location"] == "/portal/lecturer/"
    assert int(client.session[SESSION_KEY]) == lecturer.pk
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert "campusiq_known_browser" in done.cookies
    assert code_for(device) not in log_output.getvalue()


def test_a_code_is_used_once(lecturer):
    device = with_two_factor(lecturer)
    used = code_for(device, steps_ahead=1)  # the set-up used the current one
    first = Client()
    first.post(reverse("login"), {"username": lecturer.email, "password": PASSWORD})
    assert first.post(reverse("login_code"), {"code": used}).status_code == 302
    second = Client()
    second.post(reverse("login"), {"username": lecturer.email, "password": PASSWORD})
    assert second.post(reverse("login_code"), {"code": used}).status_code == 200
    assert SESSION_KEY not in second.session


def test_the_code_step_has_django_otps_doubling_wait(lecturer):
    device = with_two_factor(lecturer)
    client = Client()
    client.post(reverse("login"), {"username": lecturer.email, "password": PASSWORD})
    client.post(reverse("login_code"), {"code": wrong_code(device)})
    waiting = client.post(reverse("login_code"), {"code": code_for(device, steps_ahead=1)})
    assert waiting.status_code == 429 and "Wait 1 second" in waiting.content.decode()
    assert SESSION_KEY not in client.session


def test_the_code_step_is_limited_per_person(lecturer, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # only our limit here
    settings.SIGN_IN_FAILURE_LIMITS = {**settings.SIGN_IN_FAILURE_LIMITS, "code": "3/15m"}
    device = with_two_factor(lecturer)
    client = Client()
    client.post(reverse("login"), {"username": lecturer.email, "password": PASSWORD})
    for _ in range(3):
        assert client.post(reverse("login_code"), {"code": wrong_code(device)}).status_code == 200
    refused = client.post(reverse("login_code"), {"code": code_for(device, steps_ahead=1)})
    assert refused.status_code == 429 and "Too many wrong codes. Try again in" in refused.content.decode()
    assert SESSION_KEY not in client.session


def test_the_code_step_expires(lecturer):
    device = with_two_factor(lecturer)
    client = Client()
    with time_machine.travel(datetime.datetime.now(datetime.UTC), tick=False) as clock:
        client.post(reverse("login"), {"username": lecturer.email, "password": PASSWORD})
        clock.shift(6 * 60)
        response = client.post(reverse("login_code"), {"code": code_for(device)})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert SESSION_KEY not in client.session


def test_the_code_step_without_a_password_step_goes_back_to_sign_in():
    assert Client().get(reverse("login_code"))["Location"] == reverse("login")
    assert Client().post(reverse("login_code"), {"code": "123456"})["Location"] == reverse("login")


def test_a_password_change_between_the_steps_voids_the_first(lecturer):
    device = with_two_factor(lecturer)
    client = Client()
    client.post(reverse("login"), {"username": lecturer.email, "password": PASSWORD})
    lecturer.set_password("a-brand-new-passphrase-77")
    lecturer.save()
    response = client.post(reverse("login_code"), {"code": code_for(device, steps_ahead=1)})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert SESSION_KEY not in client.session


def test_people_without_two_factor_sign_in_in_one_step(lecturer):
    client = Client()
    response = client.post(reverse("login"), {"username": lecturer.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert int(client.session[SESSION_KEY]) == lecturer.pk


# --- The admin ----------------------------------------------------------------------------------


def test_with_the_setting_off_the_admin_admits_staff_without_a_code():
    client = Client()
    client.force_login(UserFactory(roles=[Role.ADMIN]))
    assert client.get("/admin/").status_code == 200


def test_with_the_setting_on_an_admin_without_a_device_is_sent_to_set_one_up(settings):
    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    admin = UserFactory(roles=[Role.ADMIN])
    client = Client()
    client.post(reverse("login"), {"username": admin.email, "password": PASSWORD})
    response = client.get("/admin/students/")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('two_factor')}?next=%2Fadmin%2Fstudents%2F"
    page = client.get(response["Location"])
    assert "requires two-factor sign-in" in page.content.decode()
    started = client.post(reverse("two_factor"), {"next": "/admin/students/"})
    assert started["Location"] == f"{reverse('two_factor_setup')}?next=%2Fadmin%2Fstudents%2F"
    device = TOTPDevice.objects.get(user=admin)
    confirmed = client.post(started["Location"], {"code": code_for(device), "next": "/admin/students/"})
    assert confirmed["Location"] == "/admin/students/"
    assert client.get("/admin/").status_code == 200


def test_with_the_setting_on_a_session_not_verified_by_a_code_is_asked_for_one(settings):
    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    registrar = UserFactory(roles=[Role.REGISTRAR])
    device = with_two_factor(registrar)
    client = Client()
    client.force_login(registrar)  # e.g. signed in before two-factor was set up
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"] == f"{reverse('login_code')}?next=%2Fadmin%2F"
    assert client.get(response["Location"]).status_code == 200
    done = client.post(response["Location"], {"code": code_for(device, steps_ahead=1)})
    assert done["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_with_the_setting_on_signing_in_with_the_code_opens_the_admin(settings):
    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    admin = UserFactory(roles=[Role.ADMIN])
    device = with_two_factor(admin)
    client = Client()
    client.post(reverse("login"), {"username": admin.email, "password": PASSWORD, "next": "/admin/"})
    assert client.get("/admin/").status_code == 302  # not signed in yet: the admin's sign-in, then ours
    done = client.post(reverse("login_code"), {"code": code_for(device, steps_ahead=1)})
    assert done["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_with_the_setting_on_the_portal_is_unchanged_for_staff(settings, lecturer):
    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    admin = UserFactory(roles=[Role.ADMIN])
    client = Client()
    client.force_login(admin)
    assert client.get(reverse("predictions:at-risk")).status_code == 200
    client.force_login(lecturer)
    assert client.get(reverse("portal:lecturer-sections")).status_code == 200


def test_production_requires_two_factor_for_the_admin(monkeypatch, settings):
    from tests.core.test_settings import PROD_ENV, run_prod_settings

    monkeypatch.delenv("ADMIN_REQUIRE_TWO_FACTOR", raising=False)
    prod = run_prod_settings(monkeypatch, PROD_ENV)
    assert prod["ADMIN_REQUIRE_TWO_FACTOR"] is True
    assert prod["SIGN_IN_DEVICE_COOKIE_NAME"].startswith("__Host-")
    middleware = prod["MIDDLEWARE"]
    assert middleware.index("django_otp.middleware.OTPMiddleware") == (
        middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1
    )
    # Development and the tests default to off (the tests above turn it on where they need it).
    assert settings.ADMIN_REQUIRE_TWO_FACTOR is False


# --- API tokens and the API from the browser ---------------------------------------------------------

TOKEN_URL = "/api/v1/auth/token/"


def token_request(client, user, **extra):
    body = {"email": user.email, "password": PASSWORD, **extra}
    return client.post(TOKEN_URL, json.dumps(body), content_type="application/json")


def test_a_token_for_someone_with_two_factor_needs_the_current_code(lecturer):
    from accounts.models import ApiToken

    device = with_two_factor(lecturer)
    client = Client()
    missing = token_request(client, lecturer)
    assert missing.status_code == 401 and missing.json()["code"] == "two_factor_required"
    wrong = token_request(client, lecturer, code=wrong_code(device))
    assert wrong.status_code == 401 and wrong.json()["code"] == "two_factor_code_invalid"
    assert not ApiToken.objects.filter(user=lecturer).exists()
    throttle_reset(device)
    code = code_for(device, steps_ahead=1)
    issued = token_request(client, lecturer, code=f"{code[:3]} {code[3:]}")  # as the app shows it
    assert issued.status_code == 201 and issued.json()["token"].startswith("ciq_")
    again = token_request(client, lecturer, code=code)  # a code is good once
    assert again.status_code == 401 and again.json()["code"] == "two_factor_code_invalid"
    assert ApiToken.objects.filter(user=lecturer).count() == 1


def throttle_reset(device: TOTPDevice) -> None:
    """Ends django-otp's doubling wait after a wrong code, as time would."""
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0, throttling_failure_timestamp=None)


def test_wrong_token_codes_are_slowed_down_and_limited(lecturer):
    device = with_two_factor(lecturer)
    client = Client()
    assert token_request(client, lecturer, code=wrong_code(device)).status_code == 401
    waited = token_request(client, lecturer, code=code_for(device, steps_ahead=1))  # django-otp's doubling wait
    assert waited.status_code == 429 and int(waited["Retry-After"]) >= 1
    for _ in range(10):  # the code step's own limit, shared with the portal (SIGN_IN_FAILURE_LIMITS)
        throttle_reset(device)
        token_request(client, lecturer, code=wrong_code(device))
    throttle_reset(device)
    refused = token_request(client, lecturer, code=code_for(device, steps_ahead=1))
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"


def test_with_the_setting_on_staff_without_two_factor_get_no_token(settings):
    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    registrar = UserFactory(roles=[Role.REGISTRAR])
    refused = token_request(Client(), registrar)
    assert refused.status_code == 403 and refused.json()["code"] == "two_factor_setup_required"
    student = StudentFactory().user
    student.set_password(PASSWORD)
    student.save()
    assert token_request(Client(), student).status_code == 201  # students have no second factor
    device = with_two_factor(registrar)
    assert token_request(Client(), registrar, code=code_for(device, steps_ahead=1)).status_code == 201


def test_with_the_setting_off_staff_without_two_factor_still_get_a_token():
    registrar = UserFactory(roles=[Role.REGISTRAR])
    assert token_request(Client(), registrar).status_code == 201


def test_with_the_setting_on_the_api_from_the_browser_needs_a_verified_staff_session(settings):
    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    registrar = UserFactory(roles=[Role.REGISTRAR])
    device = with_two_factor(registrar)
    client = Client()
    client.force_login(registrar)  # a session no code has verified
    refused = client.get("/api/v1/students/")
    assert refused.status_code == 403 and refused.json()["code"] == "two_factor_required"
    client.post(reverse("login_code"), {"code": code_for(device, steps_ahead=1)})
    assert client.get("/api/v1/students/").status_code == 200
    lecturer = Client()
    lecturer.force_login(UserFactory(roles=[Role.LECTURER]))  # not admin staff: as before
    assert lecturer.get("/api/v1/students/").status_code == 200
    settings.ADMIN_REQUIRE_TWO_FACTOR = False
    unverified = Client()
    unverified.force_login(registrar)
    assert unverified.get("/api/v1/students/").status_code == 200
