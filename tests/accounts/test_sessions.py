"""A password change or a deactivation, by any path, ends the person's sessions server-side and
revokes their personal API tokens; service-account tokens are left alone."""

import importlib
import re

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken, SignedInSession
from accounts.roles import Role
from accounts.tokens import api_token_issue
from campusiq.core.models import AuditLogEntry
from tests.factories import StudentFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"
NEW_PASSWORD = "a-much-longer-new-passphrase-42"


def signed_in_browser(user, *, through_form: bool = False) -> Client:
    client = Client()
    if through_form:
        client.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    else:
        client.force_login(user)
    assert SESSION_KEY in client.session
    return client


def still_signed_in(client: Client) -> bool:
    """Asks the server, as the browser would: a page for signed-in people only."""
    return client.get(reverse("password_change")).status_code == 200


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def person(db):
    return UserFactory(email="lena@campus.example", roles=[Role.LECTURER])


@pytest.fixture
def keys(person):
    """A personal token of the person, and a service account's token that must survive."""
    _, personal = api_token_issue(user=person, name="laptop")
    service = UserFactory(email="reader@svc.campus.example", is_service_account=True)
    _, service_key = api_token_issue(user=service, name="card reader")
    return {"personal": personal, "service": service_key}


def assert_signed_out_everywhere(person, keys, *, reason: str) -> None:
    client = Client()
    assert client.get("/api/v1/me/", **bearer(keys["personal"])).status_code == 401
    assert client.get("/api/v1/me/", **bearer(keys["service"])).status_code == 200
    revoked = ApiToken.objects.get(user=person)
    assert revoked.revoked_at is not None
    assert AuditLogEntry.objects.filter(verb="token.revoked", object_id=str(revoked.pk), reason=reason).exists()
    entry = AuditLogEntry.objects.get(verb="user.signed_out_everywhere", object_id=str(person.pk))
    assert entry.reason == reason and entry.changes["personal_tokens_revoked"] == [None, 1]


def test_signing_in_indexes_the_session_and_signing_out_drops_it(person):
    client = signed_in_browser(person, through_form=True)
    assert SignedInSession.objects.get(session_id=session_key(client)).user == person
    client.post(reverse("logout"))
    assert not SignedInSession.objects.exists()


def test_the_portal_password_change_keeps_this_browser_and_ends_the_others(person, keys, log_output):
    here, laptop, phone = (signed_in_browser(person, through_form=True) for _ in range(3))
    old_key = session_key(here)
    response = here.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert still_signed_in(here) and not still_signed_in(laptop) and not still_signed_in(phone)
    # Server-side: the other sessions' rows are gone, not merely refused on their next request.
    assert set(Session.objects.values_list("session_key", flat=True)) == {session_key(here)}
    assert session_key(here) != old_key and SignedInSession.objects.filter(session_id=session_key(here)).exists()
    assert_signed_out_everywhere(person, keys, reason="password changed")
    entry = AuditLogEntry.objects.get(verb="user.signed_out_everywhere")
    assert entry.actor == person and entry.changes["signed_in_count"] == [3, 0]
    line = next(line for line in log_output.getvalue().splitlines() if "user_signed_out_everywhere" in line)
    assert '"ended_count": 3' in line and '"revoked_count": 1' in line


def test_a_password_reset_ends_every_session_including_this_browsers(person, keys, mailoutbox):
    laptop = signed_in_browser(person)
    here = signed_in_browser(person)
    here.post(reverse("password_reset"), {"email": person.email})
    link = re.search(r"https?://testserver(/accounts/password/reset/\S+/)", mailoutbox[0].body).group(1)
    form = here.get(link, follow=True)
    response = here.post(
        form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("password_reset_complete")
    assert not still_signed_in(here) and not still_signed_in(laptop)
    assert not SignedInSession.objects.filter(user=person).exists()
    assert_signed_out_everywhere(person, keys, reason="password changed")


def test_an_admin_setting_someones_password_ends_their_sessions_not_the_admins(person, keys):
    victim_browser = signed_in_browser(person)
    admin_browser = signed_in_browser(UserFactory(roles=[Role.ADMIN]))
    response = admin_browser.post(
        f"/admin/accounts/user/{person.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302
    assert not still_signed_in(victim_browser) and still_signed_in(admin_browser)
    assert_signed_out_everywhere(person, keys, reason="password changed")
    assert AuditLogEntry.objects.get(verb="user.signed_out_everywhere").actor_label != "system"


def test_an_admin_disabling_someones_password_ends_their_sessions(person, keys):
    victim_browser = signed_in_browser(person)
    admin_browser = signed_in_browser(UserFactory(roles=[Role.ADMIN]))
    admin_browser.post(
        f"/admin/accounts/user/{person.pk}/password/", {"usable_password": "false", "unset-password": "1"}
    )
    person.refresh_from_db()
    assert not person.has_usable_password()
    assert not still_signed_in(victim_browser)
    assert_signed_out_everywhere(person, keys, reason="password changed")


def test_an_admin_changing_their_own_password_in_the_admin_stays_signed_in_there():
    admin = UserFactory(roles=[Role.ADMIN])
    here, elsewhere = signed_in_browser(admin), signed_in_browser(admin)
    here.post(
        f"/admin/accounts/user/{admin.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert still_signed_in(here) and not still_signed_in(elsewhere)
    assert SignedInSession.objects.filter(session_id=session_key(here), user=admin).exists()


def test_deactivation_in_the_admin_ends_sessions_and_personal_tokens(person, keys):
    victim_browser = signed_in_browser(person)
    admin = UserFactory(roles=[Role.ADMIN])
    admin_browser = signed_in_browser(admin)
    data = {
        "email": person.email,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "roles": ["lecturer"],
    }  # is_active left out: unticked
    response = admin_browser.post(f"/admin/accounts/user/{person.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    person.refresh_from_db()
    assert not person.is_active
    assert not still_signed_in(victim_browser) and still_signed_in(admin_browser)
    assert_signed_out_everywhere(person, keys, reason="account deactivated")
    assert AuditLogEntry.objects.get(verb="user.signed_out_everywhere").actor == admin


def test_a_registrar_deactivating_a_student_ends_their_sessions():
    student = StudentFactory()
    student_browser = signed_in_browser(student.user)
    _, personal = api_token_issue(user=student.user, name="phone")
    registrar = signed_in_browser(UserFactory(roles=[Role.REGISTRAR]))
    user = student.user
    data = {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
    }
    assert registrar.post(f"/admin/accounts/user/{user.pk}/change/", data).status_code == 302
    assert not still_signed_in(student_browser)
    assert Client().get("/api/v1/me/", **bearer(personal)).status_code == 401


def test_nobody_deactivates_themselves_in_the_admin():
    admin = UserFactory(roles=[Role.ADMIN])
    browser = signed_in_browser(admin)
    data = {
        "email": admin.email,
        "roles": ["admin"],
    }
    response = browser.post(f"/admin/accounts/user/{admin.pk}/change/", data)
    assert response.status_code == 200 and "You cannot deactivate your own account" in response.content.decode()
    admin.refresh_from_db()
    assert admin.is_active and still_signed_in(browser)


def test_a_service_or_shell_deactivation_is_seen_too(person, keys):
    browser = signed_in_browser(person)
    person.is_active = False
    person.save()
    assert not Session.objects.filter(session_key=session_key(browser)).exists()
    assert_signed_out_everywhere(person, keys, reason="account deactivated")
    assert AuditLogEntry.objects.get(verb="user.signed_out_everywhere").actor_label == "system"


def test_other_saves_sign_nobody_out(person, keys):
    browser = signed_in_browser(person)
    person.first_name = "Helena"
    person.save()
    person.last_login = None
    person.save(update_fields=["last_login"])
    person.is_active = True
    person.save(update_fields=["is_active"])
    assert still_signed_in(browser)
    assert Client().get("/api/v1/me/", **bearer(keys["personal"])).status_code == 200
    assert not AuditLogEntry.objects.filter(verb="user.signed_out_everywhere").exists()


def test_choosing_a_first_password_is_not_a_change_that_signs_out():
    """A new student has no usable password; the reset that sets their first one ends nothing."""
    student = StudentFactory()
    student.user.set_unusable_password()
    student.user.save(update_fields=["password"])  # taking a usable password away does sign out
    assert AuditLogEntry.objects.filter(verb="user.signed_out_everywhere").count() == 1
    student.user.set_unusable_password()
    student.user.save(update_fields=["password"])
    student.user.set_password(NEW_PASSWORD)
    student.user.save()
    assert AuditLogEntry.objects.filter(verb="user.signed_out_everywhere").count() == 1


def test_a_password_hash_upgrade_at_sign_in_is_not_a_password_change(person, keys, settings):
    other_browser = signed_in_browser(person)
    # The next sign-in re-hashes the password with the preferred hasher: the same password.
    settings.PASSWORD_HASHERS = [
        "tests.accounts.test_sessions.QuickPBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    assert person.password.startswith("md5$")
    signed_in_browser(person, through_form=True)
    person.refresh_from_db()
    assert person.password.startswith("pbkdf2_sha256$")
    assert Client().get("/api/v1/me/", **bearer(keys["personal"])).status_code == 200
    assert Session.objects.filter(session_key=session_key(other_browser)).exists()
    assert not AuditLogEntry.objects.filter(verb="user.signed_out_everywhere").exists()


def test_the_migration_indexes_sessions_signed_in_before_it(person):
    store = SessionStore()
    store[SESSION_KEY] = str(person.pk)
    store.create()
    anonymous = SessionStore()
    anonymous["cart"] = "nothing"
    anonymous.create()
    SignedInSession.objects.all().delete()
    migration = importlib.import_module("accounts.migrations.0004_index_existing_sessions")
    migration.index_existing_sessions(apps, None)
    assert list(SignedInSession.objects.values_list("session_id", "user_id")) == [(store.session_key, person.pk)]


from django.contrib.auth.hashers import PBKDF2PasswordHasher  # noqa: E402


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1000
